"""Hostile and malformed files: every kind gets a located answer (`file:line:col: error: ...`, exit 1) or a
said one (exit 2), never an internal error, in bounded time and memory. docs/security.md lists the limits
and, for each, the test here that covers it."""

import io
import os
import random
import re
import resource
import subprocess
import sys
import textwrap

import pytest

from netspec.cli import main
from netspec.errors import MAX_ERRORS, did_you_mean

LOCATED = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): error: (?P<message>.*)$")
HEAD = "name: t\ninput: [4]\nlayers:\n"


def run(tmp_path, capsys, content: str | bytes, *command: str, name: str = "net.yaml") -> tuple[int, str, str]:
    """Write `content` to a spec file and run `netspec COMMAND... FILE` in process: (exit code, stdout, stderr)."""
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    code = main([*(command or ("validate",)), str(path)])
    out, err = capsys.readouterr()
    return code, out, err


def located(tmp_path, capsys, content: str | bytes, line: int, col: int, message: str, *command: str) -> str:
    """Run it and check the first error: this file, this line and column, this text; exit 1; no internal error."""
    code, _, err = run(tmp_path, capsys, content, *command)
    first = LOCATED.match(err.splitlines()[0]) if err else None
    assert first, err[:2000]
    assert (first["file"], int(first["line"]), int(first["col"])) == (str(tmp_path / "net.yaml"), line, col), err[:2000]
    assert message in first["message"], err[:2000]
    assert code == 1 and "internal error" not in err, err[:2000]
    return err


def every_error_located(err: str, file: str) -> None:
    """Each error of a run starts `file:line:col: error:`."""
    heads = [line for line in err.splitlines() if ": error: " in line and not line.startswith(" ")]
    assert heads and all(LOCATED.match(h) and h.startswith(file + ":") for h in heads), err[:2000]


# ---- empty files, and every error has a file and a line ------------------------------------------------------------


@pytest.mark.parametrize("content", [b"", b"   \n\n  \n", b"# a comment\n# another\n", b"---\n", b"---\n# c\n...\n",
                                     "\ufeff".encode(), "\ufeff# only a comment\n".encode(),
                                     b"\t\n \t\n", b"...\n", b"# a\n... # b\n", b"%YAML 1.1\n"])  # libyaml errs
def test_an_empty_or_comment_only_file_is_said_to_be_empty(tmp_path, capsys, content):
    located(tmp_path, capsys, content, 1, 1, "the file is empty")


def test_a_file_that_cannot_be_read_is_located_at_its_start(tmp_path, capsys):
    import netspec

    for path in (tmp_path / "missing.yaml", tmp_path):
        with pytest.raises(netspec.SpecError) as info:
            netspec.load(path)
        assert info.value.format().startswith(f"{path}:1:1: error: cannot read")
    # the command line refuses them before reading anything: a usage error (tests/cli/test_main.py)
    assert main(["validate", str(tmp_path / "missing.yaml")]) == 2
    assert f"cannot read `{tmp_path / 'missing.yaml'}`: no such file" in capsys.readouterr().err


def test_an_error_at_a_path_the_file_does_not_write_is_still_located():
    import netspec

    spec = netspec.loads("name: t\ninput: [4]\nlayers: [relu]\n", "net.yaml")
    # as train/session.py's `_device` reports `--device cuda:7` for a spec without `train:`
    err = spec.source.error("device `cuda:7` is not available", ("train", "device"))
    assert err.mark is not None and err.format().startswith("net.yaml:1:1: error: device")
    empty = netspec.loader.Source({}, "made.yaml")
    assert empty.error("x", ("a",)).location == "made.yaml:1:1"


# ---- bytes that are not UTF-8 text, and characters YAML refuses ----------------------------------------------------


@pytest.mark.parametrize("content, line, col, byte", [
    (b"name: t\n# caf\xe9\ninput: [4]\nlayers: [relu]\n", 2, 6, "0xe9"),  # Latin-1 in a comment
    (b"name: caf\xe9\ninput: [4]\nlayers: [relu]\n", 1, 10, "0xe9"),  # in a value
    (b"name: t\ninput: [4]\nlayers: [r\xc3\xa9lu, \xff]\n", 3, 16, "0xff"),  # after valid UTF-8 on the line
    ("name: t\n".encode("utf-16"), 1, 1, "0xff"),  # UTF-16 with its byte-order mark
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 1, 1, "0x89"),  # a binary file
    (b"name: caf\xc3", 1, 10, "0xc3"),  # a character cut off at the end
    (b"name: \xc0\x80\n", 1, 7, "0xc0"),  # an overlong NUL
    (b"name: \xed\xa0\x80\n", 1, 7, "0xed"),  # an encoded surrogate
])
def test_bytes_that_are_not_utf8_are_located_at_the_first_bad_byte(tmp_path, capsys, content, line, col, byte):
    err = located(tmp_path, capsys, content, line, col, f"the file is not UTF-8 text: byte {byte}")
    assert "save the spec as UTF-8" in err


