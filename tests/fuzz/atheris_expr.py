"""Coverage-guided fuzzing of the expression evaluator (`netspec/expr.py`) with atheris.

    python -m tests.fuzz.atheris_expr -runs=500000            # or -max_total_time=SECONDS
    python -m tests.fuzz.atheris_expr CRASH_FILE              # rerun one input

Each input is the text of an expression, evaluated as `${...}` and as `$name` over the names a layer sees
(`in_shape`, `in_channels`, `in_features`, `index`) and block arguments (numbers, a string, a long list). The
only acceptable answers are an ExprError or OverBudget, or a value within the evaluator's stated limits (a
finite number within 2**63, lists of at most MAX_LIST items, nothing but numbers, strings, booleans, None and
lists); anything else raises, and libFuzzer saves the input as out/fuzz/expr-crash-<sha1>. `-timeout`
defaults to 10 seconds and `-rss_limit_mb` to 2048. Without atheris installed, the harness says so and exits 0.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "out" / "fuzz"  # crashes, the corpus that grows run after run, the dictionary

ENV = {"in_shape": [3, "T", 8], "in_channels": 3, "in_features": 8, "index": 1, "width": 4, "depth": 2,
       "rate": 0.5, "act": "relu", "flag": True, "none": None, "xs": list(range(5000)), "nested": [[1, 2], [3]]}
SEEDS = ["in_channels * 2", "max(1, in_features // 2)", "in_shape[0] > 2", "index % 2 == 0 and flag",
         "width if depth else 1", "len(xs + xs)", "sum(xs) / len(xs)", "round(rate * 10, 2)", "2 ** 62 + 2 ** 62",
         "'T' in in_shape", "ceil(sqrt(in_features))", "[in_channels, in_features][-1]", "not none"]


def main(argv: list[str]) -> int:
    try:
        import atheris
    except ImportError:
        print("atheris is not installed (pip install atheris): the expression fuzzer is skipped")
        return 0
    with atheris.instrument_imports(include=["netspec"]):
        from netspec import expr

    def test_one_input(data: bytes) -> None:
        fdp = atheris.FuzzedDataProvider(data)
        text = fdp.ConsumeUnicodeNoSurrogates(2000)
        for value in (f"${{{text}}}", f"${text}"):
            try:
                result = expr.resolve(value, ENV, expr.Budget())
            except (expr.ExprError, expr.OverBudget):
                continue
            _within_limits(result, expr)

    flags = [a for a in argv[1:] if a.startswith("-")]
    OUT.mkdir(parents=True, exist_ok=True)
    defaults = {"-timeout": "10", "-rss_limit_mb": "2048", "-artifact_prefix": f"{OUT}/expr-",
                "-dict": _dictionary(expr)}
    for flag, default in defaults.items():
        if not any(f.startswith(flag + "=") for f in flags):
            argv.append(f"{flag}={default}")
    if not any(not a.startswith("-") for a in argv[1:]):
        argv.append(_corpus())
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()
    return 0


def _within_limits(value, expr) -> None:
    """Numbers finite and within 2**63; lists within MAX_LIST; only the evaluator's kinds of value."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, list):
            assert len(v) <= expr.MAX_LIST or v is ENV["xs"], f"a list of {len(v):,} items"
            stack.extend(v)
        elif isinstance(v, float):
            assert math.isfinite(v) and abs(v) <= 2**63, f"the number {v!r}"
        elif isinstance(v, int) and not isinstance(v, bool):
            assert abs(v) <= 2**63, f"the number {v!r}"
        else:
            assert v is None or isinstance(v, (bool, str)), f"a value of type {type(v).__name__}"


def _dictionary(expr) -> str:
    """libFuzzer's dictionary: the evaluator's functions, the names in ENV, operators and Python syntax."""
    words = [*expr.FUNCTIONS, *ENV, "**", "//", "%", "==", "!=", "<=", " in ", " not in ", " and ", " or ", "not ",
             " if ", " else ", "[", "]", "(", ")", ",", "2**63", "1e308", "True", "None", "lambda", ":=", "@", "."]
    path = OUT / "expr.dict"
    path.write_text("".join(f'"{w}"\n' for w in words), encoding="ascii")
    return str(path)


def _corpus() -> str:
    """out/fuzz/expr-corpus: SEEDS on the first run, grown by every run."""
    folder = OUT / "expr-corpus"
    if not folder.exists():
        folder.mkdir()
        for i, seed in enumerate(SEEDS):
            (folder / f"seed{i}").write_bytes(seed.encode())
    return str(folder)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
