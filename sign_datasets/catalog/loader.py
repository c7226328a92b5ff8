"""Reading catalog files: a file's text within its caps, parsed as TOML, each
entry checked (`schema`); and the project's own catalog.

The project's catalog, `sign_datasets/catalog/catalog.toml`, declares the
seven course datasets. Their builders stay in `builders/` (TFDS's folder
layout, with READMEs, dummy data and checksums); they read their version,
release notes, homepage, archive, classes and mode from their entry here
(`project_entry`).
"""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

from sign_datasets.catalog.entries import CatalogError, Entry
from sign_datasets.catalog.paths import PathRefused, allowed_roots
from sign_datasets.catalog.schema import EntryChecker, key_shown

CATALOG_ENV = "SIGN_DATASETS_CATALOG"
PROJECT_CATALOG = Path(__file__).resolve().with_name("catalog.toml")

# Caps: past one, a clear CatalogError instead of work or memory without bound.
MAX_CATALOG_BYTES = 16 * 1024 * 1024
MAX_ENTRIES = 1_000


def _read_catalog(path: Path) -> str:
    """The text of a catalog file: a regular file of at most MAX_CATALOG_BYTES
    of UTF-8 (opened without blocking: a FIFO would wait forever)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise CatalogError(path, None, None, f"no such catalog file (named by {CATALOG_ENV}?)") \
            from None
    except OSError as error:
        raise CatalogError(path, None, None, f"cannot be read: {error.strerror}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise CatalogError(path, None, None, "is a folder; name the catalog's .toml file"
                           if stat.S_ISDIR(mode) else "is not a regular file")
    os.set_blocking(fd, True)
    with os.fdopen(fd, "rb") as stream:
        try:
            data = stream.read(MAX_CATALOG_BYTES + 1)
        except OSError as error:
            raise CatalogError(path, None, None, f"cannot be read: {error.strerror}") from None
    if len(data) > MAX_CATALOG_BYTES:
        raise CatalogError(path, None, None, f"larger than {MAX_CATALOG_BYTES // 2**20} MiB; "
                                             "split it into several catalogs")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CatalogError(path, None, None, f"not UTF-8 text (byte {error.start} is "
                                             f"{data[error.start]:#04x})") from None


def load_catalog(path: Path | str) -> list[Entry]:
    """Parses and checks one catalog file (names within the file are unique)."""
    path = Path(path)
    text = _read_catalog(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise CatalogError(path, None, None, f"not valid TOML: {error}") from None
    except RecursionError:
        raise CatalogError(path, None, None, "arrays or tables nested too deeply") from None
    unknown = sorted(set(data) - {"dataset"})
    if unknown:
        raise CatalogError(path, None, key_shown(unknown[0]),
                           "unknown key; a catalog holds [[dataset]] entries only")
    raw_entries = data.get("dataset", [])
    if not isinstance(raw_entries, list):
        raise CatalogError(path, None, "dataset", "expected [[dataset]] entries (an array of "
                                                  "tables)")
    if len(raw_entries) > MAX_ENTRIES:
        raise CatalogError(path, None, "dataset", f"{len(raw_entries):,} entries, more than "
                                                  f"{MAX_ENTRIES:,}; split the catalog")
    try:
        roots = allowed_roots(path)
    except PathRefused as error:
        raise CatalogError(path, None, None, str(error)) from None
    entries: list[Entry] = []
    for index, raw in enumerate(raw_entries):
        entry = EntryChecker(path, index, raw, roots).check()
        first = next((e for e in entries if e.name == entry.name), None)
        if first is not None:
            raise entry.error("name", f"duplicate name: entry #{first.index + 1} of this file "
                                      "has it too")
        entries.append(entry)
    return entries


# Read once per process: builders and the registry ask for it often.
_PROJECT: list[Entry] | None = None


def project_entries() -> list[Entry]:
    global _PROJECT
    if _PROJECT is None:
        _PROJECT = load_catalog(PROJECT_CATALOG)
    return _PROJECT


def project_entry(name: str) -> Entry:
    for entry in project_entries():
        if entry.name == name:
            return entry
    raise KeyError(f"{PROJECT_CATALOG}: no entry {name!r}")