@pytest.mark.parametrize("content, line, col, code", [
    (b"name: t\ninput: [4]\x00\nlayers: [relu]\n", 2, 11, "U+0000"),
    (b"name: t\ninput: [4]\nlayers: [relu]\x07\n", 3, 15, "U+0007"),
    (b"name: t\x1b[31m\ninput: [4]\nlayers: [relu]\n", 1, 8, "U+001B"),  # a terminal escape
    (b"name: t\ninput: [4]\n\x7f\n", 3, 1, "U+007F"),
    ("name: t\r\ninput: [4]\r\nlayers: [\ufffe]\n".encode(), 3, 10, "U+FFFE"),  # \r\n counts as one line break
])
def test_control_characters_yaml_refuses_are_located(tmp_path, capsys, content, line, col, code):
    located(tmp_path, capsys, content, line, col, f"the control character {code}")


def test_characters_that_drive_a_terminal_are_escaped_in_errors(tmp_path, capsys):
    # YAML allows U+202E (right-to-left override) in text and "\e" escapes in double-quoted strings
    err = located(tmp_path, capsys, HEAD + '  - "re\u202elu\\e[2J"\n', 4, 5, "unknown layer type `re\\u202elu\\x1b[2J`")
    assert "\u202e" not in err and "\x1b" not in err and "re\\u202elu" in err.splitlines()[1]


# ---- long lines and deep nesting -----------------------------------------------------------------------------------


def test_an_error_on_a_very_long_line_shows_a_window_around_the_caret(tmp_path, capsys):
    unit = "relu," + " " * 55  # 3 MB in 50,000 values
    content = "name: t\ninput: [4]\nlayers: [" + unit * 30_000 + "bogus, " + unit * 19_000 + "relu]\n"
    col = len("layers: [") + len(unit) * 30_000 + 1
    err = located(tmp_path, capsys, content, 3, col, "unknown layer type `bogus`")
    assert len(err) < 2000
    quoted, caret = err.splitlines()[1:3]
    assert quoted.startswith("     3 | …") and quoted.endswith("…")
    assert quoted[caret.index("^"):].startswith("bogus")  # the caret still points at it


def test_a_long_value_in_a_message_is_shortened(tmp_path, capsys):
    err = located(tmp_path, capsys, HEAD + "  - " + "x" * 3_000_000 + "\n", 4, 5, "unknown layer type `xxx")
    assert len(err) < 2000 and "…" in err


@pytest.mark.parametrize("nesting, line, col", [
    ("[" * 5000, 3, 1008),  # flow lists: libyaml's scanner reads ahead to its own limit, 1,000 levels
    ("{a: " * 5000, 3, 405),  # flow mappings: the 100th (in the spec's mapping) is refused
    ("\n" + "".join("  " * i + "- \n" for i in range(1, 200)), 103, 201),  # block lists, by indentation
])
def test_deep_nesting_is_refused_at_a_stated_depth(tmp_path, capsys, nesting, line, col):
    located(tmp_path, capsys, HEAD.replace("layers:\n", "") + "layers: " + nesting + "\n", line, col,
            "values are nested more than 100 levels deep")


def test_aliases_cannot_nest_values_past_the_depth(tmp_path, capsys):
    content = HEAD + "  - relu\na: &a " + "[" * 95 + "]" * 95 + "\nb: &b [[[[[[*a]]]]]]\n"
    err = located(tmp_path, capsys, content, 6, 13, "values are nested more than 100 levels deep")
    assert "`*a` copies 95 levels here" in err


def nested_groups(levels: int) -> str:
    pads = ["  " + "    " * i for i in range(levels + 1)]
    return HEAD + "".join(f"{pad}- name: g\n{pad}  layers:\n" for pad in pads[:-1]) + f"{pads[-1]}- relu\n"


def test_groups_nested_within_the_depth_expand_without_recursion_errors(tmp_path, capsys):
    code, out, err = run(tmp_path, capsys, nested_groups(45))
    assert code == 0, err[:2000]
    located(tmp_path, capsys, nested_groups(60), 102, 201, "values are nested more than 100 levels deep")


def test_blocks_nested_beyond_the_stated_depth_are_refused(tmp_path, capsys):
    blocks = "".join(f"  b{i}: {{layers: [b{i + 1}]}}\n" for i in range(200)) + "  b200: {layers: [relu]}\n"
    located(tmp_path, capsys, f"name: t\ninput: [4]\nblocks:\n{blocks}layers: [b0]\n", 67, 18,
            "groups and blocks nest more than 64 deep")


# ---- runaway expansion ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("item, line, col, message", [
    # copies that create no layer still count: the repeat count itself is capped
    ("  - {name: g, repeat: 100000000, layers: [{relu: null, when: false}]}\n", 4, 23,
     "`repeat: 100,000,000` makes more than 50,000 copies"),
    ("  - relu: null\n    repeat: ${2**62}\n", 5, 13, "`repeat: 4,611,686,018,427,387,904` makes more than 50,000"),
    # nested repeats multiply: refused on the product, before the first inner copy
    ("  - name: outer\n    repeat: 1000\n    layers:\n      - relu: null\n        repeat: 1000\n", 8, 17,
     "`repeat: 1,000` inside repeats making 1,000 copies makes more than 50,000 copies"),
    ("  - lstm: {hidden_size: 2, num_layers: 400000000}\n", 4, 40, "num_layers 400,000,000 is more than the 1,000"),
    ("  - gru: {hidden: 2, num_layers: 1001}\n", 4, 34, "num_layers 1,001 is more than the 1,000"),
])
def test_runaway_expansion_is_refused_before_expanding(tmp_path, capsys, item, line, col, message):
    located(tmp_path, capsys, HEAD.replace("[4]", "[T, 4]") + item, line, col, message)


