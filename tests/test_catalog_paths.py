"""The paths a hostile catalog names (catalog/paths.py; issue 17,
docs/SECURITY.md): checked beneath the allowed roots in every spelling when
the catalog is read, and again when the build opens them, so that a symlink
or FIFO swapped in later, even between the last check and the open, is
refused. Catalogs, CSVs, zips and symlinks are real ones written by the
tests; the build-time points run real TFDS builds.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from catalog_helpers import SHAPE_FILE_LABELS, csv_text, entry_text, shape_row
from catalog_refusals import SECRET, assert_refused, write

pytest_plugins = ("catalog_refusals",)


# --- paths checked when the catalog is read and at build ----------------------------------

def test_paths_outside_the_roots_are_refused_in_every_spelling(team_dir, secret,
                                                              monkeypatch):
    os.symlink(secret, team_dir / "link_to_secret")
    os.symlink(secret / "secret.csv", team_dir / "secret_file.csv")
    home = secret.parent
    monkeypatch.setenv("HOME", str(home))
    rel = os.path.relpath(secret, team_dir)
    spellings = {
        "file_url_percent": f"file://{team_dir}/%2e%2e/secret/secret.csv",
        "file_url_upper": f"file://{team_dir}/%2E%2E/secret/secret.csv",
        "file_url_localhost": f"file://localhost{secret}/secret.csv",
        "file_url_slash": f"file://{team_dir}/..%2fsecret/secret.csv",
        "dotdot": f"{rel}/secret.csv",
        "dotdot_deep": f"sub/../../secret/./secret.csv",
        "double_slash": f"{team_dir}//..//secret//secret.csv",
        "home": "~/secret/secret.csv",
        "symlinked_folder": "link_to_secret/secret.csv",
        "symlinked_file": "secret_file.csv",
    }
    for name, location in spellings.items():
        path = write(team_dir / f"{name}.toml", entry_text(location=location))
        message = assert_refused(path, "'team_ok'", "sources[0].location",
                                 "outside the allowed roots")
        assert SECRET not in message


def test_unknown_user_and_control_characters_are_catalog_errors(team_dir):
    cases = {
        "~nosuchuser_xyz/x.csv": "no user 'nosuchuser_xyz' on this machine",
        "a\\u0000b.csv": "neither a URL",
        "a\\u0007b.csv": "neither a URL",
        "file:///tmp/a%00b.csv": "neither a URL",
        "http://[::1/x": "neither a URL",
    }
    for location, problem in cases.items():
        path = write(team_dir / "bad.toml", entry_text(location=location))
        assert_refused(path, "'team_ok'", "sources[0].location", problem)


BAD_OBJECTS = {
    "%2e%2e/secret/secret.csv": "'.' or '..' part",
    "%252e%252e/secret/secret.csv": "'.' or '..' part",
    "sub/..%2f..%2fsecret/secret.csv": "'.' or '..' part",
    "../secret/secret.csv": "'.' or '..' part",
    "sub\\\\..\\\\x.csv": "backslash",
    "/etc/passwd": "relative to SIGN_DATASETS_SOURCE",
    "~root/x.csv": "relative to SIGN_DATASETS_SOURCE",
    "a.csv?x=1": "'?' or '#'",
    "a\\u0000.csv": "control character",
    "a%00.csv": "control character",
    "link/secret.csv": "outside the allowed roots",
}


@pytest.mark.parametrize("name", sorted(BAD_OBJECTS))
def test_object_names_are_checked_after_decoding(name, tmp_path, secret, monkeypatch):
    source = tmp_path / "source"
    source.mkdir()
    os.symlink(secret, source / "link")
    monkeypatch.setenv("SIGN_DATASETS_SOURCE", str(source))
    catalogs = tmp_path / "catalogs"
    text = entry_text().replace('location = "shapes.csv"', f'object = "{name}"')
    message = assert_refused(write(catalogs / "bad.toml", text), "'team_ok'",
                             "sources[0].object", BAD_OBJECTS[name])
    assert SECRET not in message


def swap_for_symlink(path: Path, target: Path) -> None:
    path.unlink()
    os.symlink(target, path)


def test_a_symlink_swapped_after_reading_the_catalog_is_refused_at_build(team_dir, secret,
                                                                        tmp_path):
    """The catalog was fine when read; then the file became a symlink out of
    the roots. The build refuses it naming entry and field, and never reads it."""
    import tensorflow_datasets as tfds

    from sign_datasets.catalog import teams
    from sign_datasets.catalog.entries import CatalogError

    rows = [shape_row(SHAPE_FILE_LABELS[i % 2], 40 + i) for i in range(4)]
    write(team_dir / "data" / "rows.csv", csv_text(rows))
    write(team_dir / "folder" / "rows.csv", csv_text(rows))
    catalog = write(team_dir / "swap.toml",
                    entry_text(name="trust_swapped_file", location="data/rows.csv")
                    + entry_text(name="trust_swapped_folder", location="folder/rows.csv"))
    teams.register_file(catalog)
    swap_for_symlink(team_dir / "data" / "rows.csv", secret / "secret.csv")
    (team_dir / "folder" / "rows.csv").unlink()
    (team_dir / "folder").rmdir()
    os.symlink(secret, team_dir / "folder")
    for name in ("trust_swapped_file", "trust_swapped_folder"):
        with pytest.raises(CatalogError) as error:
            tfds.builder(name, data_dir=str(tmp_path / "data")).download_and_prepare(
                download_dir=str(tmp_path / "downloads"))
        message = str(error.value)
        assert message.startswith(f"{catalog}: entry '{name}': field 'sources[0].location': ")
        assert "outside the allowed roots" in message and SECRET not in message


def test_a_symlink_swapped_under_an_object_is_refused_at_build(tmp_path, secret, monkeypatch):
    import tensorflow_datasets as tfds

    from sign_datasets.catalog import teams
    from sign_datasets.catalog.entries import CatalogError

    source = tmp_path / "source"
    write(source / "rows.csv", csv_text([shape_row(3, 9)]))
    monkeypatch.setenv("SIGN_DATASETS_SOURCE", str(source))
    text = entry_text(name="trust_swapped_object").replace('location = "shapes.csv"',
                                                           'object = "rows.csv"')
    catalog = write(tmp_path / "catalogs" / "object.toml", text)
    teams.register_file(catalog)
    swap_for_symlink(source / "rows.csv", secret / "secret.csv")
    with pytest.raises(CatalogError) as error:
        tfds.builder("trust_swapped_object", data_dir=str(tmp_path / "data")).download_and_prepare(
            download_dir=str(tmp_path / "downloads"))
    message = str(error.value)
    assert "field 'sources[0].object'" in message and "outside the allowed roots" in message
    assert not (tmp_path / "downloads").exists() or SECRET not in "".join(
        p.read_text(errors="replace") for p in (tmp_path / "downloads").rglob("*") if p.is_file())


def test_a_fifo_source_is_refused_not_waited_for(team_dir, tmp_path):
    import tensorflow_datasets as tfds

    from sign_datasets.catalog import teams
    from sign_datasets.catalog.entries import CatalogError

    os.mkfifo(team_dir / "pipe.csv")
    catalog = write(team_dir / "fifo.toml", entry_text(name="trust_fifo", location="pipe.csv"))
    teams.register_file(catalog)
    with pytest.raises(CatalogError) as error:
        tfds.builder("trust_fifo", data_dir=str(tmp_path / "data")).download_and_prepare()
    assert "not a regular file" in str(error.value)


def test_open_beneath_checks_the_file_actually_opened(team_dir, secret):
    from sign_datasets.catalog.paths import PathRefused, open_beneath

    write(team_dir / "ok.csv", "fine\n")
    with open_beneath(team_dir / "ok.csv", [team_dir]) as stream:
        assert stream.read() == b"fine\n"
    os.symlink(secret / "secret.csv", team_dir / "link.csv")
    with pytest.raises(PathRefused):
        open_beneath(team_dir / "link.csv", [team_dir])


# --- a swap in the instant between the last check and the open --------------------------

_SWAP: dict = {}


def _swap_at_first_open(event: str, args: tuple) -> None:
    """An audit hook (hooks cannot be removed: it acts once per armed swap)."""
    if event == "open" and _SWAP and os.fspath(args[0]) == _SWAP.get("path"):
        path, target = _SWAP.pop("path"), _SWAP.pop("target")
        swap_for_symlink(Path(path), Path(target))


def _letters_zip(path: Path, value: int) -> None:
    import io
    import zipfile

    import numpy as np
    from PIL import Image

    with zipfile.ZipFile(path, "w") as zf:
        for member in ("Train/cat/a.png", "Train/dog/b.png", "Test/cat/c.png", "Test/dog/d.png"):
            buffer = io.BytesIO()
            Image.fromarray(np.full((8, 8), value, np.uint8)).save(buffer, "PNG")
            zf.writestr(member, buffer.getvalue())


@pytest.mark.parametrize("fmt", ["zip_folders", "csv_pixels"])
def test_a_file_swapped_between_check_and_open_is_refused(fmt, team_dir, secret, tmp_path):
    """The race a shared folder allows: the file is checked beneath the roots,
    then replaced by a symlink out of them before it is opened. What is opened
    must be the file that was checked (guards.open_source), so the build stops
    and nothing of the other file is stored."""
    import sys

    import tensorflow_datasets as tfds

    from sign_datasets.catalog import teams
    from sign_datasets.catalog.entries import CatalogError
    from sign_datasets.core.cleaning import SourceError

    name = f"trust_race_{fmt}"
    if fmt == "zip_folders":
        _letters_zip(team_dir / "pets.zip", 10)
        _letters_zip(secret / "private.zip", 255)
        target, text = team_dir / "pets.zip", (
            f'[[dataset]]\nname = "{name}"\nversion = "1.0.0"\ndescription = "Race."\n'
            'format = "zip_folders"\nclasses = ["cat", "dog"]\nimage = { mode = "L" }\n'
            'sources = [{ location = "pets.zip" }]\n')
        outside = secret / "private.zip"
    else:
        rows = [shape_row(SHAPE_FILE_LABELS[i % 2], 60 + i) for i in range(4)]
        write(team_dir / "race.csv", csv_text(rows))
        target, text = team_dir / "race.csv", entry_text(name=name, location="race.csv")
        outside = secret / "secret.csv"
    teams.register_file(write(team_dir / f"{fmt}.toml", text))
    if not getattr(sys, "_sign_datasets_swap_hook", False):
        sys.addaudithook(_swap_at_first_open)
        sys._sign_datasets_swap_hook = True
    _SWAP.update(path=str(target.resolve()), target=str(outside))
    with pytest.raises((SourceError, CatalogError)) as error:
        tfds.builder(name, data_dir=str(tmp_path / "data")).download_and_prepare(
            download_dir=str(tmp_path / "downloads"))
    assert not _SWAP, "the swap never happened: the test did not test the race"
    assert "symbolic link after it was checked" in str(error.value)
    assert SECRET not in str(error.value)
    assert not tfds.builder(name, data_dir=str(tmp_path / "data")).is_prepared()
