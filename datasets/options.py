"""One description per option: typed, frozen dataclasses whose field metadata (help, flag, choices,
bounds) generate the command-line flags and validate every value once, wherever it comes from
(command line, study profile, config file, stored run).

    @dataclass(frozen=True, kw_only=True)
    class Recipe(Options):
        lr: float = option(1e-4, "learning rate", gt=0)
        loss: str = option("hinge", "adversarial loss", choices=("hinge", "gan"))

`add_arguments(parser, Recipe)` adds `--lr` and `--loss` (absent from the parsed namespace unless
given, so that the options a user actually gave can be told apart, `--alpha none` included);
`from_args(Recipe, args, base)` builds the
object from `base` (e.g. stored or profile values) overlaid by the given flags. Construction
checks types, choices and bounds (`UserError` naming the field and its flag) and then calls the
class's own `check()` for rules that tie several fields together.
"""
from __future__ import annotations

import argparse
from dataclasses import MISSING, dataclass, field, fields
import math
from pathlib import Path
import types
import typing
from typing import Any, Callable, Mapping

from .errors import UserError

_BOUNDS = {"min": ("≥", lambda v, b: v >= b), "gt": (">", lambda v, b: v > b),
           "max": ("≤", lambda v, b: v <= b), "lt": ("<", lambda v, b: v < b)}


def option(default: Any = MISSING, help: str = "", *, flag: str | None = None, metavar: str | None = None,
           choices: tuple | None = None, parse: Callable[[str], Any] | None = None, cli: bool = True,
           repeat: bool = False, path: bool = False, default_factory: Callable | None = None,
           show_default: bool = True, defines_run: bool = False, bare: Any = None, **bounds) -> Any:
    """A dataclass field with its one description.

    `flag`: the command-line flag (default `--field-name`; for a bool field that defaults to True,
    the flag that turns it off, e.g. "--no-attention"). `parse`: text → value for the command line.
    `repeat`: a list filled by repeating the flag. `path`: stored as a string (a Path is accepted).
    `cli=False`: not on the command line. `defines_run`: a resumed run must keep this value.
    `bare`: the value the flag means when given without one (`--amp` alone: "on").
    Bounds: min (≥), gt (>), max (≤), lt (<); None passes."""
    unknown = set(bounds) - set(_BOUNDS)
    if unknown:
        raise TypeError(f"unknown option bound(s) {sorted(unknown)}")
    meta = {"help": help, "flag": flag, "metavar": metavar, "choices": choices, "parse": parse, "cli": cli,
            "repeat": repeat, "path": path, "bounds": bounds, "show_default": show_default, "defines_run": defines_run,
            "bare": bare}
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


def run_defining(cls) -> tuple[str, ...]:
    """Fields whose values define a training run (a resumed run must keep them)."""
    return tuple(f.name for f in fields(cls) if f.metadata.get("defines_run"))


def path_fields(cls) -> tuple[str, ...]:
    """Fields that hold file or directory paths (compared resolved)."""
    return tuple(f.name for f in fields(cls) if f.metadata.get("path"))


def flag_of(f) -> str:
    """The command-line flag of a field."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _label(f) -> str:
    return f"{f.name} ({flag_of(f)})" if f.metadata.get("cli", True) else f.name


@dataclass(frozen=True)
class _Kind:
    """What a field's annotation allows: the base type, None, and the element type of a sequence."""

    base: type
    optional: bool = False
    element: type | None = None


def _kind(annotation) -> _Kind:
    optional = False
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        optional = len(rest) < len(args)
        annotation = rest[0]
        args = typing.get_args(annotation)
    origin = typing.get_origin(annotation) or annotation
    if origin in (list, tuple):
        element = next((a for a in args if a is not Ellipsis), str)
        return _Kind(origin, optional, element)
    return _Kind(origin, optional)


def _matches(value, base: type) -> bool:
    if base is bool:
        return isinstance(value, bool)
    if base is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if base is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, base)