def test_blocks_that_use_blocks_are_capped_by_the_layers_they_make(tmp_path, capsys):
    blocks = "".join(f"  b{i}: {{layers: [b{i + 1}, b{i + 1}, b{i + 1}, b{i + 1}]}}\n" for i in range(30))
    content = f"name: t\ninput: [4]\nblocks:\n{blocks}  b30: {{layers: [relu]}}\nlayers: [b0]\n"
    located(tmp_path, capsys, content, 34, 18, "the network expands to more than 50,000 layers")


def test_skipped_items_count_toward_the_items_a_spec_may_expand(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("netspec.graph.MAX_ITEMS", 1000)
    content = HEAD + "  - name: g\n    repeat: 400\n    layers:\n" + "      - {relu: null, when: false}\n" * 4
    located(tmp_path, capsys, content, 10, 9, "the network expands to more than 1,000 items")


@pytest.mark.parametrize("content, line, col", [
    # a big list handed to every copy of a block
    ("name: t\ninput: [4]\nargs: {big: [" + ", ".join(["3"] * 50_000) + "]}\nblocks:\n  b:\n    args: {x: list}\n"
     "    layers: [relu]\nlayers:\n  - b: {x: $big}\n    repeat: 50000\n", 9, 12),
    # a long expression in every copy
    (HEAD + "  - linear: ${max(" + ", ".join(["index"] * 120) + ") + 1}\n    repeat: 50000\n", 4, 13),
])
def test_work_multiplied_by_copies_is_capped(tmp_path, capsys, content, line, col):
    located(tmp_path, capsys, content, line, col, "expanding the spec takes more than 2,000,000 steps")


@pytest.mark.parametrize("content, line, col, message", [
    ("name: " + "n" * 101 + "\ninput: [4]\nlayers: [relu]\n", 1, 7, "the network's name has 101 characters"),
    (HEAD + "  - relu: null\n    name: " + "l" * 101 + "\n", 5, 11, "at most 100 characters"),
    ("name: t\ninput: [" + "T" * 101 + "]\nlayers: [relu]\n", 2, 9, "at most 100 characters"),
    ("name: t\ninput: [4]\nlayers: [relu]\noutputs: [" + ", ".join(["relu"] * 1001) + "]\n", 4, 10,
     "at most 1000 items"),
    ("name: t\ninput: [4]\nargs: {xs: [" + ", ".join(["1"] * 6000) + "]}\nlayers:\n  - relu: null\n"
     "    when: ${len(xs + xs) > 0}\n", 6, 11, "makes a list of 12,000 items (at most 10,000)"),
])
def test_names_entries_and_lists_have_stated_limits(tmp_path, capsys, content, line, col, message):
    located(tmp_path, capsys, content, line, col, message)


def test_an_extends_chain_has_a_stated_length(tmp_path, capsys):
    for i in range(1, 30):
        (tmp_path / f"base{i}.yaml").write_text(f"extends: base{i + 1}.yaml\n")
    (tmp_path / "base30.yaml").write_text("name: t\ninput: [4]\nlayers: [relu]\n")
    code, _, err = run(tmp_path, capsys, "extends: base1.yaml\n")
    assert code == 1  # located in the file that goes one too far
    assert err.startswith(f"{tmp_path / 'base15.yaml'}:1:10: error: `extends` chains more than 16 files")


# ---- the cost of errors --------------------------------------------------------------------------------------------


def test_thousands_of_errors_stop_at_the_error_limit(tmp_path, capsys):
    content = HEAD + "".join(f"  - relu: null\n    name: l{i}\n" for i in range(4000)) + \
        "".join(f"  - relu: null\n    from: nothing{i}\n" for i in range(4000))
    code, _, err = run(tmp_path, capsys, content)
    assert code == 1 and err.count(": error: ") == MAX_ERRORS
    assert err.splitlines()[-1] == f"{MAX_ERRORS} errors; netspec stops at {MAX_ERRORS}: fix these and run it again"
    assert "(4,100 in all)" in err  # the names visible there are listed, not all 4,100 of them
    every_error_located(err, str(tmp_path / "net.yaml"))


def test_did_you_mean_stays_cheap_with_many_names():
    names = [f"layer_{i}" for i in range(200_000)]
    assert did_you_mean("layer_17x", names) is None  # too many alike to compare: no suggestion, and no wait
    assert did_you_mean("layr_17", names[:500]) == "did you mean `layer_17`?"
    # fewer names, but long ones: comparing costs about the product of the lengths, which is bounded too
    long = [f"{'a_long_layer_name_' * 5}{i:03d}" for i in range(999)]
    assert did_you_mean(long[17][:-3] + "x17", long) is None
    assert did_you_mean(long[17][:-3] + "x17", long[:40]) == f"did you mean `{long[17]}`?"


def test_many_errors_among_many_long_names_stay_cheap(tmp_path, capsys):
    """100 errors, each searching 999 names of 93 characters for a did-you-mean, took 9 s before the search
    was bounded by the characters it compares (errors.MAX_COMPARED)."""
    names = [f"{'layer_with_a_long_name_' * 4}{i:04d}" for i in range(999)]
    content = HEAD + "".join(f"  - relu: null\n    name: {n}\n" for n in names) + \
        "".join(f"  - relu: null\n    from: {n[:-3]}x{i}\n" for i, n in enumerate(names[:200]))
    code, _, err = run(tmp_path, capsys, content)
    assert code == 1 and err.count(": error: ") == MAX_ERRORS and "did you mean" not in err
    every_error_located(err, str(tmp_path / "net.yaml"))


# ---- unknown keys named like types ---------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["str", "int", "list", "dict", "float", "bool", "none", "literal", "InputDef",
                                 "function-after", "lax-or-strict"])
