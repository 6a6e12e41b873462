"""Embedding tables: integer ids looked up as learned vectors."""

from __future__ import annotations

from pydantic import PositiveInt, model_validator

from .base import INDEX, Args, Call, Layer, arg, register


class EmbeddingArgs(Args):
    num_embeddings: PositiveInt
    embedding_dim: PositiveInt = arg("embedding_dim", "out")
    padding_idx: int | None = None

    @model_validator(mode="after")
    def _padding_idx_in_table(self):
        n = self.num_embeddings
        if self.padding_idx is not None and not -n <= self.padding_idx < n:
            raise ValueError(f"padding_idx {self.padding_idx} is outside the table of {n} embeddings "
                             f"(from {-n} to {n - 1})")
        return self


@register
class Embedding(Layer):
    """A lookup table: each integer id in [0, num_embeddings) selects a learned vector.

    Args:
        num_embeddings: rows of the table (the vocabulary size).
        embedding_dim (alias `out`): the length of each vector (`out`, as linear's `out_features`;
            not `dim`, which names an axis elsewhere).
        padding_idx: optional id whose vector is zero-initialized and gets no gradient;
            negative counts from the end.

    Shapes: (*) -> (*, embedding_dim); the input holds integer ids (a spec input with
    `dtype: int64`), of any dims, symbolic ones included (a sequence (T) -> (T, D)).

    Costs: params = num_embeddings · embedding_dim; MACs 0 and FLOPs 0 (a lookup).

    Example: `- embedding: {num_embeddings: 10000, out: 256}`
    """

    op = "embedding"
    dtypes = INDEX
    family = "embedding"
    Args = EmbeddingArgs

    def infer(self, a, shapes):
        return (*shapes[0], a.embedding_dim)

    def params(self, a, shapes):
        return a.num_embeddings * a.embedding_dim

    def label(self, a):
        return f"embedding {a.num_embeddings}×{a.embedding_dim}"

    def module(self, a, shapes):
        return Call("Embedding", (a.num_embeddings, a.embedding_dim), {"padding_idx": a.padding_idx})
