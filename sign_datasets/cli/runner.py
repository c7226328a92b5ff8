"""Running one command line: the settings checked first, then the command, a
user's error turned into one line and exit status 2.

Shared by the main command line (cli/commands.py) and the training commands
run on their own (cli/training_commands.py).
"""

from __future__ import annotations

import os
import sys

import sign_datasets
from sign_datasets.cli import errors, settings_check
from sign_datasets.io import guards, sources
from sign_datasets.io.settings import SettingsError


def _apply_source(args) -> None:
    if getattr(args, "source_base", None):
        os.environ[sources.SOURCE_ENV] = args.source_base
        sources.source_base()  # fail now, with the message, if it is unusable


def report_error(error: BaseException) -> int | None:
    """Prints the one line for a user's error and returns its exit code (2);
    None for a bug of ours, which the caller re-raises."""
    line = errors.users_message(error)
    if line is None:
        return None
    print(f"error: {line}", file=sys.stderr)
    return 2


def _check_data_dir(data_dir: str | None) -> None:
    """--data-dir of any command: given, it names a folder (or a remote one)."""
    if data_dir is None or "://" in data_dir:
        return
    if not data_dir.strip():
        raise SettingsError("--data-dir is empty; give a folder, or leave the option out for "
                            "TFDS's default")
    guards.no_file_for_folder(data_dir, "--data-dir")


def run(make_parser, argv: list[str] | None = None) -> int:
    """Parses and runs a command; a user's error becomes one line and exit 2.

    A broken catalog or setting met while importing the package is reported
    first, whatever the command (--help included); then every setting is
    checked once, before any work.
    """
    # TensorFlow's C++ start-up chatter buries our tables; users who want it
    # can still set the variable themselves.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        if sign_datasets.startup_error is not None:
            settings_check.check_all()  # a bad setting is often the cause: name it
            raise sign_datasets.startup_error
        args = make_parser().parse_args(argv)
        _apply_source(args)  # --source replaces SIGN_DATASETS_SOURCE, so check it instead
        settings_check.check_all()
        _check_data_dir(getattr(args, "data_dir", None))
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - the CLI's one place to turn errors into words
        code = report_error(error)
        if code is None:
            raise
        return code
