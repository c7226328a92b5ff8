"""Errors a person can act on, as the command line's one-line reports.

`users_message` tells errors of input and settings (whose message says what
to do) from bugs of ours, which keep their traceback so that they get
reported.
"""

from __future__ import annotations

import re

from tensorflow_datasets.core.download.download_manager import NonMatchingChecksumError
from tensorflow_datasets.core.registered import DatasetNotFoundError

from sign_datasets.catalog.entries import CatalogError
from sign_datasets.catalog.paths import PathRefused
from sign_datasets.catalog.proposal import ProposalError
from sign_datasets.catalog.registry import NotBuiltError, UnknownDatasetError
from sign_datasets.core.cleaning import SourceError
from sign_datasets.generate.safety import DiskFullError
from sign_datasets.io.guards import os_problem
from sign_datasets.io.settings import SettingsError
from sign_datasets.io.sources import SourceConfigError
from sign_datasets.io.url_policy import Refused


def users_errors() -> tuple[type[BaseException], ...]:
    """Errors of input or settings whose message says what to do: no traceback."""
    return (SourceError, SourceConfigError, SettingsError, CatalogError, PathRefused,
            ProposalError, Refused, DatasetNotFoundError, NonMatchingChecksumError,
            DiskFullError, UnknownDatasetError, NotBuiltError)


# Modules of the `tensorflow` extra (setup.cfg); a plain install lacks them.
TENSORFLOW_EXTRA_MODULES = {"tensorflow", "tensorboard", "keras", "keras_tuner"}
TENSORFLOW_EXTRA = "pip install 'sign-datasets[tensorflow]'"


def missing_extra(error: BaseException) -> str | None:
    """The line for a module of the tensorflow extra that is not installed."""
    if not isinstance(error, ModuleNotFoundError):
        return None
    # TFDS re-raises some errors with its own text, which loses `name`.
    found = error.name or next(iter(re.findall(r"No module named '([\w.]+)'", str(error))), "")
    module = found.split(".")[0]
    if module not in TENSORFLOW_EXTRA_MODULES:
        return None
    return f"this needs {module}, which is not installed: {TENSORFLOW_EXTRA}"


def users_message(error: BaseException) -> str | None:
    """The one line to show for an error the user can fix, or None for a bug of
    ours (which keeps its traceback so that it gets reported)."""
    if missing_extra(error):
        text = missing_extra(error)
    elif isinstance(error, DatasetNotFoundError):
        text = str(error).splitlines()[0]  # the rest lists every dataset TFDS knows
    elif isinstance(error, users_errors()):
        text = str(error)
    elif isinstance(error, OSError):
        text = os_problem(error)
    else:
        text = None
    if text is None:
        return None
    # Some messages list details on lines of their own; the CLI shows one line.
    line = " ".join(part.strip() for part in text.splitlines() if part.strip())
    return printable(line) or type(error).__name__


def printable(text: str) -> str:
    """`text` with control characters written as escapes: a name from a hostile
    file must not move the cursor, clear the screen or fake another line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
