"""`netspec train SPEC`: train the network as its `train:` section says, into a run folder (netspec.train).
`--quiet` prints nothing but errors (the run folder still gets its log)."""

from __future__ import annotations

import contextlib
import os
import sys

from .common import (
    EXIT_INVALID,
    EXIT_OK,
    Failure,
    UsageError,
    command,
    paint,
    positive,
    positive_float,
    print_error,
    readable,
)


def register(sub) -> None:
    p = command(sub, "train", run, "train the spec as its train: section says, into a run folder")
    p.add_argument("spec", metavar="SPEC", help="the spec file to train (with a train: section)")
    p.add_argument("--epochs", type=positive, metavar="N", help="override train.epochs")
    p.add_argument("--batch-size", type=positive, metavar="N", help="override train.batch_size")
    p.add_argument("--lr", type=positive_float, metavar="LR", help="override the optimizer's learning rate")
    p.add_argument("--device", metavar="DEVICE", help="cpu, cuda, cuda:N or auto (override train.device)")
    p.add_argument("--seed", type=int, metavar="N", help="override train.seed")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override any train: key by its dotted path, e.g. optimizer.adam.weight_decay=0.01")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--out", metavar="DIR", help="the run folder (default runs/<spec>-<timestamp>)")
    where.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last.pt, exactly")


def run(args) -> int:
    readable([args.spec])
    overrides = _parse_sets(args.set)
    from ..train.checkpoint import CheckpointError
    from ..train.data import DataError
    from ..train.loop import Diverged
    from ..train.run import RunFolderError
    from ..train.session import train

    quiet = getattr(args, "quiet", False)
    try:
        with contextlib.ExitStack() as stack:
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
    except (DataError, CheckpointError, RunFolderError) as exc:
        raise Failure(str(exc), EXIT_INVALID) from None
    return EXIT_OK


def _parse_sets(pairs: list[str] | None) -> dict:
    """`--set optimizer.adam.lr=0.01` pairs as overrides; values read as YAML (numbers, booleans, lists)."""
    from ..errors import SpecError
    from ..loader import parse_yaml

    out = {}
    for pair in pairs or []:
        key, eq, value = pair.partition("=")
        if not eq or not key:
            raise UsageError(f"--set takes KEY=VALUE (a dotted key under train:), got `{pair}`")
        try:  # read as the spec's own values are: `1e-3` is a number, `[32, 64]` a list
            out[key] = parse_yaml(value, f"--set {key}").tree if value else None
        except SpecError as exc:
            raise UsageError(f"--set {key}: {exc.message}") from None
    return out
