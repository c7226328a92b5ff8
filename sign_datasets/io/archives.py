"""Zip archives opened as untrusted input.

The directory's claims (member count, directory size, each member's sizes
and compression ratio) are checked before zipfile parses it or anything is
inflated, so a zip bomb is refused at no cost. A parsed directory is kept on
a positional file that forked workers share without sharing an offset, and
each process reads members through its own handle.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import struct
import zipfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from sign_datasets.core.cleaning import MissingSource, SourceError
from sign_datasets.io import guards, remote_files

MB = 1 << 20
GB = 1 << 30


class ZipBombError(SourceError):
    """The archive would inflate beyond a safety limit; nothing was inflated."""


@dataclasses.dataclass(frozen=True)
class ArchiveLimits:
    """Bounds on untrusted archives, checked from the zip directory before any
    member is inflated. The defaults are far above the course's archives
    (MalariaCells.zip: 550 MB, 43,400 members; its JPEGs barely compress) and
    far below what would exhaust a laptop."""

    max_members: int = 500_000
    # Bounds the memory zipfile needs to parse the directory itself.
    max_directory_bytes: int = 256 * MB
    max_member_bytes: int = 256 * MB
    max_total_bytes: int = 16 * GB
    # Deflate tops out near 1032:1 and images rarely pass 20:1; members too
    # small to hurt are exempt, since tiny files compress oddly.
    max_ratio: float = 200.0
    ratio_exempt_below: int = 1 * MB


_EOCD = b"PK\x05\x06"


_ZIP64_LOCATOR = b"PK\x06\x07"


_ZIP64_EOCD = b"PK\x06\x06"


_EOCD_SIZE = 22


_MAX_COMMENT = 0xFFFF


def read_directory_claims(path: Path, source: str) -> tuple[int, int]:
    """(member count, directory bytes) as the end-of-directory record declares them.

    Read from the file's last bytes before zipfile parses the directory, so
    a claimed billion members is refused without building a billion objects.
    """
    with guards.open_source(path) as f:
        size = f.seek(0, os.SEEK_END)
        tail_start = max(0, size - (_EOCD_SIZE + _MAX_COMMENT))
        f.seek(tail_start)
        tail = f.read()
        at = tail.rfind(_EOCD)
        if at < 0 or len(tail) - at < _EOCD_SIZE:
            raise SourceError(f"{source}: not a zip archive (no end-of-directory record); "
                              "the download may be incomplete or the file is something else.")
        count, directory_bytes = struct.unpack("<HI", tail[at + 10:at + 16])
        if count != 0xFFFF and directory_bytes != 0xFFFFFFFF:
            return count, directory_bytes
        locator_at = tail_start + at - 20
        if locator_at < 0:
            raise SourceError(f"{source}: damaged zip64 end-of-directory record.")
        f.seek(locator_at)
        locator = f.read(20)
        if locator[:4] != _ZIP64_LOCATOR:
            return count, directory_bytes
        (record_at,) = struct.unpack("<Q", locator[8:16])
        if record_at > size - 56:
            raise SourceError(f"{source}: damaged zip64 end-of-directory record.")
        f.seek(record_at)
        record = f.read(56)
        if record[:4] != _ZIP64_EOCD:
            raise SourceError(f"{source}: damaged zip64 end-of-directory record.")
        count64, directory64 = struct.unpack("<QQ", record[32:48])
        return count64, directory64


def check_declared_sizes(source: str, refs: Iterable, archive_bytes: int,
                         all_compressed: int, limits: ArchiveLimits) -> None:
    """Refuses members whose declared sizes or ratios are a bomb's (refs:
    `.name`, `.file_size`, `.compress_size` of each image-to-be)."""
    total = 0
    for ref in refs:
        hint = ("If the archive is genuine, raise the limit "
                "(ArchiveLimits in sign_datasets.io.archives).")
        if ref.file_size > limits.max_member_bytes:
            raise ZipBombError(
                f"{source}: member {ref.name!r} declares {ref.file_size:,} bytes uncompressed, "
                f"over the {limits.max_member_bytes:,}-byte limit for one image; the build "
                f"stops before inflating it. {hint}")
        ratio = ref.file_size / max(ref.compress_size, 1)
        if ref.file_size >= limits.ratio_exempt_below and ratio > limits.max_ratio:
            raise ZipBombError(
                f"{source}: member {ref.name!r} inflates {ref.compress_size:,} bytes into "
                f"{ref.file_size:,} (ratio {ratio:,.0f}:1, limit {limits.max_ratio:,.0f}:1); "
                f"this looks like a zip bomb, so the build stops before inflating it. {hint}")
        total += ref.file_size
        if total > limits.max_total_bytes:
            raise ZipBombError(
                f"{source}: its images declare over {limits.max_total_bytes:,} bytes "
                f"uncompressed in total; the build stops before inflating them. {hint}")
    if all_compressed > archive_bytes:
        # Honest members never share bytes; overlapping ones are how
        # non-recursive zip bombs multiply one compressed kernel.
        raise ZipBombError(
            f"{source}: its members claim {all_compressed:,} compressed bytes in a "
            f"{archive_bytes:,}-byte file, so they overlap: a zip bomb. The build stops.")


def open_directory(path: Path, source: str, limits: ArchiveLimits) -> list[zipfile.ZipInfo]:
    """The zip's entries, after checking what the end record claims."""
    count, directory_bytes = read_directory_claims(path, source)
    if count > limits.max_members:
        raise ZipBombError(f"{source}: declares {count:,} members, over the limit of "
                           f"{limits.max_members:,}; the build stops before reading them.")
    if directory_bytes > limits.max_directory_bytes:
        raise ZipBombError(f"{source}: its directory declares {directory_bytes:,} bytes, over "
                           f"the limit of {limits.max_directory_bytes:,}.")
    try:
        infos = _remember_directory(str(path)).infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise SourceError(f"{source}: cannot read the zip directory ({error}); the download "
                          "may be incomplete. Delete it from the download cache and retry.") from None
    if len(infos) > limits.max_members:
        raise ZipBombError(f"{source}: holds {len(infos):,} members, over the limit of "
                           f"{limits.max_members:,}.")
    return infos