def _type_name(kind: _Kind) -> str:
    name = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(kind.base, kind.base.__name__)
    if kind.element is not None:
        name = f"a list of {_type_name(_Kind(kind.element))[2:] if kind.element is not str else 'strings'}"
    return name + (" (or null)" if kind.optional else "")


class Options:
    """Base of every options dataclass: normalises and validates on construction."""

    def __post_init__(self):
        hints = typing.get_type_hints(type(self))
        for f in fields(self):
            object.__setattr__(self, f.name, _checked(f, _kind(hints[f.name]), getattr(self, f.name)))
        self.normalise()
        self.check()

    def normalise(self) -> None:
        """Fill derived defaults (override; use object.__setattr__, the dataclass is frozen)."""

    def check(self) -> None:
        """Rules that tie several fields together (override; raise UserError)."""

    def to_json(self) -> dict:
        """Plain JSON values (tuples as lists), so a stored config equals a re-read one."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_json(cls, obj: Mapping, where: str = "", known_only: bool = False):
        """Build from a mapping of field values; unknown keys are errors unless `known_only`."""
        if not isinstance(obj, Mapping):
            raise UserError(f"{where or cls.__name__}: expected a table of {cls.__name__} fields, got {type(obj).__name__}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(obj) - names)
        if unknown and not known_only:
            raise UserError(f"{where + ': ' if where else ''}unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        missing = sorted(f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING and f.name not in obj)
        if missing:
            raise UserError(f"{where + ': ' if where else ''}missing {', '.join(_label(f) for f in fields(cls) if f.name in missing)}")
        try:
            return cls(**{k: v for k, v in obj.items() if k in names})
        except UserError as exc:
            raise UserError(f"{where}: {exc}" if where else str(exc)) from None


def _plain(value):
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, Options):
        return value.to_json()
    return value


def _checked(f, kind: _Kind, value):
    """The field's value converted where harmless (Path → str, list ↔ tuple, int → float) and
    checked against its type, choices and bounds."""
    meta = f.metadata
    if value is None:
        if kind.optional:
            return None
        raise UserError(f"{_label(f)} must be {_type_name(kind)}, got null")
    if meta.get("path") and isinstance(value, Path):
        value = str(value)
    if kind.element is not None:
        if isinstance(value, str) and meta.get("parse"):
            value = meta["parse"](value)
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{_label(f)} must be {_type_name(kind)}, got {value!r}")
        items = [str(v) if meta.get("path") and isinstance(v, Path) else v for v in value]
        for v in items:
            if not _matches(v, kind.element):
                raise UserError(f"{_label(f)} must be {_type_name(kind)}, got {value!r}")
        items = [float(v) if kind.element is float else v for v in items]
        return tuple(items) if kind.base is tuple else list(items)
    if not _matches(value, kind.base):
        raise UserError(f"{_label(f)} must be {_type_name(kind)}, got {value!r}")
    if kind.base is float:
        value = float(value)
        if not math.isfinite(value):
            raise UserError(f"{_label(f)} must be a finite number, got {value}")
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise UserError(f"{_label(f)} must be one of {', '.join(map(str, choices))}, got {value!r}")
    for key, bound in (meta.get("bounds") or {}).items():
        word, ok = _BOUNDS[key]
        if not ok(value, bound):
            raise UserError(f"{_label(f)} must be {word} {bound}, got {value}")
    return value


# ----------------------------------------------------------------------------------------------
# The command line
# ----------------------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser, cls, required: tuple[str, ...] = (), skip: tuple[str, ...] = ()) -> None:
    """Add one flag per command-line field of `cls` (its own fields first, then inherited ones, each
    in declaration order); `required` fields must be given on the command line, `skip` ones are
    left out."""
    hints = typing.get_type_hints(cls)
    own = cls.__dict__.get("__annotations__", {})    # the class's own fields first, then inherited ones
    for f in sorted(fields(cls), key=lambda f: f.name not in own):
        if not f.metadata.get("cli", True) or f.name in skip:
            continue
        kind, meta = _kind(hints[f.name]), f.metadata
        kw: dict = {"dest": f.name, "default": argparse.SUPPRESS, "help": _help(f, kind)}
        if kind.base is bool:
            kw.update(action="store_const", const=not (f.default is True))
        else:
            kw.update(metavar=meta.get("metavar"), type=meta.get("parse") or (kind.element if kind.element and meta.get("repeat") else kind.base))
            if meta.get("choices") is not None:
                kw["choices"] = meta["choices"]
            if meta.get("bare") is not None:
                kw.update(nargs="?", const=meta["bare"])
            if meta.get("repeat"):
                kw["action"] = "append"
            if f.name in required:
                kw["required"] = True
        parser.add_argument(flag_of(f), **kw)


def _help(f, kind: _Kind) -> str:
    text = f.metadata.get("help", "")
    if f.metadata.get("bare") is not None:
        text = f"{text}; the flag alone means {f.metadata['bare']}"
    if kind.base is bool or not f.metadata.get("show_default", True):
        return text
    default = f.default if f.default is not MISSING else None
    if default is None or default == [] or f.default_factory is not MISSING:
        return text
    return f"{text} (default {default:g})" if isinstance(default, float) else f"{text} (default {default})"


def given(args: argparse.Namespace, cls) -> dict:
    """The fields of `cls` given on the command line (flags left out are absent from `args`)."""
    return {f.name: getattr(args, f.name) for f in fields(cls) if f.metadata.get("cli", True) and hasattr(args, f.name)}


def from_args(cls, args: argparse.Namespace, base: Mapping | None = None, **fixed):
    """`cls` from `base` values, overlaid by the flags given, overlaid by `fixed`."""
    return cls.from_json({**(base or {}), **given(args, cls), **fixed})


def parse_none_or_float(text: str) -> float | None:
    """'none' / 'off' → None, otherwise a float (for options such as α = none)."""
    if text.strip().lower() in ("none", "off", "null"):
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'none', got {text!r}") from None


def parse_comma_list(text: str) -> list[str]:
    """'a,b,c' → ['a', 'b', 'c'] (empty items dropped)."""
    return [item for item in text.split(",") if item]


# ----------------------------------------------------------------------------------------------
# Bounded numbers for the flags that commands declare by hand (argparse `type=` functions)
# ----------------------------------------------------------------------------------------------

def number(kind: type = int, **bounds) -> Callable[[str], Any]:
    """An argparse `type` reading an int (or a finite float) within `bounds` (min ≥, gt >, max ≤,
    lt <, as in `option`): the flag's one description of what it accepts. A bad value stops the
    parser with e.g. "argument --batch-size: must be ≥ 1, got 0"."""
    unknown = set(bounds) - set(_BOUNDS)
    if unknown:
        raise TypeError(f"unknown bound(s) {sorted(unknown)}")
    what = "an integer" if kind is int else "a number"

    def parse(text: str):
        try:
            value = kind(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        for key, bound in bounds.items():
            word, ok = _BOUNDS[key]
            if not ok(value, bound):
                raise argparse.ArgumentTypeError(f"must be {word} {bound}, got {text}")
        return value

    parse.__name__ = kind.__name__        # argparse names the type in its own messages
    parse.bounds = dict(bounds)           # type: ignore[attr-defined]  (read by the tests' fuzz harness)
    return parse


positive_int = number(int, min=1)
non_negative_int = number(int, min=0)
positive_float = number(float, gt=0)
non_negative_float = number(float, min=0)
probability = number(float, min=0, max=1)


def comma_choices(choices: tuple[str, ...]) -> Callable[[str], list[str]]:
    """An argparse `type` reading a comma-separated list of `choices` (at least one)."""
    def parse(text: str) -> list[str]:
        items = parse_comma_list(text)
        bad = [i for i in items if i not in choices]
        if bad or not items:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {', '.join(choices)}, got {text!r}")
        return items

    parse.__name__ = "list"
    return parse
