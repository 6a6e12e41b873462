"""`netspec lr-find SPEC`: the LR range test (netspec.train.practice.lr_find) on the spec's training data.
Writes lr_find.png, lr_find.csv and lr_find.json into `--out` and prints the suggested lr and where the loss
diverged; exit 0 when it suggests an lr, 1 when the loss falls at no lr."""

from __future__ import annotations

from ..train.defaults import END_LR, LR_STEPS, START_LR
from .common import (
    DEVICE,
    SET,
    UsageError,
    command,
    parse_sets,
    positive,
    positive_float,
    readable,
    say,
    training_failures,
    verdict,
)


def register(sub) -> None:
    p = command(sub, "lr-find", run, "find the learning rate: raise it each step until the loss diverges")
    p.add_argument("spec", metavar="SPEC", help="the spec file (with a train: section)")
    p.add_argument("--out", metavar="DIR", help="where lr_find.png/.csv/.json go (default runs/<spec>-lr-find-<time>)")
    p.add_argument("--steps", type=positive, default=LR_STEPS, metavar="N",
                   help=f"optimizer steps at most, 3 or more (default {LR_STEPS})")
    p.add_argument("--start-lr", type=positive_float, default=START_LR, metavar="LR",
                   help=f"the first step's lr (default {START_LR:g})")
    p.add_argument("--end-lr", type=positive_float, default=END_LR, metavar="LR",
                   help=f"the last step's lr (default {END_LR:g})")
    p.add_argument("--device", **DEVICE)
    p.add_argument("--seed", type=int, metavar="N", help="override train.seed")
    p.add_argument("--set", **SET)


def run(args) -> int:
    readable([args.spec])
    if args.start_lr >= args.end_lr:
        raise UsageError(f"--start-lr ({args.start_lr:g}) must be below --end-lr ({args.end_lr:g})")
    if args.steps < 3:
        raise UsageError(f"--steps {args.steps} is too few: the suggestion is a slope, which needs 3 steps at least")
    overrides = parse_sets(args.set)
    from ..train.practice import lr_find

    with training_failures():
        result = lr_find(args.spec, out=args.out, start_lr=args.start_lr, end_lr=args.end_lr, steps=args.steps,
                         overrides=overrides, device=args.device, seed=args.seed)
    code = verdict(args, result)
    say(args, f"wrote {', '.join(str(f) for f in result.files)}")
    return code
