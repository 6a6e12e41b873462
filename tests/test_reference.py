"""netspec against the outside world: published parameter and MAC counts, and torchvision's state_dict.

The numbers come from the project's reference figures (torchvision 0.29 / torch 2.14,
1×3×224×224, MACs = conv + linear multiply-accumulates) and the ResNet paper.
The state_dict check builds each layer's torch module straight from the catalog
(`node.entry.module(...)`), independently of any build module, so it tests the
spec's names and the catalog's modules, not the builder.
"""

import json
from pathlib import Path

import pytest

import netspec

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
TORCHVISION = ROOT / "tests" / "reference"  # torchvision state_dict keys and shapes (see its README)

# model: (params, conv+linear MACs or None where the table gives none)
PUBLISHED = {
    "alexnet": (61_100_840, 714_188_480),
    "vgg11": (132_863_336, None),
    "vgg16": (138_357_544, 15_470_264_320),
    "vgg19": (143_667_240, 19_632_062_464),
    "vgg16_bn": (138_365_992, None),
    "resnet18": (11_689_512, 1_814_073_344),
    "resnet34": (21_797_672, 3_663_761_408),
    "resnet50": (25_557_032, 4_089_184_256),
    "resnet101": (44_549_160, 7_801_405_440),
    "resnet152": (60_192_808, 11_513_626_624),
}

_cache: dict = {}


def analysis(name: str):
    if name not in _cache:
        _cache[name] = netspec.analyze(netspec.load(SPECS / f"{name}.yaml"))
    return _cache[name]


@pytest.mark.parametrize("model", PUBLISHED)
def test_published_params_and_macs(model):
    params, macs = PUBLISHED[model]
    result = analysis(model)
    assert result.total_params == params
    assert result.trainable_params == params
    if macs is not None:
        assert result.macs == macs
    assert result.outputs == {"output": (1000,)}


def test_batchnorm_adds_params_but_no_macs():
    assert analysis("vgg16_bn").macs == analysis("vgg16").macs
    assert analysis("vgg16_bn").total_params - analysis("vgg16").total_params == 2 * 64 * 2 + 2 * 128 * 2 + \
        2 * 256 * 3 + 2 * 512 * 6


# The ResNet paper (He et al., 2016, Table 1) in units of 10⁹ multiply-adds. torchvision's
# bottleneck strides its 3×3 conv where the paper strides the first 1×1, hence resnet50's
# 4.09 against 3.8 (checked separately below).
PAPER = {"resnet18": 1.8, "resnet34": 3.6, "plain34": 3.6, "resnet101": 7.6, "resnet152": 11.3}


@pytest.mark.parametrize("model", PAPER)
def test_resnet_paper_flops(model):
    assert analysis(model).macs / 1e9 == pytest.approx(PAPER[model], rel=0.035)


def test_plain34_is_resnet34_less_its_projections():
    # three 1×1 projections, each 6,422,528 MACs (64·128·28², 128·256·14², 256·512·7²)
    assert analysis("resnet34").macs - analysis("plain34").macs == 3 * 6_422_528
    assert analysis("plain34").total_params == 21_623_848


BOTTLENECK_V1 = """\
extends: {base}
name: {name}
args: {{depths: {depths}}}
blocks:
  bottleneck:          # the paper's placement: the stride in the first 1×1 conv
    layers:
      - conv2d: {{out_channels: $width, kernel_size: 1, stride: $stride, bias: false}}
        name: conv1
      - batchnorm2d:
        name: bn1
      - relu
      - conv2d: {{out_channels: $width, kernel_size: 3, padding: 1, bias: false}}
        name: conv2
      - batchnorm2d:
        name: bn2
      - relu
      - conv2d: {{out_channels: '${{width * expansion}}', kernel_size: 1, bias: false}}
        name: conv3
      - batchnorm2d:
        name: bn3
      - name: downsample
        from: input
        when: ${{stride != 1 or in_channels != width * expansion}}
        layers:
          - conv2d: {{out_channels: '${{width * expansion}}', kernel_size: 1, stride: $stride, bias: false}}
          - batchnorm2d
      - add: [bn3, downsample]
      - relu
expect: {{params: null, macs: null}}
"""


@pytest.mark.parametrize("name, depths, paper, macs", [
    ("resnet50", [3, 4, 6, 3], 3.8, 3_857_973_248),
    ("resnet101", [3, 4, 23, 3], 7.6, 7_570_194_432),
    ("resnet152", [3, 8, 36, 3], 11.3, 11_282_415_616),
])
def test_paper_bottleneck_stride_placement(tmp_path, name, depths, paper, macs):
    path = tmp_path / f"{name}_v1.yaml"
    path.write_text(BOTTLENECK_V1.format(base=SPECS / "resnet50.yaml", name=f"{name}_v1", depths=depths))
    result = netspec.analyze(netspec.load(path))
    assert result.total_params == PUBLISHED[name][0]  # moving a stride changes no parameter
    assert result.macs == macs
    assert result.macs / 1e9 == pytest.approx(paper, rel=0.02)


# ---- recurrent layers (shared/reference/README.md) ------------------------------------------

RECURRENT = """\
name: {op}
input: [{steps}, 128]
layers:
  - {op}: {{hidden_size: 256, num_layers: 2}}
"""


