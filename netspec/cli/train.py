"""`netspec train SPEC`: train the network as its `train:` section says, into a run folder (netspec.train).
`--quiet` prints nothing but errors (the run folder still gets its log). `--overfit-batch [N]` instead
checks that the network can fit one batch (netspec.train.practice.overfit_batch): exit 0 pass, 1 fail."""

from __future__ import annotations

import contextlib
import os
import sys

from ..train.defaults import OVERFIT_N, OVERFIT_STEPS
from .common import (
    DEVICE,
    EXIT_INVALID,
    EXIT_OK,
    SET,
    UsageError,
    command,
    learning_rate,
    paint,
    parse_sets,
    positive,
    print_error,
    readable,
    training_failures,
    verdict,
)


def register(sub) -> None:
    p = command(sub, "train", run, "train the spec as its train: section says, into a run folder")
    p.add_argument("spec", metavar="SPEC", help="the spec file to train (with a train: section)")
    p.add_argument("--epochs", type=positive, metavar="N", help="override train.epochs")
    p.add_argument("--batch-size", type=positive, metavar="N", help="override train.batch_size")
    p.add_argument("--lr", type=learning_rate, metavar="LR",
                   help="override the optimizer's learning rate: a number, or `auto` (an LR range test first)")
    p.add_argument("--device", **DEVICE)
    p.add_argument("--seed", type=int, metavar="N", help="override train.seed")
    p.add_argument("--set", **SET)
    where = p.add_mutually_exclusive_group()
    where.add_argument("--out", metavar="DIR", help="the run folder (default runs/<spec>-<timestamp>)")
    where.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last.pt, exactly")
    p.add_argument("--overfit-batch", type=positive, nargs="?", const=OVERFIT_N, metavar="N",
                   help=f"instead of training, check that the network fits one batch of N samples (default "
                        f"{OVERFIT_N}) within {OVERFIT_STEPS} steps: exit 0 pass, 1 fail")


def run(args) -> int:
    readable([args.spec])
    overrides = parse_sets(args.set)
    if args.overfit_batch is not None:
        return _overfit(args, overrides)
    from ..train.loop import Diverged
    from ..train.session import train

    quiet = getattr(args, "quiet", False)
    try:
        with contextlib.ExitStack() as stack, training_failures():
            if quiet:  # the trainer prints its lines on stdout
                stack.enter_context(contextlib.redirect_stdout(stack.enter_context(open(os.devnull, "w"))))
            train(args.spec, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, device=args.device,
                  seed=args.seed, out=args.out, resume=args.resume, overrides=overrides,
                  progress=False if quiet else None)
    except Diverged as exc:
        print_error(str(exc))
        if exc.checkpoint:
            print(f"  note: the last good checkpoint is {exc.checkpoint}", file=sys.stderr)
        print(paint("  hint: lower the learning rate (--lr), or clip gradients (train.clip_grad_norm: 1.0)",
                    sys.stderr), file=sys.stderr)
        return EXIT_INVALID
    return EXIT_OK


def _overfit(args, overrides: dict) -> int:
    """`--overfit-batch N`: no run folder and no epochs, so the options about those cannot apply."""
    refused = [option for option, value in (("--out", args.out), ("--resume", args.resume), ("--epochs", args.epochs),
                                            ("--batch-size", args.batch_size)) if value is not None]
    if refused:
        raise UsageError(f"--overfit-batch takes no {refused[0]}: it trains one batch of {args.overfit_batch} "
                         f"samples for at most {OVERFIT_STEPS} steps, and writes no run folder")
    from ..train.practice import overfit_batch

    with training_failures():
        result = overfit_batch(args.spec, args.overfit_batch, lr=args.lr, overrides=overrides, device=args.device,
                               seed=args.seed)
    return verdict(args, result)
