"""netspec.build: the module meets the analysis (shapes, parameter counts), names its state as the spec
does, loads torchvision checkpoints, initializes as the spec says, and runs compiled, channels-last,
under autocast, on any device."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import HealthCheck, given, settings

import netspec
from netspec.compiler import available_memory, build
from tests.samples import BIG, ROOT, SPECS, counts, inputs, load_valid, shapes, symbolic_dims
from tests.strategies import specs

TORCHVISION = ROOT / "tests" / "reference"  # torchvision state_dict keys and shapes (see its README)
REFERENCES = sorted(p for p in TORCHVISION.glob("*.json") if (ROOT / "specs" / f"{p.stem}.yaml").exists())


def spec_of(text: str) -> netspec.Spec:
    return netspec.loads(text)


def check_module(spec: netspec.Spec, device="cpu") -> None:
    """The module's output shapes and parameter counts are the analysis's."""
    result = netspec.analyze(spec, symbolic_dims(spec))
    model = build(spec, device=device).eval()
    assert counts(model) == (result.total_params, result.trainable_params)
    with torch.no_grad():
        out = model(**inputs(spec, result, device=device))
    assert shapes(out) == result.outputs


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_every_spec_runs_with_the_predicted_shapes_and_counts(path):
    spec, result = load_valid(path)
    check_module(spec, device="meta" if result.total_params > BIG else "cpu")


@pytest.mark.parametrize("path", REFERENCES, ids=[p.stem for p in REFERENCES])
def test_torchvision_state_dict_keys_shapes_and_strict_load(path):
    reference = json.loads(path.read_text())["state_dict"]
    spec, _ = load_valid(ROOT / "specs" / f"{path.stem}.yaml")
    model = build(spec, device="meta")
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == reference
    checkpoint = {k: torch.empty(shape, device="meta", dtype=torch.int64 if k.endswith("num_batches_tracked")
                                 else torch.float32) for k, shape in reference.items()}
    model.load_state_dict(checkpoint, strict=True, assign=True)


def test_a_torchvision_checkpoint_loads_on_cpu_and_runs():
    spec, result = load_valid(ROOT / "specs" / "resnet18.yaml")
    reference = json.loads((TORCHVISION / "resnet18.json").read_text())["state_dict"]
    checkpoint = {k: torch.full(shape, 0.01) if shape else torch.tensor(0) for k, shape in reference.items()}
    model = build(spec)
    model.load_state_dict(checkpoint, strict=True)
    assert model.layer1[0].conv1.weight.flatten()[0] == 0.01
    assert model.eval()(**inputs(spec, result, batch=1)).shape == (1, 1000)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs())
def test_random_specs_fail_cleanly_or_build_with_the_predicted_shapes(text):
    try:
        spec = netspec.loads(text)
        netspec.analyze(spec)
    except (netspec.SpecError, netspec.SpecErrors):
        return
    model = build(spec)
    try:
        result = netspec.analyze(spec, symbolic_dims(spec))
    except (netspec.SpecError, netspec.SpecErrors):
        return  # valid for any length, not for the length bound here (a kernel longer than it)
    assert counts(model) == (result.total_params, result.trainable_params)
    with torch.no_grad():
        assert shapes(model.eval()(**inputs(spec, result))) == result.outputs


MLP = """
name: mlp
input: [6]
layers:
  - linear: 8
    name: fc1
  - relu
  - dropout: 0.5
  - linear: 3
    name: fc2
"""

CNN = """
name: small_cnn
input: [3, 12, 12]
layers:
  - conv2d: {out_channels: 8, kernel_size: 3, padding: 1, bias: false}
    name: conv
  - batchnorm2d
  - relu
  - name: res
    layers:
      - conv2d: {out_channels: 8, kernel_size: 3, padding: 1}
        name: f
      - add: [f, input]
  - dropout2d: 0.2
  - adaptive_avgpool2d: 1
  - flatten
  - linear: 4
    name: head
"""

VAE = """
name: tiny_vae
input: [10]
outputs: [recon, mu, logvar]
layers:
  - linear: 8
    name: hidden
  - linear: 2
    name: mu
  - linear: 2
    name: logvar
    from: hidden
  - reparameterize: [mu, logvar]
  - linear: 10
    name: recon
