"""Transfer learning: initial weights from a file (`init_from`), and layers that do not train (`freeze`, `unfreeze`).

    train:
      init_from: runs/digits04/best.pt           # or {path: weights.safetensors, strict: false}
      freeze: [conv1, conv2]                     # globs over layer and parameter names
      unfreeze: {at_epoch: 6, layers: [conv2]}   # fine-tune conv2 from epoch 6 on
      param_groups: [{params: [conv2], lr: 1.0e-4}]

Weights load by name: the spec's layer names are the `state_dict` keys (DESIGN rule 5), so a
checkpoint of one spec loads into another that names its layers alike. A `.pt`/`.pth` file is
read with `torch.load(weights_only=True)` (no code runs): a netspec checkpoint gives its `model`,
any other file must hold a plain state_dict. A `.safetensors` file is a flat table of tensors
that cannot hold code at all (the format of most published pretrained weights). Before anything
trains, `load_weights` compares the file with the network — keys missing from the file, keys the
network lacks, tensors of another shape — and, with `strict` (the default), refuses any difference
with a located error; with `strict: false` it loads what fits and reports the rest.

A frozen parameter stays in the optimizer but gets no gradient (`requires_grad` off), and torch's
optimizers skip a parameter without a gradient entirely — no step, no weight decay, no momentum —
so it stays bit-identical until `unfreeze` turns its gradient back on. A frozen layer's batch-norm
statistics stay fixed too: it runs in eval mode while the rest trains.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import checkpoint
from .config import TrainArgs, few, frozen

SUFFIXES = (".pt", ".pth", ".safetensors")


@dataclass
class LoadReport:
    """How a weights file matched the network: the tensors loaded, and those that did not fit."""

    path: str  # as written in the spec
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # the network's, absent from the file: they keep their init
    unexpected: list[str] = field(default_factory=list)  # the file's, absent from the network: ignored
    mismatched: list[tuple[str, tuple, tuple]] = field(default_factory=list)  # (key, file shape, network shape)

    @property
    def fits(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def differences(self) -> list[str]:
        """One phrase per kind of difference, naming the first few keys."""
        out = []
        if self.missing:
            out.append(f"{len(self.missing)} missing from the file ({few(self.missing)})")
        if self.unexpected:
            out.append(f"{len(self.unexpected)} not in the network ({few(self.unexpected)})")
        if self.mismatched:
            shown = ", ".join(f"{k} {list(a)} in the file, {list(b)} here" for k, a, b in self.mismatched[:3])
            more = ", ..." if len(self.mismatched) > 3 else ""
            out.append(f"{len(self.mismatched)} of another shape ({shown}{more})")
        return out

    def line(self) -> str:
        """What the run log says before training."""
        total = len(self.loaded) + len(self.missing) + len(self.mismatched)
        head = f"init_from {self.path}: loaded {len(self.loaded)} of the network's {total} tensors"
        return head + ("" if self.fits else "; " + "; ".join(self.differences()) + " (the others keep their init)")


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a `.pt`/`.pth` file (a netspec checkpoint's `model`, or a plain state_dict) or of a
    `.safetensors` file, on the CPU. Raises ValueError saying why a file cannot be used."""
    if path.suffix not in SUFFIXES:
        raise ValueError(f"`{path.suffix or path.name}` is not a weights format netspec reads: .pt, .pth, .safetensors")
    if not path.is_file():
        raise ValueError(f"no file {path}")
    if path.suffix == ".safetensors":
        try:
            from safetensors import SafetensorError
            from safetensors.torch import load_file
        except ImportError:
            raise ValueError("reading .safetensors files needs the safetensors package: pip install safetensors"
                             ) from None

        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError) as exc:
            raise ValueError(f"{path} is not a readable safetensors file ({exc})".splitlines()[0]) from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError (code refused by weights_only), zip errors, EOFError...
        raise ValueError(f"{path} is damaged or not a torch file ({type(exc).__name__}: {exc})".splitlines()[0]
                         ) from None
    if isinstance(state, dict) and state.get("format") == checkpoint.FORMAT:
        state = state["model"]
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} holds neither a netspec checkpoint nor a state_dict (a mapping of names to tensors)")
    return state


def compare(network: dict[str, torch.Tensor], weights: dict[str, torch.Tensor], path: str) -> LoadReport:
    """Match a file's tensors with the network's state_dict by name and shape."""
    report = LoadReport(path)
    for key, tensor in network.items():
        if key not in weights:
            report.missing.append(key)
        elif tuple(weights[key].shape) != tuple(tensor.shape):
            report.mismatched.append((key, tuple(weights[key].shape), tuple(tensor.shape)))
        else:
            report.loaded.append(key)
    report.unexpected = [key for key in weights if key not in network]
    return report


def load_weights(model: torch.nn.Module, args: TrainArgs, spec) -> LoadReport:
    """Load `train.init_from` into `model` by name; the report. Raises a SpecError at `init_from` for a file
    that cannot be read, one that shares no tensor with the network, and (strict) any difference."""
    init = args.init_from
    at = ("train", "init_from", "path")
    at = at if at in spec.source.marks else at[:-1]  # `init_from: FILE`, or the mapping's `path`
    path = Path(spec.file).parent / init.path if spec.file else Path(init.path)
    try:
        weights = read_weights(path)
    except ValueError as exc:
        raise spec.source.error(f"init_from: {exc}", at) from None
    network = model.state_dict()
    report = compare(network, weights, init.path)
    if not report.loaded:
        raise spec.source.error(f"init_from: no tensor of {init.path} fits the network: "
                                + "; ".join(report.differences()), at,
                                hint="weights load by name: name the layers as the network that saved them did")
    if init.strict and not report.fits:
        raise spec.source.error(f"init_from: {init.path} does not fit the network: "
                                + "; ".join(report.differences()), at,
                                hint=f"`init_from: {{path: {init.path}, strict: false}}` loads the "
                                     f"{len(report.loaded)} tensors that fit; the others keep their initial values")
    model.load_state_dict({key: weights[key] for key in report.loaded}, strict=False)
    return report


class Freezing:
    """Which of the optimizer's parameters train in each epoch: all but those `freeze` matches, until `unfreeze`
    thaws its layers at its epoch. Layers the network freezes (`frozen: true`) are never in the optimizer."""

    def __init__(self, model: torch.nn.Module, args: TrainArgs, spec_frozen: set[str]):
        self.params = {name: p for name, p in model.named_parameters() if p.requires_grad}
        self.freeze, self.unfreeze = args.freeze, args.unfreeze
        # layers with running statistics (batch norm) that stay in eval mode while frozen
        self.norms = {name: m for name, m in model.named_modules() if getattr(m, "track_running_stats", False)}
        self.spec_frozen = spec_frozen
        self.thawed: list[str] = []

    def apply(self, epoch: int) -> list[str]:
        """Set each parameter's `requires_grad` for `epoch` (counted from 0); the names it turned on."""
        self.thawed = self.unfreeze.layers if self.unfreeze is not None and epoch + 1 >= self.unfreeze.at_epoch \
            else []
        turned = []
        for name, p in self.params.items():
            trains = not frozen(name, self.freeze, self.thawed)
            if trains and not p.requires_grad:
                turned.append(name)
            p.requires_grad_(trains)
        return turned

    def still(self) -> list[torch.nn.Module]:
        """The modules with running statistics that are frozen now: they run in eval mode."""
        return [m for name, m in self.norms.items()
                if name in self.spec_frozen or frozen(name, self.freeze, self.thawed)]
