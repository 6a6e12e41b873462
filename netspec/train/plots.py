"""The run folder's PNG plots, drawn with matplotlib (Agg: no display needed).

- `loss.png`: each loss term, train against val, per epoch;
- `accuracy.png`: train against val accuracy (classification only);
- `lr.png`: the learning rate at every optimizer step;
- `grad_norms.png`: each layer's gradient norm at the logging points (log scale), coloured from the
  input (dark) to the output (light), with the EXPLODE line of netspec/train/grads.py;
- `lr_find.png` (an LR range test: `lr: auto`, `netspec lr-find`): the loss against the lr, raw and
  smoothed, with the suggested lr and the point where the loss diverged;
- `reconstructions.png` (autoencoders: a loss compares an output with an input field):
  test inputs (val inputs when the test split is empty) above, their reconstructions below;
- `samples.png` (networks with a sampling layer, such as a VAE's `reparameterize`):
  decodings of draws from N(0, I) fed in place of the sampled code.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

from ..files import atomic_write


def write_plots(run, setup) -> list[Path]:
    """Draw every plot that applies; the files written."""
    import matplotlib

    matplotlib.use("Agg")
    terms = [t.name for t in setup.objective.terms]
    written = [_curves(run, "loss", ["loss", *terms] if len(terms) > 1 else ["loss"]) if run.epochs else None]
    if run.epochs and "val_accuracy" in run.epochs[0]:
        written.append(_curves(run, "accuracy", ["accuracy"]))
    if run.steps:
        written.append(_lr(run))
    if run.grads:
        written.append(_grad_norms(run))
    pairs = _reconstruction_pairs(setup)
    if pairs is not None:
        written.append(_grid(run.path / "reconstructions.png", pairs, "held-out inputs (top) and reconstructions"))
    samples = _samples(setup)
    if samples is not None:
        written.append(_grid(run.path / "samples.png", [samples], "samples: z ~ N(0, I) decoded"))
    return [w for w in written if w is not None]


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return atomic_write(path, buffer.getvalue())


def _curves(run, name: str, terms: list[str]) -> Path:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, len(terms), figsize=(4.5 * len(terms), 3.4), squeeze=False)
    epochs = [r["epoch"] for r in run.epochs]
    for ax, term in zip(axes[0], terms):
        for split, style in (("train", "-"), ("val", "--")):
            key = f"{split}_{term}"
            if key in run.epochs[0]:
                ax.plot(epochs, [float(r[key]) for r in run.epochs], style, label=split)
        ax.set(xlabel="epoch", ylabel=term, title=term if len(terms) > 1 else None)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    return _save(fig, run.path / f"{name}.png")


def _lr(run) -> Path:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot([r["step"] for r in run.steps], [float(r["lr"]) for r in run.steps])
    ax.set(xlabel="optimizer step", ylabel="learning rate", title="lr schedule")
    ax.grid(alpha=0.3)
    return _save(fig, run.path / "lr.png")


def _grad_norms(run) -> Path:
    import matplotlib.pyplot as plt

    from .grads import EXPLODE

    layers = [k for k in run.grads[0] if k not in ("epoch", "step")]
    steps = [r["step"] for r in run.grads]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    colours = plt.cm.viridis([i / max(len(layers) - 1, 1) for i in range(len(layers))])
    for layer, colour in zip(layers, colours):
        ax.plot(steps, [float(r[layer]) for r in run.grads], marker="." if len(steps) < 30 else None,
                color=colour, label=layer)
    ax.axhline(EXPLODE, color="red", linestyle="--", linewidth=0.8)
    ax.set(xlabel="optimizer step", ylabel="gradient norm", yscale="log", title="gradient norm per layer")
    if len(layers) <= 12:
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.grid(alpha=0.3)
    return _save(fig, run.path / "grad_norms.png")


def lr_find_plot(path: Path, lrs: list[float], losses: list[float], smoothed: list[float], suggested: float | None,
                 diverged: float | None) -> Path:
    """The LR range test's curve: the loss against the lr (log scale), raw and smoothed, the suggestion marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.plot(lrs, losses, color="0.7", linewidth=0.8, label="loss")
    ax.plot(lrs, smoothed, label="smoothed loss")
    if suggested is not None:
        ax.axvline(suggested, color="green", linestyle="--", linewidth=1, label=f"suggested lr {suggested:.2g}")
    if diverged is not None:
        ax.axvline(diverged, color="red", linestyle=":", linewidth=1, label=f"diverged at {diverged:.2g}")
    finite = [v for v in smoothed if math.isfinite(v)]
    if finite:  # the divergence's blow-up would flatten the rest
        ax.set_ylim(min(finite) - 0.05 * abs(min(finite)), max(finite[0], min(finite)) * 1.5 + 1e-12)
    ax.set(xscale="log", xlabel="learning rate", ylabel="training loss", title="LR range test")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _images(t) -> list:
    """A batch as a list of 2-d (grey) or H×W×3 arrays: [C, H, W] images, or square vectors."""
    t = t.detach().float().cpu()
    if t.dim() == 4 and t.shape[1] in (1, 3):
        return [x[0].numpy() if x.shape[0] == 1 else x.permute(1, 2, 0).clamp(0, 1).numpy() for x in t]
    side = math.isqrt(t[0].numel())
    if side * side != t[0].numel():
        return []
    return [x.reshape(side, side).numpy() for x in t]


