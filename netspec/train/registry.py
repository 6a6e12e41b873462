"""Registries of training components: data sources, transforms, augmentations, losses, optimizers, schedules.

Each component is one `Entry` subclass in its family's module, registered with that
family's `Registry.register`, the way layer types are: its pydantic argument model
(`Args`, torch's argument names), the argument a scalar short form binds to
(`main_arg`), and its docstring, from which `docs/training.md` is generated. Modules
holding entries import torch only inside methods, so `netspec validate` checks a
`train:` section without torch.

A choice is written like a layer: `adam`, `{adam: {lr: 0.001}}`, or `{step: 10}`
(the main argument).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import PathT, SpecError, SpecErrors, did_you_mean
from ..loader import Source


class Args(BaseModel):
    """Base of every component's argument model: unknown keys are errors, no silent coercion
    (except int → float, so `lr: 1` is 1.0)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, use_attribute_docstrings=True)


class NoArgs(Args):
    pass


class Entry:
    """One registered component. Subclasses set `name`, and `Args`/`main_arg` when they take arguments."""

    name: ClassVar[str]
    Args: ClassVar[type[Args]] = NoArgs
    main_arg: ClassVar[str | None] = None


E = TypeVar("E", bound=Entry)


@dataclass(frozen=True)
class Choice(Generic[E]):
    """A component chosen in a spec: its entry, its validated arguments and where it is written."""

    entry: E
    args: Any
    path: PathT  # the choice as written: `adam` or `{adam: {...}}`
    keyed: bool = False  # written `{name: args}`, so its arguments are at `path + (name,)`

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def args_path(self) -> PathT:
        """Where its arguments are written (the choice itself when it is a bare name)."""
        return self.path + (self.name,) if self.keyed else self.path


class Registry(Generic[E]):
    """The entries of one kind (`kind` names it in messages: "optimizer", "loss", ...)."""

    def __init__(self, kind: str):
        self.kind = kind
        self.entries: dict[str, E] = {}

    def register(self, cls: type[E]) -> type[E]:
        """Class decorator: add an entry; a name may be registered once only."""
        if cls.name in self.entries:
            raise ValueError(f"{self.kind} `{cls.name}` is registered twice")
        self.entries[cls.name] = cls()
        return cls

    def __contains__(self, name: object) -> bool:
        return name in self.entries

    def __getitem__(self, name: str) -> E:
        return self.entries[name]

    def __iter__(self):
        return iter(self.entries)

    def parse(self, value: Any, path: PathT, source: Source, keys: tuple[str, ...] = ()) -> Choice[E]:
        """`name`, `{name: main-arg}` or `{name: {args}}` -> a Choice; raises a located SpecError (SpecErrors
        for several). `keys` are those the caller takes beside the name (and has removed from `value`): a
        mapping of one name and other keys is an error at each other key, with a did-you-mean among `keys`."""
        known = f"known: {', '.join(sorted(self.entries))}"
        if isinstance(value, str):
            name, raw, keyed = value, {}, False
        elif isinstance(value, dict) and len(value) == 1:
            (name, raw), keyed = next(iter(value.items())), True
        elif isinstance(value, dict) and len(named := [k for k in value if k in self.entries]) == 1:
            raise self._beside(value, named[0], path, source, keys)
        else:
            got = "" if isinstance(value, (dict, list)) else f", got {value!r}"
            raise source.error(f"{_article(self.kind)} {self.kind} is `name` or `{{name: {{args}}}}`{got}", path,
                               hint=known)
        at = path + (name,) if keyed else path
        if name not in self.entries:
            raise source.error(f"unknown {self.kind} `{name}`", at, key=keyed,
                               hint=did_you_mean(name, self.entries) or known)
        entry = self.entries[name]
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            if entry.main_arg is None:
                raise source.error(f"{self.kind} `{name}` takes no single argument", at,
                                   hint=f"write its arguments as a mapping: `{name}: {{...}}`")
            raw = {entry.main_arg: raw}
        return Choice(entry, validate_args(entry.Args, raw, at, source, f"{name} argument"), path, keyed)

    def _beside(self, value: dict, name: str, path: PathT, source: Source, keys: tuple[str, ...]) -> SpecErrors:
        """The errors of the keys written beside the name `name`: an argument of it that belongs inside its
        mapping, or an unknown key."""
        entry, errors = self.entries[name], []
        for key in value:
            if key == name:
                continue
            if key in entry.Args.model_fields:
                errors.append(source.error(f"`{key}` is an argument of {self.kind} `{name}`, written beside it",
                                           path + (key,), key=True,
                                           hint=f"arguments go inside its mapping: `{name}: {{{key}: ...}}`"))
            else:
                arg = did_you_mean(key, entry.Args.model_fields)
                beside = f"beside the {self.kind}'s name: {', '.join(keys)}" if keys else \
                    f"{_article(self.kind)} {self.kind} is `name` or `{{name: {{args}}}}`"
                errors.append(source.error(
                    f"unknown {self.kind} key `{key}`", path + (key,), key=True, hint=did_you_mean(key, keys)
                    or (arg and f"{arg} `{name}`'s arguments go inside its mapping: `{name}: {{...}}`") or beside))
        return SpecErrors(errors)


def validate_args(model: type[BaseModel], raw: dict, path: PathT, source: Source, what: str) -> Any:
    """`model(**raw)` with pydantic's errors as located SpecErrors (raised together)."""
    from ..errors import SpecErrors
    from ..spec import pydantic_errors

    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        errors = pydantic_errors(exc, path, source, aliases=set(model.model_fields), what=what, data=raw)
        raise (errors[0] if len(errors) == 1 else SpecErrors(errors)) from None


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def first_line(entry: Entry) -> str:
    """The first line of an entry's docstring."""
    return ((type(entry).__doc__ or "").strip().splitlines() or [""])[0]


__all__ = ["Args", "Choice", "Entry", "NoArgs", "Registry", "SpecError", "first_line", "validate_args"]
