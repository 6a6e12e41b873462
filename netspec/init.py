"""Weight initialization named in a spec: which `torch.nn.init` function each parameter gets.

The top-level `init:` sets the scheme of every layer; an item's `init:` (a layer,
a group or a block) overrides it for the layers inside; the nearest one wins.
Schemes: `default` (torch's own initialization, untouched), `kaiming_normal`,
`kaiming_uniform`, `xavier_normal`, `xavier_uniform`, `zeros`, `ones`, and
`{normal: {std: 0.02}}` (mean 0).

The rule, for each parameter of a layer whose scheme is not `default`, read from
torch's own name of the parameter within its module (never from the spec's layer
names) and the layer's catalog family:
- every parameter of a `norm`-family layer (batchnorm, layernorm, groupnorm, ...)
  keeps torch's initialization, whatever its shape (a `layernorm: [4, 4]` scale is
  2-d and stays ones);
- a bias (torch's attribute name contains `bias`: `bias`, `bias_ih_l0`,
  `in_proj_bias`) is zeroed;
- a weight with two or more dims (conv, linear, embedding, recurrent and attention
  weights) and a bare tensor (class tokens, position tables, whatever their layer is
  called) get `torch.nn.init.<scheme>_` with torch's default arguments (`std` for `normal`);
- a 1-d weight (prelu's slopes) keeps torch's initialization.

Build and generated code apply it through the same `Init.call` (via
`compiler.init_calls`), in node order.
Pure Python: analysis imports this module, so it never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import PathT, did_you_mean

if TYPE_CHECKING:
    from .graph import Graph, Node
    from .loader import Source

SCHEMES = ("default", "kaiming_normal", "kaiming_uniform", "xavier_normal", "xavier_uniform", "zeros", "ones")


@dataclass(frozen=True)
class Init:
    scheme: str  # one of SCHEMES, or "normal"
    std: float | None = None  # for "normal"

    def call(self, attr: str | None, ndim: int, norm: bool = False) -> tuple[str, dict] | None:
        """(torch.nn.init function name, keyword args) for one parameter, or None for torch's own init.

        `attr`: torch's attribute name of the parameter within its module (`weight`, `bias_ih_l0`),
        None for a bare tensor that is the layer itself; `ndim`: its dims; `norm`: whether its layer
        is of the `norm` family.
        """
        if self.scheme == "default" or norm:
            return None
        if attr is not None and "bias" in attr:
            return "zeros_", {}
        if ndim < 2:
            return None
        return f"{self.scheme}_", {} if self.std is None else {"std": self.std}


DEFAULT = Init("default")


def to_init(value: Any) -> Init:
    """The scheme a spec's `init:` value names; raises ValueError when it names none."""
    if isinstance(value, str) and value in SCHEMES:
        return Init(value)
    normal = value.get("normal") if isinstance(value, dict) and len(value) == 1 else None
    std = normal.get("std") if isinstance(normal, dict) and len(normal) == 1 else None
    if isinstance(std, (int, float)) and not isinstance(std, bool) and std > 0:
        return Init("normal", float(std))
    raise ValueError(f"`init` is one of {', '.join(SCHEMES)} or {{normal: {{std: S}}}} with S > 0, "
                     f"got {value!r}")


def parse_init(value: Any, path: PathT, source: Source) -> Init:
    """The `init:` value at `path`; raises a located SpecError when it names no scheme."""
    try:
        return to_init(value)
    except ValueError as exc:
        hint = did_you_mean(value, SCHEMES) if isinstance(value, str) else None
        raise source.error(str(exc), path,
                           hint or "e.g. `init: kaiming_normal` or `init: {normal: {std: 0.02}}`") from None


def layer_init(graph: Graph, node: Node, top: Init | None = None) -> Init:
    """The scheme of `node`: its own, else its nearest enclosing group's or block's, else `top`,
    else the spec's top-level one."""
    if node.init is not None:
        return node.init
    scope = node.scope
    while scope is not None:
        if graph.scopes[scope].init is not None:
            return graph.scopes[scope].init
        scope = graph.scopes[scope].parent
    return top or graph.spec.model.init or DEFAULT