# The ZipFile each process reads an archive through: the scan's, or one it
# opened itself (never an ordinary file object from before a fork: forked
# processes share its offset).
_OPEN_ZIPS: dict[tuple[int, str], zipfile.ZipFile] = {}


class _PositionalFile(guards.PositionedReader):
    """A read-only file that reads with os.pread at a position of its own and
    never moves the descriptor's offset, the one thing a forked process
    shares with its parent: a ZipFile on it, parsed once, can serve the build
    process and every decode worker forked from it."""

    def __init__(self, path: str):
        super().__init__()
        self.name = path
        self._pos = 0
        self._fd: int | None = None
        self.identity = self.reopen()

    def reopen(self) -> tuple[int, ...]:
        """Opens the file again if `release` closed it; the identity of the
        file open now."""
        if self._fd is None:
            self._fd = guards.open_source_descriptor(self.name)
        return _identity(os.fstat(self._fd))

    def release(self) -> None:
        """Closes the descriptor in this process; `reopen` can open it again."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def close(self) -> None:
        self.release()
        super().close()

    def fileno(self) -> int:
        if self._fd is None:
            raise ValueError(f"{self.name}: released")
        return self._fd

    def end(self) -> int:
        return os.fstat(self.fileno()).st_size

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = max(0, os.fstat(self.fileno()).st_size - self._pos)
        data = os.pread(self.fileno(), size, self._pos)
        self._pos += len(data)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        memoryview(buffer).cast("B")[:len(data)] = data
        return len(data)


def _identity(stat: os.stat_result) -> tuple[int, ...]:
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


class _RemotePositionalFile(guards.PositionedReader):
    """`_PositionalFile` of a source under a remote download dir (gs://):
    each process reads through a stream it opened itself
    (`guards.open_remote_source`), never one a parent opened before forking."""

    def __init__(self, path: str):
        super().__init__()
        self.name = path
        self._pos = 0
        self._source: guards.RemoteSource | None = None
        self._pid = 0
        self.identity = self.reopen()

    def reopen(self) -> tuple[int, ...]:
        if self._source is None or self._pid != os.getpid():
            self._source, self._pid = guards.open_remote_source(self.name), os.getpid()
        return self._source.identity

    def release(self) -> None:
        if self._source is not None and self._pid == os.getpid():
            self._source.close()
        self._source = None

    def close(self) -> None:
        self.release()
        super().close()

    def end(self) -> int:
        return self.identity[0]

    def readinto(self, buffer) -> int:
        if self._source is None:
            raise ValueError(f"{self.name}: released")
        self.reopen()
        self._source.seek(self._pos)
        count = self._source.readinto(buffer)
        self._pos += count
        return count


def _identity_now(archive_path: str) -> tuple[int, ...]:
    if remote_files.is_remote(archive_path):
        return remote_files.identity(archive_path)
    return _identity(os.stat(archive_path))


# The directory the scan parsed, on its positional file: a process forked
# afterwards (a decode worker) reads through it instead of parsing the
# directory again, which for 35,000 members takes 0.3 s, once per worker
# and split otherwise.
_PARSED_DIRECTORIES: dict[str, tuple[zipfile.ZipFile, Any]] = {}


def _remember_directory(archive_path: str) -> zipfile.ZipFile:
    """Parses the zip's directory; the ZipFile stays for later readers."""
    for zf, file in _PARSED_DIRECTORIES.values():  # one archive at a time is enough
        zf.close()
        file.close()
    _PARSED_DIRECTORIES.clear()
    file = (_RemotePositionalFile if remote_files.is_remote(archive_path)
            else _PositionalFile)(archive_path)
    try:
        # Buffered as open() would be: a member's header and bytes then come in
        # one read (unbuffered, reading every member took 10 % longer).
        zf = zipfile.ZipFile(io.BufferedReader(file))
    except BaseException:
        file.close()
        raise
    file.release()  # until a reader needs it
    _PARSED_DIRECTORIES[archive_path] = (zf, file)
    return zf


def _parsed_directory(archive_path: str) -> zipfile.ZipFile | None:
    """The scan's ZipFile, readable in this process, if the file at
    `archive_path` is still the one it parsed."""
    parsed = _PARSED_DIRECTORIES.get(archive_path)
    if parsed is None:
        return None
    zf, file = parsed
    try:
        if _identity_now(archive_path) != file.identity or file.reopen() != file.identity:
            return None
    except OSError:
        return None
    return zf


def zip_for_this_process(archive_path: str) -> zipfile.ZipFile:
    key = (os.getpid(), archive_path)
    zf = _OPEN_ZIPS.get(key)
    if zf is None:
        zf = _parsed_directory(archive_path)
        if zf is None:
            zf = guards.open_zip(archive_path)
        _OPEN_ZIPS[key] = zf
    return zf


def release_archive(archive_path: str) -> None:
    """Closes this process's handle on `archive_path`, if it has one (the
    scan's directory stays parsed for a later read of the same file)."""
    archive_path = str(archive_path)
    zf = _OPEN_ZIPS.pop((os.getpid(), archive_path), None)
    parsed = _PARSED_DIRECTORIES.get(archive_path)
    if parsed is not None and zf is parsed[0]:
        parsed[1].release()
    elif zf is not None:
        zf.close()


@contextlib.contextmanager
def open_member(archive: Path, member: str) -> Iterator[Any]:
    """Streams one member of a source zip without extracting it to disk."""
    with guards.open_zip(archive) as zf:
        try:
            info = zf.getinfo(member)
        except KeyError:
            found = sorted(n for n in zf.namelist() if not n.endswith("/"))[:20]
            raise MissingSource(f"{guards.describe_download(archive)}: no member "
                                f"{member!r}; it holds {found}") from None
        copies = sum(1 for name in zf.namelist() if name == member)
        if copies > 1:
            # zipfile would read the last one, and the others' rows be
            # neither kept nor counted.
            raise SourceError(f"{guards.describe_download(archive)}: {copies} members are "
                              f"named {member!r} (a zip appended to?); keep one")
        # ZipExtFile.readline is pure Python; a C buffer in front of it
        # makes line-by-line reading several times faster.
        with io.BufferedReader(guards.MemberStream(zf, info, archive),
                               buffer_size=1 << 20) as stream:
            yield stream