def test_an_unknown_argument_named_like_a_type_is_an_unknown_argument(tmp_path, capsys, key):
    content = "name: t\ninput: [3, 8, 8]\nlayers:\n  - conv2d: {out: 8, kernel: 3, " + key + ": 2}\n"
    located(tmp_path, capsys, content, 4, 33, f"unknown argument `{key}`")


def test_str_suggests_stride(tmp_path, capsys):
    err = located(tmp_path, capsys, "name: t\ninput: [3, 8, 8]\nlayers:\n  - conv2d: {out: 8, kernel: 3, str: 2}\n",
                  4, 33, "unknown argument `str`")
    assert "did you mean `stride`?" in err


@pytest.mark.parametrize("content, line, col, message", [
    ("name: t\nstr: 1\ninput: [4]\nlayers: [relu]\n", 2, 1, "unknown key `str`"),
    ("name: t\ninput: {shape: [4], int: 1}\nlayers: [relu]\n", 2, 21, "unknown key `int`"),
    ("name: t\ninputs: {int: [1.5]}\nlayers: [relu]\n", 2, 16, "`inputs.int[0]`: input should be"),
    ("name: t\ninput: [4]\nlayers: [relu]\nexpect: {list: 1}\n", 4, 10, "unknown key `list`"),
])
def test_spec_keys_named_like_types_are_located(tmp_path, capsys, content, line, col, message):
    located(tmp_path, capsys, content, line, col, message)


# ---- expressions ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("expression, message", [
    ("1 is 1", "the operator `is`"), ("1 is not 2", "the operator `is not`"), ("2 @ 3", "the operator `@`"),
    ("~1", "the operator `~`"), ("1 << 2", "the operator `<<`"), ("1 | 2", "the operator `|`"),
    ("lambda: 1", "a lambda"), ("[i for i in in_shape]", "a list comprehension"),
    ("{i for i in in_shape}", "a set comprehension"), ("in_shape[0:1]", "a slice"),
    ("in_shape.count", "attribute access"), ("f'{in_features}'", "an f-string"), ("(y := 1)", "`:=`"),
    ("[*in_shape]", "`*` unpacking"), ("{1: 2}", "a mapping"), ("{1, 2}", "a set"),
    ("...", "the constant `...`"), ("1j", "the constant `1j`"), ("b'x'", "the constant `b'x'`"),
    ("__import__('os')", "only min, max"), ("10**10**10", "is too large"), ("2**64 * 2**64", "is too large"),
    ("float('inf')", "is not a finite number"), ("sum([[1], [2]], [])", "sum adds numbers"),
    ("-" * 300 + "1", "nested more than 100 levels deep"), ("1" + " + 1" * 300, "is too long"),
    ("(" * 300 + "1" + ")" * 300, "cannot parse"), ("1 in 2", "cannot compare"),
    ("(-8) ** 0.5", "is not a real number"), ("max(1, (-1) ** 0.25)", "is not a real number"),  # Python's complex
])
def test_every_construct_the_evaluator_lacks_is_a_located_error_naming_it(tmp_path, capsys, expression, message):
    located(tmp_path, capsys, HEAD + f'  - relu: null\n    when: "${{{expression}}}"\n', 5, 11, message)


def test_in_is_a_comparison_the_evaluator_has(tmp_path, capsys):
    assert run(tmp_path, capsys, HEAD + "  - relu: null\n    when: ${4 in in_shape}\n")[0] == 0


# ---- YAML tags -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, message", [
    ("!!int x", "`x` is not a whole number (`!!int`)"), ("!!float abc", "`abc` is not a number (`!!float`)"),
    ("!!bool maybe", "`maybe` is not a boolean"), ("!!null x", "`x` is not null"), ("!!int 0x", "not a whole number"),
    ("!!float 1e999", "not a finite number"), ("!!timestamp 2001-12-14", "the tag `!!timestamp` is not allowed"),
    ("!!binary aGk=", "the tag `!!binary` is not allowed"), ("!!set {a: null}", "the tag `!!set` is not allowed"),
    ("!!python/object/apply:os.system [ls]", "the tag `!!python/object/apply:os.system` is not allowed"),
    ("!custom x", "the tag `!custom` is not allowed"), ("!!int " + "9" * 200, "is too large: a number of 200"),
    ("9" * 5000, "is too large: a number of 5,000 characters"), ("1" + ":1" * 1_000_000, "is too large"),
])
def test_tags_and_values_that_do_not_fit_them_are_located(tmp_path, capsys, value, message):
    located(tmp_path, capsys, f"name: {value}\ninput: [4]\nlayers: [relu]\n", 1, 7, message)


