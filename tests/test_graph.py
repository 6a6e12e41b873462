"""Expansion semantics: names, sequences, groups, blocks, repeat, when, from, extends."""

import textwrap

import pytest

import netspec
from netspec import SpecErrors
from netspec.graph import build_graph


def graph(text: str):
    return build_graph(netspec.loads(textwrap.dedent(text), "net.yaml"))


def errors(text: str) -> list:
    with pytest.raises(SpecErrors) as info:
        netspec.analyze(netspec.loads(textwrap.dedent(text), "net.yaml"))
    return info.value.errors


def test_unnamed_layers_are_numbered_by_position_like_nn_sequential():
    g = graph("""
        name: t
        input: [3, 8, 8]
        layers:
          - name: features
            layers:
              - conv2d: {out_channels: 4, kernel_size: 3}
              - relu
              - conv2d: {out_channels: 4, kernel_size: 3}
          - flatten
          - linear: 2
            name: fc
    """)
    assert list(g.nodes) == ["features.0", "features.1", "features.2", "1", "fc"]
    assert g.nodes["fc"].shape == (2,)
    assert g.scopes["features"].kind == "group"
    assert g.nodes["features.2"].scope == "features"


def test_repeat_names_copies_and_exposes_index():
    g = graph("""
        name: t
        input: [8]
        layers:
          - linear: ${8 * (index + 1)}
            repeat: 3
            name: fc
          - linear: 1
            from: fc
    """)
    assert [n.shape for n in g.nodes.values()] == [(8,), (16,), (24,), (1,)]
    assert list(g.nodes)[:3] == ["fc.0", "fc.1", "fc.2"]
    assert g.nodes["1"].inputs == ["fc.2"]
    assert g.scopes["fc"].repeat == 3


BLOCKS = """
    name: t
    input: [4, 8, 8]
    blocks:
      basic:
        args: {width: int, stride: 1}
        layers:
          - conv2d: {out_channels: $width, kernel_size: 3, stride: $stride, padding: 1, bias: false}
            name: conv1
          - name: downsample
            from: input
            when: ${stride != 1 or in_channels != width}
            layers:
              - conv2d: {out_channels: $width, kernel_size: 1, stride: $stride, bias: false}
          - add: [conv1, downsample]
          - relu
    layers:
      - basic: {width: 4}
        name: same
      - basic: {width: 8, stride: 2}
        name: down
"""


def test_block_with_conditional_shortcut():
    g = graph(BLOCKS)
    assert "same.downsample.0" not in g.nodes  # skipped: its name is the block input
    assert g.nodes["same.2"].inputs == ["same.conv1", "input"]
    assert g.nodes["down.2"].inputs == ["down.conv1", "down.downsample.0"]
    assert g.shape_of("down.3") == (8, 4, 4)
    assert g.scopes["down"].op == "basic" and g.scopes["down.downsample"].parent == "down"


def test_fan_out_and_named_outputs():
    g = graph("""
        name: t
        input: [16]
        outputs: [mu, logvar]
        layers:
          - linear: 8
            name: h
          - linear: 2
            name: mu
          - linear: 2
            from: h
            name: logvar
    """)
    assert set(g.dag.successors("h")) == {"mu", "logvar"}
    assert g.outputs == {"mu": "mu", "logvar": "logvar"}


def test_several_inputs_and_symbolic_dims():
    g = graph("""
        name: t
        inputs: {a: [T, 8], b: [T, 8]}
        layers:
          - add: [a, b]
          - linear: 4
    """)
    assert g.shape_of("1") == ("T", 4)


def test_extends_merges_mappings_and_replaces_lists(tmp_path):
    (tmp_path / "base.yaml").write_text(textwrap.dedent("""
        name: base
        input: [8]
        args: {width: 4, depth: 1}
        layers:
          - linear: $width
            repeat: $depth
    """))
    (tmp_path / "derived.yaml").write_text("extends: base.yaml\nname: derived\nargs: {depth: 3}\n")
    result = netspec.analyze(netspec.load(tmp_path / "derived.yaml"))
    assert result.name == "derived"
    assert [s.name for s in result.layers] == ["0.0", "0.1", "0.2"]


