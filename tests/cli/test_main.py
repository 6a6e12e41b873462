"""The package's shape and what every command shares: wiring, help, usage errors, exit codes, colour, -q."""

import argparse
import ast
import os
import pty
import subprocess
import sys

import pytest

from netspec import __version__
from netspec.cli import COMMANDS, build_parser, module_name
from netspec.cli.common import commands, options
from tests.cli.helpers import BAD, GOOD, ROOT, call, netspec, write

PACKAGE = ROOT / "netspec" / "cli"


def test_one_module_per_command_each_registering_its_own_parser():
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "common"}
    assert modules == {module_name(name) for name in COMMANDS}
    assert [name for name, _, _ in commands(build_parser())] == list(COMMANDS)
    for name in COMMANDS:
        tree = ast.parse((PACKAGE / f"{module_name(name)}.py").read_text())
        functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert {"register", "run"} <= functions, name


def test_building_the_parser_imports_no_command_s_heavy_modules():
    code = ("import sys; from netspec.cli import build_parser; build_parser()\n"
            "heavy = ('torch', 'onnx', 'jsonschema', 'netspec.codegen', 'netspec.compiler', 'netspec.export.schema', "
            "'netspec.export.onnx', 'netspec.diff', 'netspec.train.session')\n"
            "assert not [m for m in heavy if m in sys.modules], [m for m in heavy if m in sys.modules]")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_the_torch_free_commands_never_import_torch(tmp_path):
    """DESIGN rule 2, for every command that only reads specs (validate is also in test_no_torch)."""
    spec = write(tmp_path, "net.yaml", GOOD)
    runs = [["validate", spec], ["summary", spec, spec, "--json"], ["draw", spec, "-o", tmp_path / "d.dot"],
            ["diff", spec, spec], ["ops"], ["ops", "conv2d"], ["schema", "-o", tmp_path / "s.json"],
            ["new", "mynet", "-o", tmp_path / "new.yaml"], ["completion", "bash"],
            ["compile", write(tmp_path, "bad.yaml", BAD), "-o", tmp_path / "x.py"],
            ["export", tmp_path / "bad.yaml", "-o", tmp_path / "x.onnx"]]
    code = (f"import io, sys, contextlib; from netspec.cli import main\n"
            f"for argv in {[[str(a) for a in r] for r in runs]!r}:\n"
            "    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
            "        rc = main(argv)\n"
            "    assert rc == (1 if argv[0] in ('compile', 'export') else 0), (argv, rc)\n"
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def _all_parsers():
    parser = build_parser()
    return [("netspec", parser)] + [(f"netspec {name}", sub) for name, _, sub in commands(parser)]


@pytest.mark.parametrize("prog, parser", _all_parsers(), ids=lambda p: p if isinstance(p, str) else "")
def test_every_argument_and_option_has_help(prog, parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            assert all(choice.help for choice in action._choices_actions)
        else:
            assert action.help and action.help.strip(), f"{prog}: {action.option_strings or action.dest} has no help"


def test_version(capsys):
    code, out, _ = call(capsys, "--version")
    assert code == 0 and out.strip() == f"netspec {__version__}"


def test_python_dash_m_and_the_entry_point_are_one_main():
    assert '\n[project.scripts]\nnetspec = "netspec.cli:main"\n' in (ROOT / "pyproject.toml").read_text()
    assert "from .cli import main" in (ROOT / "netspec" / "__main__.py").read_text()
    run = netspec("ops")
    assert run.returncode == 0 and "conv2d" in run.stdout


@pytest.mark.parametrize("argv, usage", [
    (["summary"], "usage: netspec summary"),
    (["summary", "specs/mlp_digits.yaml", "--batch", "0"], "usage: netspec summary"),
    (["validate", "specs/rnn_charlm.yaml", "--dim", "T"], "usage: netspec validate"),
    (["draw", "specs/mlp_digits.yaml", "-o", "x.gif"], "usage: netspec draw"),
    (["ops", "conv2"], "usage: netspec ops"),
    (["compile", "specs/mlp_digits.yaml", "-o", "x.py", "--opset", "18"], "usage: netspec compile"),
])
def test_a_usage_error_names_the_command_s_usage_not_the_top_level_one(capsys, argv, usage):
    code, _, err = call(capsys, *argv)
    prog = usage.removeprefix("usage: ")
    assert code == 2 and err.startswith(usage) and f"\n{prog}: error: " in err, err


@pytest.mark.parametrize("command", [["validate"], ["summary"], ["draw", "-o", "x.svg"], ["compile", "-o", "x.py"],
                                     ["export", "-o", "x.onnx"], ["train"], ["diff", "specs/mlp_digits.yaml"],
                                     ["new", "x", "--from"]])
def test_a_missing_input_file_exits_2(tmp_path, capsys, command):
    missing = tmp_path / "no" / "such.yaml"
    argv = [command[0], *command[1:], str(missing)] if command[0] != "diff" else [*command, str(missing)]
    if command[0] == "new":
        argv = ["new", "x", "--from", str(missing), "-o", str(tmp_path / "x.yaml")]
    code, _, err = call(capsys, *argv)
    assert code == 2 and f"cannot read `{missing}`: no such file" in err and "Traceback" not in err
    assert not (tmp_path / "x.yaml").exists()


def test_a_folder_given_as_a_spec_exits_2(tmp_path, capsys):
    code, _, err = call(capsys, "validate", tmp_path)
    assert code == 2 and "it is a folder" in err


@pytest.mark.parametrize("argv", [["summary", "specs/rnn_charlm.yaml", "--dim", "X=5"],
                                  ["validate", "specs/rnn_charlm.yaml", "--dim", "X=5"],
                                  ["validate", "specs/mlp_digits.yaml", "specs/rnn_charlm.yaml", "--dim", "L=5"],
                                  ["export", "specs/rnn_charlm.yaml", "-o", "x.onnx", "--dim", "X=5"]])
def test_a_dim_that_names_no_symbolic_dim_is_a_usage_error(capsys, argv):
    code, out, err = call(capsys, *argv)
    assert code == 2 and out == "" and "is no symbolic" not in err
    assert "has no symbolic input dim" in err or "none of the specs has a symbolic input dim" in err
    assert "(its symbolic dims: T)" in err or "(theirs: T)" in err


def test_a_dim_of_one_of_several_specs_is_fine(capsys):
    code, out, _ = call(capsys, "validate", "specs/mlp_digits.yaml", "specs/rnn_charlm.yaml", "--dim", "T=5")
    assert code == 0 and out.count(": ok") == 2


@pytest.mark.parametrize("where", ["before", "after"])
def test_quiet_before_or_after_the_command_prints_errors_only(tmp_path, capsys, where):
    good, bad = write(tmp_path, "good.yaml", GOOD), write(tmp_path, "bad.yaml", BAD)
    for argv in (["validate", good], ["compile", good, "-o", tmp_path / "x.py"],
                 ["draw", good, "-o", tmp_path / "x.dot"], ["schema", "-o", tmp_path / "s.json"],
                 ["new", "n", "-o", tmp_path / "n.yaml"]):
        argv = ["-q", *argv] if where == "before" else [argv[0], "-q", *argv[1:]]
        assert call(capsys, *argv) == (0, "", ""), argv
    code, out, err = call(capsys, *(["-q", "validate", bad] if where == "before" else ["validate", bad, "-q"]))
    assert code == 1 and out == "" and "error:" in err


# ---- colour ---------------------------------------------------------------------------------------------------------

RED = "\x1b[1;31merror:\x1b[0m"
CYAN = "\x1b[1;36mhint:\x1b[0m"


def _on_a_terminal(args: list[str], env: dict) -> str:
    """stderr of `netspec ARGS` when stderr is a terminal."""
    leader, follower = pty.openpty()
    environ = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")}
    proc = subprocess.Popen([sys.executable, "-m", "netspec", *args], stdout=subprocess.DEVNULL, stderr=follower,
                            cwd=ROOT, env={**environ, "TERM": "xterm", **env})
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=60)
    os.close(leader)
    return b"".join(chunks).decode().replace("\r\n", "\n")


def test_error_and_hint_are_coloured_on_a_terminal(tmp_path):
    spec = write(tmp_path, "bad.yaml", BAD)
    err = _on_a_terminal(["validate", str(spec)], {})
    assert f"bad.yaml:5:5: {RED} " in err and f"\n  {CYAN} " in err
    err = _on_a_terminal(["ops", "conv2"], {})
    assert f"netspec ops: {RED} no layer type" in err


@pytest.mark.parametrize("env", [{"NO_COLOR": "1"}, {"TERM": "dumb"}])
def test_no_colour_with_no_color_or_a_dumb_terminal(tmp_path, env):
    spec = write(tmp_path, "bad.yaml", BAD)
    err = _on_a_terminal(["validate", str(spec)], env)
    assert "bad.yaml:5:5: error: " in err and "\n  hint: " in err and "\x1b[" not in err


def test_no_colour_into_a_pipe(tmp_path):
    run = netspec("validate", write(tmp_path, "bad.yaml", BAD), env={"TERM": "xterm"})
    assert run.returncode == 1 and "bad.yaml:5:5: error: " in run.stderr and "\x1b[" not in run.stderr


def test_usage_errors_of_argparse_itself_are_coloured_too():
    err = _on_a_terminal(["summary", "--batch", "0", "x.yaml"], {})
    assert f"netspec summary: {RED} argument --batch" in err


def test_no_command_prints_the_help_and_exits_2(capsys):
    code, _, err = call(capsys)
    assert code == 2 and "usage: netspec" in err and "COMMAND" in err


def test_every_command_is_in_the_readme_and_in_docs_cli():
    readme, reference = (ROOT / "README.md").read_text(), (ROOT / "docs" / "cli.md").read_text()
    for name in COMMANDS:
        assert f"## netspec {name}" in reference
        assert f"$ netspec {name}" in readme or "netspec completion" in readme, name


def test_every_option_of_every_command_is_in_docs_cli():
    reference = (ROOT / "docs" / "cli.md").read_text()
    for name, _, sub in commands(build_parser()):
        section = reference.partition(f"## netspec {name}\n")[2].partition("\n## ")[0]
        for action in options(sub)[1:]:  # after -h
            assert all(f"`{flag}" in section for flag in action.option_strings), (name, action.option_strings)


def test_an_internal_error_exits_3_without_a_traceback(capsys, monkeypatch):
    from netspec.cli import ops

    def broken(args):
        raise KeyError("oops")

    monkeypatch.setattr(ops, "run", broken)
    monkeypatch.delenv("NETSPEC_TRACEBACK", raising=False)
    code, _, err = call(capsys, "ops")
    assert code == 3 and err.startswith("netspec: internal error: KeyError: 'oops'") and "Traceback" not in err


def test_under_torchrun_only_rank_0_prints_the_specs_errors(tmp_path, capsys, monkeypatch):
    """torchrun starts the same command N times; the spec's errors are said once, every process exits 1."""
    from netspec.cli import main

    spec = tmp_path / "bad.yaml"
    spec.write_text("name: t\ninput: [4]\nlayers:\n  - linaer: 2\n")
    for rank, said in (("1", False), ("0", True)):
        monkeypatch.setenv("RANK", rank)
        assert main(["train", str(spec), "--out", str(tmp_path / f"run{rank}")]) == 1
        assert ("unknown layer type `linaer`" in capsys.readouterr().err) == said
