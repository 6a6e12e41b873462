"""Keep the analysis linear in the number of layers.

Loading and expanding a spec allocates many small objects that form no
reference cycles; Python's cyclic collector would otherwise rescan all of them
on every collection, which made a 10,000-layer chain 1.5x slower per layer than
a 1,000-layer one. Pausing it while netspec builds its own objects keeps the
cost per layer flat (benchmarks/analysis_speed.py).
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from functools import wraps
from typing import TypeVar

F = TypeVar("F", bound=Callable)


def without_gc(fn: F) -> F:
    """Run `fn` with the cyclic garbage collector paused (restored afterwards, also on error)."""

    @wraps(fn)
    def wrapper(*args, **kwargs):
        if not gc.isenabled():
            return fn(*args, **kwargs)
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            gc.enable()

    return wrapper  # type: ignore[return-value]
