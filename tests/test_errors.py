"""Every kind of mistake is one located SpecError: message, line and column, and a hint where one helps."""

import pytest

import netspec
from netspec import SpecError, SpecErrors

HEAD = "name: t\ninput: [3, 16, 16]\nlayers:\n"

# (layers text after HEAD, expected line:col, message fragment, hint fragment or None)
CASES = [
    ("  - conv2d: {out_channels: 8, kernel_size: 3.5}\n", "4:44", "kernel_size", None),
    ("  - conv2d: {out_channels: -8, kernel_size: 3}\n", "4:28", "greater than 0", None),
    ("  - conv2d: {out_channels: 8, kernel_size: 3, bias: yes please}\n", "4:53", "bias", None),
    ("  - conv2d: {out_channels: 8, kernel_size: 32}\n", "4:44", "the kernel spans 32 but the padded input is 16",
     "smaller kernel_size"),
    ("  - conv2d: {out_channels: 8, kernal_size: 3}\n", "4:31", "unknown argument `kernal_size`",
     "did you mean `kernel_size`?"),
    ("  - batchnorm: {}\n", "4:5", "unknown layer type `batchnorm`", "did you mean"),
    ("  - flatten\n  - linear: 10\n  - conv2d: {out_channels: 4, kernel_size: 3}\n", "6:5", "conv2d", None),
    ("  - linear: {out_features: 10, in_features: 48}\n", "4:45", "in_features is 48 but the input has 16 features",
     "flatten"),
    ("  - relu:\n    from: relu1\n", "5:11", "`from` names `relu1`", None),
    ("  - relu:\n    from: later\n  - relu:\n    name: later\n", "5:11", "defined after this layer", "cycles"),
    ("  - relu:\n    name: a\n  - relu:\n    name: a\n", "7:11", "duplicate layer name `a`", None),
    ("  - add: [input, x]\n  - relu:\n    name: x\n", "4:18", "`x` is defined after this layer", None),
    ("  - conv2d: {out_channels: 4, kernel_size: 1}\n    name: a\n  - add: [a, input]\n", "6:5",
     "add", None),
    ("  - relu:\n    repeat: two\n", "5:13", "`repeat` must be a whole number", None),
    ("  - relu:\n    when: ${in_chanels == 3}\n", "5:11", "unknown name `in_chanels`",
     "did you mean `in_channels`?"),
    ("  - relu:\n    when: ${__import__('os')}\n", "5:11", "only min, max", None),
]


@pytest.mark.parametrize("layers, where, message, hint", CASES)
def test_each_mistake_is_located(layers, where, message, hint):
    with pytest.raises(SpecErrors) as info:
        netspec.analyze(netspec.loads(HEAD + layers, "net.yaml"))
    err = info.value.errors[0]
    assert f"{err.mark.line}:{err.mark.col}" == where, err.format()
    assert message in err.message, err.format()
    if hint:
        assert hint in (err.hint or ""), err.format()
    assert err.format().startswith(f"net.yaml:{where}: error: ")


def test_yaml_syntax_errors_are_located():
    with pytest.raises(SpecError) as info:
        netspec.loads("name: t\ninput: [3\nlayers: []\n", "net.yaml")
    assert info.value.message.startswith("invalid YAML") and info.value.mark.line == 3


def test_unsafe_yaml_tags_are_refused():
    with pytest.raises(SpecError, match="invalid YAML"):
        netspec.loads("name: !!python/object/apply:os.system ['true']\ninput: [1]\nlayers: [relu]\n", "n.yaml")


def test_a_block_that_uses_itself_is_an_error_not_a_crash():
    text = "name: t\ninput: [4]\nblocks:\n  a: {layers: [b]}\n  b: {layers: [a]}\nlayers:\n  - a\n"
    with pytest.raises(SpecErrors, match=r"block `a` uses itself \(a → b → a\)"):
        netspec.analyze(netspec.loads(text, "n.yaml"))


