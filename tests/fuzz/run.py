"""Mutation fuzzing of `netspec validate` and `netspec compile`, in forked workers with a time and memory limit.

    python -m tests.fuzz.run --cases 5000 --seed 7          # thousands of mutants (make fuzz)
    python -m tests.fuzz.run --seed 7 --case 1234           # one case again, in this process, with its traceback

Each case is `tests.fuzz.mutate.make_case(seed, index)`: a mutant of a file of `specs/` or of a random spec.
It is written as `case.yaml` beside copies of `specs/` (so `extends:` finds them) and checked as `netspec
validate` checks it — `netspec.load`, `netspec.analyze`, `validate_train` for `train:`, each error formatted —
in a child process forked for it, with RLIMIT_AS at `--memory` MiB, killed after `--timeout` seconds. The
outcomes a spec may have:

- `valid`;
- `invalid`: a SpecError or SpecErrors whose every error has a line and a column in `case.yaml` (or in a file
  of `specs/` that the case extends);

and every other is a finding: `unlocated` (an error without file:line:col, or megabytes of them), `internal`
(any other exception; its traceback is kept), `timeout`, `memory` (MemoryError under the limit), `killed`
(the child died of a signal), `command-line` (`netspec.cli.main(["validate", ...])`, run too when the checks
took under a second, exited otherwise than 0 for valid and 1 for invalid, or printed an internal error).
Every `--compile-every`-th case that is valid also goes through what `netspec compile` does: the generated
file must import, and its module run on the meta device or, when small, on the CPU, with the analysis's
output shapes (`compile-ok`; else `compile-failed`, `compile-crashed`).

The run prints counts per outcome, the slowest and the most memory-hungry inputs, and every finding with the
command that reproduces it; it saves each finding's input under `--save` (default out/fuzz/) and exits 1 when
there is any. `--json FILE` writes the same report as JSON (tests/test_fuzz.py reads it).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import select
import shutil
import signal
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

from netspec.errors import SpecError, SpecErrors
from netspec.loader import _BREAK
from tests.fuzz.mutate import CASE, ROOT, SHIPPED, make_case

GOOD = ("valid", "invalid", "compile-ok", "compile-skipped")
SMALL = 2_000_000  # parameters and activations per sample under which a compiled module runs on the CPU


@dataclass
class Result:
    index: int
    origin: str
    mutations: list[str]
    size: int
    outcome: str = "killed"
    seconds: float = 0.0  # validate's wall time
    peak_mib: float = 0.0  # the child's peak resident memory above the parent's at the fork
    detail: str = ""
    compile: str | None = None  # the compile check's outcome, for a valid mutant drawn for it
    compile_detail: str = ""
    extra: dict = field(default_factory=dict)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.case is not None:
        return _one(args)
    started = time.monotonic()
    results = _pool(args)
    report = _report(args, results, time.monotonic() - started)
    _print(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1), encoding="utf-8")
    return 1 if report["findings"] else 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tests.fuzz.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", type=int, default=1000, help="how many cases (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="the run's seed: cases are make_case(seed, 0..cases-1)")
    p.add_argument("--first", type=int, default=0, help="the first case index (default 0)")
    p.add_argument("--case", type=int, help="rerun this one case in this process, showing its input and output")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="children at once (default: the cores)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds a validation may take (default 10)")
    p.add_argument("--memory", type=int, default=2048, help="MiB of address space for a validation (default 2048)")
    p.add_argument("--compile-every", type=int, default=10,
                   help="compile one valid mutant in N (0: none; default 10)")
    p.add_argument("--save", default=str(ROOT / "out" / "fuzz"), help="folder for the findings' inputs")
    p.add_argument("--json", help="write the report as JSON to this file")
    return p


# ---- one case, in a child -------------------------------------------------------------------------------------------


def _folder(root: Path, slot: int) -> Path:
    """A folder for one child at a time: copies of specs/ for `extends:`, and the case."""
    folder = root / f"slot{slot}"
    if not folder.exists():
        folder.mkdir()
        for path in SHIPPED:
            shutil.copyfile(path, folder / path.name)
    return folder


def _validate(path: Path) -> tuple[str, str]:
    """What `netspec validate PATH` does, in this process (load, analyze, check `train:`, format each error):
    (outcome, the formatted errors or the traceback)."""
    try:
        check_spec(path)
    except (SpecError, SpecErrors) as exc:
        errors = exc.errors if isinstance(exc, SpecErrors) else [exc]
        text = "\n".join(e.format() for e in errors)
        if len(text) > 200_000:
            return "unlocated", f"{len(text):,} characters of errors\n{text[:2000]}"
        lines: dict[str, list[str]] = {}
        return ("invalid" if all(_located(e, path, lines) for e in errors) else "unlocated"), text
    except MemoryError:
        return "memory", traceback.format_exc()
    except BaseException:
        return "internal", traceback.format_exc()
    return "valid", ""


def _command_line(path: Path, outcome: str) -> str | None:
    """`netspec validate PATH` through `netspec.cli.main`: None when its exit code is the outcome's (0 valid,
    1 invalid) and it printed no internal error, else what it printed."""
    from netspec.cli import main as netspec

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = netspec(["validate", str(path)])
    text = err.getvalue()
    if code == {"valid": 0, "invalid": 1}[outcome] and "internal error" not in text and "Traceback" not in text:
        return None
    return f"exit {code}, where {outcome} is {0 if outcome == 'valid' else 1}\n{text[-5000:]}"


def check_spec(path: Path) -> None:
    """`netspec validate`'s checks: the network, then `train:`; every error of both raised together."""
    import netspec
    from netspec.train.config import validate_train

    spec = netspec.load(path)
    errors = []
    try:
        result = netspec.analyze(spec)
    except (SpecError, SpecErrors) as exc:
        errors += exc.errors if isinstance(exc, SpecErrors) else [exc]
        result = None
    if spec.model.train is not None:
        try:
            validate_train(spec, result)
        except (SpecError, SpecErrors) as exc:
            errors += exc.errors if isinstance(exc, SpecErrors) else [exc]
    if errors:
        raise SpecErrors(errors)


