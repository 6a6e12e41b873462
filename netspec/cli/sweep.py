"""`netspec sweep SPEC --grid KEY=V1,V2 ...`: a grid, random or TPE search over `train:` keys on optuna
(netspec.train.sweep), trials in parallel processes, each into its own run folder under the sweep folder.
Prints a line per finished trial and the results table, best first; writes results.csv, results.json and
best.yaml. Exit 0 when a trial finished, 1 when none did (or the sweep folder holds files), 2 for a grid that
does not fit the spec, 130 when interrupted (the results so far written)."""

from __future__ import annotations

from importlib.util import find_spec

from ..train.defaults import SAMPLERS
from .common import (
    DEVICE,
    EXIT_INVALID,
    EXIT_OK,
    EXIT_USAGE,
    SET,
    Failure,
    UsageError,
    command,
    parse_sets,
    positive,
    print_error,
    print_errors,
    readable,
    say,
    train_key,
    training_failures,
    yaml_value,
)


def register(sub) -> None:
    p = command(sub, "sweep", run, "search train: keys over a grid (or at random, or by TPE), trials in parallel")
    p.add_argument("spec", metavar="SPEC", help="the spec file to train (with a train: section)")
    p.add_argument("--grid", action="append", required=True, metavar="KEY=V1,V2,...",
                   help="a dotted key under train: (as --set takes) and the values to try, read as YAML, e.g. "
                        "optimizer.adam.lr=1e-4,1e-3,1e-2 or train.batch_size=32,64 (repeatable)")
    p.add_argument("--sampler", choices=SAMPLERS, default="grid",
                   help="grid: every combination; random or tpe: --trials draws (default grid)")
    p.add_argument("--trials", type=positive, metavar="N",
                   help="trials to run (random and tpe need it; a grid runs every combination by default)")
    p.add_argument("--jobs", type=positive, default=1, metavar="J", help="trials run at once, each in a process "
                   "(default 1)")
    p.add_argument("--out", metavar="DIR", help="the sweep folder (default runs/<spec>-sweep-<timestamp>)")
    p.add_argument("--epochs", type=positive, metavar="N", help="override train.epochs of every trial")
    p.add_argument("--device", **DEVICE)
    p.add_argument("--seed", type=int, metavar="N",
                   help="seed the sampler and set train.seed of every trial (default: sampler seed 0, the spec's seed)")
    p.add_argument("--set", **SET)


def run(args) -> int:
    readable([args.spec])
    grid = parse_grid(args.grid)
    fixed = {**parse_sets(args.set), **{k: v for k, v in (("epochs", args.epochs), ("device", args.device),
                                                         ("seed", args.seed)) if v is not None}}
    if find_spec("optuna") is None:
        raise Failure("netspec sweep runs on optuna, which is not installed: pip install 'netspec[sweep]'")
    from ..train.sweep import GridErrors, SweepError, SweepInterrupted, sweep

    def finished(trial) -> None:
        values = " ".join(f"{k}={v}" for k, v in trial.params.items())
        outcome = f"{trial.summary['monitor']} {trial.value:.4g}" if trial.status == "done" else \
            f"failed: {trial.reason}"
        say(args, f"{trial.path.name} {values}: {outcome}")

    try:
        with training_failures():
            result = sweep(args.spec, grid, sampler=args.sampler, trials=args.trials, jobs=args.jobs, out=args.out,
                           fixed=fixed, seed=args.seed or 0, on_trial=finished)
    except GridErrors as exc:
        print_errors(exc)
        return EXIT_USAGE
    except SweepError as exc:
        raise UsageError(str(exc)) from None
    except SweepInterrupted as exc:  # Ctrl-C: what finished, then exit 130 as for any interrupted command
        print(exc.result.table())
        done = sum(t.status == "done" for t in exc.result.trials)
        print_error(f"interrupted: {done} of {exc.result.settings['trials']} trials finished; wrote "
                    f"{exc.result.path / 'results.csv'}, results.json" + (", best.yaml" if done else ""))
        raise
    print(result.table())
    best = result.best
    if best is None:
        print_error(f"no trial finished: see {result.path / 'results.csv'}")
        return EXIT_INVALID
    say(args, f"best: {best.path.name} ({result.monitor} {best.value:.4g}); wrote {result.path / 'results.csv'}, "
              f"results.json, best.yaml")
    return EXIT_OK


def parse_grid(pairs: list[str]) -> dict[str, list]:
    """`--grid optimizer.adam.lr=1e-4,1e-3` pairs as {key: [values]}; the values read as a YAML list, so a value
    may itself be a list (`data.split=[0.8, 0.1, 0.1],[0.6, 0.2, 0.2]`)."""
    grid: dict[str, list] = {}
    for pair in pairs:
        key, eq, text = pair.partition("=")
        key = train_key(key)
        if not eq or not key or not text.strip():
            raise UsageError(f"--grid takes KEY=V1,V2,... (a dotted key under train:), got `{pair}`")
        if key in grid:
            raise UsageError(f"--grid {key} is given twice: list all its values in one --grid")
        values = yaml_value(f"[{text}]", f"--grid {key}")
        repeated = [v for i, v in enumerate(values) if v in values[:i]]
        if repeated:
            raise UsageError(f"--grid {key} lists {repeated[0]} twice")
        grid[key] = values
    return grid
