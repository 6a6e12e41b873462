import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from netspec.layers import REGISTRY, ShapeError
from netspec.torch_backend import instantiate
from tests.layers.harness import check, sample


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(1, 4), max_size=3).map(tuple), p=st.floats(0, 1))
def test_dropout_matches_torch(shape, p):
    assert check("dropout", {"p": p}, [shape]) == (shape, 0, 0)


@settings(max_examples=20, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=3, max_size=3).map(tuple), p=st.floats(0, 1))
def test_dropout2d_matches_torch(shape, p):
    assert check("dropout2d", {"p": p}, [shape]) == (shape, 0, 0)


@pytest.mark.parametrize("op, shape", [("dropout", (4, 8)), ("dropout2d", (4, 3, 3))])
def test_dropout_acts_in_training_only(op, shape):
    entry = REGISTRY[op]
    a = entry.Args.model_validate({"p": 1})
    m = instantiate(entry.module(a, [shape]))
    x = sample(shape)
    assert torch.equal(entry.forward(m.train(), a, [x]), torch.zeros_like(x))
    assert torch.equal(entry.forward(m.eval(), a, [x]), x)


def test_dropout2d_zeroes_whole_channels():
    entry = REGISTRY["dropout2d"]
    a = entry.Args.model_validate({"p": 0.5})
    y = entry.forward(instantiate(entry.module(a, [(64, 4, 4)])).train(), a, [torch.ones(2, 64, 4, 4)])
    per_channel = y.flatten(2)
    assert torch.equal(per_channel.amin(-1), per_channel.amax(-1))


@pytest.mark.parametrize("p", [-0.1, 1.5, "0.5", True])
def test_p_must_be_a_probability(p):
    with pytest.raises(ValidationError):
        REGISTRY["dropout"].Args.model_validate({"p": p})


def test_dropout2d_needs_an_image():
    entry = REGISTRY["dropout2d"]
    with pytest.raises(ShapeError) as info:
        entry.infer(entry.Args.model_validate({}), [(8, 16)])
    assert info.value.message == "dropout2d needs an image [C, H, W], got 8×16"
    assert "`dropout`" in info.value.hint


def test_labels_calls_and_symbolic_dims():
    entry = REGISTRY["dropout"]
    a = entry.Args.model_validate({"p": 0.2})
    assert entry.label(a) == "dropout 0.2"
    assert entry.module(a, [(3,)]).kwargs == {"p": 0.2}
    assert entry.infer(a, [("T", 8)]) == ("T", 8)
    assert entry.flops(a, [("T", 8)], ("T", 8)) == 0
    assert REGISTRY["dropout2d"].label(a) == "dropout2d 0.2"
