"""Parsers of the SIGN_DATASETS_* variables.

The variables belong to whoever runs the build (README.md, "Settings"). Each
module reads its own, with the parsers here, so a bad value is one error
naming the variable and the value, never a bare ValueError from int() or a
RuntimeError from `~nosuchuser`. The command line checks them all at once
before any work (`sign_datasets.cli.settings_check`).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping

from sign_datasets.io.sources import SourceConfigError


class SettingsError(ValueError):
    """A setting (environment variable or the option that sets it) is unusable."""


class FetchConfigError(SourceConfigError):
    """A fetch setting (environment variable or argument) is unusable."""


def raw_value(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The variable's text without surrounding blanks; None when unset or empty."""
    text = (os.environ if environ is None else environ).get(name, "").strip()
    return text or None


def number(name: str, default: float, kind: type = int, minimum: float | None = None,
           positive: bool = False, environ: Mapping[str, str] | None = None):
    """An int or float variable; `minimum` inclusive, `positive` means > 0."""
    text = raw_value(name, environ)
    if text is None:
        return default
    try:
        value = kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise SettingsError(f"{name}={text!r} is not {what}; write one, or unset the "
                            "variable for the default") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise SettingsError(f"{name}={text!r} is not a finite number; write one, or unset "
                            "the variable for the default")
    if minimum is not None and value < minimum:
        raise SettingsError(f"{name}={text!r}: must be at least {minimum}, or unset for the "
                            "default")
    if positive and not value > 0:
        raise SettingsError(f"{name}={text!r}: must be more than 0, or unset for the default")
    return value


def fetch_number(name: str, raw: str, kind: type, minimum: float | None = None,
                 inclusive: bool = False, whole: str | None = None) -> Any:
    """`raw` as `kind`, or FetchConfigError naming the variable and its value
    (the fetch settings' own wording)."""
    what = {int: "a whole number", float: "a number"}[kind]
    bound = "" if minimum is None else f" {'>=' if inclusive else '>'} {minimum:g}"
    try:
        value = kind(raw.strip())
    except ValueError:
        value = None
    if value is None or (kind is float and not math.isfinite(value)) or (
            minimum is not None and (value < minimum if inclusive else value <= minimum)):
        raise FetchConfigError(f"{name}={(whole if whole is not None else raw)!r}: "
                               f"expected {what}{bound}; unset it to use the default")
    return value


def user_path(name: str, text: str) -> Path:
    """`text` with `~` and `~user` expanded; an unknown user is a SettingsError."""
    try:
        return Path(text).expanduser()
    except RuntimeError:  # pathlib's "Could not determine home directory"
        raise SettingsError(f"{name}={text!r}: cannot expand {text.split('/')[0]!r} (no such "
                            "user or no home folder); write the full path") from None


def path_list(name: str, environ: Mapping[str, str] | None = None) -> list[Path]:
    """A ':'-separated list of paths, `~` expanded; empty parts are skipped."""
    text = (os.environ if environ is None else environ).get(name, "")
    return [user_path(name, part.strip()) for part in text.split(":") if part.strip()]


def folder_list(name: str, environ: Mapping[str, str] | None = None) -> list[Path]:
    """A ':'-separated list of existing folders, resolved (symlinks followed)."""
    folders = []
    for path in path_list(name, environ):
        resolved = path.resolve()
        if not resolved.is_dir():
            problem = "is a file, not a folder" if resolved.exists() else "does not exist"
            raise SettingsError(f"{name}: {str(path)!r} {problem}; list existing folders, "
                                "separated by ':'")
        folders.append(resolved)
    return folders