def test_plain_dates_are_text(tmp_path, capsys):
    assert run(tmp_path, capsys, "name: t\ndescription: 2001-12-14\ninput: [4]\nlayers: [relu]\n")[0] == 0


# ---- sizes beyond what torch can hold ------------------------------------------------------------------------------


@pytest.mark.parametrize("content, line, col, message", [
    (HEAD + "  - linear: 9223372036854775807\n", 4, 5, "elements per sample; a torch tensor holds fewer than 2**60"),
    ("name: t\ninput: [1073741824]\nlayers:\n  - linear: 1073741824\n", 4, 5,
     "would hold 1,152,921,505,680,588,800 parameters"),
    ("name: t\ninput: {shape: [4], dtype: int64}\nlayers:\n  - embedding: {num_embeddings: 4611686018427387904, "
     "embedding_dim: 1}\n", 4, 5, "parameters; a torch tensor holds fewer than 2**60 elements"),
    ("name: t\ninput: [2147483648, 2147483648]\nlayers: [relu]\n", 2, 8, "an input of 4,611,686,018,427,387,904 el"),
    ("name: t\ninput: [" + ", ".join(["1"] * 65) + "]\nlayers: [relu]\n", 2, 8, "at most 64 items"),
    (HEAD + "  - reshape: [" + ", ".join(["1"] * 65) + "]\n", 4, 14, "lists 65 values"),
    ("name: t\ninput: [4, L]\nlayers:\n  - conv1d: {out: 4, kernel: 3, stride: 2}\n    repeat: 40\n", 4, 5,
     "the expression of its output size passes 200 characters"),
    # window sizes: torch's pooling and transposed-convolution kernels hold them in 32-bit ints
    ("name: t\ninput: [1, 4, 4]\nlayers:\n  - avgpool2d: {kernel: 2, stride: 2147483648}\n", 4, 36,
     "2,147,483,648 is more than 2**31 - 1, the largest window size"),
    ("name: t\ninput: [1, 4, 4, 4]\nlayers:\n  - maxpool3d: {kernel: 1, dilation: [1, 1, 9223372036854775807]}\n", 4,
     45, "`dilation[2]`: value error, 9,223,372,036,854,775,807 is more than 2**31 - 1"),
    ("name: t\ninput: [1, 1]\nlayers:\n  - conv_transpose1d: {out: 1, kernel: 1, stride: 4294967296}\n", 4, 51,
     "the largest window size torch's convolution and pooling kernels hold"),
    # attention: the weights [heads, N, M] torch makes, not only the output, must fit a tensor
    ("name: t\ninput: [2147483648, 8]\nlayers:\n  - self_attention: 2\n", 4, 5,
     "its attention weights ([heads, queries, keys] = 2×2147483648×2147483648) would hold 9,223,372,036,854,775,808"),
    ("name: t\ninputs: {q: [4, 8], m: [36028797018963968, 8]}\nlayers:\n  - cross_attention: {heads: 8}\n"
     "    from: [q, m]\n", 4, 5, "would hold 1,152,921,504,606,846,976 elements per sample"),
    ("name: t\ninput: [32768, 32768, 2]\nlayers:\n  - shifted_window_attention: {heads: 1, window: 32768}\n", 4, 5,
     "its attention weights ([heads, queries, keys] = 1×1073741824×1073741824) would hold"),
])
def test_sizes_beyond_torch_are_refused_at_validation(tmp_path, capsys, content, line, col, message):
    located(tmp_path, capsys, content, line, col, message)


def test_the_element_limit_is_torchs(tmp_path):
    """2**60 elements is where torch's storage size (numel × 8 bytes for float64) stops fitting in int64; the
    largest layer netspec accepts builds on the meta device in float64, and compiles."""
    torch = pytest.importorskip("torch")
    import netspec
    from netspec.arith import MAX_ELEMENTS
    from netspec.codegen import generate

    torch.empty(MAX_ELEMENTS - 1, dtype=torch.float64, device="meta")
    with pytest.raises(RuntimeError, match="overflow"):
        torch.empty(MAX_ELEMENTS, dtype=torch.float64, device="meta")
    text = "name: t\ninput: [1073741824]\nlayers:\n  - linear: {out: 1073741823, bias: false}\n"
    spec = netspec.loads(text, "t.yaml")
    model = netspec.build(spec, device="meta", dtype=torch.float64)
    assert sum(p.numel() for p in model.parameters()) == 2**60 - 2**30 == netspec.analyze(spec).total_params
    assert "nn.Linear(1073741824, 1073741823" in generate(spec)