"""


def test_several_outputs_are_a_dict_and_several_inputs_keyword_arguments():
    out = build(spec_of(VAE))(torch.randn(4, 10))
    assert list(out) == ["recon", "mu", "logvar"]
    assert [tuple(t.shape) for t in out.values()] == [(4, 10), (4, 2), (4, 2)]
    two = spec_of("""
name: two
inputs: {image: [3], extra: [3]}
layers:
  - concat: [image, extra]
  - linear: 2
""")
    model = build(two)
    a, b = torch.randn(2, 3), torch.randn(2, 3)
    assert torch.equal(model(image=a, extra=b), model(a, b))
    assert list(model.graph.nodes)[0].target == "image"


def test_state_is_named_by_the_spec_in_torch_containers():
    model = build(spec_of(CNN))
    assert list(model.state_dict()) == [
        "conv.weight", "1.weight", "1.bias", "1.running_mean", "1.running_var", "1.num_batches_tracked",
        "res.f.weight", "res.f.bias", "head.weight", "head.bias"]
    resnet = build(netspec.load(ROOT / "specs" / "resnet18.yaml"), device="meta")
    assert isinstance(resnet.layer1, torch.nn.ModuleList)
    assert isinstance(resnet.layer2[0].downsample[0], torch.nn.Conv2d)


def test_forward_is_straight_line_code():
    code = build(spec_of(CNN)).code
    assert "for " not in code and "if " not in code
    assert "self.res.f(" in code


def test_dropout_and_batchnorm_follow_train_and_eval():
    model = build(spec_of(CNN))
    bn = getattr(model, "1")
    x = torch.randn(8, 3, 12, 12)
    model.train()
    model(x)
    assert bn.num_batches_tracked == 1
    model.eval()
    assert not bn.training and not model.res.f.training
    running = bn.running_mean.clone()
    assert torch.equal(model(x), model(x))  # no dropout
    assert torch.equal(bn.running_mean, running)  # eval uses the running statistics, never updates them
    model.train()
    torch.manual_seed(0)
    a = model(x)
    torch.manual_seed(1)
    assert not torch.equal(a, model(x))  # channel dropout draws differ


def test_dropout_zeroes_in_training_only():
    model = build(spec_of(MLP.replace("dropout: 0.5", "dropout: 1.0")))
    x = torch.randn(3, 6)
    assert torch.equal(model.train()(x), model.fc2.bias.expand(3, 3))  # every hidden unit dropped
    assert not torch.equal(model.eval()(x), model.fc2.bias.expand(3, 3))


def test_frozen_layers_do_not_train():
    spec = spec_of(CNN.replace("  - name: res\n", "  - name: res\n    frozen: true\n"))
    model = build(spec)
    result = netspec.analyze(spec)
    assert counts(model) == (result.total_params, result.trainable_params)
    assert not model.res.f.weight.requires_grad and model.conv.weight.requires_grad


# ---- init -----------------------------------------------------------------------------------------

def weights(model):
    return dict(model.named_parameters())


def test_init_rule_weights_biases_and_norms():
    model = build(spec_of(CNN + "init: ones\n"))
    p = weights(model)
    assert torch.equal(p["conv.weight"], torch.ones(8, 3, 3, 3))
    assert torch.equal(p["res.f.bias"], torch.zeros(8)) and torch.equal(p["head.bias"], torch.zeros(4))
    assert torch.equal(p["1.weight"], torch.ones(8))  # a norm's scale keeps torch's init


def test_init_leaves_norm_layers_to_torch_and_reads_torch_parameter_names():
    """A 2-d layernorm scale keeps torch's ones; a bare tensor whose layer is named `bias_*` is no bias."""
    text = """
name: m
input: [4, 4]
init: ones
layers:
  - layernorm: [4, 4]
    name: norm
  - class_token:
    name: bias_tok
  - linear: 4
    name: fc
"""
    p = weights(build(spec_of(text)))
    assert torch.equal(p["norm.weight"], torch.ones(4, 4)) and torch.equal(p["norm.bias"], torch.zeros(4, 4))
    assert torch.equal(p["bias_tok"], torch.ones(1, 1, 4))  # a class token, whatever its layer's name
    assert torch.equal(p["fc.weight"], torch.ones(4, 4)) and torch.equal(p["fc.bias"], torch.zeros(4))
    p = weights(build(spec_of(text.replace("init: ones", "init: xavier_normal"))))
    assert torch.equal(p["norm.weight"], torch.ones(4, 4))  # a norm's scale, though 2-d: torch's ones
    assert p["bias_tok"].abs().sum() > 0 and p["fc.weight"].abs().sum() > 0


