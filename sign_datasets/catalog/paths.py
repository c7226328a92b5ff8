"""Where a catalog's local files may be, and opening them there.

A catalog is untrusted input (docs/SECURITY.md): a local path may only point
beneath an allowed root (`allowed_roots`), so that a catalog found on a
shared disk cannot make a build read arbitrary files of the machine that
builds it. The roots are checked on the real path (after percent-decoding,
`~`, `..` and symlinks) when the catalog is read, and again right before a
build opens the file (`source_path`, `open_beneath`). The checks of what a
location or an object name may hold live here too.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import unicodedata
import urllib.parse
from pathlib import Path
from typing import Any, BinaryIO, Iterable

from sign_datasets.catalog.entries import Entry, Source
from sign_datasets.io import guards, sources

ALLOWED_ROOTS_ENV = "SIGN_DATASETS_ALLOWED_ROOTS"
URL_SCHEMES = ("http", "https", "gs")
MAX_LOCATION = 4_096            # location, object, member, homepage
# Unicode categories no name may hold: controls (newlines included), format
# characters (bidi overrides, zero-width), line and paragraph separators.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def shown(value: Any, limit: int = 80) -> str:
    """repr of a value for a message, cut: a hostile value must not flood it."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"



def forbidden_char(text: str) -> str | None:
    """The first control or format character of `text`, if any."""
    return next((c for c in text if unicodedata.category(c) in _FORBIDDEN_CATEGORIES), None)



class PathRefused(ValueError):
    """A local path that leads outside the allowed roots, or is no file to read."""


def _expand_root(raw: str, variable: str) -> Path:
    try:
        return Path(raw).expanduser().resolve()
    except RuntimeError:    # ~nosuchuser
        raise PathRefused(f"{variable}={raw!r}: no such user's home; give the folder "
                          "as an absolute path") from None


def allowed_roots(catalog_file: Path) -> list[Path]:
    """Where a catalog's local paths may point: the catalog's own folder, the
    SIGN_DATASETS_SOURCE folder and every folder of SIGN_DATASETS_ALLOWED_ROOTS.

    The setting is the builder's, not the catalog's: a catalog that could
    widen its own roots would guard nothing.
    """
    roots = [Path(catalog_file).resolve().parent]
    raw_source = os.environ.get(sources.SOURCE_ENV, "").strip()
    if raw_source:
        parts = urllib.parse.urlsplit(raw_source)
        if parts.scheme == "file":
            roots.append(Path(urllib.parse.unquote(parts.path)).resolve())
        elif len(parts.scheme) <= 1:
            roots.append(_expand_root(raw_source, sources.SOURCE_ENV))
    for raw in os.environ.get(ALLOWED_ROOTS_ENV, "").split(":"):
        if raw.strip():
            roots.append(_expand_root(raw.strip(), ALLOWED_ROOTS_ENV))
    return list(dict.fromkeys(roots))