def test_the_window_limit_is_torchs(tmp_path):
    """2**31 - 1 is the largest stride torch's avg_pool2d takes; netspec accepts it, and its compiled module runs."""
    torch = pytest.importorskip("torch")
    import netspec
    from netspec.layers.conv import MAX_WINDOW

    x = torch.zeros(1, 1, 4, 4)
    assert torch.nn.functional.avg_pool2d(x, 2, stride=MAX_WINDOW).shape == (1, 1, 1, 1)
    with pytest.raises(RuntimeError, match="overflow"):
        torch.nn.functional.avg_pool2d(x, 2, stride=MAX_WINDOW + 1)
    spec = netspec.loads(f"name: t\ninput: [1, 4, 4]\nlayers:\n  - avgpool2d: {{kernel: 2, stride: {MAX_WINDOW}}}\n",
                         "t.yaml")
    assert tuple(netspec.build(spec)(x).shape[1:]) == netspec.analyze(spec).outputs["output"] == (1, 1, 1)


# ---- names that are Python keywords or constants: generated code imports and runs ----------------------------------


ODD_NAMES = ["none", "true", "false", "None", "True", "False", "class", "def", "print", "torch", "nn", "self", "x",
             "Net", "match", "type", "_", "3d", "é", "a\"\"\"b", "back\\slash", "名前"]


def _odd_spec(rng: random.Random, i: int) -> str:
    layers, out = [], 4
    for j in range(rng.randint(1, 4)):
        name = rng.choice(["none", "true_", "false", "match", "case", "type_", "print", "inp", "h", "x", f"l{j}"])
        layers.append(f"  - linear: {rng.randint(1, 5)}\n    name: {name}{j}\n")
        layers.append(rng.choice(["  - relu\n", "  - tanh\n", ""]))
    net = rng.choice(ODD_NAMES)
    description = rng.choice(['"say \\"\\"\\" and \\\\ and \\0 and \\e[2J and \\u2028"', "plain", "'x\"\"\"y'"])
    return f"name: {net!r}\ndescription: {description}\ninput: [{out}]\nlayers:\n" + "".join(layers)


def test_generated_code_imports_and_runs_for_odd_names(tmp_path, capsys):
    rng = random.Random(10)
    files = []
    for i in range(24):
        spec = tmp_path / f"spec{i}.yaml"
        spec.write_text(_odd_spec(rng, i))
        out = tmp_path / f"gen{i}.py"
        assert main(["compile", str(spec), "-o", str(out)]) == 0, capsys.readouterr().err
        files.append(str(out))
    script = textwrap.dedent("""
        import importlib.util, sys, torch
        for path in sys.argv[1:]:
            spec = importlib.util.spec_from_file_location("gen", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            (cls,) = [v for v in vars(module).values() if isinstance(v, type) and v.__module__ == "gen"]
            assert cls.__doc__ is not None
            cls()(torch.zeros(2, 4))
        print("ok", len(sys.argv) - 1)
    """)
    done = subprocess.run([sys.executable, "-c", script, *files], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "ok 24", done.stderr[-3000:]


def test_a_network_named_none_gets_a_class_python_accepts():
    from netspec.compiler import class_name

    assert [class_name(n) for n in ("none", "None", "true", "class", "3d", "名前")] == \
        ["NetNone", "NetNone", "NetTrue", "Class", "Net3d", "Net"]


# ---- drawing an invalid spec ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("content", [
    "name: t\ninput: [2, 8]\nlayers:\n  - conv1d: {out: 2, kernel: [3, 3]}\n",
    "name: t\ninput: [2, 8, 8]\nlayers:\n  - maxpool2d: {kernel: [2, 2, 2]}\n",
    "name: t\ninput: [2, 8, 8]\nlayers:\n  - conv2d: {out: 2, kernel: 3, stride: [1, 1, 1]}\n  - relu\n",
])
@pytest.mark.parametrize("command", ["validate --draw", "draw -o"])
def test_drawing_an_invalid_spec_prints_its_errors_and_draws_it(tmp_path, capsys, content, command):
    words = command.split()
    out = tmp_path / "net.dot"
    path = tmp_path / "net.yaml"
    path.write_text(content)
    argv = [words[0], str(path), *words[1:], str(out)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert LOCATED.match(err.splitlines()[0]) and "internal error" not in err and out.exists()


def test_drawing_many_groups_reads_the_edges_a_few_times_not_once_per_group(monkeypatch):
    """A 160-byte spec of 50,000 layers in 2,500 nested groups took minutes to draw: each group's height read
    every edge of the graph. Each drawing now reads them a bounded number of times, however many groups."""
    import netspec

    draw = sys.modules["netspec.draw"]
    calls, edges = [], draw._View.edges
    monkeypatch.setattr(draw._View, "edges", lambda view: calls.append(1) or edges(view))
    text = ("name: t\ninput: [4]\nlayers:\n  - name: a\n    repeat: 10\n    layers:\n      - name: b\n"
            "        repeat: 50\n        layers:\n          - linear: 4\n            repeat: 4\n")
    spec = netspec.loads(text, "t.yaml")
    assert "digraph" in draw.to_dot(spec).source
    assert len(calls) < 50  # 500 groups


# ---- the command line and files ------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["compile", "-o", "{dir}/no/such/folder/net.py"],
                                     ["draw", "-o", "{dir}/no/such/folder/net.dot"],
                                     ["validate", "--draw", "{dir}/no/such/folder/net.dot"]])