def _grid(path: Path, rows: list[list], title: str) -> Path | None:
    import matplotlib.pyplot as plt

    cols = max(len(r) for r in rows)
    if not cols:
        return None
    fig, axes = plt.subplots(len(rows), cols, figsize=(cols * 1.1, len(rows) * 1.1 + 0.4), squeeze=False)
    for axrow, images in zip(axes, rows):
        for ax, img in zip(axrow, images):
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
        for ax in axrow:
            ax.axis("off")
    fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def _held_out(setup, n: int) -> dict | None:
    """The first `n` samples of the test split (of val when test is empty) on the device: field -> (≤ n, ...);
    None when both are empty."""
    for split in (setup.splits.test, setup.splits.val):
        if len(next(iter(split.values()))):
            return {k: v[:n].to(setup.device) for k, v in split.items()}
    return None


def _reconstruction_pairs(setup, n: int = 8) -> list[list] | None:
    """Held-out inputs and the outputs compared with them, when a loss term reconstructs an input field."""
    import torch

    fields = set(setup.splits.input_fields.values())
    batch = _held_out(setup, n)
    for term, names in zip(setup.objective.terms, setup.objective.outputs):
        if term.target in fields and batch is not None:
            setup.model.eval()
            with torch.no_grad():
                out = setup.forward(setup.inputs(batch))[names[0]]
            inputs, outputs = _images(batch[term.target]), _images(out)
            return [inputs, outputs] if inputs and outputs else None
    return None


def _samples(setup, n: int = 16) -> list | None:
    """Decodings of z ~ N(0, I) put in place of the first sampling layer's output (family `generative`)."""
    import torch
    from torch import fx

    latent = next((name for name, node in setup.analysis.graph.nodes.items() if node.entry.family == "generative"),
                  None)
    if latent is None:
        return None
    shape = setup.analysis.graph.nodes[latent].shape
    if not all(isinstance(d, int) for d in shape):
        return None

    sampled = [node for node in setup.model.graph.nodes if node.meta.get("layer") == latent][-1]

    class Prior(fx.Interpreter):
        def run_node(self, node):
            if node is sampled:
                return torch.randn(n, *shape, device=setup.device)
            return super().run_node(node)

    batch = _held_out(setup, 1)
    if batch is None:
        return None
    batch = {k: v.expand(n, *v.shape[1:]) for k, v in batch.items()}
    setup.model.eval()
    with torch.no_grad():
        out = Prior(setup.model).run(*[setup.inputs(batch)[name] for name in setup.input_names])
    out = setup.named(out)
    for term, names in zip(setup.objective.terms, setup.objective.outputs):
        if term.target in set(setup.splits.input_fields.values()):
            return _images(out[names[0]]) or None
    return None