def _located(error: SpecError, path: Path, lines: dict[str, list[str]]) -> bool:
    """Whether the error has a place in the case or a spec of its folder (`extends`): a line of that file, and
    a column from 1 to one past the line's end (`lines`: each file's lines, read once)."""
    mark = error.mark
    if mark is None or Path(mark.file).parent != path.parent or mark.line < 1 or mark.col < 1:
        return False
    if mark.file not in lines:
        lines[mark.file] = _BREAK.split(Path(mark.file).read_bytes().decode("utf-8", "replace"))
    text = lines[mark.file]
    return mark.line <= len(text) and mark.col <= len(text[mark.line - 1]) + 1


def _compile(path: Path) -> tuple[str, str, dict]:
    """`netspec compile`, then the file imported and its module run: (outcome, detail, facts)."""
    import importlib.util

    import torch

    import netspec
    from netspec.codegen import generate
    from netspec.compiler import class_name

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")  # torch's notes (`padding='same'` with an even kernel) are no finding
    out = path.with_suffix(".py")
    try:  # what `netspec compile` does
        out.write_text(generate(netspec.analyze(netspec.load(path)).graph), encoding="utf-8")
    except (SpecError, SpecErrors) as exc:
        return "compile-failed", f"validates, but does not compile:\n{exc}", {}
    except Exception:
        return "compile-crashed", traceback.format_exc(), {}
    try:
        spec = netspec.load(path)
        names = list(dict.fromkeys(d for v in spec.inputs.values() for d in v.shape if isinstance(d, str)))
        result = None
        for size in (5, 9, 17, 64):
            try:
                result = netspec.analyze(spec, dict.fromkeys(names, size))
                break
            except (netspec.SpecError, netspec.SpecErrors):
                continue
        loader = importlib.util.spec_from_file_location("case_model", out)
        module = importlib.util.module_from_spec(loader)
        loader.loader.exec_module(module)
        classes = [v for v in vars(module).values() if isinstance(v, type) and issubclass(v, torch.nn.Module)
                   and v.__module__ == "case_model"]  # one per block definition, then the network's
        assert classes and classes[-1].__name__ == class_name(spec.name), f"the file's classes: {classes}"
        if result is None:
            return "compile-skipped", "no size of its symbolic dims fits", {}
        small = result.total_params <= SMALL and (result.activation_elements or 0) <= SMALL
        device = "cpu" if small else "meta"
        with torch.device(device):
            model = classes[-1]().eval()
            x = {n: (torch.zeros if spec.inputs[n].dtype.startswith("int") else torch.randn)(
                2, *shape, dtype=getattr(torch, spec.inputs[n].dtype)) for n, shape in result.inputs.items()}
        with torch.no_grad():
            try:
                y = model(*x.values())  # the file's forward takes the inputs in spec order
            except NotImplementedError as exc:  # an op without a meta kernel
                return "compile-skipped", f"meta: {exc}", {}
        y = y if isinstance(y, dict) else {"output": y}
        got = {k: tuple(v.shape[1:]) for k, v in y.items()}
        assert got == result.outputs, f"outputs {got}, analysis {result.outputs}"
        return "compile-ok", "", {"device": device}
    except Exception:
        return "compile-failed", traceback.format_exc(), {}