def test_extends_cycle_is_an_error(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b.yaml\nname: a\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\nname: b\n")
    with pytest.raises(netspec.SpecError, match="cycle"):
        netspec.load(tmp_path / "a.yaml")


def where(err) -> tuple:
    return err.mark.line, err.mark.col


def test_errors_point_at_the_line_and_column():
    errs = errors("""
        name: t
        input: [3, 8, 8]
        layers:
          - conv2d: {out_channels: 4, kernal_size: 3}
          - relu
          - linear: 10
          - lineer: 3
    """)
    messages = [e.message for e in errs]
    assert where(errs[0]) == (5, 31) and "unknown argument `kernal_size`" in messages[0]
    assert errs[0].hint == "did you mean `kernel_size`?"
    assert where(errs[1]) == (8, 5) and messages[1] == "unknown layer type `lineer`"


def test_shape_errors_continue_without_cascading():
    errs = errors("""
        name: t
        input: [784]
        layers:
          - conv2d: {out_channels: 4, kernel_size: 3}
          - relu
          - linear: 10
          - linear: {out_features: 0}
    """)
    assert [where(e) for e in errs] == [(5, 5), (8, 28)]


@pytest.mark.parametrize("layers, message, line", [
    ("  - linear: 4\n    from: nope\n", "`from` names `nope`, which is not defined here", 6),
    ("  - linear: 4\n    from: later\n  - linear: 4\n    name: later\n", "`later` is defined after this layer", 6),
    ("  - linear: 4\n    name: a\n  - linear: 4\n    name: a\n", "duplicate layer name `a`", 8),
    ("  - linear: 4\n    repeat: -1\n", "`repeat` must be a whole number", 6),
    ("  - linear: 4\n    when: 3\n", "`when` must be true or false", 6),
    ("  - add: [input]\n", "takes at least 2 input(s), got 1", 5),
    ("  - linear: ${width}\n", "unknown name `width`", 5),
])
def test_reference_and_structure_errors(layers, message, line):
    errs = errors("name: t\ninput: [8]\nlayers:\n  - relu\n" + layers)
    assert any(message in e.message and e.mark.line == line for e in errs), [e.format() for e in errs]


def test_block_argument_errors():
    errs = errors(BLOCKS.replace("- basic: {width: 4}", "- basic: {widht: 4}")
                  .replace("{width: 8, stride: 2}", "{width: 8, stride: 2.5}"))
    text = "\n".join(e.message for e in errs)
    assert "unknown argument `widht` for block `basic`" in text
    assert "block `basic` needs argument `width` (int)" in text
    assert "argument `stride` of block `basic` must be int, got 2.5" in text


def test_unused_input_and_unknown_output():
    errs = errors("""
        name: t
        inputs: {a: [4], b: [4]}
        outputs: [nope]
        layers:
          - linear: 2
            from: a
    """)
    text = "\n".join(e.message for e in errs)
    assert "input `b` is never used" in text and "output `nope` names no layer" in text


def test_expect_mismatch_is_reported_at_its_key():
    errs = errors("name: t\ninput: [8]\nlayers:\n  - linear: 2\nexpect: {params: 17, output: [3]}\n")
    assert [(e.message, where(e)) for e in errs] == [
        ("expected params 17, the spec gives 18", (5, 18)),
        ("expected output [3], the spec gives [2]", (5, 30)),
    ]


def test_yaml_syntax_and_duplicate_keys():
    with pytest.raises(netspec.SpecError) as info:
        netspec.loads("name: t\nlayers: [relu\n", "net.yaml")
    assert info.value.message.startswith("invalid YAML")
    with pytest.raises(netspec.SpecError, match="duplicate key `name`") as info:
        netspec.loads("name: t\nname: u\n", "net.yaml")
    assert where(info.value) == (2, 1)


def test_top_level_schema_errors_name_the_key():
    with pytest.raises(SpecErrors) as info:
        netspec.loads("name: t\ninput: [8]\nlayer: []\n", "net.yaml")
    text = "\n".join(e.format() for e in info.value.errors)
    assert "unknown key `layer`" in text and "did you mean `layers`?" in text


@pytest.mark.parametrize("name", ["forward", "graph", "training", "lambda", "_hidden"])
def test_layer_names_a_torch_module_cannot_hold_are_rejected(name):
    errs = errors(f"name: t\ninput: [4]\nlayers:\n  - linear: 2\n    name: {name}\n")
    assert where(errs[0]) == (5, 11) and f"layer name `{name}`" in errs[0].message


@pytest.mark.parametrize("name", ["torch", "class"])
def test_input_names_python_cannot_hold_are_rejected(name):
    errs = errors(f"name: t\ninputs:\n  {name}: [4]\nlayers:\n  - linear: 2\n    from: {name}\n")
    assert f"input name `{name}` is taken" in errs[0].message and where(errs[0]) == (3, 3)


def test_a_misspelled_first_layer_is_the_only_error():
    errs = errors("name: t\ninput: [4]\nlayers:\n  - lineer: 2\n  - relu\n")
    assert [e.message for e in errs] == ["unknown layer type `lineer`"]


def test_a_shape_error_in_a_merge_named_by_its_list_is_located():
    errs = errors("name: t\ninput: [1]\nlayers:\n  - mean: 0\n    name: m\n  - concat: [m, m]\n")
    assert "concat dim 0 is out of range for the 0-dim input" in errs[0].message and where(errs[0]) == (6, 5)


def test_a_group_takes_one_input():
    errs = errors("name: t\ninputs: {x: [4], y: [4]}\nlayers:\n  - name: g\n    from: [x, y]\n    layers: [relu]\n")
    assert "a group takes one input, got 2" in errs[0].message and where(errs[0]) == (5, 11)


def test_a_runaway_repeat_is_an_error(monkeypatch):
    monkeypatch.setattr("netspec.graph.MAX_LAYERS", 50)
    with pytest.raises(netspec.SpecError, match="`repeat: 100,000,000` makes more than 50 copies") as info:
        graph("name: t\ninput: [4]\nlayers:\n  - relu:\n    repeat: 100000000\n")
    assert where(info.value) == (5, 13)  # refused before its first copy (tests/test_hostile.py: the other caps)
