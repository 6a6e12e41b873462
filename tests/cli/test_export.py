"""`netspec export` (the exporter itself: tests/export/test_onnx.py)."""

import subprocess
import sys

import onnx

from tests.cli.helpers import BAD, ROOT, call, write


def test_writes_the_model_with_its_opset(tmp_path, capsys):
    out = tmp_path / "lr.onnx"
    code, text, err = call(capsys, "export", "specs/logistic_regression.yaml", "-o", out, "--opset", "18")
    assert (code, text) == (0, f"specs/logistic_regression.yaml: wrote {out}\n"), err
    model = onnx.load(out)
    assert next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) == 18


def test_to_stdout_into_a_pipe(tmp_path):
    run = subprocess.run([sys.executable, "-m", "netspec", "export", "specs/logistic_regression.yaml", "-o", "-"],
                         capture_output=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr
    assert onnx.load_model_from_string(run.stdout).graph.input[0].name == "input"


def test_binds_a_symbolic_dim(tmp_path, capsys):
    out = tmp_path / "lstm.onnx"
    assert call(capsys, "export", "specs/lstm_classifier.yaml", "-o", out, "--dim", "T=7")[0] == 0
    dims = [d.dim_value or d.dim_param for d in onnx.load(out).graph.input[0].type.tensor_type.shape.dim]
    assert dims[:2] == ["batch", 7]


def test_an_export_torch_cannot_do_exits_1_with_the_hint(tmp_path, capsys):
    code, _, err = call(capsys, "export", "specs/rnn_charlm.yaml", "-o", tmp_path / "lm.onnx")
    assert code == 1 and err.startswith("netspec: error: torch's ONNX exporter cannot export `rnn_charlm`")
    assert "hint: bind the dim" in err and "--dim T=N" in err and not (tmp_path / "lm.onnx").exists()


def test_an_invalid_spec_exits_1_before_torch(tmp_path):
    code = ("import sys; from netspec.cli import main\n"
            f"assert main(['export', {str(write(tmp_path, 'bad.yaml', BAD))!r}, '-o', 'x.onnx']) == 1\n"
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path, capture_output=True)
