"""Where the fetcher keeps bodies: once each, under the download dir, keyed by URL.

Small bodies (the usual image of a URL list) are appended to pack files:
creating a file per URL costs more kernel CPU than the whole HTTP exchange,
and CPU bounds the fetch speed (docs/DESIGN.md, "URL cache"). Bodies too
large to hold in memory keep a file each; the fetcher writes those itself
(`Fetcher.cache_path`).

A pack is a run of records, each `[b"SDP1", sha256(url), length, crc32]`
followed by the body, written in one write. Every process appends to packs
of its own and never to another's, so concurrent builds and Beam workers
sharing a download dir never interleave. Nothing is ever rewritten in
place, so a reader sees complete records, a record still being written
(skipped until it is complete), or the torn tail a killed process left
(never complete, so never used). A body whose CRC does not match when it is
read (a disk that lost data) counts as absent and is fetched again.
"""

from __future__ import annotations

import collections
import hashlib
import os
import secrets
import struct
import threading
import time
import zlib
from pathlib import Path

PACKS = "packs"
_MAGIC = b"SDP1"
_HEADER = struct.Struct("<4s32sQI")  # magic, sha256 of the URL, body length, crc32
_SUFFIX = ".pack"
# The index keeps 16 bytes of each URL's hash: collisions need about 2**64 URLs.
_KEY_BYTES = 16
# One int per record (pack number, offset, length, crc32) keeps the index
# near 130 bytes per cached URL.
_OFFSET_BITS, _LENGTH_BITS, _CRC_BITS = 48, 32, 32
# Caches stay open in a process (Beam workers open a fetcher per batch);
# the least recently used beyond this many are closed.
_KEEP_OPEN = 8


def url_key(url: str) -> bytes:
    return hashlib.sha256(url.encode("utf-8")).digest()


