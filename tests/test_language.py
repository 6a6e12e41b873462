"""The language's rules where a spec could mean two things: skipped items, block scope, dead layers,
expression types, and symbolic shapes that must equal torch's at every size."""

import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import netspec
from netspec.expr import evaluate
from tests.test_graph import errors, graph


def where(err) -> str:
    return f"{err.mark.line}:{err.mark.col}"


RESIDUAL = """
    name: t
    input: [4]
    blocks:
      res:
        args: {{out: int}}
        layers:
          - linear: $out
            name: fc
          - add: [{first}, {second}]
            when: ${{out == 4}}  # the input has 4 features
    layers:
      - res: {width}
"""


@pytest.mark.parametrize("first, second", [("input", "fc"), ("fc", "input")])
def test_a_skipped_merge_passes_on_the_previous_items_output(first, second):
    g = graph(RESIDUAL.format(first=first, second=second, width=8))  # 4 != 8: no residual
    assert g.outputs == {"output": "0.fc"}
    assert g.nodes["0.fc"].shape == (8,)
    g = graph(RESIDUAL.format(first=first, second=second, width=4))
    assert g.outputs == {"output": "0.1"}
    assert g.nodes["0.1"].inputs == [{"input": "input", "fc": "0.fc"}[n] for n in (first, second)]


def test_a_skipped_single_input_item_is_the_identity_on_its_input():
    g = graph("""
        name: t
        input: [4]
        layers:
          - linear: 4
            name: fc
          - relu:
            from: input
            name: shortcut
            when: false
          - add: [fc, shortcut]
    """)
    assert g.nodes["2"].inputs == ["fc", "input"]


def test_a_layer_that_reaches_no_output_is_an_error():
    errs = errors("""
        name: t
        input: [4]
        layers:
          - linear: 8
            name: unused
          - relu
          - linear: 3
            from: input
    """)
    assert [(where(e), e.message) for e in errs] == [
        ("7:5", "this layer reaches no output: nothing the network returns uses it")]
    assert "in `1`" in errs[0].notes
    assert "outputs:" in errs[0].hint


def test_a_block_default_may_be_an_expression_evaluated_where_the_block_is_used():
    g = graph("""
        name: t
        input: [4]
        blocks:
          res:
            args: {out: int, inp: '${in_features}'}
            layers:
              - linear: $out
                name: fc
              - add: [fc, input]
                when: ${inp == out}
        layers:
          - res: {out: 4}
    """)
    assert g.nodes["0.1"].inputs == ["0.fc", "input"]


def test_a_block_default_expression_that_fails_is_located_at_the_default():
    errs = errors("""
        name: t
        input: [4]
        blocks:
          b:
            args: {out: int, k: '${nope}'}
            layers:
              - linear: $out
        layers:
          - b: {out: 4}
    """)
    assert (where(errs[0]), errs[0].message) == ("6:25", "unknown name `nope` in `nope`")


@pytest.mark.parametrize("body, message, hint", [
    ("- add: [input, fc]", "`from` names `fc`, which is not defined here", "visible here: input"),
    ("- linear: $width", "unknown name `width` in `width`", None),
    ("- linear: ${index + 1}", "unknown name `index` in `index + 1`", None),
])
def test_a_block_body_sees_only_its_arguments_the_specs_args_and_its_inputs(body, message, hint):
    errs = errors(f"""
        name: t
        input: [4]
        blocks:
          inner:
            args: {{k: 1}}
            layers:
              {body}
          outer:
            args: {{width: int}}
            layers:
              - inner: 1
        layers:
          - linear: 4
            name: fc
          - outer: 4
            repeat: 2
    """)
    assert (where(errs[0]), errs[0].message) == ("8:22" if body.startswith("- add") else "8:17", message)
    if hint:
        assert errs[0].hint == hint