def _beneath(path: Path, roots: Iterable[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def resolve_beneath(path: str | Path, roots: Iterable[Path], base: Path | None = None) -> Path:
    """The real path `path` names now (`~` expanded, relative to `base`,
    `..` and every symlink resolved), if it lies beneath one of `roots`.

    Raises PathRefused otherwise. The answer holds only now: call it right
    before opening, and open what it returns (`open_beneath` does both).
    """
    roots = list(roots)
    text = os.fspath(path)
    bad = forbidden_char(text)
    if bad is not None:
        raise PathRefused(f"{shown(text)} holds the control character {bad!r}")
    try:
        expanded = Path(text).expanduser()
    except RuntimeError:
        user = text[1:].split("/", 1)[0]
        raise PathRefused(f"{shown(text)}: no user {shown(user)} on this machine, so '~' "
                          "names no folder; give the path relative to the catalog") from None
    if not expanded.is_absolute():
        expanded = (base or Path.cwd()) / expanded
    try:
        real = expanded.resolve()
    except (OSError, RuntimeError, ValueError) as error:   # a symlink loop, ENAMETOOLONG
        raise PathRefused(f"{shown(text)} cannot be resolved "
                          f"({type(error).__name__}: {getattr(error, 'strerror', None) or error})"
                          ) from None
    if not _beneath(real, roots):
        raise PathRefused(f"{real} is outside the allowed roots "
                          f"({', '.join(map(str, roots))}); add its folder to "
                          f"{ALLOWED_ROOTS_ENV} to allow it")
    return real


def _opened_path(fd: int) -> Path | None:
    """The path the kernel says an open file has (Linux), or None."""
    try:
        return Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        return None


def open_beneath(path: str | Path, roots: Iterable[Path]) -> BinaryIO:
    """Opens a regular file for reading only if the file actually opened lies
    beneath `roots`: resolved now, its last part opened without following a
    symlink, and on Linux the opened file's own path checked again, so a
    symlink swapped in meanwhile leads nowhere. A FIFO or device is refused
    rather than read (it could block a build forever)."""
    roots = list(roots)
    real = resolve_beneath(path, roots)
    flags = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
             | getattr(os, "O_CLOEXEC", 0))
    try:
        fd = os.open(real, flags)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise PathRefused(f"{real} became a symbolic link after it was checked") from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise PathRefused(f"{real} is not a regular file")
        opened = _opened_path(fd)
        if opened is not None and not _beneath(opened, roots):
            raise PathRefused(f"{real} led to {opened}, outside the allowed roots")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def source_path(entry: Entry, source: Source) -> Path | None:
    """The real local file a source is read from, checked beneath the allowed
    roots now; None for a source that is not on this machine.

    Every opener of a catalog source calls this right before opening, and
    opens what it returns: the catalog was checked when it was read, but a
    symlink may have been swapped since. Raises CatalogError naming the field.
    """
    if source.kind == "path":
        raw = source.target
    elif source.kind == "object":
        local = sources.local_path(sources.object_url(source.target))
        if local is None:
            return None
        raw = os.fspath(local)
    else:
        return None
    try:
        real = resolve_beneath(raw, allowed_roots(entry.file))
    except PathRefused as error:
        raise entry.error(source.where_field, str(error)) from None
    if real.exists() and not real.is_file():
        raise entry.error(source.where_field, f"{real} is not a regular file")
    if real.exists():
        guards.pin(real)  # every later open must meet this very file
    return real



def sha256_of(path: Path, roots: Iterable[Path] | None = None) -> str:
    """The file's sha256; with `roots`, read only if it lies beneath them
    (`open_beneath`: a catalog source's file)."""
    with (guards.open_source(path) if roots is None else open_beneath(path, roots)) as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def classify_location(text: str) -> tuple[str, str] | None:
    """("url", url) or ("path", path: as written, or a file:// URL's path
    percent-decoded), or None when it is neither."""
    if not text.strip() or forbidden_char(text) is not None:
        return None
    try:
        parts = urllib.parse.urlsplit(text)
    except ValueError:      # "http://[::1": a bracket never closed
        return None
    scheme = parts.scheme.lower()
    if scheme in URL_SCHEMES:
        return ("url", text) if parts.netloc else None
    if scheme == "file":
        path = urllib.parse.unquote(parts.path)
        if (parts.netloc not in ("", "localhost") or not path.startswith("/")
                or parts.query or parts.fragment or forbidden_char(path) is not None):
            return None
        return "path", path
    if len(scheme) > 1:   # ftp:, s3:, mailto: ... (one letter is a drive)
        return None
    return "path", text


def _fully_decoded(text: str) -> str:
    """`text` percent-decoded until it stops changing: `%252e` is `.` to a
    server that decodes twice."""
    for _ in range(4):
        decoded = urllib.parse.unquote(text)
        if decoded == text:
            break
        text = decoded
    return text


def object_name_problem(name: str) -> str | None:
    """Why `name` is no object name under SIGN_DATASETS_SOURCE, or None."""
    if not name.strip():
        return "is empty"
    if len(name) > MAX_LOCATION:
        return f"is longer than {MAX_LOCATION:,} characters"
    if "?" in name or "#" in name:
        return "holds '?' or '#'; an object name is a path, not a URL"
    for text in (name, _fully_decoded(name)):
        bad = forbidden_char(text)
        if bad is not None:
            return f"holds the control character {bad!r}"
        if "\\" in text:
            return "holds a backslash; separate folders with '/'"
        if text.startswith(("/", "~")):
            return "must be relative to SIGN_DATASETS_SOURCE"
        if any(part in ("", ".", "..") for part in text.split("/")):
            return "has an empty, '.' or '..' part (percent-encoded ones count)"
    return None

