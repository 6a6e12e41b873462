"""`netspec compile`: validates before torch, -o -, quiet stderr, --format onnx."""

import subprocess
import sys

from tests.cli.helpers import BAD, ROOT, call, netspec, write


def test_an_invalid_spec_is_answered_before_torch_is_imported(tmp_path):
    bad = write(tmp_path, "bad.yaml", BAD)
    code = ("import sys; from netspec.cli import main\n"
            f"assert main(['compile', {str(bad)!r}, '-o', {str(tmp_path / 'x.py')!r}]) == 1\n"
            "assert 'torch' not in sys.modules")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert "bad.yaml:5:5: error:" in run.stderr and not (tmp_path / "x.py").exists()


def test_a_valid_spec_compiles_with_nothing_on_stderr(tmp_path):
    """torch once warned `Failed to initialize NumPy` on every compile (numpy is now a dependency)."""
    run = netspec("compile", "specs/cnn_digits.yaml", "-o", tmp_path / "cnn.py")
    assert run.returncode == 0 and run.stderr == ""
    assert run.stdout == f"specs/cnn_digits.yaml: wrote {tmp_path}/cnn.py\n"


def test_source_on_stdout(capsys):
    code, out, err = call(capsys, "compile", "specs/mlp_digits.yaml", "-o", "-")
    assert code == 0 and "class MlpDigits(nn.Module):" in out and err == ""
    compile(out, "mlp_digits.py", "exec")


def test_onnx_options_need_the_onnx_format(capsys):
    code, _, err = call(capsys, "compile", "specs/rnn_charlm.yaml", "-o", "x.py", "--dim", "T=4")
    assert code == 2 and "--opset and --dim apply to --format onnx" in err


def test_format_onnx_is_export(tmp_path, capsys):
    import onnx

    code, out, _ = call(capsys, "compile", "specs/logistic_regression.yaml", "-o", tmp_path / "m.bin",
                        "--format", "onnx")
    assert code == 0 and "wrote" in out
    model = onnx.load(tmp_path / "m.bin")
    assert [i.name for i in model.graph.input] == ["input"]
    assert call(capsys, "compile", "specs/logistic_regression.yaml", "-o", tmp_path / "m.onnx")[0] == 0
    assert onnx.load(tmp_path / "m.onnx").graph.output[0].name == "output"