def test_comparing_a_string_with_a_number_is_an_error_not_false():
    errs = errors("""
        name: t
        input: [4]
        args: {mode: '3'}
        layers:
          - relu:
            when: ${mode == in_features - 1}
    """)
    assert where(errs[0]) == "7:11"
    assert errs[0].message.startswith("`mode == in_features - 1` compares a string '3' with a number 3")


@pytest.mark.parametrize("layer, at, want", [
    ("maxpool1d: {kernel_size: 2, stride: 2, padding: 1, ceil_mode: true}", 7, 3),
    ("avgpool1d: {kernel_size: 2, stride: 2, padding: 1, ceil_mode: true}", 7, 3),
    ("upsample: 1.5", 10, 12),
])
def test_symbolic_shapes_keep_torchs_rules(layer, at, want):
    g = graph(f"""
        name: t
        input: [1, L]
        layers:
          - conv1d: {{out_channels: 1, kernel_size: 3, padding: 1}}
          - conv1d: {{out_channels: 1, kernel_size: 3}}
          - {layer}
    """)
    length = g.nodes["2"].shape[1]
    assert evaluate(length, {"L": at}) == want, length


POOLS = st.sampled_from(["maxpool1d", "avgpool1d", "conv1d", "upsample"])


@settings(max_examples=60, deadline=None)
@given(op=POOLS, kernel=st.integers(1, 4), stride=st.integers(1, 3), padding=st.integers(0, 2),
       ceil_mode=st.booleans(), factor=st.sampled_from([0.5, 1.5, 2, 2.5]), lead=st.integers(0, 3))
