"""Every SIGN_DATASETS_* setting checked at once, before the command line
does any work.

Each setting is read by the module that uses it, with that module's own
parser; `checks` lists them all, so a bad one is refused with one line
naming it instead of failing halfway through a build. Here a variable that
is set but empty is refused too: `X= command` more often means a forgotten
value than "the default", and `unset X` says the latter plainly.
"""

from __future__ import annotations

import os
from typing import Callable

from sign_datasets.catalog.loader import CATALOG_ENV
from sign_datasets.catalog.paths import ALLOWED_ROOTS_ENV
from sign_datasets.catalog.teams import catalog_paths_from_env
from sign_datasets.formats import csv_lines
from sign_datasets.generate import builder
from sign_datasets.io import fetch_settings, parallel, sources
from sign_datasets.io.failed_share import MAX_FAILED_SHARE_ENV, max_failed_share
from sign_datasets.io.settings import SettingsError, folder_list, raw_value, user_path
from sign_datasets.io.url_policy import ALLOWED_HOSTS_ENV


def _fetch_checks() -> list[tuple[str, Callable[[], object]]]:
    # One variable at a time, so that an error from the fetch settings' own
    # parser is tied to the variable that caused it.
    def alone(name: str, parse: Callable) -> Callable[[], object]:
        return lambda: parse({name: os.environ[name]} if name in os.environ else {})

    images = (fetch_settings.WORKERS_ENV, fetch_settings.TIMEOUT_ENV, fetch_settings.RETRIES_ENV,
              fetch_settings.BACKOFF_ENV, fetch_settings.MAX_BYTES_ENV, ALLOWED_HOSTS_ENV)
    source_files = (fetch_settings.SOURCE_MAX_BYTES_ENV, fetch_settings.SOURCE_TIMEOUT_ENV)
    return [(name, alone(name, fetch_settings.FetchSettings.from_env)) for name in images] + \
        [(name, alone(name, fetch_settings.source_settings)) for name in source_files] + \
        [(MAX_FAILED_SHARE_ENV, max_failed_share)]


def _source_base() -> str:
    text = raw_value(sources.SOURCE_ENV)
    if text is not None and "://" not in text:
        user_path(sources.SOURCE_ENV, text)
    return sources.source_base()


def checks() -> list[tuple[str, Callable[[], object]]]:
    """(variable, the reading module's own parser) for every setting."""
    return [
        (sources.SOURCE_ENV, _source_base),
        (parallel.WORKERS_ENV, parallel.default_workers),
        (builder.SHUFFLE_MEMORY_ENV, builder.shuffle_memory_bytes),
        (csv_lines.BEAM_RANGE_ENV, csv_lines.beam_range_bytes),
        (CATALOG_ENV, catalog_paths_from_env),
        (ALLOWED_ROOTS_ENV, lambda: folder_list(ALLOWED_ROOTS_ENV)),
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
