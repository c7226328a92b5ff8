"""Guards `CleanedBuilder` puts around a build: empty splits, a full disk and
two builds of one dataset at once.

Each turns a failure that would otherwise surface as a bare traceback from
TFDS (or not at all) into an error that names the dataset, the place and
what to do.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import socket
import sys
import time
from typing import Iterator

from sign_datasets.core.cleaning import SourceError, SplitReport


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