def test_writing_into_a_missing_folder_says_which(tmp_path, capsys, command):
    (tmp_path / "net.yaml").write_text(HEAD + "  - relu\n")
    argv = [command[0], str(tmp_path / "net.yaml"), *(c.format(dir=tmp_path) for c in command[1:])]
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == (f"netspec: error: cannot write `{argv[-1]}`: the folder "
                                               f"`{tmp_path}/no/such/folder` does not exist")


def test_writing_to_a_device_or_a_pipe_writes_into_it(tmp_path, capsys):
    """`-o /dev/null` or a named pipe is written to, not replaced by a file (as root, replacing /dev/null would
    put a plain file in its place); a full device is a usage error."""
    import stat
    import threading

    (tmp_path / "net.yaml").write_text(HEAD + "  - relu\n")
    assert main(["compile", str(tmp_path / "net.yaml"), "-o", os.devnull]) == 0
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)
    pipe, got = tmp_path / "pipe", []
    os.mkfifo(pipe)
    reader = threading.Thread(target=lambda: got.append(pipe.read_bytes()))
    reader.start()
    assert main(["compile", str(tmp_path / "net.yaml"), "-o", str(pipe)]) == 0
    reader.join(60)
    assert stat.S_ISFIFO(os.stat(pipe).st_mode) and b"class T(nn.Module)" in got[0]
    if os.path.exists("/dev/full") and stat.S_ISCHR(os.stat("/dev/full").st_mode):
        assert main(["compile", str(tmp_path / "net.yaml"), "-o", "/dev/full"]) == 2
        assert "cannot write `/dev/full`: No space left on device" in capsys.readouterr().err
        assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full, a device that is always full")
@pytest.mark.parametrize("command", [["validate", "net.yaml"], ["summary", "net.yaml", "--json"], ["ops"],
                                     ["compile", "net.yaml", "-o", "-"]])
def test_a_full_standard_output_is_said_not_an_internal_error(tmp_path, command):
    (tmp_path / "net.yaml").write_text(HEAD + "  - relu\n")
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "netspec", *command], stdout=full, stderr=subprocess.PIPE,
                              text=True, cwd=tmp_path, timeout=60)
    assert (done.returncode, done.stderr) == (2, "netspec: error: cannot write the output: No space left on device\n")


def test_a_file_name_that_would_drive_the_terminal_is_escaped(tmp_path, capsys):
    path = tmp_path / "a\x1b[2Jb.yaml"
    path.write_text(HEAD + "  - bogus\n")
    assert main(["validate", str(path)]) == 1
    assert main(["compile", str(path), "-o", str(tmp_path / "x\x1b[2J" / "net.py")]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and err.startswith(f"{tmp_path}/a\\x1b[2Jb.yaml:4:5: error: unknown layer type")
    assert "cannot write" in err and "x\\x1b[2J/net.py" in err


def test_writing_onto_a_folder_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "net.yaml").write_text(HEAD + "  - relu\n")
    (tmp_path / "out.py").mkdir()
    assert main(["compile", str(tmp_path / "net.yaml"), "-o", str(tmp_path / "out.py")]) == 2
    assert "cannot write" in capsys.readouterr().err


ASCII_COMMANDS = ["validate {spec}", "validate {spec} --draw {dir}/d.dot", "summary {spec}", "summary {spec} --json",
                  "summary {spec} --markdown --batch 8", "draw {spec} -o {dir}/d.dot", "compile {spec} -o {dir}/d.py",
                  "ops", "--help", "validate --help"]


@pytest.mark.parametrize("command", ASCII_COMMANDS)
@pytest.mark.parametrize("spec", ["name: t×\ninput: [3, 8, 8]\nlayers:\n  - conv2d: {out: 4, kernel: 3}\n",
                                  "name: t\ninput: [3, 8, 8]\nlayers:\n  - conv1d: {out: 4, kernel: 3}\n  - relu\n"])
def test_every_command_prints_on_an_ascii_terminal(tmp_path, monkeypatch, command, spec):
    """As with PYTHONIOENCODING=ascii: `×` in shapes and names is escaped, not an internal error."""
    (tmp_path / "net.yaml").write_text(spec)
    out, err = io.BytesIO(), io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(out, encoding="ascii"))
    monkeypatch.setattr(sys, "stderr", io.TextIOWrapper(err, encoding="ascii"))
    try:
        code = main(command.format(spec=tmp_path / "net.yaml", dir=tmp_path).split())
    except SystemExit as exc:  # --help
        code = exc.code
    sys.stdout.flush(), sys.stderr.flush()
    text = out.getvalue().decode("ascii") + err.getvalue().decode("ascii")
    assert code in (0, 1) and "internal error" not in text, text
    if command.startswith(("summary", "validate {spec}")):
        assert "\\xd7" in text or "\\u00d7" in text  # `×`, in a name, a shape or a message (JSON escapes it)


