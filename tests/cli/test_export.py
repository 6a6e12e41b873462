"""`netspec export` (the exporter itself: tests/export/test_onnx.py)."""

import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch

import netspec
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


def test_exports_trained_weights_by_name(tmp_path, capsys):
    """`--weights` exports the weights of a file (here a state_dict unlike any fresh init), so onnxruntime
    computes what the module holding them computes; a file of another network is exit 1, naming the keys."""
    ort = pytest.importorskip("onnxruntime")
    spec = netspec.load(ROOT / "specs" / "cnn_digits.yaml")
    trained = netspec.build(spec)
    with torch.no_grad():
        for tensor in trained.parameters():
            tensor.copy_(torch.randn_like(tensor))
    torch.save(trained.state_dict(), tmp_path / "weights.pt")
    out = tmp_path / "cnn.onnx"
    code, text, err = call(capsys, "export", ROOT / "specs" / "cnn_digits.yaml", "-o", out,
                           "--weights", tmp_path / "weights.pt")
    assert code == 0 and text.endswith(f"wrote {out}\n"), err
    x = np.random.default_rng(0).standard_normal((3, 1, 8, 8)).astype(np.float32)
    (got,) = ort.InferenceSession(str(out)).run(None, {"input": x})
    np.testing.assert_allclose(got, trained.eval()(torch.from_numpy(x)).detach().numpy(), rtol=1e-4, atol=1e-5)
    code, _, err = call(capsys, "export", ROOT / "specs" / "mlp_digits.yaml", "-o", tmp_path / "mlp.onnx",
                        "--weights", tmp_path / "weights.pt")
    assert code == 1 and "--weights:" in err and "does not fit `mlp_digits`" in err and "fc1.weight" in err
    assert call(capsys, "export", "specs/cnn_digits.yaml", "-o", out, "--weights", tmp_path / "no.pt")[0] == 2
