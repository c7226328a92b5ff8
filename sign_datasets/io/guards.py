"""Opening sources safely, and the errors of the user's own paths.

A source file checked beneath the allowed roots is pinned, and every later
open (`open_source`, also in forked workers) must meet that very file. A
source downloaded into a remote download dir (gs://) is opened through
TensorFlow's file system instead; its size and modification time, pinned
when the download returned it, stand in for the inode. Zip
archives and their members are read with errors that name the file, the
member and the byte where they are damaged, and say what to do. `os_problem`
and the folder checks turn an OSError of the user's paths into one line.
"""

from __future__ import annotations

import errno
import io
import lzma
import os
import tempfile
import zipfile
import zlib

from sign_datasets.core.cleaning import SourceError
from sign_datasets.io import remote_files, sources
from sign_datasets.io.settings import SettingsError


# What zipfile and its decompressors raise for a damaged member: a bad CRC,
# a broken deflate/bzip2/LZMA stream, or a file cut short.
_DAMAGED_MEMBER_ERRORS = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError)


# Bytes handed to zipfile per read: the granularity of the position named
# when a member turns out damaged.
_MEMBER_PIECE = 64 * 1024


class DamagedArchiveError(SourceError):
    """A downloaded archive cannot be read; deleting the download fixes it."""


def describe_download(path) -> str:
    """The file's name as messages give it: a download as its object's own
    name and where it is kept."""
    name = sources.downloaded_name(path)
    return f"{name} ({path})" if name is not None else str(path)


def _remedy(path, broken: str) -> str:
    """What to do about a damaged archive: fetch a download again, replace a file."""
    if sources.downloaded_name(path) is not None:
        return f"the download may be {broken}. Delete the file and build again"
    return f"the file may be {broken}. Replace it and build again"


class SourceChanged(SourceError):
    """A source file was replaced after it was checked beneath the allowed roots."""


# real path -> (device, inode) of every source file checked beneath the allowed
# roots in this process (and, through fork, in its decode workers).
_PINNED: dict[str, tuple[int, int]] = {}


def pin(path) -> None:
    """Records which file `path` (a resolved, checked path) is now, so that
    `open_source` can refuse another file swapped in under the same name."""
    found = os.stat(path)
    _PINNED[os.fspath(path)] = (found.st_dev, found.st_ino)


def open_source_descriptor(path) -> int:
    """os.open of a source file for reading; when the path was pinned, the
    file opened must be the one that was checked (a symlink or another file
    renamed over it since is refused: the check is on what was opened)."""
    name = os.fspath(path)
    pinned = _PINNED.get(name)
    if pinned is None:
        return os.open(name, os.O_RDONLY | os.O_CLOEXEC)
    try:
        descriptor = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise SourceChanged(f"{name}: replaced by a symbolic link after it was checked; "
                                "build again, and ask who changes the folder") from None
        raise
    found = os.fstat(descriptor)
    if (found.st_dev, found.st_ino) != pinned:
        os.close(descriptor)
        raise SourceChanged(f"{name}: replaced by another file after it was checked; build "
                            "again, and ask who changes the folder")
    return descriptor


def open_source(path):
    """open(path, "rb") of a source file, through `open_source_descriptor`;
    a remote one (under a gs:// download dir) through `open_remote_source`."""
    if remote_files.is_remote(path):
        return io.BufferedReader(open_remote_source(path), buffer_size=1 << 20)
    return os.fdopen(open_source_descriptor(path), "rb")


# URL of every source object downloaded into a remote download dir in this
# process -> (size, modification time) of the object then.
_PINNED_REMOTE: dict[str, tuple[int, int]] = {}


def pinned_remote(path):
    """`path`; a remote one's object is pinned: every later
    `open_source` must find the same size and modification time."""
    if remote_files.is_remote(path):
        _PINNED_REMOTE[os.fspath(path)] = remote_files.identity(path)
    return path


class PositionedReader(io.RawIOBase):
    """A readable, seekable raw stream that keeps its own position; a
    subclass says where its end is and reads at the position."""

    _pos = 0

    def end(self) -> int:
        raise NotImplementedError

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos}.get(whence)
        if base is None:
            base = self.end()
        if base + offset < 0:  # as a file would: zipfile expects OSError for a short file
            raise OSError(errno.EINVAL, f"negative seek position {base + offset}")
        self._pos = base + offset
        return self._pos


class RemoteSource(PositionedReader):
    """A remote object, read (seekable, as zipfile needs) through
    tf.io.gfile; never past the size it had when opened, so an object that
    grows while it is read yields no more than was checked."""

    def __init__(self, name: str, identity: tuple[int, int]):
        super().__init__()
        self.name, self.identity = name, identity
        self.size = identity[0]
        self._stream = remote_files.open_read(name)

    def end(self) -> int:
        return self.size

    def readinto(self, buffer) -> int:
        wanted = max(0, min(len(buffer), self.size - self._pos))
        if not wanted:
            return 0
        self._stream.seek(self._pos)
        data = self._stream.read(wanted)
        memoryview(buffer).cast("B")[:len(data)] = data
        self._pos += len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._stream.close()
        super().close()