@pytest.mark.parametrize("op, params, macs", [("lstm", 921_600, 29_360_128), ("gru", 691_200, 22_020_096)])
def test_recurrent_reference(op, params, macs):
    result = netspec.analyze(netspec.loads(RECURRENT.format(op=op, steps=32)))
    assert result.total_params == params
    assert result.macs == macs
    assert result.outputs["output"] == (32, 256)
    symbolic = netspec.analyze(netspec.loads(RECURRENT.format(op=op, steps="T")))
    assert symbolic.total_params == params and symbolic.macs is None
    assert netspec.analyze(netspec.loads(RECURRENT.format(op=op, steps="T")), {"T": 32}).macs == macs


def test_recurrent_reference_matches_torch():
    import torch
    for cls, params in ((torch.nn.LSTM, 921_600), (torch.nn.GRU, 691_200)):
        module = cls(input_size=128, hidden_size=256, num_layers=2, device="meta")
        assert sum(p.numel() for p in module.parameters()) == params


# ---- torchvision state_dict keys and shapes --------------------------------------------------


def expected_state_dict(name: str) -> dict[str, list[int]]:
    """The state_dict a module built from the spec holds: each node's catalog module, keyed by node name."""
    import torch

    from netspec.torch_backend import instantiate

    keys: dict[str, list[int]] = {}
    for node in analysis(name).graph.nodes.values():
        call = node.entry.module(node.args, node.in_shapes)
        if call is None:
            continue
        # meta tensors: shapes without memory (vgg's 25088×4096 weights included). The device
        # context rather than `instantiate(call, device="meta")`, which stateless modules
        # (ReLU, MaxPool2d, Dropout) reject.
        with torch.device("meta"):
            module = instantiate(call)
        if call.is_parameter:  # a bare learnable tensor is keyed by the node's own name
            entries = {node.name: module}
        else:
            entries = {f"{node.name}.{k}": v for k, v in module.state_dict().items()}
        for key, tensor in entries.items():
            assert key not in keys, f"duplicate state_dict key {key}"
            keys[key] = list(tensor.shape)
    return keys


# every model of tests/reference/ that specs/ writes
ZOO = sorted(p.stem for p in TORCHVISION.glob("*.json") if (SPECS / f"{p.stem}.yaml").exists())


def reference(model: str) -> dict:
    return json.loads((TORCHVISION / f"{model}.json").read_text())


def test_the_zoo_holds_every_published_model():
    assert set(PUBLISHED) <= set(ZOO)


@pytest.mark.parametrize("model", ZOO)
def test_torchvision_params_and_macs(model):
    """The analysis against FlopCounterMode's count of the torchvision model (see tests/reference/README.md)."""
    data, result = reference(model), analysis(model)
    assert result.total_params == data["total_params"]
    assert result.macs == data["macs_flopcounter"]
    assert list(result.inputs["input"]) == data["input"]


@pytest.mark.parametrize("model", ZOO)
def test_torchvision_state_dict(model):
    data = reference(model)
    assert data["model"] == model
    got = expected_state_dict(model)
    want = data["state_dict"]
    assert sorted(set(want) - set(got)) == [], "keys torchvision has and the spec lacks"
    assert sorted(set(got) - set(want)) == [], "keys the spec has and torchvision lacks"
    assert {k: got[k] for k in want if got[k] != want[k]} == {}, "shapes differ"
    assert list(got) == list(want)  # in torchvision's order too, layer by layer


# ---- torchvision's computation: deterministic weights, deterministic input ------------------


def deterministic_weights(module, keys) -> None:
    """The reference README's weights, replayed in the reference's key order: one generator seeded 0; a
    weight of rank >= 2 ~ N(0, 1/fan_in); a running_var or a 1-d weight ~ U(0.5, 1.5); any other float
    tensor ~ N(0, 0.25); integer buffers left as they are."""
    import torch

    g = torch.Generator().manual_seed(0)
    state = module.state_dict()
    with torch.no_grad():
        for key in keys:
            t = state[key]
            if not t.is_floating_point():
                continue
            if t.dim() >= 2:
                t.copy_(torch.randn(t.shape, generator=g) * (1.0 / t[0].numel()) ** 0.5)
            elif key.endswith(("running_var", "weight")):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=g) * 0.5)


@pytest.mark.parametrize("model", ZOO)
def test_torchvision_deterministic_output(model):
    """The spec computes what torchvision's model computes: the same output, within 1e-4 of its largest value,
    from the same weights on the same input (a wrong activation, residual or padding fails here)."""
    import torch

    data = reference(model)
    want = data["deterministic_output"]
    module = netspec.build(netspec.load(SPECS / f"{model}.yaml"))
    assert list(module.state_dict()) == list(data["state_dict"])
    deterministic_weights(module, data["state_dict"])
    x = torch.randn((2, *data["input"]), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = module.eval()(x)
    out = out["out"] if isinstance(out, dict) and "out" in out else out
    assert list(out.shape) == want["shape"]
    got = out.flatten(1)[:, :1000]
    expected = torch.tensor(want["first_1000_per_sample"], dtype=got.dtype)
    assert got.shape == expected.shape
    tolerance = 1e-4 * want["abs_max"]
    assert float(out.abs().max()) == pytest.approx(want["abs_max"], rel=1e-4)
    assert float((got - expected).abs().max()) <= tolerance
