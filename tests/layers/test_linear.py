import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netspec.layers import REGISTRY, ShapeError
from tests.layers.harness import check


@settings(max_examples=40, deadline=None)
@given(
    lead=st.lists(st.integers(1, 5), max_size=1),
    features=st.integers(1, 64),
    out=st.integers(1, 64),
    bias=st.booleans(),
)
def test_linear_matches_torch(lead, features, out, bias):
    shape, params, macs = check("linear", {"out": out, "bias": bias}, [(*lead, features)])
    assert shape == (*lead, out)
    positions = lead[0] if lead else 1
    assert macs == positions * features * out


def test_linear_checks_stated_in_features():
    entry = REGISTRY["linear"]
    a = entry.Args.model_validate({"out_features": 4, "in_features": 7})
    with pytest.raises(ShapeError, match="in_features is 7 but the input has 8 features") as info:
        entry.infer(a, [(8,)])
    assert info.value.arg == "in_features"


def test_linear_maps_the_last_dim_of_any_rank_as_torch_does():
    entry = REGISTRY["linear"]
    assert entry.infer(entry.Args.model_validate({"out": 4}), [(3, 8, 8)]) == (3, 8, 4)
    with pytest.raises(ShapeError) as info:  # a stated in_features for the whole image: flatten first
        entry.infer(entry.Args.model_validate({"out": 4, "in_features": 192}), [(3, 8, 8)])
    assert "flatten" in info.value.hint