def test_init_nearest_wins_layer_over_group_over_spec():
    text = CNN.replace("        name: f\n", "        name: f\n        init: ones\n") \
              .replace("  - name: res\n", "  - name: res\n    init: xavier_uniform\n") + "init: zeros\n"
    text = text.replace("  - linear: 4\n    name: head\n", "  - linear: 4\n    name: head\n    init: default\n")
    p = weights(build(spec_of(text)))
    assert torch.equal(p["conv.weight"], torch.zeros(8, 3, 3, 3))
    assert torch.equal(p["res.f.weight"], torch.ones(8, 8, 3, 3))
    assert p["head.weight"].abs().sum() > 0 and p["head.bias"].abs().sum() > 0  # torch's default


def test_init_normal_std_and_the_build_argument():
    p = weights(build(spec_of(MLP.replace("input: [6]", "input: [400]")), init={"normal": {"std": 0.02}}))
    assert abs(p["fc1.weight"].std().item() - 0.02) < 0.003
    text = MLP.replace("    name: fc2\n", "    name: fc2\n    init: ones\n") + "init: xavier_normal\n"
    p = weights(build(spec_of(text), init="zeros"))  # replaces the spec's top-level init only
    assert torch.equal(p["fc1.weight"], torch.zeros(8, 6)) and torch.equal(p["fc2.weight"], torch.ones(3, 8))
    with pytest.raises(ValueError, match="`init` is one of"):
        build(spec_of(MLP), init="he")


@pytest.mark.parametrize("value, message", [
    ("kaiming", "did you mean `kaiming_normal`?"),
    ("{normal: {std: -1}}", "got {'normal': {'std': -1}}"),
    ("{uniform: 1}", "`init` is one of default, kaiming_normal"),
])
def test_bad_init_is_a_located_error(value, message):
    with pytest.raises(netspec.SpecErrors) as info:
        netspec.analyze(netspec.loads(f"name: m\ninput: [4]\nlayers:\n  - linear: 2\n    init: {value}\n"))
    assert message in str(info.value) and "<string>:5:" in str(info.value)


def test_top_level_init_is_checked():
    with pytest.raises(netspec.SpecErrors) as info:
        netspec.analyze(netspec.loads("name: m\ninput: [4]\ninit: xavier\nlayers:\n  - linear: 2\n"))
    assert info.value.errors[0].mark.line == 3


# ---- devices, dtypes, memory --------------------------------------------------------------------

def test_meta_device_allocates_nothing_and_to_moves():
    model = build(netspec.load(ROOT / "specs" / "resnet152.yaml"), device="meta")
    assert {p.device.type for p in model.parameters()} == {"meta"}
    small = build(spec_of(MLP), device=torch.device("cpu"))
    assert small.to("meta").fc1.weight.device.type == "meta"


def test_dtype_argument():
    model = build(spec_of(MLP), dtype=torch.float64).eval()
    assert model.fc1.weight.dtype == torch.float64
    assert model(torch.randn(2, 6, dtype=torch.float64)).dtype == torch.float64


def test_parameters_too_large_for_memory_fail_before_allocating():
    huge = spec_of("name: huge\ninput: [1000000]\nlayers:\n  - linear: 1000000\n")
    with pytest.raises(netspec.SpecError) as info:
        build(huge)
    assert "3,725.29 GiB" in str(info.value) and 'device="meta"' in info.value.hint
    assert build(huge, device="meta").get_submodule("0").weight.shape == (1000000, 1000000)


