"""Every example spec in specs/ is valid, states what it expects, and is written as the language intends."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import netspec

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
NAMES = [p.stem for p in SPECS]

EXAMPLES = [
    "logistic_regression", "softmax_regression", "mlp_digits", "cnn_digits", "lenet5", "alexnet",
    "vgg11", "vgg16", "vgg19", "vgg16_bn", "plain34", "resnet18", "resnet34", "resnet50", "resnet101",
    "resnet152", "rnn_charlm", "lstm_classifier", "conv_autoencoder", "vae", "unet", "vit_tiny",
    "mnist1d_mlp", "mnist1d_cnn", "mnist1d_gru", "mobilenet_v3_small", "mnasnet1_0", "regnet_y_400mf", "googlenet",
    "swin_t", "shufflenet_v2_x1_0", "r3d_18", "fcn_resnet50",
]


def raw(name: str) -> dict:
    return yaml.safe_load((ROOT / "specs" / f"{name}.yaml").read_text(encoding="utf-8"))


def analysis(name: str, **dims):
    return netspec.analyze(netspec.load(ROOT / "specs" / f"{name}.yaml"), dims or None)


def test_every_example_is_there():
    assert set(EXAMPLES) <= set(NAMES)


@pytest.mark.parametrize("path", SPECS, ids=NAMES)
def test_spec_validates(path):
    result = netspec.analyze(netspec.load(path))  # raises on any error or unmet `expect:`
    assert result.name == path.stem
    assert result.total_params > 0


@pytest.mark.parametrize("path", SPECS, ids=NAMES)
def test_spec_states_expectations_and_sources(path):
    """Each spec opens with a comment (what it is, its source, its numbers) and expects params and output."""
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# "), "a spec opens with a comment saying what it is"
    header = text.split("\nname:")[0]
    assert "Numbers" in header and any(ch.isdigit() for ch in header)
    spec = netspec.load(path)
    expect = spec.model.expect
    assert expect is not None and expect.params is not None
    assert expect.output is not None or expect.outputs is not None


def test_cli_validates_every_spec():
    run = subprocess.run([sys.executable, "-m", "netspec", "validate", *map(str, SPECS)],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert run.stdout.count(": ok") == len(SPECS)
    assert "Traceback" not in run.stderr


# ---- how the specs are written -------------------------------------------------------------


@pytest.mark.parametrize("name, base", [("resnet34", "resnet18.yaml"), ("resnet101", "resnet50.yaml"),
                                        ("resnet152", "resnet50.yaml")])
def test_deeper_resnets_only_override_name_args_expect(name, base):
    tree = raw(name)
    assert tree["extends"] == base
    assert set(tree) <= {"extends", "name", "description", "args", "expect"}
    assert set(tree["args"]) == {"depths"}


def test_plain34_is_resnet34_without_shortcuts():
    tree = raw("plain34")
    assert tree["extends"] == "resnet34.yaml" and set(tree["blocks"]) == {"basic"}
    plain, res = analysis("plain34"), analysis("resnet34")
    assert not [s for s in plain.layers if s.op == "add" or "downsample" in s.name]
    assert {s.name for s in plain.layers if s.op == "conv2d"} == \
        {s.name for s in res.layers if s.op == "conv2d" and "downsample" not in s.name}
    assert res.total_params - plain.total_params == 173_824  # three 1×1 projections with their BatchNorms


def test_resnet_stages_stride_only_in_their_first_block():
    result = analysis("resnet18")
    by_name = result.by_name
    assert "layer1.0.downsample.0" not in by_name  # 64 → 64, stride 1: identity shortcut
    for stage, (channels, size) in {2: (128, 28), 3: (256, 14), 4: (512, 7)}.items():
        assert by_name[f"layer{stage}.0.downsample.0"].output_shape == (channels, size, size)
        assert by_name[f"layer{stage}.0.conv1"].output_shape == (channels, size, size)
        assert f"layer{stage}.1.downsample.0" not in by_name
    for name in ("resnet50", "resnet101", "resnet152"):
        layers = analysis(name).by_name
        # every stage's first bottleneck projects (the width grows ×4); the others do not
        assert [n for n in layers if n.endswith("downsample.0")] == \
            [f"layer{i}.0.downsample.0" for i in range(1, 5)]


def test_resnet_depths_follow_args():
    for name, depths in {"resnet18": [2, 2, 2, 2], "resnet34": [3, 4, 6, 3], "resnet50": [3, 4, 6, 3],
                         "resnet101": [3, 4, 23, 3], "resnet152": [3, 8, 36, 3]}.items():
        graph = analysis(name).graph
        assert [graph.scopes[f"layer{i + 1}"].repeat for i in range(4)] == depths


def test_sequence_models_keep_their_length_symbolic():
    lm = analysis("rnn_charlm")
    assert lm.outputs["output"] == ("T", 65) and lm.macs is None  # MACs depend on T
    clf = analysis("lstm_classifier")
    assert clf.outputs["output"] == (5,)
    assert analysis("lstm_classifier", T=50).macs == 50 * 4 * 64 * ((32 + 64) + (64 + 64)) + 64 * 5


def test_binding_a_dim_keeps_a_symbolic_expect_valid():
    bound = analysis("rnn_charlm", T=100)
    assert bound.outputs["output"] == (100, 65)
    assert bound.macs == 100 * (128 * (64 + 128) + 128 * 65)


def test_vae_returns_recon_mu_logvar():
    result = analysis("vae")
    assert result.outputs == {"recon": (784,), "mu": (20,), "logvar": (20,)}
    assert result.by_name["mu"].inputs == result.by_name["logvar"].inputs == ["hidden"]


def test_autoencoder_and_unet_give_back_the_input_plane():
    ae = analysis("conv_autoencoder")
    assert ae.outputs["output"] == ae.inputs["input"]
    unet = analysis("unet")
    assert unet.outputs["output"] == (2, 64, 64)
    concats = [s for s in unet.layers if s.op == "concat"]
    # a block's output is its last layer (`enc2.5`, the second relu)
    assert [s.inputs for s in concats] == [["up2", "enc2.5"], ["up1", "enc1.5"]]
    assert [s.output_shape for s in concats] == [(64, 32, 32), (32, 64, 64)]


def test_vit_tokens():
    result = analysis("vit_tiny")
    layers = result.by_name
    assert layers["class_token"].output_shape == (65, 192)
    assert result.graph.scopes["layers"].repeat == raw("vit_tiny")["args"]["depth"]
    assert layers["layers.0.self_attention"].output_shape == (65, 192)
    assert result.outputs["output"] == (10,)


def test_shufflenet_splits_the_channels_where_a_unit_keeps_the_size():
    result = analysis("shufflenet_v2_x1_0")
    layers = result.by_name
    assert "stage2.0.halves.0" not in layers and layers["stage2.0.3"].inputs == \
        ["stage2.0.branch1.4", "stage2.0.branch2.7"]  # striding: both branches read the whole input
    assert [layers[f"stage2.1.halves.{i}"].output_shape for i in (0, 1)] == [(58, 28, 28)] * 2
    assert layers["stage2.1.3"].inputs == ["stage2.1.halves.0", "stage2.1.branch2.7"]
    assert layers["stage2.1.branch2.0"].inputs == ["stage2.1.halves.1"]
    assert [layers[f"stage{i}.0.4"].output_shape for i in (2, 3, 4)] == [(116, 28, 28), (232, 14, 14), (464, 7, 7)]


def test_r3d_strides_time_and_plane_from_stage_two():
    layers = analysis("r3d_18").by_name
    assert layers["stem.2"].output_shape == (64, 16, 56, 56)
    assert [layers[f"layer{i}.1.4"].output_shape for i in (1, 2, 3, 4)] == \
        [(64, 16, 56, 56), (128, 8, 28, 28), (256, 4, 14, 14), (512, 2, 7, 7)]
    assert "layer1.0.downsample.0" not in layers and layers["layer2.0.downsample.0"].output_shape == (128, 8, 28, 28)


def test_fcn_resnet50_is_resnet50s_backbone_dilated_with_a_head():
    tree = raw("fcn_resnet50")
    assert tree["extends"] == "resnet50.yaml" and "blocks" not in tree  # resnet50's own bottleneck
    result = analysis("fcn_resnet50")
    layers = result.by_name
    assert result.outputs == {"out": (21, 224, 224)}
    for stage, dilations in {3: [1, 2, 2, 2, 2, 2], 4: [2, 4, 4]}.items():
        convs = [layers[f"backbone.layer{stage}.{i}.conv2"].node.args for i in range(len(dilations))]
        assert [c.dilation for c in convs] == dilations and {c.stride for c in convs} == {1}
    assert layers["backbone.layer4.2.relu3"].output_shape == (2048, 28, 28)  # 1/8 of the input, not 1/32
    assert layers["out"].inputs == ["classifier.4", "input"]
