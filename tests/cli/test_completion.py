"""`netspec completion bash|zsh`: scripts generated from the parser, checked by the shells themselves."""

import shutil
import subprocess

import pytest

from netspec.cli import COMMANDS
from netspec.layers import REGISTRY
from tests.cli.helpers import call

needs = {shell: pytest.mark.skipif(shutil.which(shell) is None, reason=f"needs {shell}") for shell in ("bash", "zsh")}


def _bash_completions(script: str, line: str) -> list[str]:
    """What the bash function offers for the words of `line` (the last one being completed)."""
    words = line.split(" ")
    program = (f"{script}\nCOMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}\n"
               "_netspec; printf '%s\\n' \"${COMPREPLY[@]}\"")
    run = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True)
    return run.stdout.split()


@needs["bash"]
def test_bash_completes_commands_options_choices_and_op_names(capsys):
    code, script, _ = call(capsys, "completion", "bash")
    assert code == 0 and "complete -o default -F _netspec netspec" in script
    assert _bash_completions(script, "netspec ") == [*COMMANDS, "-h", "--help", "--version", "-q", "--quiet"]
    assert _bash_completions(script, "netspec d") == ["draw", "diff"]
    assert _bash_completions(script, "netspec draw --ra") == ["--rankdir"]
    assert _bash_completions(script, "netspec draw x.yaml --rankdir ") == ["TB", "LR"]
    assert _bash_completions(script, "netspec -q summary --optimizer ad") == ["adagrad", "adam", "adamw"]
    assert _bash_completions(script, "netspec ops conv") == sorted(op for op in REGISTRY if op.startswith("conv"))
    assert _bash_completions(script, "netspec completion ") == ["bash", "zsh"]
    assert _bash_completions(script, "netspec validate ") == []  # files: bash's default completion


@needs["zsh"]
def test_zsh_script_parses_and_registers_itself(capsys, tmp_path):
    code, script, _ = call(capsys, "completion", "zsh")
    assert code == 0 and script.startswith("#compdef netspec\n")
    (tmp_path / "_netspec").write_text(script)
    check = (f"fpath=({tmp_path} $fpath); autoload -Uz compinit; compinit -u -D; autoload -Uz _netspec; "
             "[[ $_comps[netspec] == _netspec ]] && print ok")
    run = subprocess.run(["zsh", "-f", "-c", check], capture_output=True, text=True)
    assert run.stdout.strip() == "ok", run.stderr
    subprocess.run(["zsh", "-n", str(tmp_path / "_netspec")], check=True)


def test_zsh_script_describes_every_command_and_lists_choices(capsys):
    script = call(capsys, "completion", "zsh")[1]
    for name in COMMANDS:
        assert f"'{name}:" in script and f"            {name}) _arguments" in script
    assert ":OP:(" in script and " conv2d " in script
    assert "--rankdir=[top-to-bottom or left-to-right]:rankdir:(TB LR)" in script
    assert "'*--dim=[" in script  # repeatable
    assert "'(-o --output)-o+[" in script and "'(-o --output)--output=[" in script


def test_an_unknown_shell(capsys):
    code, _, err = call(capsys, "completion", "fish")
    assert code == 2 and "usage: netspec completion" in err
