"""`netspec completion bash|zsh`: a shell completion script, generated from the parser itself (so it knows
every command, option and choice, and every layer type for `netspec ops`); files complete as the shell
completes them. No dependency, and no Python started on each Tab."""

from __future__ import annotations

import argparse

from .common import EXIT_OK, choices, command, commands, options, positionals

SHELLS = {  # each shell, and how to install its script
    "bash": "source <(netspec completion bash) in ~/.bashrc, or write it to "
            "~/.local/share/bash-completion/completions/netspec",
    "zsh": "netspec completion zsh > DIR/_netspec, DIR a folder of $fpath, then start a new zsh",
}
# The metavars of arguments that are paths: zsh completes files (or folders) there, and nothing for the others
PATHS = {"SPEC": "_files", "FILE": "_files", "A": "_files", "B": "_files", "DIR": "_files -/", "RUN_DIR": "_files -/"}


def register(sub) -> None:
    p = command(sub, "completion", run, "print a shell completion script for bash or zsh",
                formatter_class=argparse.RawDescriptionHelpFormatter,
                epilog="install it:\n" + "\n".join(f"  {shell}: {how}" for shell, how in SHELLS.items()))
    p.add_argument("shell", choices=tuple(SHELLS), help="the shell to complete netspec in")


def run(args) -> int:
    from . import build_parser

    print((bash if args.shell == "bash" else zsh)(build_parser()), end="")
    return EXIT_OK


# ---- bash -----------------------------------------------------------------------------------------------------------


def bash(parser: argparse.ArgumentParser) -> str:
    """A bash completion function: commands, then each command's options, their choices, and its positional
    choices; anything else (files) falls to bash's default completion (`complete -o default`)."""
    top = " ".join(s for a in options(parser) for s in a.option_strings)
    cases = []
    for name, _, sub in commands(parser):
        values = [_bash_value(a) for a in options(sub) if a.nargs != 0]
        words = " ".join(s for a in options(sub) for s in a.option_strings)
        positional = " ".join(c for a in positionals(sub) for c in choices(a))
        cases += [f"        {name})", "            case $prev in", *values, "            esac",
                  f"            opts=\"{words}\"; words=\"{positional}\" ;;"]
    return "\n".join([
        "# bash completion for netspec, generated from its parser by `netspec completion bash`",
        "_netspec() {",
        "    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cmd= opts= words= i",
        "    for ((i = 1; i < COMP_CWORD; i++)); do",
        "        [[ ${COMP_WORDS[i]} == -* ]] || { cmd=${COMP_WORDS[i]}; break; }",
        "    done",
        "    case $cmd in",
        f"        '') COMPREPLY=($(compgen -W \"{' '.join(n for n, _, _ in commands(parser))} {top}\" -- \"$cur\"));"
        " return ;;",
        *cases,
        "    esac",
        "    if [[ $cur == -* ]]; then",
        "        COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))",
        "    elif [[ -n $words ]]; then",
        "        COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))",
        "    fi",
        "}",
        "complete -o default -F _netspec netspec",
        "",
    ])


def _bash_value(action: argparse.Action) -> str:
    """The case of an option that takes a value: its choices, else nothing (bash's default: files)."""
    values = choices(action)
    answer = f"COMPREPLY=($(compgen -W \"{' '.join(values)}\" -- \"$cur\")); " if values else ""
    return f"                {'|'.join(action.option_strings)}) {answer}return ;;"


# ---- zsh ------------------------------------------------------------------------------------------------------------


def zsh(parser: argparse.ArgumentParser) -> str:
    """A zsh completion function (`#compdef netspec`) of `_arguments` specs, with each option's help."""
    described = [f"        {_quote(f'{name}:{_brief(help)}')}" for name, help, _ in commands(parser)]
    cases = []
    for name, _, sub in commands(parser):
        specs = [_zsh_option(a, s) for a in options(sub) for s in a.option_strings]
        specs += [_zsh_positional(a) for a in positionals(sub)]
        cases.append(f"            {name}) _arguments -s \\\n" + " \\\n".join(f"                {s}" for s in specs)
                     + " ;;")
    top = [_zsh_option(a, s) for a in options(parser) for s in a.option_strings]
    return "\n".join([
        "#compdef netspec",
        "# zsh completion for netspec, generated from its parser by `netspec completion zsh`",
        "_netspec() {",
        "    local curcontext=$curcontext state line",
        "    local -a commands=(",
        *described,
        "    )",
        "    _arguments -C \\",
        *(f"        {s} \\" for s in top),
        "        '1: :->command' \\",
        "        '*:: :->args'",
        "    case $state in",
        "        command) _describe -t commands 'netspec command' commands ;;",
        "        args)",
        "            case $line[1] in",
        *cases,
        "            esac ;;",
        "    esac",
        "}",
        "if [[ $zsh_eval_context[-1] == loadautofunc ]]; then _netspec \"$@\"; else compdef _netspec netspec; fi",
        "",
    ])


def _zsh_option(action: argparse.Action, flag: str) -> str:
    if isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
        exclude = "(- *)"
    else:
        exclude = f"({' '.join(action.option_strings)})" if len(action.option_strings) > 1 else ""
    if isinstance(action, argparse._AppendAction):
        exclude = "*"  # repeatable
    text = f"{exclude}{flag}[{_escape(_brief(action.help))}]"
    if action.nargs != 0:  # `-o FILE` or `-oFILE`; `--output FILE` or `--output=FILE`
        text = text.replace(f"{flag}[", f"{flag}{'=' if flag.startswith('--') else '+'}[", 1) + f":{_value(action)}"
    return _quote(text)


def _zsh_positional(action: argparse.Action) -> str:
    if action.nargs in ("+", "*"):
        return _quote(f"*:{_value(action)}")
    return _quote(f"{':' if action.nargs == '?' else ''}:{_value(action)}")


def _value(action: argparse.Action) -> str:
    """`MESSAGE:ACTION` of an `_arguments` spec: the choices, files or folders, else nothing to complete."""
    name = (action.metavar or action.dest).replace(":", "")
    values = choices(action)
    if values:
        return f"{name}:({' '.join(values)})"
    return f"{name}:{PATHS.get(name, ' ')}"


def _brief(text: str | None) -> str:
    """The first clause of a help text, for a one-line description."""
    return (text or "").split("; ")[0].split(" (")[0].replace("%%", "%")


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"
