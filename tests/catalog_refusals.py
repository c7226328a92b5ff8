"""Hostile catalogs and how they are refused: a file the test writes, the
one-line CatalogError that loading it must give, and fixtures for a team
folder and a secret folder outside every allowed root.

Test modules that use `team_dir` or `secret` name this module in
`pytest_plugins`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog_helpers import csv_text, shape_row

SECRET = "TOP-SECRET-ROW"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def catalog_error(path: Path):
    from sign_datasets.catalog.entries import CatalogError
    from sign_datasets.catalog.loader import load_catalog

    with pytest.raises(CatalogError) as error:
        load_catalog(path)
    return error.value


def assert_refused(path: Path, entry: str | None, field: str | None, problem: str) -> str:
    error = catalog_error(path)
    message = str(error)
    assert message.startswith(f"{path}: "), message
    if entry is not None:
        assert f"entry {entry}" in message, message
    if field is not None:
        assert f"field {field!r}" in message, message
    assert problem in message, message
    assert "\n" not in message, message
    return message


@pytest.fixture
def secret(tmp_path) -> Path:
    """A folder outside every allowed root, holding a valid-looking CSV."""
    folder = tmp_path / "secret"
    write(folder / "secret.csv", csv_text([shape_row(3, 1)]) + SECRET + "\n")
    return folder


@pytest.fixture
def team_dir(tmp_path) -> Path:
    folder = tmp_path / "team"
    folder.mkdir()
    return folder
