"""The layer-entry protocol and the registry every op goes through.

A layer type is one subclass of `Layer`, registered with `@register`, living in
`netspec/layers/<family>.py`. It declares, in one place:

- `Args`: its pydantic argument model (torch.nn argument names, short aliases
  through `arg()`), and `main_arg`, the argument a scalar short form binds to;
- `infer`: the shape rule (per-sample shapes, batch excluded);
- `parts` and `part`: for an op giving several tensors (`chunk`, `split`), how many, and the
  arguments of each (one node per part);
- `params`, `macs`, `flops`: its costs, each with the convention it follows;
- `rf`: how it transforms the receptive field;
- `label`: the op with its key args, for tables and diagrams;
- `module` and `forward`: how it becomes torch (imported lazily, inside those
  methods only, so that analysis never imports torch).

Nothing outside this package branches on an op's name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from ..arith import Dim, Shape, format_shape, is_known, nearest_divisors, numel

FROM = "from"  # `main_arg` of merge ops: `- add: [a, b]` names the inputs
FLOAT, INDEX, ANY = "float", "index", "any"  # values of `Layer.dtypes`
GLOBAL = "global"  # receptive field covering the whole input


class ShapeError(Exception):
    """A layer cannot accept its input (or its arguments contradict each other).

    `arg` names the argument to point at, when one is to blame.
    """

    def __init__(self, message: str, hint: str | None = None, arg: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.arg = arg


class Args(BaseModel):
    """Base of every argument model: unknown keys are errors; no silent coercion."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)


class NoArgs(Args):
    pass


def arg(*names: str, **kwargs: Any) -> Any:
    """A field known by its torch name and optional short aliases: `arg("kernel_size", "kernel")`."""
    return Field(validation_alias=AliasChoices(*names), **kwargs)


@dataclass(frozen=True)
class TensorCall:
    """A tensor computed by `torch.<fn>(*args, **kwargs)`, described without torch; an argument may be a
    TensorCall itself (`TensorCall("flatten", (TensorCall("arange", (9,)),))`). The value of a buffer."""

    fn: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Call:
    """A torch module constructor chosen by the catalog: `torch.nn.<cls>(*args, **kwargs)`;
    or, made by `Call.parameter(shape, fill)`, a bare learnable tensor of that shape (a class token, a
    position table, a layer scale), filled with `fill` (zero by default) and held as the layer itself
    rather than inside a module; or, made by `Call.container(...)`, a plain `nn.Module` holding named
    modules, parameters and buffers (`Call.buffer(value)`) of its own, in that order, and plain
    attributes its layer's `forward` reads (a window size computed from the input's shape)."""

    cls: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)

    PARAMETER: ClassVar[str] = "Parameter"  # `cls` of a bare tensor; `args` is its shape
    BUFFER: ClassVar[str] = "buffer"  # `cls` of a buffer; `args` is its TensorCall
    CONTAINER: ClassVar[str] = "Module"  # `cls` of a container; `kwargs` its members

    @classmethod
    def parameter(cls, shape: Sequence[int], fill: float = 0.0) -> Call:
        """A bare learnable tensor of `shape`, every element `fill`."""
        return cls(cls.PARAMETER, tuple(shape), {"fill": float(fill)} if fill else {})

    @classmethod
    def buffer(cls, value: TensorCall) -> Call:
        """A tensor a container keeps in its `state_dict` but does not learn (an index table)."""
        return cls(cls.BUFFER, (value,))

    @classmethod
    def container(cls, members: dict[str, Any]) -> Call:
        """A plain module whose attributes are `members`, in order: a Call (a module, a parameter or a
        buffer) becomes state under its name, any other value a plain attribute."""
        return cls(cls.CONTAINER, (), dict(members))

    @property
    def is_parameter(self) -> bool:
        """Whether this is a bare tensor (`args` its shape), not a module."""
        return self.cls == self.PARAMETER

    @property
    def is_buffer(self) -> bool:
        """Whether this is a container's buffer (`args[0]` its TensorCall), not a module."""
        return self.cls == self.BUFFER

    @property
    def is_container(self) -> bool:
        """Whether this is a plain module holding the members in `kwargs`."""
        return self.cls == self.CONTAINER

    @property
    def fill(self) -> float:
        """A bare tensor's initial value."""
        return self.kwargs.get("fill", 0.0)

    @property
    def shape(self) -> tuple:
        """A bare tensor's shape."""
        if not self.is_parameter:
            raise TypeError(f"`{self.cls}` is a module, not a bare tensor")
        return self.args


