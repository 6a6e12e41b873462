"""Recurrent layers: stacked, optionally bidirectional RNN, LSTM and GRU over [T, features]."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, PositiveInt

from ..arith import format_shape
from .base import GLOBAL, Args, Call, Layer, ShapeError, arg, check_stated, count, known, register

MAX_STACK = 1_000  # num_layers: torch builds each stacked layer's tensors (docs/security.md)


class RecurrentArgs(Args):
    hidden_size: PositiveInt = arg("hidden_size", "hidden")
    num_layers: PositiveInt = 1
    bias: bool = True
    bidirectional: bool = False
    dropout: float = Field(0.0, ge=0.0, le=1.0)
    input_size: PositiveInt | None = None
    output: Literal["sequence", "last"] = "sequence"


class RNNArgs(RecurrentArgs):
    nonlinearity: Literal["tanh", "relu"] = "tanh"


class Recurrent(Layer):
    """What RNN, LSTM and GRU share; each differs in its gate count and torch class."""

    family = "recurrent"
    Args = RecurrentArgs
    main_arg = "hidden_size"
    gates: ClassVar[int]
    torch_cls: ClassVar[str]

    def infer(self, a, shapes):
        (shape,) = shapes
        if len(shape) != 2:
            raise ShapeError(f"{self.op} needs a sequence [T, features], got {format_shape(shape)}",
                             hint="`permute`/`flatten` the input into [steps, features] first")
        steps, features = shape
        check_stated(a, "input_size", known(features, "feature dim", self.op), "features")
        if a.num_layers > MAX_STACK:
            raise ShapeError(f"num_layers {a.num_layers:,} is more than the {MAX_STACK:,} stacked layers netspec "
                             f"builds: torch makes {self.gates} weight tensors and more for each", arg="num_layers",
                             hint="stack recurrent layers as separate items (`repeat:`) if you mean it")
        if a.dropout and a.num_layers == 1:
            raise ShapeError(f"dropout {a.dropout} has no effect with num_layers 1: it acts between "
                             "stacked layers only", arg="dropout",
                             hint="set num_layers > 1, or add a `dropout` layer after this one")
        width = a.hidden_size * self.directions(a)
        return (steps, width) if a.output == "sequence" else (width,)

    @staticmethod
    def directions(a) -> int:
        return 2 if a.bidirectional else 1

    def stacked(self, a, features: int, cost) -> int:
        """sum of cost(n) over the stacked layers' input widths n: the features, then the previous layer's
        H·dirs for each later layer (in closed form: num_layers may be large)."""
        return cost(features) + (a.num_layers - 1) * cost(a.hidden_size * self.directions(a))

    def params(self, a, shapes):
        h = a.hidden_size
        per_direction = self.stacked(a, shapes[0][-1], lambda n: self.gates * (h * (n + h) + (2 * h if a.bias else 0)))
        return self.directions(a) * per_direction

    def macs(self, a, shapes, out):
        steps = count(shapes[0][:1])
        h = a.hidden_size
        per_step = self.stacked(a, shapes[0][-1], lambda n: self.gates * h * (n + h))
        return steps * self.directions(a) * per_step

    def rf(self, a, shapes):
        return GLOBAL

    def label(self, a):
        parts = [f"{self.op} {a.hidden_size}"]
        if a.num_layers > 1:
            parts.append(f"×{a.num_layers}")
        if a.bidirectional:
            parts.append("bi")
        if a.output == "last":
            parts.append("last")
        return " ".join(parts)

    def module(self, a, shapes):
        return Call(self.torch_cls, (shapes[0][-1], a.hidden_size), self.module_kwargs(a))

    def module_kwargs(self, a) -> dict:
        return {"num_layers": a.num_layers, "bias": a.bias, "batch_first": True,
                "dropout": a.dropout, "bidirectional": a.bidirectional}

    def forward(self, m, a, xs):
        out = m(*xs)[0]  # (B, T, dirs·H)
        if a.output == "sequence":
            return out
        if not a.bidirectional:
            return out[:, -1]
        import torch

        h = a.hidden_size
        # forward direction's state after the last step, backward's after the first step
        return torch.cat([out[:, -1, :h], out[:, 0, h:]], dim=-1)


@register
class RNN(Recurrent):
    """Elman recurrence: h_t = act(W_ih·x_t + b_ih + W_hh·h_(t-1) + b_hh).

    Args:
        hidden_size (alias `hidden`): features of the hidden state H.
        num_layers: stacked layers; each later layer reads the previous one's H·dirs outputs.
        bias: learn the biases b_ih and b_hh.
        bidirectional: also run the sequence backwards; outputs concatenate (forward, backward).
        dropout: dropout on the outputs of every layer but the last, in training; needs num_layers > 1.
        nonlinearity: `tanh` or `relu`.
        input_size: optional; inferred from the input, checked when given.
        output: `sequence` (every step) or `last`: each direction's final state, i.e. the
            forward output at the last step followed, when bidirectional, by the backward
            output at the first step (torch's h_n of the top layer, concatenated).

    Shapes: (T, input_size) -> (T, H·dirs) with `output: sequence`, (H·dirs) with
    `output: last`; T may be symbolic.

    Costs: params = dirs · Σ_layers (H·(in + H) + 2H with bias), as torch counts;
    MACs = T · dirs · Σ_layers H·(in + H) (matrix products; bias adds and the
    activation not counted). Receptive field: global (a step sees every earlier
    step, and every step when bidirectional).

    Example: `- rnn: 64` or `- rnn: {hidden: 64, nonlinearity: relu, output: last}`
    """

    op = "rnn"
    Args = RNNArgs
    gates = 1
    torch_cls = "RNN"

    def label(self, a):
        return super().label(a) + (" relu" if a.nonlinearity == "relu" else "")

    def module_kwargs(self, a):
        return {**super().module_kwargs(a), "nonlinearity": a.nonlinearity}


@register
class LSTM(Recurrent):
    """Long short-term memory: input, forget, cell and output gates over a cell state.

    Args:
        hidden_size (alias `hidden`): features of the hidden state H.
        num_layers: stacked layers; each later layer reads the previous one's H·dirs outputs.
        bias: learn the biases b_ih and b_hh.
        bidirectional: also run the sequence backwards; outputs concatenate (forward, backward).
        dropout: dropout on the outputs of every layer but the last, in training; needs num_layers > 1.
        input_size: optional; inferred from the input, checked when given.
        output: `sequence` (every step) or `last`: each direction's final state, i.e. the
            forward output at the last step followed, when bidirectional, by the backward
            output at the first step (torch's h_n of the top layer, concatenated).

    Shapes: (T, input_size) -> (T, H·dirs) with `output: sequence`, (H·dirs) with
    `output: last`; T may be symbolic.

    Costs: params = dirs · Σ_layers 4·(H·(in + H) + 2H with bias), as torch counts;
    MACs = T · dirs · Σ_layers 4·H·(in + H) (matrix products; bias adds, gate
    activations and element-wise products not counted): LSTM(128→256, 2 layers)
    on 32 steps is 921,600 params and 29,360,128 MACs. Receptive field: global
    (a step sees every earlier step, and every step when bidirectional).

    Example: `- lstm: 256` or `- lstm: {hidden: 256, num_layers: 2, bidirectional: true, output: last}`
    """

    op = "lstm"
    gates = 4
    torch_cls = "LSTM"


@register
class GRU(Recurrent):
    """Gated recurrent unit: reset, update and candidate gates over the hidden state.

    Args:
        hidden_size (alias `hidden`): features of the hidden state H.
        num_layers: stacked layers; each later layer reads the previous one's H·dirs outputs.
        bias: learn the biases b_ih and b_hh.
        bidirectional: also run the sequence backwards; outputs concatenate (forward, backward).
        dropout: dropout on the outputs of every layer but the last, in training; needs num_layers > 1.
        input_size: optional; inferred from the input, checked when given.
        output: `sequence` (every step) or `last`: each direction's final state, i.e. the
            forward output at the last step followed, when bidirectional, by the backward
            output at the first step (torch's h_n of the top layer, concatenated).

    Shapes: (T, input_size) -> (T, H·dirs) with `output: sequence`, (H·dirs) with
    `output: last`; T may be symbolic.

    Costs: params = dirs · Σ_layers 3·(H·(in + H) + 2H with bias), as torch counts;
    MACs = T · dirs · Σ_layers 3·H·(in + H) (matrix products; bias adds, gate
    activations and element-wise products not counted): GRU(128→256, 2 layers)
    on 32 steps is 691,200 params and 22,020,096 MACs. Receptive field: global
    (a step sees every earlier step, and every step when bidirectional).

    Example: `- gru: 128` or `- gru: {hidden: 128, num_layers: 2, dropout: 0.1}`
    """

    op = "gru"
    gates = 3
    torch_cls = "GRU"
