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
