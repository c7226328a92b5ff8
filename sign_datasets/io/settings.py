"""Reading the SIGN_DATASETS_* variables, and checking them all at once.

The variables belong to whoever runs the build (README.md, "Settings"). Each
module reads its own, with the parsers here (the fetcher has its own), so a
bad value is one error naming the variable and the value, never a bare
ValueError from int() or a RuntimeError from `~nosuchuser`. `check_all` asks
every module for its settings once, so the command line can refuse a bad one
before doing any work. There a variable that is set but empty is refused too:
`X= command` more often means a forgotten value than "the default", and
`unset X` says the latter plainly.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Mapping


class SettingsError(ValueError):
    """A setting (environment variable or the option that sets it) is unusable."""


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


def _fetch_checks() -> list[tuple[str, Callable[[], object]]]:
    from sign_datasets.io import fetcher

    # One variable at a time, so that an error from the fetcher's own parser
    # is tied to the variable that caused it.
    def alone(name: str, parse: Callable) -> Callable[[], object]:
        return lambda: parse({name: os.environ[name]} if name in os.environ else {})

    images = (fetcher.WORKERS_ENV, fetcher.TIMEOUT_ENV, fetcher.RETRIES_ENV, fetcher.BACKOFF_ENV,
              fetcher.MAX_BYTES_ENV, fetcher.ALLOWED_HOSTS_ENV)
    source_files = (fetcher.SOURCE_MAX_BYTES_ENV, fetcher.SOURCE_TIMEOUT_ENV)
    return [(name, alone(name, fetcher.FetchSettings.from_env)) for name in images] + \
        [(name, alone(name, fetcher.source_settings)) for name in source_files] + \
        [(fetcher.MAX_FAILED_SHARE_ENV, fetcher.max_failed_share)]


def _source_base() -> str:
    from sign_datasets.io import sources

    text = raw_value(sources.SOURCE_ENV)
    if text is not None and "://" not in text:
        user_path(sources.SOURCE_ENV, text)
    return sources.source_base()


def checks() -> list[tuple[str, Callable[[], object]]]:
    """(variable, the reading module's own parser) for every setting."""
    from sign_datasets.generate import builder
    from sign_datasets.catalog import schema
    from sign_datasets.io import parallel
    from sign_datasets.io import sources
    from sign_datasets.formats import csv_pixels

    return [
        (sources.SOURCE_ENV, _source_base),
        (parallel.WORKERS_ENV, parallel.default_workers),
        (builder.SHUFFLE_MEMORY_ENV, builder.shuffle_memory_bytes),
        (csv_pixels.BEAM_RANGE_ENV, csv_pixels.beam_range_bytes),
        (schema.CATALOG_ENV, schema.catalog_paths_from_env),
        (schema.ALLOWED_ROOTS_ENV,
         lambda: folder_list(schema.ALLOWED_ROOTS_ENV)),
    ] + _fetch_checks()


def check_all() -> None:
    """Raises SettingsError for the first unusable setting, naming it."""
    for name, parse in checks():
        if name in os.environ and not os.environ[name].strip():
            raise SettingsError(f"{name}={os.environ[name]!r} is empty; give it a value, or "
                                f"unset it (`unset {name}`) for the default")
        try:
            parse()
        except SettingsError:
            raise
        except ValueError as error:  # the module's own config error
            message = str(error)
            if name not in message:
                message = f"{name}={os.environ.get(name, '')!r}: {message}"
            raise SettingsError(message) from None
