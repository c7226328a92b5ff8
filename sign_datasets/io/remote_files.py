"""Files of a download dir on another file system (gs://, as cluster workers share it).

A local path stays a `pathlib.Path` and keeps the os calls the rest of io
uses (descriptors, pread, atomic rename). A path with a scheme TensorFlow's
file system reads (`gs://`, and `ram://` in tests) stays a string, since
`Path` would fold its `//`, and is reached through tf.io.gfile, so that a
worker on another machine opens what the launcher downloaded.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from pathlib import Path


def is_remote(path) -> bool:
    """Whether `path` is on a file system other than the local one."""
    text = os.fspath(path)
    return "://" in text and not text.startswith("file://")


def tensorflow():
    """TensorFlow, for its file system: seconds to import, so only remote
    paths (and gs:// sources) import it."""
    import tensorflow as tf  # start-up time

    return tf


def as_path(path) -> Path | str:
    """A local path as a Path; a remote one as its URL string."""
    return os.fspath(path).rstrip("/") if is_remote(path) else Path(os.fspath(path))


def join(folder, *names: str) -> Path | str:
    """`folder/name/...` in the form `as_path` gives."""
    if is_remote(folder):
        return "/".join([os.fspath(folder).rstrip("/"), *names])
    return Path(os.fspath(folder), *names)


def parent(path) -> Path | str:
    if is_remote(path):
        return os.fspath(path).rstrip("/").rsplit("/", 1)[0]
    return Path(os.fspath(path)).parent


def name(path) -> str:
    """The last part of a path, local or remote."""
    return os.fspath(path).rstrip("/").rsplit("/", 1)[-1]


def is_file(path) -> bool:
    if not is_remote(path):
        return Path(os.fspath(path)).is_file()
    gfile = tensorflow().io.gfile
    return gfile.exists(os.fspath(path)) and not gfile.isdir(os.fspath(path))


def identity(path) -> tuple[int, int]:
    """(size, modification time in ns) of a remote object: what a bucket
    says about which object a name holds (a replaced object changes it)."""
    tf = tensorflow()
    try:
        found = tf.io.gfile.stat(os.fspath(path))
    except tf.errors.NotFoundError:
        raise FileNotFoundError(errno.ENOENT, "no such object", os.fspath(path)) from None
    return found.length, found.mtime_nsec


def size(path) -> int:
    """A file's size in bytes, local or remote."""
    if not is_remote(path):
        return os.stat(path).st_size
    return identity(path)[0]


def open_read(path):
    """tf.io.gfile.GFile of a remote object, for reading (seekable)."""
    return tensorflow().io.gfile.GFile(os.fspath(path), "rb")


def read_bytes(path) -> bytes:
    if not is_remote(path):
        return Path(os.fspath(path)).read_bytes()
    with open_read(path) as stream:
        return stream.read()


def remove(path) -> bool:
    """Removes a file; False if it was not there."""
    if not is_remote(path):
        try:
            os.unlink(path)
        except FileNotFoundError:
            return False
        return True
    tf = tensorflow()
    try:
        tf.io.gfile.remove(os.fspath(path))
    except tf.errors.NotFoundError:
        return False
    return True


class NewFile:
    """A file written under a temporary name beside `target` and renamed
    into place by `commit`, so a reader never finds a partial body; a
    unique name keeps concurrent builds out of each other's file."""

    def __init__(self, target, make_folder: bool = True):
        self.target = target
        self.partial = f"{os.fspath(target)}.{secrets.token_hex(6)}.part"
        self._remote = is_remote(target)
        if self._remote:
            gfile = tensorflow().io.gfile
            gfile.makedirs(os.fspath(parent(target)))
            self._stream = gfile.GFile(self.partial, "wb")
        else:
            if make_folder:
                Path(os.fspath(target)).parent.mkdir(parents=True, exist_ok=True)
            self._descriptor = os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        self._open = True

    def write(self, data) -> None:
        if self._remote:
            self._stream.write(bytes(data))
            return
        view = memoryview(data)
        while view:
            view = view[os.write(self._descriptor, view):]

    def _close(self) -> None:
        if self._open:
            self._open = False
            if self._remote:
                self._stream.close()
            else:
                os.close(self._descriptor)

    def commit(self) -> None:
        self._close()
        if self._remote:
            tensorflow().io.gfile.rename(self.partial, os.fspath(self.target), overwrite=True)
        else:
            os.replace(self.partial, self.target)
        self.partial = ""

    def discard(self) -> None:
        """Closes and removes the temporary file, unless committed."""
        with contextlib.suppress(OSError):
            self._close()
        if self.partial:
            remove(self.partial)
            self.partial = ""


@contextlib.contextmanager
def new_file(target):
    """A NewFile, committed when the block ends without an error."""
    file = NewFile(target)
    try:
        yield file
        file.commit()
    finally:
        file.discard()
