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

A folder on another file system (`gs://...`, any scheme TensorFlow's
file system reads) is reached through tf.io.gfile, so that workers of a
cluster share the cache: object stores cannot append, so a process gathers
its records in memory and writes them as one new pack when it has 8 MB,
when the cache is opened again (the fetcher opens it per batch), when its
fetcher is closed (a split's end), or when it is closed. A local folder keeps its appends (no TensorFlow, no buffering).
"""

from __future__ import annotations

import atexit
import collections
import hashlib
import os
import secrets
import struct
import threading
import time
import zlib
from pathlib import Path

from sign_datasets.io.remote_files import is_remote, tensorflow  # noqa: F401 (named through here too)

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
# A process's records on a remote folder are written as a pack of this size.
_REMOTE_PACK_BYTES = 8 << 20


class _RemotePacks:
    """A remote folder's packs, as the local code reads them: names, whole
    reads, ranges, and one write per new pack."""

    def __init__(self, folder: str):
        self.folder = folder.rstrip("/")

    def names(self) -> list[str]:
        gfile = tensorflow().io.gfile
        if not gfile.exists(self.folder):
            return []
        return sorted(name.rstrip("/") for name in gfile.listdir(self.folder)
                      if name.endswith(_SUFFIX))

    def path(self, name: str) -> str:
        return f"{self.folder}/{name}"

    def read(self, path: str, offset: int = 0, length: int | None = None) -> bytes | None:
        """Bytes from `offset` (to the end, or `length` of them); None when
        the pack is gone (the cache was cleared)."""
        tf = tensorflow()
        try:
            with tf.io.gfile.GFile(path, "rb") as stream:
                stream.seek(offset)
                return stream.read() if length is None else stream.read(length)
        except tf.errors.NotFoundError:
            return None

    def write(self, path: str, data: bytes) -> None:
        gfile = tensorflow().io.gfile
        gfile.makedirs(self.folder)
        with gfile.GFile(path, "wb") as stream:
            stream.write(data)


def url_key(url: str) -> bytes:
    return hashlib.sha256(url.encode("utf-8")).digest()


class UrlCache:
    """The bodies under one cache folder; thread-safe within a process."""

    def __init__(self, folder):
        remote = is_remote(folder)
        self.folder = os.fspath(folder) if remote else Path(folder)
        self._packs_dir = self.folder / PACKS if not remote else None
        self._remote = _RemotePacks(f"{self.folder.rstrip('/')}/{PACKS}") if remote else None
        # A remote folder's records not written yet, and the pack they go to.
        self._pending = bytearray()
        self._pending_pack: str | None = None
        self._pending_pid = os.getpid()
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
        if self._remote is not None:
            self._refresh_remote()
            return
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

    def _refresh_remote(self) -> None:
        with self._lock:
            self._flush()
            for name in self._remote.names():
                pack = self._remote.path(name)
                start = self._indexed_to.get(pack, 0)
                data = self._remote.read(pack, start)
                if data:
                    self._index_records(pack, data, start)

    def _index_records(self, pack, data: bytes, start: int) -> None:
        """Indexes the complete records of `data`, the bytes of `pack` from `start`."""
        number = self._number(pack)
        at = 0
        while at + _HEADER.size <= len(data):
            magic, digest, length, crc = _HEADER.unpack_from(data, at)
            body = at + _HEADER.size
            if magic != _MAGIC or length >= 1 << _LENGTH_BITS or body + length > len(data):
                break  # as _scan: damage, or not complete yet
            self._index.setdefault(digest[:_KEY_BYTES],
                                   self._entry(number, start + body, length, crc))
            at = body + length
        self._indexed_to[pack] = start + at

    def get(self, url: str) -> bytes | None:
        key = url_key(url)[:_KEY_BYTES]
        with self._lock:
            entry = self._index.get(key)
            if entry is None:
                return None
            number, offset, length, crc = self._unpack(entry)
            pack = self._packs[number]
            pending = (bytes(self._pending[offset:offset + length])
                       if pack == self._pending_pack else None)
        if pending is not None:
            body = pending
        elif self._remote is not None:
            body = self._remote.read(pack, offset, length)
        else:
            body = self._read_local(pack, offset, length)
        if body is None or len(body) != length or zlib.crc32(body) != crc:
            with self._lock:
                if self._index.get(key) == entry:
                    del self._index[key]
            return None
        return body

    @staticmethod
    def _read_local(pack: Path, offset: int, length: int) -> bytes | None:
        try:
            descriptor = os.open(pack, os.O_RDONLY)
        except FileNotFoundError:
            body = None  # the cache was cleared under us
        else:
            try:
                body = os.pread(descriptor, length, offset)
            finally:
                os.close(descriptor)
        return body

    # --- writing -------------------------------------------------------------

    def put(self, url: str, body: bytes) -> None:
        digest = url_key(url)
        crc = zlib.crc32(body)
        record = _HEADER.pack(_MAGIC, digest, len(body), crc) + body
        if self._remote is not None:
            self._put_remote(digest, record, len(body), crc)
            return
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

    def _put_remote(self, digest: bytes, record: bytes, length: int, crc: int) -> None:
        with self._lock:
            self._drop_inherited_pending()
            if self._pending_pack is None:
                self._pending_pack = self._remote.path(_pack_name())
            offset = len(self._pending)
            self._pending += record
            self._index[digest[:_KEY_BYTES]] = self._entry(
                self._number(self._pending_pack), offset + _HEADER.size, length, crc)
            if len(self._pending) >= _REMOTE_PACK_BYTES:
                self._flush()

    def _flush(self) -> None:
        """Writes a remote folder's pending records as one new pack."""
        self._drop_inherited_pending()
        if self._pending_pack is None:
            return
        self._remote.write(self._pending_pack, bytes(self._pending))
        self._indexed_to[self._pending_pack] = len(self._pending)
        self._pending, self._pending_pack = bytearray(), None

    def _drop_inherited_pending(self) -> None:
        # Records a parent had not written when it forked are its own to
        # write; this process would write them to the parent's pack name.
        if self._pending_pid != os.getpid():
            self._pending, self._pending_pack, self._pending_pid = bytearray(), None, os.getpid()

    def flush(self) -> None:
        """Writes a remote folder's pending records now (a local folder's
        records are written as they come)."""
        if self._remote is not None:
            with self._lock:
                self._flush()

    def close(self) -> None:
        with self._lock:
            if self._remote is not None:
                self._flush()
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
        pack = self._packs_dir / _pack_name()
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


def _pack_name() -> str:
    # Time first, so packs list in the order they were started.
    return f"{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}{_SUFFIX}"


_OPEN: collections.OrderedDict[Path | str, UrlCache] = collections.OrderedDict()
_OPEN_LOCK = threading.Lock()


def open_cache(folder) -> UrlCache:
    """This process's cache of `folder`, brought up to date with what other
    processes added since it was last opened."""
    folder = os.fspath(folder).rstrip("/") if is_remote(folder) else Path(os.path.abspath(folder))
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


@atexit.register
def _write_pending() -> None:
    """A remote cache's last records are written when the process ends."""
    with _OPEN_LOCK:
        for cache in _OPEN.values():
            if cache._remote is not None:
                cache.close()
