"""The `netspec` command line: compiler-style diagnostics, no Python tracebacks.

Each command is a module of this package (`lr-find` in lr_find.py) that registers its own parser
(`register(sub)`) and runs (`run(args)`), importing what it needs (torch included) only when it runs; `main` wires them.

Exit codes: 0 success; 1 a spec is invalid (or a run failed on its data); 2 bad usage, or an output that
cannot be written or the machine's memory does not hold the work; 3 an internal error; 130
interrupted (Ctrl-C).
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import traceback
from importlib import import_module

from ..errors import SpecError, SpecErrors
from .common import (
    EXIT_INTERNAL,
    EXIT_INVALID,
    EXIT_OK,
    EXIT_USAGE,
    QUIET,
    Failure,
    Parser,
    UsageError,
    paint,
    print_error,
    print_errors,
)

# In the order `netspec --help` lists them
COMMANDS = ("validate", "summary", "draw", "compile", "export", "train", "lr-find", "gradcheck", "sweep", "diff", "ops",
            "schema", "new", "completion")


def main(argv: list[str] | None = None) -> int:
    _tolerant_output()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error argparse printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if not hasattr(args, "run"):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        code = args.run(args)
        sys.stdout.flush()  # here, where a full disk is said, not at exit
        return code
    except (SpecError, SpecErrors) as exc:
        if not _another_process_of_torchrun():  # every process finds the same errors: rank 0 says them
            print_errors(exc)
        return EXIT_INVALID
    except UsageError as exc:
        args.parser.print_usage(sys.stderr)
        print_error(str(exc), args.parser.prog)
        return EXIT_USAGE
    except Failure as exc:
        print_error(str(exc))
        return exc.code
    except KeyboardInterrupt:
        return 130
    except MemoryError:  # a valid network too large for this machine's memory (or its `ulimit -v`)
        print_error(f"`{args.parser.prog}` ran out of memory: the network is too large for this machine; "
                    "validate, summary and draw need far less than build, compile, export and train")
        return EXIT_USAGE
    except BrokenPipeError:  # output piped into `head`, say
        sys.stderr.close()
        return EXIT_OK
    except OSError as exc:  # writing the standard output failed (`> /dev/full`): said, not a bug
        if exc.filename is not None or exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO):
            return _internal(exc)
        _drop_output()
        print_error(f"cannot write the output: {exc.strerror}")
        return EXIT_USAGE
    except Exception as exc:  # a bug in netspec, not in the spec
        return _internal(exc)


def _another_process_of_torchrun() -> bool:
    """Whether this is one of torchrun's processes other than rank 0 (`RANK` set and not 0)."""
    return os.environ.get("RANK", "0").strip() not in ("", "0")


def _internal(exc: Exception) -> int:
    """Say that `exc` is a bug in netspec, not in the spec."""
    if os.environ.get("NETSPEC_TRACEBACK"):
        traceback.print_exc()
    print(paint(f"netspec: internal error: {type(exc).__name__}: {exc}\n"
                "  this is a bug in netspec; rerun with NETSPEC_TRACEBACK=1 and report it", sys.stderr),
          file=sys.stderr)
    return EXIT_INTERNAL


def _drop_output() -> None:
    """Send what standard output still buffers to the null device, so that Python does not fail again
    flushing it at exit."""
    with contextlib.suppress(OSError, AttributeError, ValueError):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)


def build_parser() -> Parser:
    """The whole command line: the top-level options and every command's parser."""
    from .. import __version__

    parser = Parser(prog="netspec", description="A declarative network compiler: YAML specs checked like "
                    "programs, analyzed, drawn, compiled to PyTorch and trained.")
    parser.add_argument("--version", action="version", version=f"netspec {__version__}",
                        help="print netspec's version and exit")
    parser.add_argument("-q", "--quiet", action="store_true", help=f"{QUIET} (also after the command)")
    sub = parser.add_subparsers(metavar="COMMAND", title="commands")
    for name in COMMANDS:
        import_module(f"{__name__}.{module_name(name)}").register(sub)
    return parser


def module_name(command: str) -> str:
    """The module of this package that holds a command: `lr-find` -> `lr_find`."""
    return command.replace("-", "_")


def _tolerant_output() -> None:
    """Print what the terminal cannot encode (`×` on an ASCII terminal, a file name's undecodable bytes)
    as escapes instead of failing."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError, OSError):
            pass  # not a text stream we can reconfigure: leave it