def open_remote_source(path) -> RemoteSource:
    """A remote source object for reading; when it was pinned, it must still
    have the pinned size and modification time (a bucket object has no
    inode: a replaced one is told by these)."""
    name = os.fspath(path)
    found = remote_files.identity(name)
    pinned = _PINNED_REMOTE.get(name)
    if pinned is not None and found != pinned:
        raise SourceChanged(f"{name}: replaced by another object after it was downloaded "
                            f"({pinned[0]:,} bytes then, {found[0]:,} now); build again, and "
                            "ask who writes to the download dir")
    return RemoteSource(name, found)


class _SourceZip(zipfile.ZipFile):
    """A ZipFile over a stream we opened, which it closes with itself."""

    def __init__(self, stream):
        # Set first: ZipFile.__init__ may fail, and __del__ then calls close().
        self.source_stream = stream
        super().__init__(stream)

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.source_stream.close()


def open_zip(archive) -> zipfile.ZipFile:
    """zipfile.ZipFile of a source file (see open_source), with an error that
    names the file if it is no zip."""
    stream = None
    try:
        stream = open_source(archive)
        return _SourceZip(stream)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        if stream is not None:
            stream.close()
        raise DamagedArchiveError(
            f"{describe_download(archive)}: not a readable zip archive ({error}); "
            f"{_remedy(archive, 'incomplete or an error page')}.") from None


class MemberStream(io.RawIOBase):
    """A zip member as a raw stream whose read errors name archive, member and byte.

    zipfile reports a damaged member as "Bad CRC-32" or a zlib error with
    neither the archive nor the position; by then some records may have been
    read, so the build must stop with a message that says where.
    """

    def __init__(self, zip_file: zipfile.ZipFile, info: zipfile.ZipInfo, archive):
        super().__init__()
        self._member = zip_file.open(info)
        self._where = f"{describe_download(archive)}: member {info.filename!r}"
        self._archive = archive
        self._offset = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        piece = memoryview(buffer)[:_MEMBER_PIECE]
        try:
            count = self._member.readinto(piece)
        except _DAMAGED_MEMBER_ERRORS as error:
            raise DamagedArchiveError(
                f"{self._where}: damaged between bytes {self._offset:,} and "
                f"{self._offset + len(piece):,} of the member "
                f"({type(error).__name__}: {error}); {_remedy(self._archive, 'corrupt')}; "
                "nothing was written.") from None
        self._offset += count
        return count

    def close(self) -> None:
        self._member.close()
        super().close()


# What the system says when a folder or file cannot be written or read, and
# what the person can do about it. Other OSErrors keep their traceback.
_OS_HINTS = {
    errno.EROFS: "the file system is read-only; choose a folder on a writable disk",
    errno.EACCES: "permission denied; choose a folder you may write to, or fix its permissions",
    errno.EPERM: "operation not permitted; choose a folder you may write to",
    errno.ENAMETOOLONG: "a name in this path is too long for the file system (most allow 255 "
                        "bytes a name); choose a shorter path",
    errno.ENOSPC: "no space left on the disk; free some space or choose another folder",
    errno.EDQUOT: "disk quota exceeded; free some space or choose another folder",
    errno.ENOENT: "no such file or folder; check the path",
    errno.ENOTDIR: "a part of this path is a file, not a folder; check the path",
    errno.EISDIR: "this is a folder where a file is needed; check the path",
    errno.EEXIST: "it already exists; choose another path or remove it",
    errno.ELOOP: "too many symbolic links; check the path",
    errno.EADDRINUSE: "the port is in use; choose another --port (0 picks a free one)",
}


def os_problem(error: OSError) -> str | None:
    """'PATH: what is wrong; what to do' for an OSError of the user's paths, else None."""
    if error.errno is None and isinstance(error, FileNotFoundError):
        return str(error)  # ours, e.g. "replica folder not found: DIR"
    hint = _OS_HINTS.get(error.errno)
    if hint is None:
        return None
    if error.filename is None:
        return f"{hint} ({error.strerror or error})"
    return f"{os.fsdecode(error.filename)}: {hint}"


def no_file_for_folder(path, what: str) -> None:
    """Refuses a file where a folder (existing or to be made) is named."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise SettingsError(f"{what} {path}: is a file, not a folder; choose a folder")


def writable_folder(path, what: str) -> None:
    """Creates the folder if needed and writes a probe file into it.

    A data dir that is read-only, on a full disk or spelled with a name too
    long for the file system then fails with one line before any download,
    instead of deep inside TFDS. Remote folders (gs://...) are left to TFDS.
    """
    path = os.fspath(path)
    if "://" in path:
        return
    no_file_for_folder(path, what)
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        problem = os_problem(error) or f"{path}: {error.strerror or error}"
        raise SettingsError(f"{what} {problem}") from None

