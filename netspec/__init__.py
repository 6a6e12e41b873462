"""netspec: a declarative network compiler.

    spec = netspec.load("specs/resnet18.yaml")   # parse + validate the YAML
    result = netspec.analyze(spec)               # shapes, params, MACs, receptive fields
    model = netspec.build(spec)                  # a torch nn.Module (imports torch)
    run = netspec.train(spec, epochs=5)          # trains into a run folder (imports torch)

Analysis never imports torch; `build` does, on first use.
"""

from __future__ import annotations

from . import train  # noqa: E402  (a callable module: `netspec.train(spec)`; imports no torch)
from .analysis import Analysis, analyze
from .draw import draw
from .errors import SpecError, SpecErrors
from .graph import Graph, build_graph
from .spec import Spec, load, loads

__version__ = "0.1.0"

__all__ = ["Analysis", "Graph", "Spec", "SpecError", "SpecErrors", "analyze", "build", "build_graph", "draw",
           "load", "loads", "train"]


def build(spec: Spec | Graph, device=None, dtype=None, init=None):
    """The spec as a torch `nn.Module` (see `netspec.compiler.build`); imports torch on first use."""
    from .compiler import build as build_module

    return build_module(spec, device=device, dtype=dtype, init=init)
