"""The layer catalog: one registered entry per op, grouped by family.

Every family module is imported here explicitly; `REGISTRY` maps an op name
to its entry. Custom layers enter through `register` from user code, never by
a name taken from a spec.
"""

from . import (  # noqa: F401  (importing registers the entries)
    activation,
    attention,
    conv,
    embedding,
    generative,
    linear,
    merge,
    norm,
    pool,
    recurrent,
    regularization,
    reshape,
)
from .base import ANY, FLOAT, FROM, GLOBAL, INDEX, REGISTRY, Args, Call, Layer, ShapeError, SymbolicSize, register

__all__ = ["ANY", "FLOAT", "FROM", "GLOBAL", "INDEX", "REGISTRY", "Args", "Call", "Layer", "ShapeError",
           "SymbolicSize", "register"]
