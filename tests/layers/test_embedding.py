import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from netspec.layers import REGISTRY
from netspec.torch_backend import instantiate
from tests.layers.harness import check, sample


@settings(max_examples=40, deadline=None)
@given(lead=st.lists(st.integers(1, 4), max_size=2).map(tuple), num=st.integers(1, 50),
       dim=st.integers(1, 16), data=st.data())
def test_embedding_matches_torch(lead, num, dim, data):
    args = {"num_embeddings": num, data.draw(st.sampled_from(["embedding_dim", "out"])): dim}
    if data.draw(st.booleans()):
        args["padding_idx"] = data.draw(st.integers(-num, num - 1))
    out, params, macs = check("embedding", args, [lead], inputs=[sample(lead, torch.long, high=num)])
    assert (out, params, macs) == ((*lead, dim), num * dim, 0)


def test_padding_idx_row_is_zero():
    entry = REGISTRY["embedding"]
    a = entry.Args.model_validate({"num_embeddings": 5, "out": 3, "padding_idx": -1})
    m = instantiate(entry.module(a, [(4,)]))
    y = entry.forward(m, a, [torch.tensor([[4, 0]])])
    assert torch.equal(y[0, 0], torch.zeros(3))


@pytest.mark.parametrize("args, message", [
    ({"num_embeddings": 5, "out": 3, "padding_idx": 5}, "padding_idx 5 is outside the table of 5 embeddings"),
    ({"num_embeddings": 5, "out": 3, "padding_idx": -6}, "padding_idx -6 is outside the table"),
    ({"num_embeddings": 0, "out": 3}, "greater than 0"),
    ({"num_embeddings": 5}, "embedding_dim"),
    ({"num_embeddings": 5, "dim": 3}, "dim"),
])
def test_bad_arguments_are_validation_errors(args, message):
    with pytest.raises(ValidationError, match=message):
        REGISTRY["embedding"].Args.model_validate(args)


def test_symbolic_ids_label_and_costs():
    entry = REGISTRY["embedding"]
    a = entry.Args.model_validate({"num_embeddings": 1000, "embedding_dim": 64})
    assert entry.infer(a, [("T",)]) == ("T", 64)
    assert entry.infer(a, [()]) == (64,)
    assert entry.params(a, [("T",)]) == 64_000
    assert entry.macs(a, [("T",)], ("T", 64)) == 0
    assert entry.label(a) == "embedding 1000×64"
    assert entry.main_arg is None
