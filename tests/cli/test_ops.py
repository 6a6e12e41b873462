"""`netspec ops [OP]`: the catalog, and one op's arguments, shapes, costs and example."""

import inspect

import pytest

from netspec.cli.ops import describe
from netspec.layers import REGISTRY
from tests.cli.helpers import call


def test_the_list(capsys):
    code, out, _ = call(capsys, "ops")
    assert code == 0 and len(out.splitlines()) == len(REGISTRY) and any(line.startswith("conv2d ") for line in
                                                                           out.splitlines())


def test_one_op_shows_its_arguments_with_aliases_types_defaults_and_its_example(capsys):
    code, out, _ = call(capsys, "ops", "conv2d")
    lines = out.splitlines()
    assert code == 0 and lines[0] == "conv2d (conv): 2-d convolution (cross-correlation) over an image."
    assert "Arguments (torch's name, then aliases; `- conv2d: VALUE` sets out_channels):" in out
    row = next(line for line in lines if line.lstrip().startswith("kernel_size, kernel"))
    assert "required" in row and "int" in row
    assert next(line for line in lines if line.lstrip().startswith("stride ")).endswith("default 1")
    assert "      window size, one int for every axis or a list of 2." in lines
    assert "Args:" not in out and "Example: `- conv2d: {out: 64, kernel: 7" in out


def test_a_merge_keeps_its_sentence_about_inputs(capsys):
    code, out, _ = call(capsys, "ops", "add")
    assert code == 0 and "Args: none; the inputs come from `from`" in out and "Example: `- add: [" in out


@pytest.mark.parametrize("op", sorted(REGISTRY))
def test_every_op_describes_every_argument(op):
    text = describe(op)
    entry = REGISTRY[op]
    for name in entry.Args.model_fields:
        assert f"  {name}" in text, (op, name)
    assert "Example" in text or f"- {op}" in text
    assert inspect.cleandoc(type(entry).__doc__).splitlines()[0].split()[0] in text.splitlines()[0]


def test_an_unknown_op_is_a_usage_error_with_a_did_you_mean(capsys):
    code, out, err = call(capsys, "ops", "conv2")
    assert code == 2 and out == "" and "no layer type `conv2`: did you mean `conv2d`?" in err