class Layer:
    """One op of the language. Subclasses override what differs from these defaults."""

    op: ClassVar[str]
    family: ClassVar[str]
    Args: ClassVar[type[Args]] = NoArgs
    main_arg: ClassVar[str | None] = None
    arity: ClassVar[tuple[int, int | None]] = (1, 1)  # fewest and most inputs (None: any)
    # FLOAT: needs floating-point inputs; INDEX: needs integer ids and gives floats (a lookup);
    # ANY: moves or combines values of either kind (the output is integer when every input is)
    dtypes: ClassVar[str] = FLOAT
    mask_inputs: ClassVar[tuple[int, ...]] = ()  # positions of inputs read as masks (nonzero marks): any dtype

    def parts(self, a: Args) -> int:
        """How many tensors the op gives, known from its arguments alone: 1, or the parts of a `chunk` or
        `split`. Each part of an op giving several becomes a node `<name>.<i>` whose arguments are
        `part(a, i)`; `infer`, the costs, `label` and `forward` of that node take them."""
        return 1

    def part(self, a: Args, i: int) -> Args:
        """The arguments of part `i` of an op giving several tensors (see `parts`)."""
        raise NotImplementedError(f"`{self.op}` gives one tensor")

    @property
    def splits(self) -> bool:
        """Whether the op gives several tensors (it defines `parts`), each a node of its own."""
        return type(self).parts is not Layer.parts

    def infer(self, a: Args, shapes: Sequence[Shape]) -> Shape:
        """Output shape; raise ShapeError when the input does not fit."""
        return shapes[0]

    def params(self, a: Args, shapes: Sequence[Shape]) -> int:
        """Learnable parameters (what torch's `sum(p.numel())` counts; buffers excluded)."""
        return 0

    def macs(self, a: Args, shapes: Sequence[Shape], out: Shape) -> int:
        """Multiply-accumulates of conv, linear, matrix-product and recurrent work, bias not counted."""
        return 0

    def flops(self, a: Args, shapes: Sequence[Shape], out: Shape) -> int:
        """Floating-point work other than MACs (element-wise ops, normalization, pooling)."""
        return 0

    def rf(self, a: Args, shapes: Sequence[Shape]) -> Any:
        """Receptive-field rule: None keeps the input's field; GLOBAL sees the whole input;
        a list of (effective kernel, stride) per spatial axis composes as
        r' = r + (k-1)·j,  j' = j·s  (an int stride, or a Fraction < 1 for upsampling)."""
        return None

    def label(self, a: Args) -> str:
        """The op with its key arguments, as tables and diagrams show it."""
        return self.op

    def module(self, a: Args, shapes: Sequence[Shape]) -> Call | None:
        """The torch module holding this layer's state, or None for a stateless op."""
        return None

    def forward(self, m: Any, a: Args, xs: Sequence[Any]) -> Any:
        """The forward computation on batched tensors `xs`, with `m` the built module."""
        return m(*xs)


def spatial_rf(kernels: Sequence[int], strides: Sequence[int], dilations: Sequence[int]) -> list:
    return [(d * (k - 1) + 1, s) for k, s, d in zip(kernels, strides, dilations)]


class SymbolicSize(Exception):
    """A cost depends on a symbolic dim; the analysis reports it as unknown."""


def count(shape: Shape) -> int:
    """Elements of a shape; raises SymbolicSize when a dim is symbolic."""
    n = numel(shape)
    if n is None:
        raise SymbolicSize(shape)
    return n


def check_dim(op: str, dim: int, shape: Shape, name: str = "dim") -> int:
    """`dim` as an index 0 ≤ i < rank into a per-sample shape; ShapeError when out of range."""
    rank = len(shape)
    if not -rank <= dim < rank:
        raise ShapeError(f"{op} {name} {dim} is out of range for the {rank}-dim input {format_shape(shape)}",
                         hint=f"per-sample dims run from {-rank} to {rank - 1}; the batch dim is not counted"
                         if rank else None, arg=name)
    return dim % rank


def known(dim: Dim, what: str, op: str, hint: str | None = None) -> int:
    """`dim` when it is an int; else ShapeError "<op> needs a known <what>, got symbolic `T`"."""
    if not is_known(dim):
        raise ShapeError(f"{op} needs a known {what}, got symbolic `{dim}`", hint=hint)
    return dim


def check_stated(a: Args, field: str, actual: int, noun: str, hint: str | None = None,
                 holder: str = "the input has") -> None:
    """An optional argument that restates an inferred size (`in_features`, `num_channels`, …) must agree:
    ShapeError "<field> is N but <holder> M <noun>", blaming `field`, when it is given and differs."""
    stated = getattr(a, field)
    if stated is not None and stated != actual:
        raise ShapeError(f"{field} is {stated} but {holder} {actual} {noun}",
                         hint=hint or f"drop `{field}`: it is inferred", arg=field)


def check_groups(a: Args, field: str, channels: int) -> None:
    """A count of channel groups (`num_groups`, `groups`) must divide the channels: ShapeError "<field> G does
    not divide the C channels", blaming `field` and naming the divisors of C nearest G."""
    groups = getattr(a, field)
    if channels % groups:
        nearest = nearest_divisors(channels, groups, 4)
        raise ShapeError(f"{field} {groups} does not divide the {channels} channels",
                         hint=f"choose a divisor of {channels}, e.g. {', '.join(map(str, nearest))}", arg=field)


def check_image(op: str, shape: Shape, hint: str) -> None:
    """An op made for images needs a per-sample [C, H, W]: ShapeError "<op> needs an image [C, H, W], got …"
    with `hint` (the op to use instead) otherwise."""
    if len(shape) != 3:
        raise ShapeError(f"{op} needs an image [C, H, W], got {format_shape(shape)}", hint=hint)


def batch_dim(dim: int) -> int:
    """A per-sample dim index as a batched tensor's index (batch is dim 0)."""
    return dim + 1 if dim >= 0 else dim


REGISTRY: dict[str, Layer] = {}


def register(cls: type[Layer]) -> type[Layer]:
    """Add a layer type to the catalog; a name may be registered once only."""
    if cls.op in REGISTRY:
        raise ValueError(f"layer type `{cls.op}` is registered twice")
    REGISTRY[cls.op] = cls()
    return cls
