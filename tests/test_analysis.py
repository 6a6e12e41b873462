"""Analysis totals, receptive fields, memory estimates and symbolic dims."""

import textwrap

import netspec
from netspec.analysis import BYTES, RF


def analyze(text):
    return netspec.analyze(netspec.loads(textwrap.dedent(text), "net.yaml"))


def test_vgg16_receptive_fields_match_the_published_values():
    result = netspec.analyze(netspec.load("specs/vgg16.yaml"))
    rf = {s.name: s.receptive_field for s in result.layers}
    assert rf["features.28"].size == (196, 196)  # conv5_3
    assert rf["features.30"].size == (212, 212) and rf["features.30"].jump == (32, 32)  # pool5


def test_merges_take_the_largest_field_and_global_layers_cover_everything():
    result = analyze("""
        name: t
        input: [1, 32, 32]
        layers:
          - conv2d: {out_channels: 2, kernel_size: 5, padding: 2}
            name: wide
          - conv2d: {out_channels: 2, kernel_size: 1}
            from: input
            name: narrow
          - add: [wide, narrow]
          - adaptive_avgpool2d: 1
    """)
    rf = {s.name: s.receptive_field for s in result.layers}
    assert rf["narrow"] == RF((1, 1), (1, 1))
    assert rf["2"] == RF((5, 5), (1, 1))
    assert rf["3"] == "global"


def test_totals_and_training_memory():
    result = analyze("""
        name: t
        input: [10]
        layers:
          - linear: 20
            frozen: true
          - relu
          - linear: 5
    """)
    assert result.total_params == 220 + 105 and result.trainable_params == 105
    assert result.macs == 10 * 20 + 20 * 5
    assert result.flops == 2 * result.macs + 20  # relu: one op per element
    mem = result.training_memory(batch=4, optimizer="adam")
    assert mem["weights"] == 325 * BYTES
    assert mem["gradients"] == 105 * BYTES and mem["optimizer_state"] == 2 * 105 * BYTES
    assert mem["activations"] == (20 + 20 + 5 + 10) * 4 * BYTES
    assert mem["total"] == sum(v for k, v in mem.items() if k != "total")


def test_symbolic_dims_keep_shapes_and_make_costs_unknown():
    spec = netspec.loads("name: t\ninput: [T, 8]\nlayers:\n  - linear: 4\n", "net.yaml")
    result = netspec.analyze(spec)
    assert result.outputs == {"output": ("T", 4)} and result.macs is None and result.total_params == 36
    assert netspec.analyze(spec, dims={"T": 10}).macs == 320
