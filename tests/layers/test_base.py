"""The shared checks of the layer protocol: a dim that must be known, an argument that restates a size."""

import pytest

from netspec.layers.base import Args, ShapeError, check_stated, known
from tests.layers.harness import infer


class Stated(Args):
    in_features: int | None = None


def test_known_returns_an_int_and_refuses_a_symbolic_dim():
    assert known(8, "channel dim", "conv2d") == 8
    with pytest.raises(ShapeError) as info:
        known("C", "channel dim", "conv2d", hint="fix it")
    assert info.value.message == "conv2d needs a known channel dim, got symbolic `C`"
    assert (info.value.hint, info.value.arg) == ("fix it", None)


def test_check_stated_blames_the_argument():
    check_stated(Stated(), "in_features", 8, "features")
    check_stated(Stated(in_features=8), "in_features", 8, "features")
    with pytest.raises(ShapeError) as info:
        check_stated(Stated(in_features=7), "in_features", 8, "features")
    assert info.value.message == "in_features is 7 but the input has 8 features"
    assert (info.value.hint, info.value.arg) == ("drop `in_features`: it is inferred", "in_features")
    with pytest.raises(ShapeError, match="in_features is 7 but the tokens have 8 features"):
        check_stated(Stated(in_features=7), "in_features", 8, "features", holder="the tokens have")


@pytest.mark.parametrize("op, args, shape, message", [
    ("linear", {"out": 4}, (3, "F"), "linear needs a known feature dim, got symbolic `F`"),
    ("conv1d", {"out": 4, "kernel": 1}, ("C", 8), "conv1d needs a known channel dim, got symbolic `C`"),
    ("batchnorm1d", {}, ("C", 8), "batchnorm1d needs a known channel dim, got symbolic `C`"),
    ("groupnorm", {"num_groups": 2}, ("C", 8), "groupnorm needs a known channel dim, got symbolic `C`"),
    ("lstm", {"hidden": 4}, (8, "F"), "lstm needs a known feature dim, got symbolic `F`"),
    ("self_attention", {"heads": 2}, (8, "E"), "self_attention needs a known embedding dim, got symbolic `E`"),
    ("pos_embedding", {}, ("N", 8), "pos_embedding needs a known number of tokens, got symbolic `N`"),
])
def test_every_entry_names_the_dim_it_needs_known(op, args, shape, message):
    with pytest.raises(ShapeError) as info:
        infer(op, args, shape)
    assert info.value.message == message


@pytest.mark.parametrize("op, args, shape, message", [
    ("linear", {"out": 4, "in_features": 7}, (8,), "in_features is 7 but the input has 8 features"),
    ("conv1d", {"out": 4, "kernel": 1, "in_channels": 7}, (8, 8), "in_channels is 7 but the input has 8 channels"),
    ("batchnorm1d", {"num_features": 7}, (8,), "num_features is 7 but the input has 8 channels"),
    ("groupnorm", {"num_groups": 2, "num_channels": 7}, (8,), "num_channels is 7 but the input has 8 channels"),
    ("gru", {"hidden": 4, "input_size": 7}, (3, 8), "input_size is 7 but the input has 8 features"),
    ("self_attention", {"heads": 2, "embed_dim": 7}, (3, 8), "embed_dim is 7 but the tokens have 8 features"),
])
def test_every_entry_checks_a_stated_size(op, args, shape, message):
    with pytest.raises(ShapeError) as info:
        infer(op, args, shape)
    assert (info.value.message, info.value.arg) == (message, message.split()[0])
    assert info.value.hint == f"drop `{message.split()[0]}`: it is inferred"
