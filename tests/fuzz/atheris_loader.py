"""Coverage-guided fuzzing of the loader, and of the validation behind it, with atheris (libFuzzer for Python).

    python -m tests.fuzz.atheris_loader -runs=200000            # or -max_total_time=SECONDS
    python -m tests.fuzz.atheris_loader CRASH_FILE              # rerun one input (a crash libFuzzer saved)
    python -m tests.fuzz.atheris_loader --stage loader -runs=N  # the loader alone: faster, shallower

Each input's bytes are a spec file, read as `netspec validate` reads one: `loader.read_text` (size, UTF-8),
`parse_yaml`, then (`--stage validate`, the default) the rest of validate's checks: the spec's parse,
expansion, analysis and `train:` section. The only acceptable answers are a value or a SpecError/SpecErrors
whose every error has a line and column in the file and formats; anything else raises, and libFuzzer stops
and saves the input as out/fuzz/loader-crash-<sha1>. netspec's own modules are instrumented; the corpus,
out/fuzz/loader-corpus, starts from `specs/` and grows run after run, with a dictionary of YAML syntax and
the language's keys, ops and arguments.
libFuzzer's flags pass through; `-timeout` (seconds per input) defaults to 10 and `-rss_limit_mb` to 2048,
the bounds docs/security.md states.
Without atheris installed (`pip install atheris`), the harness says so and exits 0.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "out" / "fuzz"  # crashes, the corpus that grows run after run, the dictionary


def main(argv: list[str]) -> int:
    try:
        import atheris
    except ImportError:
        print("atheris is not installed (pip install atheris): the loader fuzzer is skipped")
        return 0
    stage = "validate"
    if "--stage" in argv:
        i = argv.index("--stage")
        stage = argv[i + 1]
        del argv[i:i + 2]
    with atheris.instrument_imports(include=["netspec"]):
        import netspec
        import netspec.train.config
        from netspec import loader
    from tests.fuzz.run import check_spec
    folder = Path(tempfile.mkdtemp(prefix="netspec-atheris-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    atexit.register(shutil.rmtree, folder, True)  # libFuzzer ends the process itself
    path = folder / "spec.yaml"

    def test_one_input(data: bytes) -> None:
        path.write_bytes(data)
        try:
            if stage == "loader":
                loader.load_source(path)
            else:
                check_spec(path)
        except (netspec.SpecError, netspec.SpecErrors) as exc:
            for error in exc.errors if isinstance(exc, netspec.SpecErrors) else [exc]:
                mark = error.mark
                if mark is None or mark.file != str(path) or mark.line < 1 or mark.col < 1:
                    raise AssertionError(f"an error without a place in the file: {error.format()}") from exc
                error.format()

    args = _libfuzzer_args(argv)
    atheris.Setup(args, test_one_input)
    atheris.Fuzz()
    return 0


def _libfuzzer_args(argv: list[str]) -> list[str]:
    """argv with defaults for the limits, the dictionary and where crashes go, and, when it names no corpus,
    out/fuzz/loader-corpus (seeded from specs/ on the first run, grown by every run)."""
    OUT.mkdir(parents=True, exist_ok=True)
    flags = [a for a in argv[1:] if a.startswith("-")]
    inputs = [a for a in argv[1:] if not a.startswith("-")]
    defaults = {"-timeout": "10", "-rss_limit_mb": "2048", "-max_len": "16384", "-dict": str(_dictionary()),
                "-artifact_prefix": f"{OUT}/loader-"}
    for flag, value in defaults.items():
        if not any(f.startswith(flag + "=") for f in flags):
            flags.append(f"{flag}={value}")
    if not inputs:
        corpus = OUT / "loader-corpus"
        if not corpus.exists():
            corpus.mkdir()
            for spec in sorted((ROOT / "specs").glob("*.yaml")):
                (corpus / spec.name).write_bytes(spec.read_bytes())
        inputs = [str(corpus)]
    return [argv[0], *flags, *inputs]


def _dictionary() -> Path:
    """libFuzzer's dictionary: YAML syntax, the language's keys, the catalog's ops and arguments, expressions."""
    from netspec.layers import REGISTRY
    from netspec.spec import LAYER_KEYS, SpecModel

    words = {*REGISTRY, *LAYER_KEYS, *SpecModel.model_fields, "extends", "inputs", "outputs", "args", "blocks"}
    words |= {name for entry in REGISTRY.values() for name in entry.Args.model_fields}
    syntax = [": ", "- ", "[", "]", "{", "}", ", ", "&a ", "*a", "<<: ", "!!int ", "!!str ", "!!python/object ",
              "---\n", "...\n", "? ", "|\n", ">\n", '"', "'", "#", "\t", "\r\n", "\\u202e", "${", "}", "$",
              "in_shape", "in_channels", "in_features", "index", "**", "//", " if ", " else ", "min(", "len(",
              "null", "true", "1e-3", ".inf", "0x1f", "9223372036854775808", "T", "\xef\xbb\xbf"]
    path = OUT / "loader.dict"
    path.write_text("".join(f'"{_escape(w)}"\n' for w in sorted(words) + syntax), encoding="ascii")
    return path


def _escape(word: str) -> str:
    """A dictionary entry: printable ASCII as it is, `\\` and `"` escaped, other bytes as `\\xNN`."""
    return "".join(c if 32 <= ord(c) < 127 and c not in '\\"' else "".join(f"\\x{b:02x}" for b in c.encode())
                   for c in word)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
