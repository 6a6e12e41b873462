"""Render an Analysis as a compiler-style listing, Markdown, or JSON."""

from __future__ import annotations

import json

from .analysis import RF, Analysis, LayerStats
from .arith import format_shape
from .layers import GLOBAL

COLUMNS = ("name", "op", "output", "params", "MACs", "RF")


def human(n: int | None, unit: str = "") -> str:
    """1234567 -> `1.23 M`; None -> `?`."""
    if n is None:
        return "?"
    for div, suffix in ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "k")):
        if abs(n) >= div:
            return f"{n / div:.2f} {suffix}{unit}"
    return f"{n} {unit}".rstrip()


def _bytes(n: int | None) -> str:
    if n is None:
        return "?"
    for div, suffix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if n >= div:
            return f"{n / div:.1f} {suffix}"
    return f"{n} B"


def _rf(rf) -> str:
    if rf == GLOBAL:
        return "global"
    return str(rf) if isinstance(rf, RF) else "-"


def _row(s: LayerStats) -> tuple[str, ...]:
    params = f"{s.params:,}" if s.params else "-"
    if s.params and not s.trainable:
        params += " (frozen)"
    macs = human(s.macs) if s.macs != 0 else "-"
    return (s.name, s.label, format_shape(s.output_shape), params, macs, _rf(s.receptive_field))


def table(result: Analysis, batch: int | None = None, optimizer: str = "adam") -> str:
    rows = [tuple(COLUMNS)]
    rows += [(name, "input", format_shape(shape), "-", "-", "-") for name, shape in result.inputs.items()]
    rows += [_row(s) for s in result.layers]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    right = {3, 4}
    lines = []
    for k, row in enumerate(rows):
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    lines.extend(_totals(result, batch, optimizer))
    return "\n".join(lines)


def _totals(result: Analysis, batch: int | None, optimizer: str) -> list[str]:
    outs = ", ".join(f"{k} {format_shape(v)}" for k, v in result.outputs.items())
    frozen = result.total_params - result.trainable_params
    lines = [
        f"{result.name}: {len(result.layers)} layers, outputs {outs}",
        f"params        {result.total_params:,} ({human(result.total_params)})"
        + (f", trainable {result.trainable_params:,}, frozen {frozen:,}" if frozen else ""),
        f"MACs          {_int(result.macs)} ({human(result.macs)})   conv + linear + matmul + recurrent",
        f"FLOPs         {_int(result.flops)} ({human(result.flops)})   2·MACs + element-wise work",
        f"param memory  {_bytes(result.param_bytes)} (float32)",
        f"activations   {_bytes(result.activation_bytes)} per sample (forward, float32)",
    ]
    if batch is not None:
        mem = result.training_memory(batch, optimizer)
        lines.append(f"training      {_bytes(mem['total'])} at batch {batch} with {optimizer} "
                     f"(weights {_bytes(mem['weights'])}, gradients {_bytes(mem['gradients'])}, "
                     f"optimizer {_bytes(mem['optimizer_state'])}, activations {_bytes(mem['activations'])})")
    return lines


def _int(n: int | None) -> str:
    return "?" if n is None else f"{n:,}"


def markdown(result: Analysis, batch: int | None = None, optimizer: str = "adam") -> str:
    lines = [f"### {result.name}", "", "| " + " | ".join(COLUMNS) + " |",
             "|" + "|".join("---:" if c in ("params", "MACs") else "---" for c in COLUMNS) + "|"]
    for name, shape in result.inputs.items():
        lines.append(f"| {name} | input | {format_shape(shape)} | | | |")
    for s in result.layers:
        cells = [c.replace("|", "\\|") for c in _row(s)]
        lines.append("| " + " | ".join(f"`{cells[0]}`" if i == 0 else c for i, c in enumerate(cells)) + " |")
    lines.append("")
    lines.extend(f"- {line}" for line in _totals(result, batch, optimizer))
    return "\n".join(lines)


def to_json(result: Analysis, batch: int | None = None, optimizer: str = "adam") -> str:
    return json.dumps(result.to_json(batch, optimizer), indent=2)
