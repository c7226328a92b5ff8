"""Deterministic files for the replica: zips with fixed member dates and
order, atomic replacement, seeded random generators."""

from __future__ import annotations

import contextlib
import hashlib
import os
import zipfile
import zlib
from pathlib import Path
from typing import Iterator

import numpy as np
from tqdm import tqdm


ZIP_DATE = (1980, 1, 1, 0, 0, 0)


# Level 1: the noisy synthetic CSV text deflates 6x faster than at level 6
# for 20 % more bytes, and the JPEGs barely shrink at any level.
DEFLATE_LEVEL = 1


def seeded_rng(seed: int, *tags: object) -> np.random.Generator:
    # crc32 rather than hash(): str hashes are salted per process.
    return np.random.default_rng([seed] + [zlib.crc32(str(t).encode("utf-8")) for t in tags])


def sha256_file(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    # A server may be serving the folder while it is regenerated: readers see
    # either the old file or the complete new one, never a half-written zip.
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(final.name + ".part")
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def file_facts(path: Path) -> dict:
    return {"bytes": path.stat().st_size, "sha256": sha256_file(path)}


class ZipWriter:
    """Deterministic zip writing: fixed timestamps, Unix attributes, explicit
    directory entries before their contents (as zip tools write them)."""

    def __init__(self, path: Path):
        self._zf = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True)
        self._dirs: set[str] = set()
        self.members: list[str] = []

    def close(self) -> None:
        self._zf.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _info(self, name: str, is_dir: bool) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
        info.create_system = 3
        if is_dir:
            info.external_attr = (0o40755 << 16) | 0x10
            info.compress_type = zipfile.ZIP_STORED
        else:
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            # zipfile reads the level from a private attribute on 3.11/3.12
            # and from compress_level on 3.13+.
            info._compresslevel = DEFLATE_LEVEL
            if hasattr(zipfile.ZipInfo, "compress_level"):
                info.compress_level = DEFLATE_LEVEL
        return info

    def _parents(self, name: str) -> None:
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i]) + "/"
            if d not in self._dirs:
                self._dirs.add(d)
                self._zf.writestr(self._info(d, True), b"")
                self.members.append(d)

    def write(self, name: str, data: bytes) -> None:
        self._parents(name)
        self._zf.writestr(self._info(name, False), data)
        self.members.append(name)

    @contextlib.contextmanager
    def stream(self, name: str, expected_size: int = 0):
        self._parents(name)
        force64 = expected_size > (1 << 31)
        with self._zf.open(self._info(name, False), mode="w", force_zip64=force64) as f:
            yield f
        self.members.append(name)


def progress_bar(total: int, desc: str, enabled: bool):
    return tqdm(total=total, desc=desc, unit="file", disable=not enabled, leave=False)
