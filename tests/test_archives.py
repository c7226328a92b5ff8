"""Zip archives as untrusted input (io/archives.py): zip bombs of every kind
are refused before anything inflates, a member that inflates past its
declared size is cut and dropped, a file that is no zip is a clear error,
and forked workers read members through the scanned directory without
moving each other's file offset.

Hand-made zips are saved under the bucket's object names in a temporary
folder that SIGN_DATASETS_SOURCE points at and built by real TFDS builds.
"""

from __future__ import annotations

import functools
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

import sign_datasets  # noqa: F401  (registers the builders)
from sign_datasets.core.cleaning import SourceError
from sign_datasets.core.labels import SIGN_LETTERS
from sign_datasets.formats.zip_layout import scan_archive
from sign_datasets.io.archives import ArchiveLimits, ZipBombError

from image_helpers import encode, noise
from zip_helpers import SIGN_PREFIX, SIGN_ZIP, build, write_zip


def patch_central_entry(path: Path, name: str, field_offset: int, value: int) -> None:
    """Overwrites one 4-byte field of `name`'s central directory entry."""
    data = bytearray(path.read_bytes())
    at = 0
    while True:
        at = data.index(b"PK\x01\x02", at)
        name_length = struct.unpack("<H", data[at + 28:at + 30])[0]
        if data[at + 46:at + 46 + name_length] == name.encode():
            break
        at += 4
    data[at + field_offset:at + field_offset + 4] = struct.pack("<I", value)
    path.write_bytes(bytes(data))


def claim_member_count(path: Path, count: int) -> None:
    """Rewrites the end records as zip64 ones that declare `count` members."""
    data = path.read_bytes()
    eocd = data.rindex(b"PK\x05\x06")
    directory_bytes, directory_at = struct.unpack("<II", data[eocd + 12:eocd + 20])
    body = data[:eocd]
    record_at = len(body)
    zip64_record = struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0,
                               count, count, directory_bytes, directory_at)
    locator = struct.pack("<4sIQI", b"PK\x06\x07", 0, record_at, 1)
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF,
                      0xFFFFFFFF, 0xFFFFFFFF, 0)
    path.write_bytes(body + zip64_record + locator + end)


# --- zip bombs --------------------------------------------------------------------

def bomb_source(tmp_path: Path, extra: list[tuple[str, bytes]]) -> Path:
    rng = np.random.default_rng(3)
    members = [("Train/A/1.jpg", encode(noise(rng), "JPEG")), ("Test/A/1.jpg", encode(noise(rng), "JPEG"))]
    write_zip(tmp_path / "source" / SIGN_ZIP, members + extra)
    return tmp_path / "source"


def test_ratio_zip_bomb_stops_before_inflating(tmp_path, monkeypatch):
    # 64 MB of zeros deflates to about 64 KB: a ratio near 1000:1.
    source = bomb_source(tmp_path, [("Train/A/zeros.bmp", bytes(64 << 20))])
    archive_bytes = (source / SIGN_ZIP).stat().st_size
    assert archive_bytes < 200_000
    with pytest.raises(ZipBombError) as caught:
        build("sign_language_img", source, tmp_path / "tfds", monkeypatch)
    message = str(caught.value)
    assert "sign-language-img.zip: member 'Train/A/zeros.bmp' inflates" in message
    assert "limit 200:1" in message and "zip bomb" in message
    assert not list((tmp_path / "tfds").glob("sign_language_img/*/*/*.tfrecord*"))


def test_huge_declared_size_stops_the_build(tmp_path, monkeypatch):
    source = bomb_source(tmp_path, [("Train/A/big.jpg", b"\xff\xd8" + bytes(1000))])
    patch_central_entry(source / SIGN_ZIP, "Train/A/big.jpg", 24, 3 << 30)  # uncompressed size
    with pytest.raises(ZipBombError, match=r"member 'Train/A/big\.jpg' declares 3,221,225,472 bytes"):
        build("sign_language_img", source, tmp_path / "tfds", monkeypatch)


def test_member_inflating_past_its_declared_size_is_cut_and_dropped(tmp_path, monkeypatch):
    rng = np.random.default_rng(4)
    liar = encode(noise(rng), "PNG")
    source = bomb_source(tmp_path, [("Train/B/liar.png", liar)])
    patch_central_entry(source / SIGN_ZIP, "Train/B/liar.png", 24, 100)
    builder = build("sign_language_img", source, tmp_path / "tfds", monkeypatch)
    report = builder.info.metadata["cleaning"]["train"]
    assert report["drops"] == {"corrupt_member": 1}
    assert report["examples"] == {"corrupt_member": [SIGN_PREFIX + "Train/B/liar.png"]}


