"""Reading a hostile catalog file (catalog/loader.py; issue 17): a file too
large or of too many entries, a folder, a FIFO, bytes that are not UTF-8,
TOML nested too deeply, entries that are not tables, hostile keys: each one
CatalogError of one line.
"""

from __future__ import annotations

import os

from catalog_helpers import entry_text
from catalog_refusals import assert_refused, write

pytest_plugins = ("catalog_refusals",)


# --- caps on the whole file ---------------------------------------------------------------

def test_caps_on_the_whole_file(team_dir):
    many = write(team_dir / "many.toml",
                 "\n".join(entry_text(name=f"team_{i}") for i in range(1001)))
    assert_refused(many, None, "dataset", "1,001 entries, more than 1,000")
    huge = team_dir / "huge.toml"
    with open(huge, "w") as out:
        out.write(entry_text())
        line = "# " + "x" * 1022 + "\n"
        for _ in range(17 * 1024):
            out.write(line)
    assert_refused(huge, None, None, "larger than 16 MiB")


# --- any broken catalog file: one CatalogError --------------------------------------------

def test_broken_files_give_one_catalog_error(team_dir):
    (team_dir / "folder.toml").mkdir()
    assert_refused(team_dir / "folder.toml", None, None, "is a folder")
    latin = team_dir / "latin.toml"
    latin.write_bytes(entry_text().replace("Some shapes.", "Caf\xe9").encode("latin-1"))
    assert_refused(latin, None, None, "not UTF-8 text")
    deep = write(team_dir / "deep.toml", "x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    assert_refused(deep, None, None, "nested too deeply")
    os.mkfifo(team_dir / "fifo.toml")
    assert_refused(team_dir / "fifo.toml", None, None, "not a regular file")
    assert_refused(team_dir / "missing.toml", None, None, "no such catalog file")


def test_entries_that_are_not_tables_and_hostile_keys(team_dir):
    assert_refused(write(team_dir / "a.toml", "dataset = [1, 2]\n"), "#1 (no name)", None,
                   "expected a table, found an integer")
    assert_refused(write(team_dir / "b.toml", "dataset = 3\n"), None, "dataset",
                   "expected [[dataset]] entries")
    long_key = "k" * 5000
    message = assert_refused(write(team_dir / "c.toml", entry_text() + f"{long_key} = 1\n"),
                             "'team_ok'", None, "unknown key")
    assert len(message) < 600
    message = assert_refused(write(team_dir / "d.toml", entry_text(name="x" * 100_000)),
                             None, "name", "not a dataset name")
    assert len(message) < 600