def _child(seed: int, index: int, folder: Path, memory: int, compile_it: bool, write) -> None:
    """Make one case, run it and write its Result as JSON; the process ends here."""
    case = make_case(seed, index)
    result = Result(case.index, case.origin, case.mutations, len(case.data))
    path = folder / CASE
    path.write_bytes(case.data)
    limit = memory * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
    start = time.perf_counter()
    result.outcome, result.detail = _validate(path)
    result.seconds = time.perf_counter() - start
    if result.outcome in GOOD:
        result.detail = ""
        printed = _command_line(path, result.outcome) if result.seconds < 1 else None  # a slow one is slow twice
        if printed is not None:
            result.outcome, result.detail = "command-line", printed
    result.peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if compile_it and result.outcome == "valid":
        resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        result.compile, result.compile_detail, result.extra = _compile(path)
    write(json.dumps(asdict(result)).encode())


# ---- the pool -------------------------------------------------------------------------------------------------------


@dataclass
class _Running:
    index: int
    slot: int
    fd: int
    deadline: float
    chunks: list = field(default_factory=list)


def _pool(args) -> list[Result]:
    baseline = _idle_child_rss()
    root = Path(tempfile.mkdtemp(prefix="netspec-fuzz-"))
    _warm(_folder(root, args.jobs))
    free = list(range(args.jobs))
    running: dict[int, _Running] = {}
    results: list[Result] = []
    indices = iter(range(args.first, args.first + args.cases))
    pending = True
    last = time.monotonic()
    valid = 0
    try:
        while pending or running:
            while pending and free:
                index = next(indices, None)
                if index is None:
                    pending = False
                    break
                slot = free.pop()
                compile_it = bool(args.compile_every) and index % args.compile_every == 0
                pid, fd = _fork(args.seed, index, _folder(root, slot), args.memory, compile_it)
                budget = args.timeout + (120 if compile_it else 0)
                running[pid] = _Running(index, slot, fd, time.monotonic() + budget)
            _collect(running, results, free, baseline, args.seed)
            if time.monotonic() - last > 30:
                last = time.monotonic()
                valid = sum(r.outcome == "valid" for r in results)
                print(f"  {len(results):,} cases, {valid:,} valid", file=sys.stderr, flush=True)
    finally:
        for pid in running:
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)
    return sorted(results, key=lambda r: r.index)


def _warm(folder: Path) -> None:
    """Validate the shipped specs and some mutants here, before forking: the modules netspec imports as it
    needs them, and the caches it fills once, are then the children's from the start."""
    for path in SHIPPED:
        _validate(folder / path.name)
    for index in range(40):
        (folder / CASE).write_bytes(make_case(-1, index).data)
        outcome, _ = _validate(folder / CASE)
        if outcome in GOOD:
            _command_line(folder / CASE, outcome)


