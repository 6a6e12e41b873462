import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from netspec.layers import REGISTRY, ShapeError
from netspec.torch_backend import instantiate
from tests.layers.harness import Traced, check, sample


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


def torchvision_stochastic_depth(x, p, mode):
    """torchvision.ops.stochastic_depth in training, as torchvision 0.29 writes it."""
    survival = 1.0 - p
    size = [x.shape[0]] + [1] * (x.ndim - 1) if mode == "row" else [1] * x.ndim
    noise = torch.empty(size, dtype=x.dtype).bernoulli_(survival)
    if survival > 0.0:
        noise.div_(survival)
    return x * noise


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(1, 4), max_size=3).map(tuple), p=st.floats(0, 1),
       mode=st.sampled_from(["row", "batch"]), seed=st.integers(0, 2**16))
def test_stochastic_depth_matches_torchvision(shape, p, mode, seed):
    args = {"p": p, "mode": mode}
    assert check("stochastic_depth", args, [shape]) == (shape, 0, 0)
    entry = REGISTRY["stochastic_depth"]
    a = entry.Args.model_validate(args)
    m = instantiate(entry.module(a, [shape]))
    x = sample(shape)
    assert torch.equal(entry.forward(m.eval(), a, [x]), x)
    torch.manual_seed(seed)
    y = entry.forward(m.train(), a, [x])
    torch.manual_seed(seed)
    torch.testing.assert_close(y, torchvision_stochastic_depth(x, p, mode))


@pytest.mark.parametrize("mode", ["row", "batch"])
def test_stochastic_depth_drops_whole_samples_or_the_whole_batch(mode):
    entry = REGISTRY["stochastic_depth"]
    a = entry.Args.model_validate({"p": 0.5, "mode": mode})
    y = entry.forward(instantiate(entry.module(a, [(3, 2, 2)])).train(), a, [torch.ones(64, 3, 2, 2)])
    per_sample = y.flatten(1)
    assert torch.equal(per_sample.amin(-1), per_sample.amax(-1))
    assert set(per_sample[:, 0].tolist()) <= {0.0, 2.0}
    if mode == "batch":
        assert len(set(per_sample[:, 0].tolist())) == 1


@pytest.mark.parametrize("args, label", [({"p": 0.1}, "stochastic_depth 0.1"),
                                         ({"p": 0.2, "mode": "batch"}, "stochastic_depth 0.2 batch")])
def test_stochastic_depth_traces_and_labels(args, label):
    entry = REGISTRY["stochastic_depth"]
    a = entry.Args.model_validate(args)
    assert entry.label(a) == label
    net = torch.fx.symbolic_trace(Traced(entry, a, instantiate(entry.module(a, [(4,)])))).eval()
    x = torch.randn(3, 4, 5)
    assert torch.equal(net(x), x)


def test_stochastic_depth_needs_a_probability():
    entry = REGISTRY["stochastic_depth"]
    for args in [{}, {"p": 1.5}, {"p": 0.1, "mode": "col"}]:
        with pytest.raises(ValidationError):
            entry.Args.model_validate(args)
