"""Command-line flags made from the settings declarations (hodei.settings).

A flag is declared once, on its setting; a command lists the settings it takes
(`add_setting_flags(parser, "server.port", ...)`) and gets back Settings built from
the environment plus the flags given (`settings_from_args(args)`). No argv is
rebuilt between `hodei server` and `python -m hodei.server`: both call the same
run function with the Settings.
"""

from __future__ import annotations

import argparse
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from hodei.errors import HodeiError
from hodei.settings import SettingField, Settings, load_settings, setting_field

#: argparse dest prefix of a setting flag: `setting:server.port`.
_DEST = "setting:"


def add_setting_flags(parser: argparse.ArgumentParser, *paths: str) -> None:
    """Add the flag of each setting (`group.name`) to `parser`.

    Defaults are SUPPRESS: a flag not given leaves the setting to the environment, and a
    subcommand's parser does not reset a value given before the subcommand.
    """
    for path in paths:
        field = setting_field(path)
        if field.flag is None:
            raise ValueError(f"setting {path} has no command-line flag")
        parser.add_argument(field.flag, **_argument(field))


def _argument(field: SettingField) -> dict[str, Any]:
    info = field.info
    default = info.default
    help_text = f"{info.description} ({field.env})"
    spec: dict[str, Any] = {"dest": _DEST + field.path, "default": argparse.SUPPRESS}
    kind = _value_type(info.annotation)
    if kind is bool:
        # A switch flips the default (`--no-dispatcher` turns dispatcher.enabled off).
        state = "false" if default else "true"
        return {
            **spec,
            "action": "store_const",
            "const": not default,
            "help": f"as {field.env}={state}; {field.path}: {info.description}",
        }
    if get_origin(kind) is Literal:
        choices = [str(c) for c in get_args(kind)]
        upper = all(c.isupper() for c in choices)
        convert = str.upper if upper else str
        return {**spec, "type": convert, "choices": choices, "help": help_text}
    metavar = "HOST:PORT" if field.path == "server.address" else field.name.upper()
    if default not in (None, ""):
        help_text += f", default {default}"
    return {**spec, "type": kind, "metavar": metavar, "help": help_text}


def _value_type(annotation: Any) -> Any:
    """`Path | None` -> Path; Literal and plain types as they are."""
    if get_origin(annotation) in (Union, types.UnionType):
        (kind,) = [arg for arg in get_args(annotation) if arg is not type(None)]
        return kind
    if annotation in (int, float, str, bool, Path):
        return annotation
    if get_origin(annotation) is Literal:
        return annotation
    raise TypeError(f"no command-line type for {annotation!r}")


def setting_overrides(args: argparse.Namespace) -> dict[str, dict[str, object]]:
    """The settings given as flags, by group."""
    overrides: dict[str, dict[str, object]] = {}
    for dest, value in vars(args).items():
        if dest.startswith(_DEST):
            group, name = dest.removeprefix(_DEST).split(".")
            overrides.setdefault(group, {})[name] = value
    return overrides


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from the environment plus the flags given; ConfigError names a bad one."""
    return load_settings(**setting_overrides(args))


def run_with_flags(
    name: str,
    parser: argparse.ArgumentParser,
    run: Callable[[Settings], int],
    argv: list[str] | None = None,
) -> int:
    """The `main` of an entry point (`python -m hodei.server`, `-m hodei.worker`): the
    Settings that its flags and the HODEI_* variables make, then `run(settings)`. A bad
    setting is one line (`NAME: error: ...`) and the exit code `hodei` would give."""
    from hodei import exit_codes

    args = parser.parse_args(argv)
    try:
        settings = settings_from_args(args)
    except HodeiError as err:
        print(f"{name}: error: {err}", file=sys.stderr)
        return exit_codes.for_error(err)
    return run(settings)
