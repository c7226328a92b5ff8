"""Zips written entry by entry with a fixed date, and the byte offsets that
the damaged-zip cases patch."""

from __future__ import annotations

import io
import struct
import warnings
import zipfile
from pathlib import Path
from typing import Callable, Iterable

from badinputs.images import jpeg, png

FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def write_zip(path: Path, members: Iterable[tuple[str | zipfile.ZipInfo, bytes]],
              compression: int = zipfile.ZIP_DEFLATED) -> Path:
    """A zip with exactly these entries, in this order, with a fixed date."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # duplicate names are sometimes the point
        with zipfile.ZipFile(path, "w", compression) as zf:
            for name, data in members:
                info = name if isinstance(name, zipfile.ZipInfo) else zipfile.ZipInfo(name, FIXED_TIME)
                info.compress_type = compression
                zf.writestr(info, data)
    return path


def central_entries(data: bytes) -> list[tuple[int, str]]:
    """(offset of the central directory entry, name) for each member, from the end record."""
    eocd = data.rindex(b"PK\x05\x06")
    count, size, offset = struct.unpack("<HII", data[eocd + 10:eocd + 20])
    entries, at = [], offset
    for _ in range(count):
        name_len, extra_len, comment_len = struct.unpack("<HHH", data[at + 28:at + 34])
        entries.append((at, data[at + 46:at + 46 + name_len].decode("cp437")))
        at += 46 + name_len + extra_len + comment_len
    return entries


def local_header_offset(data: bytes, central_at: int) -> int:
    return struct.unpack("<I", data[central_at + 42:central_at + 46])[0]


def member_data_span(data: bytes, name: str) -> tuple[int, int]:
    """(start, end) of the stored bytes of `name`."""
    for at, found in central_entries(data):
        if found == name:
            local = local_header_offset(data, at)
            name_len, extra_len = struct.unpack("<HH", data[local + 26:local + 30])
            size = struct.unpack("<I", data[at + 20:at + 24])[0]
            start = local + 30 + name_len + extra_len
            return start, start + size
    raise KeyError(name)


def patch(path: Path, edit: Callable[[bytearray], None]) -> None:
    data = bytearray(path.read_bytes())
    edit(data)
    path.write_bytes(bytes(data))


def central_at(data: bytes, name: str) -> int:
    return next(at for at, found in central_entries(bytes(data)) if found == name)


def folder_zip(path: Path, extra: list[tuple[str | zipfile.ZipInfo, bytes]] = (),
               classes: tuple[str, ...] = ("A", "B"), seed: int = 0,
               compression: int = zipfile.ZIP_DEFLATED, maker=png) -> Path:
    """Train/<class>/ and Test/<class>/ with one good image each, then `extra`."""
    members = []
    for split_index, split in enumerate(("Train", "Test")):
        for class_index, name in enumerate(classes):
            members.append((f"{split}/{name}/good.png",
                            maker(seed * 1000 + split_index * 100 + class_index)))
    return write_zip(path, members + list(extra), compression)


def small_zip() -> bytes:
    """A zip holding one JPEG, to pass off as an image or nest in an archive."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(zipfile.ZipInfo("inner.jpg", FIXED_TIME), jpeg(77))
    return buffer.getvalue()