def test_overlapping_members_are_refused(tmp_path, monkeypatch):
    source = bomb_source(tmp_path, [("Train/A/2.jpg", b"\xff\xd8" + bytes(100))])
    patch_central_entry(source / SIGN_ZIP, "Train/A/2.jpg", 20, 10_000_000)  # compressed size
    with pytest.raises(ZipBombError, match="overlap"):
        build("sign_language_img", source, tmp_path / "tfds", monkeypatch)


def test_member_count_bomb_is_refused_before_the_directory_is_parsed(tmp_path, monkeypatch):
    source = bomb_source(tmp_path, [])
    claim_member_count(source / SIGN_ZIP, 3_000_000_000)
    with pytest.raises(ZipBombError, match="declares 3,000,000,000 members, over the limit of 500,000"):
        build("sign_language_img", source, tmp_path / "tfds", monkeypatch)


def test_member_count_limit_counts_real_entries(tmp_path):
    path = write_zip(tmp_path / SIGN_ZIP, [(f"Train/A/{i}.jpg", b"x") for i in range(60)]
                     + [("Test/A/1.jpg", b"x")])
    with pytest.raises(ZipBombError, match="declares 61 members, over the limit of 50"):
        scan_archive(path, SIGN_LETTERS, limits=ArchiveLimits(max_members=50))
    scan_archive(path, SIGN_LETTERS, limits=ArchiveLimits(max_members=61))


def test_a_file_that_is_not_a_zip_is_a_clear_error(tmp_path, monkeypatch):
    (tmp_path / "source").mkdir()
    (tmp_path / "source" / SIGN_ZIP).write_bytes(b"<html>Service Unavailable</html>")
    with pytest.raises(SourceError, match="sign-language-img.zip: not a zip archive"):
        build("sign_language_img", tmp_path / "source", tmp_path / "tfds", monkeypatch)


def _read_members(path: str, indices: list[int]) -> list[tuple[bool, bytes]]:
    """(whether the scan's directory was reused, member bytes), in any process."""
    from sign_datasets.io import archives
    zf = archives.zip_for_this_process(path)
    parsed = archives._PARSED_DIRECTORIES.get(path)
    reused = parsed is not None and zf is parsed[0]
    return [(reused, zf.read(zf.infolist()[i])) for i in indices]


def _zip_of_random_members(path, count: int, size: int) -> dict[str, bytes]:
    import os
    members = {f"Train/A/{i}.bin": os.urandom(size + i) for i in range(count)}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return members


def test_forked_workers_read_through_the_scanned_directory(tmp_path):
    """Decode workers do not parse the zip's directory again (0.3 s for the
    sign-language zip, per worker and split): the build process and its
    workers read every member through the scan's ZipFile, byte for byte;
    a zip replaced since the scan is parsed anew."""
    from sign_datasets.io import archives, parallel

    path = tmp_path / "a.zip"
    members = _zip_of_random_members(path, 40, 300)
    infos = archives.open_directory(path, "a.zip", archives.ArchiveLimits())

    read_all = functools.partial(_read_members, str(path))
    chunks = [list(range(start, start + 8)) for start in range(0, 40, 8)]
    for caller_helps in (False, True):
        got = [item for chunk in parallel.ordered_map(read_all, chunks, workers=2,
                                                      caller_helps=caller_helps)
               for item in chunk]
        assert all(reused for reused, _ in got)
        assert [data for _, data in got] == [members[info.filename] for info in infos]
        archives.release_archive(str(path))

    with zipfile.ZipFile(path, "w") as zf:  # replaced: another size
        zf.writestr("Train/A/0.bin", b"new")
    got = list(parallel.ordered_map(read_all, [[0]], workers=2))
    assert got == [[(False, b"new")]]


def test_processes_reading_one_descriptor_leave_its_shared_offset_alone(tmp_path):
    """The scan's ZipFile is open in the build process when its workers fork,
    so they all hold one open file, whose offset is shared between
    processes: reads must never move it (each reads at a position of its own),
    or one process's seek would land another's read in the wrong member."""
    import os
    from sign_datasets.io import archives, parallel

    path = tmp_path / "a.zip"
    members = _zip_of_random_members(path, 64, 20_000)
    infos = archives.open_directory(path, "a.zip", archives.ArchiveLimits())
    assert _read_members(str(path), [0]) == [(True, members[infos[0].filename])]
    descriptor = archives._PARSED_DIRECTORIES[str(path)][1].fileno()
    os.lseek(descriptor, 12_345, os.SEEK_SET)
    try:
        chunks = [list(range(start, start + 4)) for start in range(0, 64, 4)]
        got = [item for chunk in parallel.ordered_map(
            functools.partial(_read_members, str(path)), chunks, workers=3, caller_helps=True)
            for item in chunk]
        assert [data for _, data in got] == [members[info.filename] for info in infos]
        assert os.lseek(descriptor, 0, os.SEEK_CUR) == 12_345
    finally:
        archives.release_archive(str(path))
    with pytest.raises(ValueError, match="released"):
        archives._PARSED_DIRECTORIES[str(path)][1].fileno()
