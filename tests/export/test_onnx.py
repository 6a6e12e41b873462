"""ONNX export: every shipped spec torch can export gives a valid model that onnxruntime runs to torch's
outputs, at batch sizes and symbolic lengths other than the traced ones."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch

import netspec
from netspec.analysis import bind_dims
from netspec.errors import SpecErrors
from netspec.export.onnx import EXAMPLE_BATCH, ExportError, example_dims, export

onnx = pytest.importorskip("onnx", reason="ONNX export needs onnx (the export extra)")
ort = pytest.importorskip("onnxruntime", reason="the ONNX tests run models with onnxruntime (the test extra)")
pytest.importorskip("onnxscript", reason="torch's ONNX exporter needs onnxscript (the export extra)")

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
RTOL = 1e-4  # relative to the largest output value (a float32 network of 100+ layers, run by two engines)
LARGE = 100_000_000  # bytes of float32 parameters above which a spec is exported only with NETSPEC_EXPORT_LARGE=1
# specs exported with a symbolic dim bound: torch.export keeps no sequence length of nn.RNN dynamic (it has
# while-loop decompositions for LSTM and GRU only), so `T` is fixed; see docs/export.md
BOUND = {"rnn_charlm": {"T": 32}}
RANDOM = {"vae": {"recon"}}  # outputs drawn at random (reparameterize samples ε in the graph): compared by shape
# torch's default init lets no signal through plain34's 34 layers without shortcuts (its output is fc's bias
# whatever the input); He's init keeps one, so the comparison sees every layer
INIT = {"plain34": "kaiming_normal"}


def _case(path: Path):
    size = netspec.analyze(netspec.load(path)).param_bytes
    skip = size > LARGE and not os.environ.get("NETSPEC_EXPORT_LARGE")
    reason = (f"{size / 1e6:.0f} MB of parameters: 8-50 s and as many MB per export; "
              "NETSPEC_EXPORT_LARGE=1 runs it (docs/export.md)")
    return pytest.param(path, id=path.stem, marks=pytest.mark.skipif(skip, reason=reason))


def feeds(graph, batch: int, dims: dict[str, int], rng) -> dict[str, np.ndarray]:
    out = {}
    for name, value in graph.inputs.items():
        shape = (batch, *(dims.get(d, d) for d in value.shape))
        ints = value.dtype.startswith("int")
        out[name] = (rng.integers(0, 10, shape) if ints else rng.standard_normal(shape)).astype(value.dtype)
    return out


def run_both(module, session, graph, batch, dims, rng) -> tuple[dict, dict]:
    """(onnxruntime's outputs, torch's), by output name."""
    x = feeds(graph, batch, dims, rng)
    names = [o.name for o in session.get_outputs()]
    got = dict(zip(names, session.run(None, x)))
    with torch.no_grad():
        want = module(*(torch.from_numpy(v) for v in x.values()))
    want = want if isinstance(want, dict) else {"output": want}
    return got, {k: v.numpy() for k, v in want.items()}


@pytest.mark.parametrize("path", [_case(p) for p in SPECS])
def test_shipped_spec_exports_and_runs_as_in_torch(path, tmp_path):
    spec = netspec.load(path)
    dims = BOUND.get(path.stem, {})
    module = netspec.build(spec, init=INIT.get(path.stem))
    out = export(spec, tmp_path / "model.onnx", dims=dims, module=module)
    onnx.checker.check_model(str(out), full_check=True)
    graph = netspec.build_graph(bind_dims(spec, dims))
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    symbolic = example_dims(graph)
    assert [i.name for i in session.get_inputs()] == list(graph.inputs)
    assert [o.name for o in session.get_outputs()] == list(graph.outputs)
    for i, value in zip(session.get_inputs(), graph.inputs.values()):
        assert i.shape == ["batch", *value.shape]  # the batch and the symbolic dims are named, dynamic axes
    rng = np.random.default_rng(0)
    for batch, scale in ((EXAMPLE_BATCH + 1, 1), (1, 2)):  # neither the traced batch nor the traced lengths
        got, want = run_both(module, session, graph, batch, {d: n * scale + 1 for d, n in symbolic.items()}, rng)
        for name in want:
            assert got[name].shape == want[name].shape
            if name not in RANDOM.get(path.stem, ()):
                scale_ = float(np.abs(want[name]).max())
                np.testing.assert_allclose(got[name], want[name], rtol=RTOL, atol=RTOL * scale_, err_msg=name)


def test_a_symbolic_dim_can_be_bound(tmp_path):
    spec = netspec.load(ROOT / "specs" / "lstm_classifier.yaml")
    export(spec, tmp_path / "m.onnx", dims={"T": 24})
    (x,) = onnx.load(str(tmp_path / "m.onnx")).graph.input
    assert [d.dim_param or d.dim_value for d in x.type.tensor_type.shape.dim] == ["batch", 24, 32]


def test_every_export_in_a_process_keeps_lstm_lengths_dynamic(tmp_path):
    """torch 2.13 caches the LSTM decomposition of the first export; netspec clears that cache."""
    spec = netspec.load(ROOT / "specs" / "lstm_classifier.yaml")
    for i in range(2):
        export(spec, tmp_path / f"{i}.onnx")
        (x,) = onnx.load(str(tmp_path / f"{i}.onnx")).graph.input
        assert x.type.tensor_type.shape.dim[1].dim_param == "T"


def test_an_rnn_length_torch_cannot_keep_dynamic_is_an_error_and_leaves_the_file(tmp_path):
    target = tmp_path / "model.onnx"
    target.write_bytes(b"old")
    with pytest.raises(ExportError, match="cannot export `rnn_charlm`") as info:
        export(netspec.load(ROOT / "specs" / "rnn_charlm.yaml"), target)
    assert "fixed the symbolic dim `T` of input `input` to its example size 16" in str(info.value)
    assert "dims={'T': N}" in str(info.value) and "--dim T=N" in str(info.value)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_opset(tmp_path):
    spec = netspec.load(ROOT / "specs" / "mlp_digits.yaml")
    export(spec, tmp_path / "m.onnx", opset=18)
    assert onnx.load(str(tmp_path / "m.onnx")).opset_import[0].version == 18
    with pytest.raises(ExportError, match="opset"):
        export(spec, tmp_path / "old.onnx", opset=1)
    assert not (tmp_path / "old.onnx").exists()


def test_dims_must_name_a_symbolic_dim(tmp_path):
    with pytest.raises(ValueError, match="`L` is not a symbolic dim of `lstm_classifier`'s inputs .*: T"):
        export(netspec.load(ROOT / "specs" / "lstm_classifier.yaml"), tmp_path / "m.onnx", dims={"L": 5})
    with pytest.raises(ValueError, match="have no symbolic dims"):
        export(netspec.load(ROOT / "specs" / "mlp_digits.yaml"), tmp_path / "m.onnx", dims={"T": 5})


def test_an_invalid_spec_is_reported_before_torch_runs(tmp_path):
    spec = netspec.loads("name: bad\ninput: [64]\nlayers: [{conv2d: {out_channels: 4, kernel_size: 3}}]\n")
    with pytest.raises(SpecErrors):
        export(spec, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_example_sizes_are_distinct_and_accepted():
    spec = netspec.loads("name: two\ninputs: {a: [4, L], b: [T, 4]}\noutputs: [c, d]\nlayers:\n"
                         "  - conv1d: {out_channels: 4, kernel_size: 33}\n    from: a\n    name: c\n"
                         "  - linear: 3\n    from: b\n    name: d\n")
    assert example_dims(spec) == {"L": 64, "T": 128}  # 16 and 32 are shorter than the kernel
