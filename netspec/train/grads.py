"""Gradient monitoring: each layer's gradient norm at logging points, and a warning when one vanishes or explodes.

The lecture's "check the gradient magnitude", done while training. At each epoch's last optimizer
step (or every `grad_norms_every` steps) the trainer measures, per layer, the L2 norm of the
gradient of all its parameters together — the raw gradient, after loss-scale unscaling and before
clipping — and the norm of its weights. `grad_norms.csv` gets one row per logging point
(epoch, step, one column per layer; `nan` for a layer frozen then) and `grad_norms.png` draws them.

A layer's gradient **vanishes** when its norm is below VANISH × its weights' norm (× 1 for weights
of norm below 1): an SGD step would change those weights by less than lr × 1e-7 of their size,
so the layer has stopped learning (saturated sigmoids or tanhs, dead ReLUs, a cut path — a norm
of exactly 0). It
**explodes** when its norm is above EXPLODE: typical layer norms are 1e-3…10, and a step of
lr × 1e3 wrecks any weight of ordinary scale (the recurrent networks' problem, which
`clip_grad_norm` bounds). Each warning names the layer and is given once per layer and kind.
The cost is one pass over the parameters and one device sync per logging point.
"""

from __future__ import annotations

import math

import torch

VANISH = 1e-7  # a gradient norm below this fraction of the layer's weight norm: vanishing
EXPLODE = 1e3  # a gradient norm above this: exploding


def layer_of(param: str, layers: set[str]) -> str:
    """The layer a parameter belongs to: the longest layer name that is the parameter's name or a dotted
    prefix of it (`layer1.0.conv1.weight` -> `layer1.0.conv1`, `attn.out_proj.weight` -> `attn`)."""
    parts = param.split(".")
    for i in range(len(parts), 0, -1):
        name = ".".join(parts[:i])
        if name in layers:
            return name
    return param.rpartition(".")[0] or param


class GradMonitor:
    """Per-layer gradient norms of a module's trainable parameters (those that train at some point)."""

    def __init__(self, model: torch.nn.Module, layers: list[str], scaled: bool = False):
        owner = set(layers)
        self.params = [(layer_of(name, owner), p) for name, p in model.named_parameters() if p.requires_grad]
        self.layers = list(dict.fromkeys(layer for layer, _ in self.params))
        self.scaled = scaled  # fp16 loss scaling: a non-finite gradient is the scaler's to skip, not a warning
        self.warned: set[tuple[str, str]] = set()

    def record(self) -> tuple[dict[str, float], list[str]]:
        """({layer: gradient norm}, the new warnings). A layer frozen now gets nan; one whose gradient did not
        arrive (None) 0."""
        live = [(layer, p) for layer, p in self.params if p.grad is not None]
        norms = [t.detach().float().norm() for _, p in live for t in (p.grad, p)]  # ‖g‖, ‖w‖ of each
        values = torch.stack(norms).cpu().double().tolist() if norms else []  # the one sync
        sums = {layer: [0.0, 0.0] for layer in self.layers}  # layer -> [Σ‖g‖², Σ‖w‖²]
        for i, (layer, _) in enumerate(live):
            sums[layer][0] += values[2 * i] ** 2
            sums[layer][1] += values[2 * i + 1] ** 2
        training = {layer for layer, p in self.params if p.requires_grad}
        row = {layer: math.sqrt(sums[layer][0]) if layer in training else math.nan for layer in self.layers}
        return row, [w for layer in self.layers if layer in training
                     for w in [self._warning(layer, row[layer], math.sqrt(sums[layer][1]))] if w]

    def _warning(self, layer: str, grad: float, weight: float) -> str | None:
        if not math.isfinite(grad) and self.scaled:
            return None
        if grad > EXPLODE or not math.isfinite(grad):
            kind = "exploding"
            text = f"gradient norm {grad:.3g} (above {EXPLODE:g}); lower the lr, or set clip_grad_norm"
        elif grad < VANISH * max(weight, 1.0):
            kind = "vanishing"
            text = (f"gradient norm {grad:.3g} against weights of norm {weight:.3g} (below {VANISH:g} × that); "
                    "check the init, saturating activations, dead ReLUs, or a path that cuts the gradient")
        else:
            return None
        if (layer, kind) in self.warned:
            return None
        self.warned.add((layer, kind))
        return f"warning: the gradient of `{layer}` is {kind}: {text}"