def test_independent_errors_are_all_reported_in_source_order():
    text = HEAD + ("  - conv2d: {out_channels: 8, kernal_size: 3}\n  - relu:\n    from: nope\n"
                   "  - linear: {out_features: 0}\n") + "expect: {params: 1}\n"
    with pytest.raises(SpecErrors) as info:
        netspec.analyze(netspec.loads(text, "net.yaml"))
    assert [e.mark.line for e in info.value.errors] == [4, 6, 7]


def test_failed_expect_is_reported_once_the_network_is_valid():
    with pytest.raises(SpecErrors, match="expected params 1, the spec gives 0") as info:
        netspec.analyze(netspec.loads(HEAD + "  - relu\nexpect: {params: 1}\n", "net.yaml"))
    assert info.value.errors[0].mark.line == 5


@pytest.mark.parametrize("text, message", [
    ("name: t\ninput: [4]\nlayers: &l [relu, *l]\n", "an alias refers to a value that contains it"),
    ("name: t\ninput: [4]\na: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
     "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
     "g: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\nlayers: [relu]\n", "more than 250,000 YAML values"),
    ("name: t\ninput: [4]\nlayers:\n  - leaky_relu: .nan\n", "`.nan` is not a finite number"),
    ("name: t\ninput: [4]\nlayers:\n  - upsample: .inf\n", "`.inf` is not a finite number"),
    ("name: t\ninput: [" + "9" * 400 + "]\nlayers: [relu]\n", "is too large"),
])
def test_hostile_yaml_is_refused_quickly(text, message):
    with pytest.raises(SpecError, match=message):
        netspec.loads(text, "n.yaml")


def test_a_value_that_fits_no_member_of_a_union_is_one_error():
    with pytest.raises(SpecErrors) as info:
        netspec.analyze(netspec.loads(HEAD + "  - conv2d: {out_channels: 4, kernel_size: 1.5}\n", "net.yaml"))
    assert [e.message for e in info.value.errors] == [
        "`kernel_size`: input should be a valid integer or a valid list, got 1.5"]
    with pytest.raises(SpecErrors) as info:
        netspec.loads("name: t\ninputs: {a-b: [1.5]}\nlayers: [relu]\n", "net.yaml")
    assert [e.message for e in info.value.errors] == [
        "`inputs.a-b[0]`: input should be a valid integer or a valid string, got 1.5"]


@pytest.mark.parametrize("text, message", [
    ("name: t\ninput: {shape: [T], dtype: int64}\nlayers:\n  - linear: 4\n",
     "`linear` computes on floating-point values, but `input` holds integer ids"),
    ("name: t\ninput: [8]\nlayers:\n  - embedding: {num_embeddings: 10, embedding_dim: 4}\n",
     "`embedding` looks up integer ids, but `input` holds floating-point values"),
    ("name: t\ninput: {shape: [2, 4], dtype: int64}\nlayers:\n  - flatten\n  - relu\n",
     "`relu` computes on floating-point values, but `0` holds integer ids"),
])
def test_integer_ids_and_floats_go_where_torch_takes_them(text, message):
    with pytest.raises(SpecErrors, match=message) as info:
        netspec.analyze(netspec.loads(text, "n.yaml"))
    assert info.value.errors[0].mark.line == 4 + text.count("flatten")


def first_error(text: str):
    with pytest.raises((SpecError, SpecErrors)) as info:
        netspec.analyze(netspec.loads(text, "net.yaml"))
    err = info.value.errors[0] if isinstance(info.value, SpecErrors) else info.value
    return f"{err.mark.line}:{err.mark.col}", err