def test_an_ascii_terminal_in_a_real_process(tmp_path):
    (tmp_path / "net.yaml").write_text("name: t\ninput: [3, 8, 8]\nlayers:\n  - conv2d: {out: 4, kernel: 3}\n")
    done = subprocess.run([sys.executable, "-m", "netspec", "summary", str(tmp_path / "net.yaml")],
                          capture_output=True, env={**os.environ, "PYTHONIOENCODING": "ascii"}, timeout=60)
    assert done.returncode == 0 and b"4\\xd76\\xd76" in done.stdout, done.stderr


def test_validate_draw_and_draw_agree_without_the_dot_program(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {**os.environ, "PATH": str(empty)}
    (tmp_path / "ok.yaml").write_text(HEAD + "  - relu\n")
    (tmp_path / "bad.yaml").write_text(HEAD + "  - linear: 0\n")
    codes = {}
    for spec in ("ok", "bad"):
        for command in (["validate", f"{spec}.yaml", "--draw", "out.svg"], ["draw", f"{spec}.yaml", "-o", "out.svg"]):
            done = subprocess.run([sys.executable, "-m", "netspec", *command], capture_output=True, text=True,
                                  env=env, cwd=tmp_path, timeout=60)
            assert "the `dot` program is missing" in done.stderr and "internal error" not in done.stderr
            codes[spec, command[0]] = done.returncode
            if spec == "bad":  # the spec's errors first, located, then what drawing says
                assert LOCATED.match(done.stderr.splitlines()[0]), done.stderr
    assert codes == {("ok", "validate"): 2, ("ok", "draw"): 2, ("bad", "validate"): 1, ("bad", "draw"): 1}
    assert (tmp_path / "out.dot").exists()


# ---- limits: any file up to 10 MB is answered in bounded time and memory --------------------------------------------

MB10 = 10 * 10**6


def _fill(head: str, unit: str, tail: str = "") -> str:
    return head + unit * ((MB10 - len(head) - len(tail)) // len(unit)) + tail


ADVERSARIAL = {  # each about 10 MB
    "long_line": lambda: _fill("name: t\ninput: [4]\nlayers: [relu, ", "x", "]\n"),
    "deep_nesting": lambda: _fill("name: t\ninput: [4]\nlayers: ", "[{a: "),
    "many_layers": lambda: _fill("name: t\ninput: [4]\nlayers:\n", "- linear: 4\n"),
    "many_errors": lambda: _fill("name: t\ninput: [4]\nlayers:\n", "- relu: null\n  from: nowhere\n"),
    "many_keys": lambda: "name: t\ninput: [4]\nlayers: [relu]\n" + "".join(f"key{i:07}: 1\n" for i in range(700_000)),
    "alias_bomb": lambda: _fill("name: t\ninput: [4]\nlayers: [relu]\na: &a [" + "x, " * 1000 + "x]\nb: [",
                                "*a, ", "*a]\n"),
    "expansion": lambda: _fill("name: t\ninput: [3, 8, 8]\nblocks:\n  b:\n    layers:\n" + "".join(
        f"      - conv2d: {{out: 3, kernel: 3, padding: 1}}\n        name: c{i}\n" for i in range(100)) +
        "layers:\n  - b: {}\n    repeat: 501\n", "#"),  # 50,100 conv layers: stops at the 50,001st
}


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30))


@pytest.mark.parametrize("kind", ADVERSARIAL)
def test_a_10mb_file_is_answered_within_10s_and_2gib(tmp_path, kind):
    path = tmp_path / f"{kind}.yaml"
    path.write_text(ADVERSARIAL[kind]())
    assert MB10 * 0.9 < path.stat().st_size <= 10 * 2**20
    done = subprocess.run([sys.executable, "-m", "netspec", "validate", path.name], capture_output=True, text=True,
                          cwd=tmp_path, timeout=10, preexec_fn=_limited)
    assert done.returncode == 1, done.stderr[-3000:]
    assert LOCATED.match(done.stderr.splitlines()[0]) and len(done.stderr) < 100_000, done.stderr[-3000:]


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path, capsys):
    path = tmp_path / "net.yaml"
    with open(path, "wb") as f:
        f.truncate(2**40)  # a sparse terabyte: reading it would never finish
    assert main(["validate", str(path)]) == 1
    assert f"{path}:1:1: error: the file is larger than 10 MiB" in capsys.readouterr().err


def test_running_out_of_memory_is_said_not_an_internal_error(monkeypatch, capsys, tmp_path):
    """A valid network too large for the machine (held-out check: compile of 50,000 merges under a 2 GiB cap)."""
    import netspec.cli.compile
    from netspec.cli import main

    spec = tmp_path / "net.yaml"
    spec.write_text("name: t\ninput: [4]\nlayers:\n  - linear: 2\n")

    def exhausted(args):
        raise MemoryError

    monkeypatch.setattr(netspec.cli.compile, "run", exhausted)
    assert main(["compile", str(spec), "-o", str(tmp_path / "net.py")]) == 2
    err = capsys.readouterr().err
    assert "`netspec compile` ran out of memory" in err and "internal error" not in err
