"""`netspec gradcheck SPEC`: every layer's backward against numerical gradients, in float64
(netspec.train.practice.gradcheck). Exit 0 when all agree, 1 naming the layers that disagree; a network over
the size caps is skipped with that reason, exit 0 (nothing was found wrong, and CI over `specs/` stays green)."""

from __future__ import annotations

import sys

from ..train.defaults import GRAD_BATCH, GRAD_MAX_MACS, GRAD_MAX_PARAMS, SYMBOLIC_DIM
from .common import DIM, command, load_one, parse_dims, positive, verdict


def register(sub) -> None:
    p = command(sub, "gradcheck", run, "check every layer's gradients against finite differences, in float64")
    p.add_argument("spec", metavar="SPEC", help="the spec file (its network only; no train: section needed)")
    p.add_argument("--batch", type=positive, default=GRAD_BATCH, metavar="N",
                   help=f"samples in the checked batch (default {GRAD_BATCH})")
    p.add_argument("--dim", **{**DIM, "help": f"bind a symbolic input dim to a size, e.g. T=16 (default "
                                              f"{SYMBOLIC_DIM}; repeatable)"})
    p.add_argument("--max-params", type=positive, default=GRAD_MAX_PARAMS, metavar="N",
                   help=f"skip networks with more parameters (default {GRAD_MAX_PARAMS:,})")
    p.add_argument("--max-macs", type=positive, default=GRAD_MAX_MACS, metavar="N",
                   help=f"skip networks needing more multiply-accumulates per sample (default {GRAD_MAX_MACS:,})")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="seeds the inputs and the weights (default 0)")


def run(args) -> int:
    dims = parse_dims(args.dim)
    spec = load_one(args.spec, dims)
    from ..train.practice import gradcheck

    result = gradcheck(spec, batch=args.batch, dims=dims, seed=args.seed, max_params=args.max_params,
                       max_macs=args.max_macs)
    code = verdict(args, result)
    for check in result.failures:
        print(f"  `{check.name}` ({check.op}): {check.message}", file=sys.stderr)
    return code