# (spec text, line:col, message, hint fragment): messages that point at the fix (issue 8, section 4)
POINTED = [
    ("name: t\nargs: {w: 2}\ninput: [4]\nlayers:\n  - linear: {out_features: ${w * 8}}\n", "5:28",
     "invalid YAML: did not find expected ',' or '}'", "quote the expression, `'${w * 8}'`"),
    ("name: t\ninput: [4]\nlayers:\n  - batchnorm1d\n    name: bn1\n", "5:9",
     "invalid YAML: mapping values are not allowed in this context", "colon after its op: `- batchnorm1d:`"),
    ("name: t\ninput: [4]\nlayers:\n  - relu\n  - add: [0, input]\n", "5:11",
     "`add: [...]` takes layer names, and 0 is a number", "quote it: `'0'`"),
    ("name: t\ninput: [384]\nlayers:\n  - linear: ${in_features / 4}\n", "4:13",
     "`linear`: `out_features`: input should be a valid integer, got 96.0", "use `//`"),
    ("name: t\ninput: [28, 28, 1]\nlayers:\n  - conv2d: {out_channels: 8, kernel_size: 3}\n", "4:44",
     "the kernel spans 3 but the padded input is 1", "channels first: `input: [1, 28, 28]`"),
    ("name: t\ninput: [3, 64, 64]\nlayers:\n  - conv2d: {out_channels: 16, kernel_size: 3}\n    name: a\n"
     "  - conv2d: {out_channels: 16, kernel_size: 3, padding: 1}\n    from: input\n  - concat: [a, '1']\n", "8:5",
     "concat along dim 0 needs the other dims equal, got 16×62×62, 16×64×64: dims 1, 2 differ",
     "the spatial sizes differ by 2"),
    ("name: t\ninput: [3, 8, 8]\nlayers:\n  - conv2d: {filters: 16, kernel_size: 3}\n", "4:14",
     "unknown argument `filters`", "did you mean `out_channels`? (it is required)"),
]


@pytest.mark.parametrize("text, where, message, hint", POINTED)
def test_messages_point_at_the_fix(text, where, message, hint):
    at, err = first_error(text)
    assert (at, err.message) == (where, message), err.format()
    assert hint in err.hint


def test_the_missing_argument_is_not_reported_beside_its_misnamed_one():
    with pytest.raises(SpecErrors) as info:
        netspec.analyze(netspec.loads("name: t\ninput: [3, 8, 8]\nlayers:\n"
                                      "  - conv2d: {filters: 16, kernel_size: 3}\n"))
    assert [e.message for e in info.value.errors] == ["unknown argument `filters`"]


def test_a_failed_expect_inherited_through_extends_names_the_derived_file(tmp_path):
    (tmp_path / "base.yaml").write_text("name: base\ninput: [4]\nlayers:\n  - linear: 3\nexpect: {params: 15}\n")
    (tmp_path / "derived.yaml").write_text("extends: base.yaml\nname: derived\nlayers:\n  - linear: 5\n")
    with pytest.raises(SpecErrors) as info:
        netspec.analyze(netspec.load(tmp_path / "derived.yaml"))
    (err,) = info.value.errors
    assert (err.mark.file, err.mark.line, err.message) == (str(tmp_path / "base.yaml"), 5,
                                                           "expected params 15, the spec gives 25")
    assert f"checked for `{tmp_path / 'derived.yaml'}`" in err.notes[-1]


def test_an_error_that_does_not_depend_on_an_earlier_failed_layer_is_reported_too():
    with pytest.raises(SpecErrors) as info:
        netspec.analyze(netspec.loads(
            "name: t\nargs: {width: 8}\ninput: [3, 16, 16]\nlayers:\n  - conv2d: {out_channels: 8, kernel_size: 32}\n"
            "  - relu\n  - conv2d: {out_channels: $widht, kernel_size: 3}\n"
            "  - conv2d: {out_channels: '${in_channels}', kernel_size: 3}\n", "net.yaml"))
    assert [(e.mark.line, e.message) for e in info.value.errors] == [
        (5, "the kernel spans 32 but the padded input is 16"), (7, "unknown name `widht` in `widht`")]
    assert info.value.errors[1].hint == "did you mean `width`?"


def test_a_single_error_reads_as_a_list_like_several():
    err = SpecError("bad", None)
    assert err.errors == [err]
    assert SpecErrors([err]).errors == [err]