class UrlCache:
    """The bodies under one cache folder; thread-safe within a process."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self._packs_dir = self.folder / PACKS
        self._lock = threading.Lock()
        self._index: dict[bytes, int] = {}
        self._packs: list[Path] = []
        self._pack_numbers: dict[Path, int] = {}
        self._indexed_to: dict[Path, int] = {}  # bytes of complete records seen
        self._writer: tuple[int, int, Path] | None = None  # pid, fd, pack
        self._written = 0
        self.refresh()

    def __len__(self) -> int:
        return len(self._index)

    # --- reading -------------------------------------------------------------

    def refresh(self) -> None:
        """Indexes records other processes appended since the last look."""
        try:
            names = sorted(entry.name for entry in os.scandir(self._packs_dir)
                           if entry.name.endswith(_SUFFIX))
        except FileNotFoundError:
            names = []
        with self._lock:
            own = self._own_pack()
            if own is not None and own.name not in names:
                # The folder was cleared since: records written to the
                # removed pack would be lost, so start a new one.
                self._close_writer()
                own = None
            for name in names:
                pack = self._packs_dir / name
                if pack != own:
                    self._scan(pack)

    def _scan(self, pack: Path) -> None:
        start = self._indexed_to.get(pack, 0)
        try:
            stream = open(pack, "rb", buffering=1 << 16)
        except FileNotFoundError:
            return
        with stream:
            size = os.fstat(stream.fileno()).st_size
            if size <= start:
                return
            number = self._number(pack)
            offset = start
            while offset + _HEADER.size <= size:
                stream.seek(offset)
                magic, digest, length, crc = _HEADER.unpack(stream.read(_HEADER.size))
                body = offset + _HEADER.size
                # Not a record (damage) or not complete yet: stop here and
                # look again from here next time.
                if magic != _MAGIC or length >= 1 << _LENGTH_BITS or body + length > size:
                    break
                self._index.setdefault(digest[:_KEY_BYTES], self._entry(number, body, length, crc))
                offset = body + length
            self._indexed_to[pack] = offset

    def get(self, url: str) -> bytes | None:
        key = url_key(url)[:_KEY_BYTES]
        with self._lock:
            entry = self._index.get(key)
            if entry is None:
                return None
            number, offset, length, crc = self._unpack(entry)
            pack = self._packs[number]
        try:
            descriptor = os.open(pack, os.O_RDONLY)
        except FileNotFoundError:
            body = None  # the cache was cleared under us
        else:
            try:
                body = os.pread(descriptor, length, offset)
            finally:
                os.close(descriptor)
        if body is None or len(body) != length or zlib.crc32(body) != crc:
            with self._lock:
                if self._index.get(key) == entry:
                    del self._index[key]
            return None
        return body

    # --- writing -------------------------------------------------------------

    def put(self, url: str, body: bytes) -> None:
        digest = url_key(url)
        crc = zlib.crc32(body)
        record = _HEADER.pack(_MAGIC, digest, len(body), crc) + body
        with self._lock:
            descriptor, pack = self._writer_fd()
            offset = self._written
            # One write per record: a reader or a crash sees it whole or as
            # a torn tail, never mixed with another record.
            try:
                written = os.write(descriptor, record)
                if written != len(record):
                    raise OSError(f"short write to {pack}: {written} of {len(record)} bytes")
            except OSError:
                # What follows a torn record is never indexed by a later
                # scan, so later records go to a new pack.
                self._close_writer()
                raise
            self._written += written
            self._indexed_to[pack] = self._written
            self._index[digest[:_KEY_BYTES]] = self._entry(
                self._number(pack), offset + _HEADER.size, len(body), crc)

    def close(self) -> None:
        with self._lock:
            self._close_writer()

    def _close_writer(self) -> None:
        if self._writer is not None and self._writer[0] == os.getpid():
            os.close(self._writer[1])
        self._writer = None

    def _own_pack(self) -> Path | None:
        if self._writer is None or self._writer[0] != os.getpid():
            return None
        return self._writer[2]

    def _writer_fd(self) -> tuple[int, Path]:
        own = self._own_pack()
        if own is not None:
            return self._writer[1], own
        # None yet, or inherited through fork: the parent keeps writing to
        # that pack, so this process starts one of its own. The inherited
        # descriptor stays open: closing it cannot affect the parent, and
        # it is only a descriptor.
        self._packs_dir.mkdir(parents=True, exist_ok=True)
        # Time first, so packs list in the order they were started.
        pack = self._packs_dir / f"{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}{_SUFFIX}"
        descriptor = os.open(pack, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        self._writer, self._written = (os.getpid(), descriptor, pack), 0
        return descriptor, pack

    # --- the index's entries -------------------------------------------------

    def _number(self, pack: Path) -> int:
        number = self._pack_numbers.get(pack)
        if number is None:
            number = self._pack_numbers[pack] = len(self._packs)
            self._packs.append(pack)
        return number

    @staticmethod
    def _entry(number: int, offset: int, length: int, crc: int) -> int:
        return (((number << _OFFSET_BITS | offset) << _LENGTH_BITS | length) << _CRC_BITS) | crc

    @staticmethod
    def _unpack(entry: int) -> tuple[int, int, int, int]:
        crc = entry & ((1 << _CRC_BITS) - 1)
        entry >>= _CRC_BITS
        length = entry & ((1 << _LENGTH_BITS) - 1)
        entry >>= _LENGTH_BITS
        return entry >> _OFFSET_BITS, entry & ((1 << _OFFSET_BITS) - 1), length, crc


_OPEN: collections.OrderedDict[Path, UrlCache] = collections.OrderedDict()
_OPEN_LOCK = threading.Lock()


def open_cache(folder) -> UrlCache:
    """This process's cache of `folder`, brought up to date with what other
    processes added since it was last opened."""
    folder = Path(os.path.abspath(folder))
    with _OPEN_LOCK:
        cache = _OPEN.pop(folder, None)
        if cache is None:
            cache = UrlCache(folder)
        else:
            cache.refresh()
        _OPEN[folder] = cache
        while len(_OPEN) > _KEEP_OPEN:
            _OPEN.popitem(last=False)[1].close()
    return cache