def test_symbolic_lengths_equal_torchs_at_every_bound_size(op, kernel, stride, padding, ceil_mode, factor, lead):
    """A chain `conv1d (L → L-lead) → op` over a symbolic L: the formula, evaluated at L, is torch's length."""
    torch = pytest.importorskip("torch")
    padding = min(padding, kernel // 2)  # torch's own limit for pools
    if op == "upsample":
        args = f"{{scale_factor: {factor}}}"
    elif op == "conv1d":
        args = f"{{out_channels: 1, kernel_size: {kernel}, stride: {stride}, padding: {padding}}}"
    else:
        args = f"{{kernel_size: {kernel}, stride: {stride}, padding: {padding}, ceil_mode: {str(ceil_mode).lower()}}}"
    g = graph(f"""
        name: t
        input: [1, L]
        layers:
          - conv1d: {{out_channels: 1, kernel_size: {lead + 1}}}
          - {op}: {args}
    """)
    formula = g.nodes["1"].shape[1]
    layer = {
        "maxpool1d": lambda: torch.nn.MaxPool1d(kernel, stride, padding, ceil_mode=ceil_mode),
        "avgpool1d": lambda: torch.nn.AvgPool1d(kernel, stride, padding, ceil_mode=ceil_mode),
        "conv1d": lambda: torch.nn.Conv1d(1, 1, kernel, stride, padding),
        "upsample": lambda: torch.nn.Upsample(scale_factor=factor),
    }[op]()
    for length in range(max(kernel, 2), 24):
        inner = length - lead
        try:
            want = layer(torch.zeros(1, 1, inner)).shape[-1]
        except RuntimeError:
            continue
        assert evaluate(str(formula), {"L": length}) == want, (formula, length)


def test_an_empty_outputs_list_is_an_error():
    errs = errors("""
        name: t
        input: [4]
        outputs: []
        layers:
          - linear: 3
    """)
    assert [(where(e), e.message) for e in errs] == [
        ("4:10", "`outputs` lists no layer: the network would return nothing")]


@pytest.mark.parametrize("dtype", ["float64", "bfloat16"])
def test_the_module_is_built_in_the_declared_input_dtype(dtype):
    torch = pytest.importorskip("torch")
    spec = netspec.loads(f"name: t\ninput: {{shape: [4], dtype: {dtype}}}\nlayers:\n  - linear: 3\n  - relu\n")
    module = netspec.build(spec)
    out = module(torch.zeros(2, 4, dtype=getattr(torch, dtype)))
    assert out.dtype == getattr(torch, dtype) and out.shape == (2, 3)


@pytest.mark.parametrize("shape, dims", [("[100, 100, 3]", {}), ("[100, L, 3]", {"L": 5})])
def test_linear_applies_to_the_last_dim_of_any_rank_like_torch(shape, dims):
    from netspec.analysis import bind_dims

    spec = netspec.loads(f"name: t\ninput: {shape}\nlayers:\n  - linear: 8\n")
    result = netspec.analyze(bind_dims(spec, dims))
    (layer,) = result.layers
    assert layer.output_shape == (100, dims.get("L", 100), 8)
    assert layer.params == 3 * 8 + 8
    assert layer.receptive_field.size == (1, 1)  # each position on its own: the spatial field is kept


def test_a_recurrent_layer_sees_the_whole_sequence_after_an_embedding_too():
    ids = netspec.analyze(netspec.loads(
        "name: t\ninput: {shape: [T], dtype: int64}\nlayers:\n  - embedding: {num_embeddings: 10, embedding_dim: 4}\n"
        "  - gru: 8\n"))
    floats = netspec.analyze(netspec.loads("name: t\ninput: [T, 4]\nlayers:\n  - gru: 8\n"))
    assert ids.layers[-1].receptive_field == floats.layers[-1].receptive_field == "global"


def test_a_block_body_reads_its_own_input_shape():
    g = graph("""
        name: t
        input: [3, 8, 8]
        blocks:
          b:
            args: {k: 2}
            layers:
              - conv2d: {out_channels: '${input_channels * k}', kernel_size: 3, padding: 1}
              - conv2d: {out_channels: $input_channels, kernel_size: 1}
              - linear: ${input_shape[2] + input_features}
        layers:
          - b: 2
    """)
    assert [n.shape for n in g.nodes.values()] == [(6, 8, 8), (3, 8, 8), (3, 8, 16)]


def test_a_layer_may_be_named_by_a_position():
    g = graph("""
        name: t
        input: [4]
        layers:
          - linear: 4
            when: false
          - relu
          - linear: 3
            name: '2'
    """)
    assert list(g.nodes) == ["1", "2"]
    errs = errors("name: t\ninput: [4]\nlayers:\n  - linear: 4\n    name: '2'\n  - relu\n  - relu\n")
    assert (where(errs[0]), errs[0].message) == (
        "7:5", "this unnamed layer's position `2` is the name of an earlier layer")
    errs = errors("name: t\ninput: [4]\nlayers:\n  - linear: 4\n    name: 2\n")
    assert (where(errs[0]), errs[0].hint) == ("5:11", "quote it: `name: '2'`")


def test_repeat_copies_may_be_named_by_a_template_from_a_start_number():
    g = graph("""
        name: t
        input: [4]
        layers:
          - linear: ${4 + index}
            repeat: {count: 3, name: 'encoder_layer_{i}', start: 1}
            name: enc
          - add: [enc, encoder_layer_3]
          - linear: 1
            repeat: {count: 2, start: 1}
            name: fc
    """)
    assert [(n.name, n.shape) for n in g.nodes.values()] == [
        ("encoder_layer_1", (4,)), ("encoder_layer_2", (5,)), ("encoder_layer_3", (6,)), ("1", (6,)),
        ("fc.1", (1,)), ("fc.2", (1,))]
    assert g.nodes["1"].inputs == ["encoder_layer_3", "encoder_layer_3"]


@pytest.mark.parametrize("repeat, at, message", [
    ("{count: 2, name: x}", "5:30", "`repeat.name` is a name with `{i}` where the copy's number goes, got 'x'"),
    ("{cnt: 2}", "5:14", "unknown `repeat` key `cnt`"),
    ("{count: 2, start: -1}", "5:31", "`repeat.start` must be a whole number ≥ 0, got -1"),
])
def test_a_wrong_repeat_mapping_is_located(repeat, at, message):
    errs = errors(f"name: t\ninput: [4]\nlayers:\n  - relu:\n    repeat: {repeat}\n")
    assert (where(errs[0]), errs[0].message) == (at, message)


OP_ARG = """
    name: t
    input: [4]
    args: {head: linear}
    blocks:
      mlp:
        args: {width: int, activation: relu}
        layers:
          - linear: $width
          - $activation
    layers:
      - mlp: {width: 8, activation: ACT}
      - mlp: {width: 8}
      - $head: 3
"""


def test_an_op_may_be_a_block_argument():
    g = graph(OP_ARG.replace("ACT", "relu6"))
    assert [(n.name, n.op) for n in g.nodes.values()] == [
        ("0.0", "linear"), ("0.1", "relu6"), ("1.0", "linear"), ("1.1", "relu"), ("2", "linear")]
    assert g.nodes["2"].shape == (3,)


def test_an_op_argument_that_names_no_op_is_located_with_a_suggestion():
    errs = errors(OP_ARG.replace("ACT", "relu7"))
    assert [(where(e), e.message, e.hint) for e in errs] == [
        ("10:9", "`$activation` is 'relu7', not a layer type", "did you mean `relu`?")]


SIAMESE = """
    name: siamese
    inputs: {a: [4], b: [4]}
    outputs: [ea, eb]
    layers:
      - linear: 8
        from: a
        name: ea
      - share: ea
        from: b
        name: eb
"""


def test_a_shared_layer_counts_its_parameters_once_and_its_macs_per_application():
    result = netspec.analyze(netspec.loads(textwrap.dedent(SIAMESE)))
    assert [(s.name, s.params, s.macs) for s in result.layers] == [("ea", 40, 32), ("eb", 0, 32)]
    assert result.total_params == 40 and result.macs == 64


def test_a_shared_layer_is_one_module_in_the_build():
    torch = pytest.importorskip("torch")
    module = netspec.build(netspec.loads(textwrap.dedent(SIAMESE)))
    assert list(module.state_dict()) == ["ea.weight", "ea.bias"]
    x = torch.randn(2, 4)
    out = module(x, x)
    assert torch.equal(out["ea"], out["eb"])


@pytest.mark.parametrize("layers, at, message", [
    ("  - linear: 3\n    name: fc\n  - share: fc\n", "6:12", "`fc` (linear, made for input 4) cannot be applied to 3"),
    ("  - share: nope\n", "4:12", "`share` names `nope`, which is not an earlier layer here"),
    ("  - linear: 3\n    share: fc\n", "5:5",
     "an item either shares a layer (`share:`) or is an op or a group, not both"),
])
def test_a_wrong_share_is_located(layers, at, message):
    errs = errors("name: t\ninput: [4]\nlayers:\n" + layers)
    assert (where(errs[0]), errs[0].message) == (at, message)


@pytest.mark.parametrize("keep, names", [("", ["0", "2", "g.1"]), ("keep_position: false", ["0", "1", "g.0"])])
def test_a_skipped_item_may_leave_its_position_to_the_next(keep, names):
    g = graph(f"""
        name: t
        input: [4]
        layers:
          - linear: 4
          - relu:
            when: false
            {keep}
          - linear: 4
          - name: g
            layers:
              - relu:
                when: false
                {keep}
              - linear: 3
    """)
    assert list(g.nodes) == names


def test_a_skip_in_one_use_of_a_block_leaves_the_other_uses_numbered():
    # the same body item is skipped in the first use only: the second use keeps every position
    g = graph("""
        name: t
        input: [4]
        blocks:
          b:
            args: {act: bool}
            layers:
              - relu:
                when: $act
                keep_position: false
              - linear: 4
        layers:
          - b: false
          - b: true
          - b: false
    """)
    assert [n for n in g.nodes if g.nodes[n].op == "linear"] == ["0.0", "1.1", "2.0"]


def test_a_layer_name_may_join_its_parts_with_hyphens_as_torchvision_does():
    g = graph("""
        name: t
        input: [4]
        layers:
          - name: block1
            layers:
              - linear: 4
                repeat: {count: 2, name: 'block1-{i}'}
          - linear: 3
            name: head-fc
          - add: [head-fc, block1.block1-0]
            when: false
    """)
    assert list(g.nodes) == ["block1.block1-0", "block1.block1-1", "head-fc"]
    module = netspec.build(g)
    assert list(module.state_dict()) == ["block1.block1-0.weight", "block1.block1-0.bias", "block1.block1-1.weight",
                                         "block1.block1-1.bias", "head-fc.weight", "head-fc.bias"]


@pytest.mark.parametrize("name, template", [("-a", "-{i}"), ("a-", "a--{i}"), ("a--b", "{i}-a"), ("1-a", "a-{i}-"),
                                            ("a-.b", "a-{i}.b")])
def test_a_hyphen_only_joins_name_parts(name, template):
    errs = errors(f"name: t\ninput: [4]\nlayers:\n  - linear: 4\n    name: '{name}'\n")
    assert where(errs[0]) == "5:11" and errs[0].message.startswith(f"layer name `{name}` must be an identifier")
    errs = errors(f"name: t\ninput: [4]\nlayers:\n  - linear: 4\n    repeat: {{count: 2, name: '{template}'}}\n")
    assert errs[0].message.startswith("`repeat.name` is a name with `{i}`")


# ---- several outputs: chunk and split ---------------------------------------------------------

PARTS = """
    name: t
    input: [6, 4]
    layers:
      - chunk: 2
        name: x
      - linear: 4
        from: x.1
        name: fc
      - split: {sizes: [1, 3], dim: 1}
        from: x.0
        name: s
      - concat: {dim: 1}
        from: [s.0, fc]
        name: joined
    outputs: [joined, s.1]
"""


def test_a_chunk_names_its_parts_and_each_is_a_layer():
    g = graph(PARTS)
    assert [(n.name, n.op, n.shape, n.inputs) for n in g.nodes.values()][:2] == [
        ("x.0", "chunk", (3, 4), ["input"]), ("x.1", "chunk", (3, 4), ["input"])]
    assert (g.scopes["x"].kind, g.scopes["x"].op) == ("parts", "chunk")
    assert [g.nodes[n].shape for n in ("s.0", "s.1", "joined")] == [(3, 1), (3, 3), (3, 5)]
    result = netspec.analyze(netspec.loads(textwrap.dedent(PARTS)))
    assert result.outputs == {"joined": (3, 5), "s.1": (3, 3)}
    assert result.total_params == 20 and result.macs == 3 * 4 * 4


def test_a_built_chunk_computes_torchs_parts():
    torch = pytest.importorskip("torch")
    module = netspec.build(netspec.loads(textwrap.dedent(PARTS)))
    x = torch.randn(2, 6, 4)
    out = module(x)
    first, second = x.chunk(2, dim=1)
    left, right = first.split([1, 3], dim=2)
    assert torch.equal(out["s.1"], right)
    assert torch.equal(out["joined"], torch.cat([left, module.fc(second)], dim=2))


def test_a_skipped_chunk_passes_its_input_on_as_each_part():
    g = graph("""
        name: t
        input: [4]
        layers:
          - chunk: 2
            name: x
            when: false
          - add: [x.0, x.1]
    """)
    assert [(n.name, n.inputs, n.shape) for n in g.nodes.values()] == [("1", ["input", "input"], (4,))]


@pytest.mark.parametrize("layers, at, message, hint", [
    ("  - chunk: 4\n", "4:5", "chunk: 4 chunks do not divide dim 0 of size 6 (input 6×5)", "a divisor of 6"),
    ("  - split: [2, 3]\n", "4:5", "split sizes [2, 3] add up to 5, but dim 0 of the input 6×5 has 6", "add up to 6"),
    ("  - chunk: 2\n    name: x\n  - relu\n", "6:5", "`x` is split into parts: name the one this layer takes",
     "its parts are x.0, x.1: e.g. `from: x.0`"),
    ("  - chunk: 2\n    name: x\n  - add: [x.0, x]\n", "6:16", "`x` is split into parts", "x.0, x.1"),
    ("  - chunk: 2\n    name: x\n  - add: [x.0, x.2]\n", "6:16", "`from` names `x.2`, which is not defined here",
     "did you mean `x.1`?"),
    ("  - chunk: 2\n  - relu:\n    from: '0.1'\n", "4:5", "part `0.0` of this `chunk` reaches no output",
     "crop it with `pad` (negative padding)"),
    ("  - chunk: 2\n  - add: [0.0, 0.1]\n", "5:11", "`add: [...]` takes layer names, and 0.0 is a number",
     "quote it as written (`'0.0'`)"),
    ("  - chunk: 2\n    name: x\n  - share: x\n    from: x.0\n  - add: [x.1, '1']\n", "6:12",
     "`share` names `x`, which is split into parts, not one layer", "a layer with parameters"),
    ("  - chunk: 2\n", "4:5", "the last layer is split into parts: list the ones the network returns",
     "`outputs: ['0.0', '0.1']`"),
    ("  - chunk: 3\n    name: x\noutputs: [x]\n", "6:11", "output `x` is split into parts", "`x.0`, `x.1`"),
    ("  - chunk: 1\n    repeat: 2\n    name: x\n  - relu\n", "5:13",
     "`repeat` feeds each copy's output to the next, but this layer's output is split into parts", None),
])
def test_wrong_uses_of_several_outputs_are_located(layers, at, message, hint):
    errs = errors("name: t\ninput: [6, 5]\nlayers:\n" + layers)
    assert (where(errs[0]), errs[0].message[:len(message)]) == (at, message)
    assert hint is None or hint in errs[0].hint


@pytest.mark.parametrize("layer, at", [
    ("conv1d: {out: 3, kernel: 9}", "4:30"),  # an alias: the error points at `kernel`'s value
    ("conv1d: {out: 3, kernel_size: 9}", "4:35"),
    ("split: {sizes: [2, 3]}", "4:20"),
    ("split: {split_sizes: [2, 3]}", "4:26"),
])
def test_a_shape_error_points_at_the_argument_as_the_spec_spells_it(layer, at):
    errs = errors(f"name: t\ninput: [6, 5]\nlayers:\n  - {layer}\n    name: x\n")
    assert [where(e) for e in errs if "kernel spans" in e.message or "add up to 5" in e.message] == [at]


def test_the_parts_of_a_failed_chunk_cascade_no_error():
    errs = errors("""
        name: t
        input: [6, 5]
        layers:
          - chunk: {chunks: 2, dimm: 1}
            name: x
          - add: [x.0, x.1]
          - linear: $widht
    """)
    assert len(errs) == 2 and errs[0].message == "unknown argument `dimm`"
    assert errs[1].message.startswith("unknown name `widht`")


def test_a_block_splits_its_input_and_uses_its_parts():
    g = graph("""
        name: t
        input: [8, 4, 4]
        blocks:
          unit:
            layers:
              - chunk: 2
                name: halves
              - name: branch
                from: halves.1
                layers:
                  - conv2d: {out_channels: 4, kernel_size: 1}
              - concat: [halves.0, branch]
              - channel_shuffle: 2
        layers:
          - unit:
            repeat: 2
            name: stage
    """)
    assert g.nodes["stage.1.2"].inputs == ["stage.1.halves.0", "stage.1.branch.0"]
    assert g.nodes["stage.1.3"].shape == (8, 4, 4)


@pytest.mark.parametrize("when", ["true", "false"])
def test_a_chunk_into_too_many_parts_is_refused_before_its_first_part(when):
    with pytest.raises(netspec.SpecError, match="`chunk` into 60,000 parts makes the network more than 50,000 "
                                                "layers") as info:
        graph(f"name: t\ninput: [60000]\nlayers:\n  - chunk: 60000\n    when: {when}\n    name: x\n"
              "  - relu:\n    from: x.0\n")
    assert where(info.value) == "4:12"