def test_build_does_not_check_expect_on_any_device():
    """`expect:` is validate's business: build succeeds alike on cpu and meta when it is wrong."""
    spec = spec_of(MLP + "expect: {params: 1}\n")
    with pytest.raises(netspec.SpecErrors, match="expected params 1"):
        netspec.analyze(spec)
    for device in ("cpu", "meta"):
        assert counts(build(spec, device=device))[0] == netspec.analyze(spec_of(MLP)).total_params


def test_cuda_memory_is_checked_on_the_cuda_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (100, 2048))
    with pytest.raises(netspec.SpecError, match="cuda has 0.00 GiB available"):
        build(spec_of(MLP), device="cuda")
    assert available_memory(torch.device("cpu")) > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_build_and_to_match_cpu():
    spec = spec_of(CNN)
    torch.manual_seed(0)
    cpu = build(spec).eval()
    cuda = build(spec, device="cuda").eval()
    cuda.load_state_dict(cpu.state_dict())
    x = torch.randn(2, 3, 12, 12)
    assert torch.allclose(cuda(x.cuda()).cpu(), cpu(x), atol=1e-4)
    assert torch.allclose(cpu.to("cuda")(x.cuda()).cpu(), cuda(x.cuda()).cpu())


def test_validation_rejects_every_name_a_module_cannot_hold():
    from netspec.spec import TAKEN_NAMES

    empty = torch.fx.Graph()
    empty.output(None)
    module_names = {n for n in dir(torch.fx.GraphModule(torch.nn.Module(), empty)) if not n.startswith("_")}
    assert module_names <= TAKEN_NAMES  # generated code's names: tests/test_codegen.py


# ---- torch.compile, channels_last, autocast --------------------------------------------------------

# torch.compile's own first import of torch.jit warns that torch.jit.script_method is deprecated: torch's
# business, not the spec's (netspec uses no TorchScript), and noise in every run of the suite.
TORCH_JIT_NOTE = pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")


@TORCH_JIT_NOTE
@pytest.mark.parametrize("name", ["cnn_digits", "conv_autoencoder", "unet", "vae", "vit_tiny", "resnet18"])
def test_compiles_with_fullgraph_and_trains(name):
    spec, result = load_valid(ROOT / "specs" / f"{name}.yaml")
    model = build(spec)
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    x = inputs(spec, result)
    out = compiled(**x)
    loss = sum(t.sum() for t in (out.values() if isinstance(out, dict) else [out]))
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    assert shapes(compiled(**x)) == shapes(model(**x)) == result.outputs


@TORCH_JIT_NOTE
def test_recurrent_specs_compile_with_a_graph_break():
    """Dynamo cannot trace torch's nn.LSTM (a torch limitation), so fullgraph is out; the rest compiles."""
    spec, result = load_valid(ROOT / "specs" / "lstm_classifier.yaml")
    model = build(spec).eval()
    torch._dynamo.reset()
    x = inputs(spec, result)
    assert torch.allclose(torch.compile(model, backend="aot_eager")(**x), model(**x), atol=1e-6)


@TORCH_JIT_NOTE
def test_compiles_with_inductor():
    spec, result = load_valid(ROOT / "specs" / "cnn_digits.yaml")
    model = build(spec).eval()
    torch._dynamo.reset()
    x = inputs(spec, result)
    assert torch.allclose(torch.compile(model, fullgraph=True)(**x), model(**x), atol=1e-5)


def test_channels_last_gives_the_same_output():
    spec, result = load_valid(ROOT / "specs" / "resnet18.yaml")
    model = build(spec).eval()
    x = inputs(spec, result, batch=1)["input"]
    with torch.no_grad():
        expected = model(x)
        model = model.to(memory_format=torch.channels_last)
        assert model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
        assert torch.allclose(model(x.to(memory_format=torch.channels_last)), expected, atol=1e-4)


def test_bf16_autocast_on_cpu():
    spec = spec_of(CNN)
    model = build(spec).eval()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.randn(2, 3, 12, 12))
    assert out.dtype == torch.bfloat16 and out.shape == (2, 4)