def _idle_child_rss() -> float:
    """The peak resident memory (MiB) of a child that does nothing: what a case's own peak is measured from."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    return os.wait4(pid, 0)[2].ru_maxrss / 1024


def _fork(seed: int, index: int, folder: Path, memory: int, compile_it: bool) -> tuple[int, int]:
    read, write = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child
        code = 0
        try:
            os.close(read)
            null = os.open(os.devnull, os.O_RDWR)
            os.dup2(null, 0)  # a spec that names /dev/stdin reads nothing
            _child(seed, index, folder, memory, compile_it, lambda data: _write_all(write, data))
        except BaseException:
            code = 70
        finally:
            os._exit(code)
    os.close(write)
    return pid, read


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


def _collect(running: dict[int, _Running], results: list[Result], free: list[int], baseline: float,
             seed: int) -> None:
    """Read what the children wrote; reap those that finished, kill those past their deadline."""
    if not running:
        return
    now = time.monotonic()
    wait = max(0.0, min(r.deadline for r in running.values()) - now)
    ready, _, _ = select.select([r.fd for r in running.values()], [], [], min(wait, 1.0))
    for pid, job in list(running.items()):
        done = False
        if job.fd in ready:
            chunk = os.read(job.fd, 1 << 16)
            job.chunks.append(chunk)
            done = not chunk
        timed_out = not done and time.monotonic() > job.deadline
        if not (done or timed_out):
            continue
        if timed_out:
            os.kill(pid, signal.SIGKILL)
        _, status, usage = os.wait4(pid, 0)
        os.close(job.fd)
        del running[pid]
        free.append(job.slot)
        results.append(_result(job, status, usage, timed_out, baseline, seed))


def _result(job: _Running, status: int, usage, timed_out: bool, baseline: float, seed: int) -> Result:
    data = b"".join(job.chunks)
    if data and not timed_out:
        result = Result(**json.loads(data))
    else:
        case = make_case(seed, job.index)
        result = Result(case.index, case.origin, case.mutations, len(case.data))
        if timed_out:
            result.outcome = "timeout"
        elif os.WIFSIGNALED(status):
            result.detail = f"killed by signal {os.WTERMSIG(status)}"
        else:
            result.detail = f"exited {os.WEXITSTATUS(status)} without a result"
    result.peak_mib = max(0.0, usage.ru_maxrss / 1024 - baseline) if result.compile is None else \
        max(0.0, result.peak_mib - baseline)
    return result


# ---- the report -----------------------------------------------------------------------------------------------------


def _report(args, results: list[Result], seconds: float) -> dict:
    findings = [r for r in results if r.outcome not in GOOD or (r.compile and r.compile not in GOOD)]
    save = Path(args.save) / f"seed{args.seed}"
    for r in findings:
        save.mkdir(parents=True, exist_ok=True)
        case = make_case(args.seed, r.index)
        (save / f"case{r.index}.yaml").write_bytes(case.data)
        (save / f"case{r.index}.txt").write_text(_finding(args.seed, r), encoding="utf-8")

    def top(key) -> list[dict]:
        return [{"case": r.index, "origin": r.origin, "mutations": r.mutations, "bytes": r.size,
                 "seconds": round(r.seconds, 3), "peak_mib": round(r.peak_mib, 1), "outcome": r.outcome}
                for r in sorted(results, key=key, reverse=True)[:5]]

    counts: dict[str, int] = {}
    for r in results:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
        if r.compile:
            counts[r.compile] = counts.get(r.compile, 0) + 1
    return {"seed": args.seed, "cases": len(results), "seconds": round(seconds, 1), "jobs": args.jobs,
            "counts": dict(sorted(counts.items())), "slowest": top(lambda r: r.seconds),
            "hungriest": top(lambda r: r.peak_mib),
            "findings": [{**asdict(r), "reproduce": _reproduce(args.seed, r.index)} for r in findings]}


def _reproduce(seed: int, index: int) -> str:
    return f"python -m tests.fuzz.run --seed {seed} --case {index}"


def _finding(seed: int, r: Result) -> str:
    return (f"{r.outcome} {r.compile or ''}\norigin: {r.origin}\nmutations: {r.mutations}\n"
            f"reproduce: {_reproduce(seed, r.index)}\n\n{r.detail}\n{r.compile_detail}")


def _print(report: dict) -> None:
    print(f"netspec fuzz: seed {report['seed']}, {report['cases']:,} cases in {report['seconds']} s "
          f"({report['jobs']} jobs)")
    for outcome, n in report["counts"].items():
        print(f"  {outcome:<16} {n:>7,}{'' if outcome in GOOD else '   <- finding'}")
    for title, key in (("slowest", "slowest"), ("most memory (peak RSS above the parent)", "hungriest")):
        print(f"{title}:")
        for t in report[key]:
            print(f"  case {t['case']}: {t['seconds']} s, {t['peak_mib']} MiB, {t['bytes']:,} bytes, {t['outcome']}; "
                  f"{t['origin']} {'; '.join(t['mutations'])[:150]}")
    for f in report["findings"]:
        detail = (f["detail"] or f["compile_detail"]).strip().splitlines()
        print(f"FINDING {f['outcome']}/{f['compile']} case {f['index']} ({f['origin']}; "
              f"{'; '.join(f['mutations'])[:200]})\n  {detail[-1] if detail else ''}\n  {f['reproduce']}")


def _one(args) -> int:
    """One case in this process: its mutations, its input, what validate and `netspec validate` answer, any
    traceback, and for a valid one the compile check."""
    from netspec.cli import main as netspec

    os.environ["NETSPEC_TRACEBACK"] = "1"
    case = make_case(args.seed, args.case)
    save = Path(args.save) / f"seed{args.seed}"
    save.mkdir(parents=True, exist_ok=True)
    (save / f"case{args.case}.yaml").write_bytes(case.data)
    print(f"{case.label}: {case.origin}; {len(case.data):,} bytes; mutations:")
    print("".join(f"  {m}\n" for m in case.mutations), end="")
    print(f"input saved as {save / f'case{args.case}.yaml'} (an `extends:` in it names a file of specs/)")
    root = Path(tempfile.mkdtemp(prefix="netspec-fuzz-"))
    try:
        path = _folder(root, 0) / CASE
        path.write_bytes(case.data)
        start = time.perf_counter()
        outcome, detail = _validate(path)
        print(f"validate: {outcome} in {time.perf_counter() - start:.3f} s\n{detail}")
        print(f"netspec validate {path}:", flush=True)
        netspec(["validate", str(path)])
        if outcome == "valid":
            outcome, detail, _ = _compile(path)
            print(f"compile: {outcome}\n{detail}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if outcome in GOOD else 1


if __name__ == "__main__":
    sys.exit(main())
