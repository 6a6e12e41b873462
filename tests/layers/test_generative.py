import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from netspec.layers import FROM, REGISTRY, ShapeError, SymbolicSize
from tests.layers.harness import check

ENTRY = REGISTRY["reparameterize"]


@settings(max_examples=30, deadline=None)
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=3))
def test_reparameterize_matches_torch(shape):
    out, params, macs = check("reparameterize", {}, [tuple(shape), tuple(shape)])
    assert (out, params, macs) == (tuple(shape), 0, 0)
    assert ENTRY.flops(None, [tuple(shape)] * 2, out) == 3 * math.prod(shape)


def test_reparameterize_protocol():
    assert (ENTRY.main_arg, ENTRY.arity, ENTRY.family) == (FROM, (2, 2), "generative")
    assert ENTRY.module(None, [(8,), (8,)]) is None
    assert ENTRY.rf(None, [(8,), (8,)]) is None


def test_reparameterize_samples_with_the_given_moments():
    torch.manual_seed(0)
    mu, logvar = torch.full((20_000, 4), 3.0), torch.full((20_000, 4), math.log(4.0))
    z = ENTRY.forward(None, None, [mu, logvar])
    assert abs(z.mean().item() - 3.0) < 0.05
    assert abs(z.std().item() - 2.0) < 0.05
    torch.testing.assert_close(ENTRY.forward(None, None, [mu, torch.full_like(mu, -200.0)]), mu)


def test_reparameterize_always_samples_and_is_differentiable():
    mu, logvar = torch.zeros(2, 8, requires_grad=True), torch.zeros(2, 8, requires_grad=True)
    z1, z2 = ENTRY.forward(None, None, [mu, logvar]), ENTRY.forward(None, None, [mu, logvar])
    assert not torch.equal(z1, z2)
    z1.sum().backward()
    assert torch.equal(mu.grad, torch.ones(2, 8))


def test_reparameterize_traces_with_fx():
    class Net(torch.nn.Module):
        def forward(self, mu, logvar):
            return ENTRY.forward(None, None, [mu, logvar])

    graph = torch.fx.symbolic_trace(Net())
    mu = torch.randn(3, 5)
    torch.testing.assert_close(graph(mu, torch.full_like(mu, -200.0)), mu)


def test_reparameterize_symbolic_shape():
    assert ENTRY.infer(None, [("T", 8), ("T", 8)]) == ("T", 8)
    with pytest.raises(SymbolicSize):
        ENTRY.flops(None, [("T", 8)] * 2, ("T", 8))


@pytest.mark.parametrize("mu, logvar, text", [
    ((8,), (16,), "got 8 and 16"),
    ((2, 4), (8,), "got 2×4 and 8"),
    (("T", 4), ("S", 4), "got T×4 and S×4"),
])
def test_reparameterize_needs_equal_shapes(mu, logvar, text):
    with pytest.raises(ShapeError, match=f"reparameterize needs mu and logvar of one shape, {text}") as info:
        ENTRY.infer(None, [mu, logvar])
    assert "same width" in info.value.hint


@settings(max_examples=30, deadline=None)
@given(shapes=st.lists(st.lists(st.one_of(st.integers(1, 4), st.just("T")), max_size=3), min_size=2,
                       max_size=2))
def test_random_shape_pairs_raise_only_shape_errors(shapes):
    mu, logvar = (tuple(s) for s in shapes)
    try:
        out = ENTRY.infer(None, [mu, logvar])
    except ShapeError:
        assert mu != logvar
        return
    assert out == mu == logvar
