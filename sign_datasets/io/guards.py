"""Guards `CleanedBuilder` puts around a build: damaged archives, empty
splits, a full disk and two builds of one dataset at once.

Each turns a failure that would otherwise surface as a bare traceback from
zipfile or TFDS (or not at all) into an error that names the file, the place
and what to do. `users_message` tells those errors (and the user's settings
and paths) from bugs of ours, for the command line's one-line reports.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import lzma
import os
import shutil
import socket
import sys
import tempfile
import time
import zipfile
import zlib
from typing import Iterator

from sign_datasets.io import sources
from sign_datasets.core.cleaning import SourceError, SplitReport

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
    """open(path, "rb") of a source file, through `open_source_descriptor`."""
    return os.fdopen(open_source_descriptor(path), "rb")


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


def no_records_error(dataset: str, split: str, report: SplitReport) -> SourceError | None:
    """The error for a split that would be written empty, or None.

    TFDS itself only says "No examples were yielded", without the file or
    why; the cleaning report knows both.
    """
    if report.kept:
        return None
    if not report.records:
        return SourceError(f"{dataset}: the {split} split's source holds no records, so "
                           "there is nothing to write.")
    reasons = []
    for reason, count in sorted(report.drops.items(), key=lambda kv: (-kv[1], kv[0])):
        first = report.examples.get(reason, [])[:3]
        reasons.append(f"{reason}={count}" + (f" (first: {'; '.join(first)})" if first else ""))
    return SourceError(f"{dataset}: all {report.records} records of the {split} split were "
                       f"dropped, so there is nothing to write: {', '.join(reasons)}.")


class DiskFullError(OSError):
    """The disk under the data or download dir filled up during a build."""


def disk_full_error(error: BaseException, dataset: str, data_dir) -> DiskFullError | None:
    """A clear error if `error` (or what caused it) is a full disk, else None.

    TensorFlow's writers report it as a RuntimeError wrapping a
    ResourceExhaustedError whose only hint is the C library's wording.
    """
    full_disk = os.strerror(errno.ENOSPC)
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if (isinstance(error, OSError) and error.errno == errno.ENOSPC) or full_disk in str(error):
            found = DiskFullError(
                f"{dataset}: the disk ran out of space during the build ({full_disk}: "
                f"{str(error).strip()[:300]}). Nothing was published: the partial files were "
                f"removed and {data_dir} holds no half-written dataset. Free some space (or pass "
                "another --data-dir / --download-dir) and build again.")
            found.errno = errno.ENOSPC
            return found
        error = error.__cause__ or error.__context__
    return None


# --- one build of a dataset version at a time -----------------------------------

LOCK_SUFFIX = ".lock"
# TFDS builds into "<parent>/incomplete.XXXXXX_<version>/" and renames it.
INCOMPLETE_PREFIX = "incomplete."


def _holder_text(descriptor: int) -> str:
    text = os.pread(descriptor, 300, 0).decode("utf-8", "replace").strip()
    return text or "another process"


@contextlib.contextmanager
def build_lock(version_dir, label: str) -> Iterator[None]:
    """Holds an exclusive lock on `<version_dir>.lock` while a build runs.

    TFDS alone lets two builds of one version into one data dir race: each
    writes its own incomplete folder, and the slower one fails at its final
    rename ("Cannot rename ... already exists") after all the work, while a
    build whose builder was made before the other finished reuses a folder
    it never read. With the lock the second build waits, says for whom, and
    then reads the finished dataset. Remote data dirs (gs://...) have no
    file locks; they are left to TFDS.
    """
    path = os.fspath(version_dir)
    if "://" in path:
        yield
        return
    lock_path = path.rstrip("/") + LOCK_SUFFIX
    try:
        os.makedirs(os.path.dirname(lock_path), exist_ok=True)
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        # A folder this process cannot write to: the build will fail there on
        # its own, with TFDS's error, and nobody else can be building into it.
        yield
        return
    try:
        # A POSIX record lock (lockf), not flock: it belongs to this process
        # alone, so worker processes forked during the build never hold it,
        # and it is gone the moment this process dies, even by SIGKILL.
        try:
            fcntl.lockf(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as busy:
            if busy.errno not in (errno.EACCES, errno.EAGAIN):
                raise
            print(f"{label} is being built into the same folder by {_holder_text(descriptor)} "
                  f"(lock {lock_path}); waiting for that build to finish.", file=sys.stderr)
            fcntl.lockf(descriptor, fcntl.LOCK_EX)
        holder = (f"process {os.getpid()} on {socket.gethostname()}, since "
                  f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n").encode()
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, holder, 0)
        yield
    finally:
        # Closing releases the lock. The file stays: deleting it would let a
        # third build lock a new file while the second still holds the old one.
        os.close(descriptor)


def remove_leftovers(version_dir) -> list[str]:
    """Deletes incomplete folders a killed build of this version left behind.

    Only safe under `build_lock`: any live build of the version would hold it.
    """
    path = os.fspath(version_dir).rstrip("/")
    if "://" in path:
        return []
    parent, version = os.path.split(path)
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(parent):
            if (entry.is_dir(follow_symlinks=False) and entry.name.startswith(INCOMPLETE_PREFIX)
                    and entry.name.endswith("_" + version)):
                shutil.rmtree(entry.path, ignore_errors=True)
                removed.append(entry.path)
    return removed


# --- errors a person can act on ----------------------------------------------------

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
    from sign_datasets.io.settings import SettingsError
    if os.path.exists(path) and not os.path.isdir(path):
        raise SettingsError(f"{what} {path}: is a file, not a folder; choose a folder")


def writable_folder(path, what: str) -> None:
    """Creates the folder if needed and writes a probe file into it.

    A data dir that is read-only, on a full disk or spelled with a name too
    long for the file system then fails with one line before any download,
    instead of deep inside TFDS. Remote folders (gs://...) are left to TFDS.
    """
    from sign_datasets.io.settings import SettingsError
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


def users_errors() -> tuple[type[BaseException], ...]:
    """Errors of input or settings whose message says what to do: no traceback."""
    from tensorflow_datasets.core.download.download_manager import NonMatchingChecksumError
    from tensorflow_datasets.core.registered import DatasetNotFoundError

    from sign_datasets.catalog import schema
    from sign_datasets.io import fetcher
    from sign_datasets.catalog.proposal import ProposalError
    from sign_datasets.io.settings import SettingsError
    from sign_datasets.io.sources import SourceConfigError
    errors = (SourceError, SourceConfigError, SettingsError, schema.CatalogError,
              schema.PathRefused, ProposalError, fetcher.Refused, DatasetNotFoundError,
              NonMatchingChecksumError, DiskFullError)
    # Not imported here: catalog.py imports the builders, which may be what
    # failed; its errors exist only once it is loaded.
    catalog = sys.modules.get("sign_datasets.catalog.registry")
    if catalog is not None:
        errors += (catalog.UnknownDatasetError, catalog.NotBuiltError)
    return errors


def users_message(error: BaseException) -> str | None:
    """The one line to show for an error the user can fix, or None for a bug of
    ours (which keeps its traceback so that it gets reported)."""
    from tensorflow_datasets.core.registered import DatasetNotFoundError
    if isinstance(error, DatasetNotFoundError):
        text = str(error).splitlines()[0]  # the rest lists every dataset TFDS knows
    elif isinstance(error, users_errors()):
        text = str(error)
    elif isinstance(error, OSError):
        text = os_problem(error)
    else:
        text = None
    if text is None:
        return None
    # Some messages list details on lines of their own; the CLI shows one line.
    line = " ".join(part.strip() for part in text.splitlines() if part.strip())
    return printable(line) or type(error).__name__


def printable(text: str) -> str:
    """`text` with control characters written as escapes: a name from a hostile
    file must not move the cursor, clear the screen or fake another line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
