"""`sign-datasets new` on hostile sources: what it writes into the builder's
own catalog stays one reviewed entry, and inspecting a source is bounded."""

from __future__ import annotations

import contextlib
import io
import tomllib
import zipfile

import numpy as np
import pytest
from PIL import Image


def png(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (8, 8), dtype=np.uint8)).save(
        buffer, "PNG")
    return buffer.getvalue()


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


@contextlib.contextmanager
def peak_growth_mb():
    """How far the block raises this process's peak memory: the peak (VmHWM)
    is reset first, so an earlier, higher peak cannot hide the growth."""
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    before = _status_kb("VmRSS")
    grown = []
    yield grown
    grown.append((_status_kb("VmHWM") - before) / 1024)


def pets_zip(path, extra=()):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for i, name in enumerate(("train/cat/1.png", "train/dog/2.png", "test/cat/3.png",
                                  "test/dog/4.png")):
            zf.writestr(name, png(i))
        for name, data in extra:
            zf.writestr(name, data)
    return path


INJECTED = ('train/cat/x\n[[dataset]]\nname = "injected_by_zip"\nversion = "9.9.9"\n'
            'description = "not reviewed"\nformat = "csv_pixels"\nclasses = ["a"]\n'
            'image = { mode = "L", size = [1, 1] }\n'
            'sources = [{ location = "https://attacker.example/x.csv" }]\n#.png')


def test_a_member_name_cannot_write_an_entry_into_the_catalog(tmp_path):
    from sign_datasets.catalog import proposal

    source = pets_zip(tmp_path / "pets.zip", [(INJECTED, b"not an image")])
    catalog = tmp_path / "team.toml"
    text = proposal.propose("hostile_new_pets", "zip_folders", str(source), catalog)
    proposal.append(catalog, text)
    entries = tomllib.loads(catalog.read_text())["dataset"]
    assert [e["name"] for e in entries] == ["hostile_new_pets"]
    assert "injected_by_zip" in catalog.read_text()  # quoted in a comment, escaped
    assert all(line.startswith("#") or "injected" not in line
               for line in catalog.read_text().splitlines())


def test_a_bomb_member_is_not_inflated(tmp_path):
    from sign_datasets.catalog import proposal

    with zipfile.ZipFile(tmp_path / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        for i, name in enumerate(("train/cat/1.png", "test/cat/3.png", "test/dog/4.png")):
            zf.writestr(name, png(i))
        with zf.open("train/dog/bomb.png", "w", force_zip64=True) as member:
            for _ in range(256):
                member.write(bytes(1 << 20))  # 256 MiB of zeros, 256 KB deflated
    with peak_growth_mb() as grown:
        text = proposal.propose("hostile_new_bomb", "zip_folders", str(tmp_path / "bomb.zip"),
                                   tmp_path / "team.toml")
    assert grown[0] < 100, grown
    assert "train/dog/bomb.png: not readable as an image" in text


@pytest.mark.parametrize("row", [b"1," + b"9" * 5000 + b",2,3,4\n",  # a huge pixel: fine
                                 b"9" * 5000 + b",1,2,3,4\n"])       # a huge label
def test_huge_numbers_in_a_csv_are_no_labels(tmp_path, row):
    from sign_datasets.catalog import proposal

    (tmp_path / "rows.csv").write_bytes(b"label,pixel1,pixel2,pixel3,pixel4\n0,1,2,3,4\n" + row)
    text = proposal.propose("hostile_new_rows", "csv_pixels", str(tmp_path / "rows.csv"),
                               tmp_path / "team.toml")
    assert "csv_labels = [0" in text


def test_a_line_over_the_cap_is_skipped_without_holding_it(tmp_path):
    from sign_datasets.catalog import proposal

    with open(tmp_path / "rows.csv", "wb") as out:
        out.write(b"label,pixel1,pixel2,pixel3,pixel4\n0,1,2,3,4\n")
        out.write(b"1," + b"7" * (64 << 20) + b"\n")  # a 64 MB line
        out.write(b"1,1,2,3,4\n")
    with peak_growth_mb() as grown:
        text = proposal.propose("hostile_new_long", "csv_pixels", str(tmp_path / "rows.csv"),
                                   tmp_path / "team.toml")
    assert grown[0] < 32, grown
    assert "3 rows; labels 0 (1), 1 (1); 1 rows without an integer label" in text
