"""Datasets declared in TOML catalogs rather than in Python.

A catalog file holds `[[dataset]]` entries: name, version and release notes,
description, one of the four source formats, where the sources are (URL or
path, optional sha256 each), image mode and size, class names, cleaning
options and the usual metadata. README.md ("The team catalog") has a full
example.

Two kinds of catalog exist:

* the project's own, `sign_datasets/catalog/catalog.toml`: the seven course
  datasets. Their builders stay in `builders/` (TFDS's folder layout, with
  READMEs, dummy data and checksums); they read their version, release notes,
  homepage, archive, classes and mode from their entry here.
* team catalogs, named by `SIGN_DATASETS_CATALOG` (paths separated by `:`):
  `import sign_datasets` validates them and generates one TFDS builder class
  per entry (`builder_class`), registered under the entry's name.

Every problem is a `CatalogError` naming the file, the entry and the field.
A catalog is untrusted input (docs/SECURITY.md): every name that becomes part
of a path matches a strict pattern, every size and count has a cap, and a
local path may only point beneath an allowed root (`allowed_roots`), so that
a catalog found on a shared disk cannot make a build read arbitrary files of
the machine that builds it. The roots are checked on the real path (after
percent-decoding, `~`, `..` and symlinks) when the catalog is read, and again
right before a build opens the file (`source_path`, `open_beneath`).
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import os
import re
import stat
import tomllib
import unicodedata
import urllib.parse
from pathlib import Path
from typing import Any, BinaryIO, Iterable

CATALOG_ENV = "SIGN_DATASETS_CATALOG"
ALLOWED_ROOTS_ENV = "SIGN_DATASETS_ALLOWED_ROOTS"
PROJECT_CATALOG = Path(__file__).resolve().with_name("catalog.toml")

FORMATS = ("csv_pixels", "json_urls", "base64_json", "zip_folders")
MODES = {"L": 1, "RGB": 3}
URL_SCHEMES = ("http", "https", "gs")

# field -> (accepted Python types, required)
ENTRY_FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {
    "name": ((str,), True),
    "version": ((str,), True),
    "release_notes": ((dict,), False),
    "description": ((str,), True),
    "format": ((str,), True),
    "sources": ((list,), True),
    "image": ((dict,), True),
    "classes": ((list,), True),
    "csv_labels": ((list,), False),
    "cleaning": ((dict,), False),
    "configs": ((list,), False),
    "homepage": ((str,), False),
    "license": ((str,), False),
    "citation": ((str,), False),
}
SOURCE_FIELDS = {"location": (str,), "object": (str,), "split": (str,), "member": (str,),
                 "sha256": (str,), "config": (str,)}
IMAGE_FIELDS = {"mode": (str,), "size": (list,)}
CONFIG_FIELDS = {"name": (str,), "description": (str,), "size": (list,),
                 "drop_leaked_from_test": (bool,)}
# Which cleaning options each reader understands.
CLEANING_FIELDS = {
    "csv_pixels": {"drop_duplicates": (bool,)},
    "zip_folders": {"drop_leaked_from_test": (bool,)},
    "json_urls": {"max_failed_share": (int, float)},
    "base64_json": {},
}

# Names that become parts of data-dir paths. Matched with fullmatch: `$`
# would let a trailing newline through, `\d` any Unicode digit.
_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_CONFIG_NAME = re.compile(r"[a-z0-9][a-z0-9_]{0,63}")
_VERSION = re.compile(r"[0-9]{1,9}\.[0-9]{1,9}\.[0-9]{1,9}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SPLIT = re.compile(r"[a-z][a-z0-9_]{0,63}")

# Caps: past one, a clear CatalogError instead of work or memory without bound.
MAX_CATALOG_BYTES = 16 * 1024 * 1024
MAX_ENTRIES = 1_000
MAX_SOURCES = 1_000
MAX_CONFIGS = 100
MAX_RELEASE_NOTES = 1_000
MAX_CLASSES = 10_000
MAX_CLASS_NAME = 200
MAX_TEXT = 64 * 1024            # description, citation, license, release notes
MAX_LOCATION = 4_096            # location, object, member, homepage
MAX_SIDE = 16_384
MAX_IMAGE_VALUES = 40_000_000   # height * width * channels, as images.MAX_IMAGE_PIXELS
MAX_CSV_VALUES = 1_000_000      # a csv_pixels row holds one column per value
# Unicode categories no name may hold: controls (newlines included), format
# characters (bidi overrides, zero-width), line and paragraph separators.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})

_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "a boolean",
               list: "an array", dict: "a table"}


class CatalogError(ValueError):
    """A catalog that cannot be used; the message names file, entry and field."""

    def __init__(self, file: Path | str, entry: str | None, field: str | None, problem: str):
        self.file, self.entry, self.field, self.problem = str(file), entry, field, problem
        where = [str(file)]
        if entry is not None:
            where.append(f"entry {entry}")
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(": ".join(where) + ": " + problem)


def _type_name(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _expected(types: tuple[type, ...]) -> str:
    return " or ".join(_TYPE_NAMES[t] for t in types)


def _shown(value: Any, limit: int = 80) -> str:
    """repr of a value for a message, cut: a hostile value must not flood it."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _key_shown(key: str) -> str:
    """A TOML key for a field name in a message: as written when short and plain."""
    return key if len(key) <= 40 and _forbidden_char(key) is None else _shown(key, 40)


def _forbidden_char(text: str) -> str | None:
    """The first control or format character of `text`, if any."""
    return next((c for c in text if unicodedata.category(c) in _FORBIDDEN_CATEGORIES), None)


def _is(value: Any, types: tuple[type, ...]) -> bool:
    # TOML booleans are Python ints too; `true` is no count.
    if isinstance(value, bool) and bool not in types:
        return False
    return isinstance(value, types)


# --- the parsed form --------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Source:
    """One source object of an entry. `kind` is "url", "path" or "object" (an
    object of the SIGN_DATASETS_SOURCE base: the course bucket by default)."""

    kind: str
    target: str
    split: str = "train"
    member: str | None = None
    sha256: str | None = None
    config: str | None = None
    field: str = ""          # where it is declared, e.g. "sources[0]"
    # Set when two sources of an entry share a file name: a longer path
    # suffix that tells them apart (see `_distinct_labels`).
    name: str | None = None

    @property
    def label(self) -> str:
        """The name keys and messages use: the file's name, and the member
        inside it; a longer path suffix when another source shares that name."""
        return self.name if self.name is not None else self.suffix_label(1)

    def path_parts(self) -> list[str]:
        """The parts of where the source is, host first for a URL."""
        if self.kind == "url":
            parts = urllib.parse.urlsplit(self.target)
            return [parts.netloc] + [p for p in parts.path.split("/") if p]
        return [p for p in self.target.split("/") if p] or [self.target]

    def suffix_label(self, depth: int) -> str:
        """The last `depth` parts of the source's path, and its member."""
        if depth == 1:
            # The historic label: keys of existing datasets keep their bytes.
            base = self.target.rstrip("/").rsplit("/", 1)[-1] or self.target
        else:
            base = "/".join(self.path_parts()[-depth:])
        return f"{base}/{self.member}" if self.member else base

    @property
    def where_field(self) -> str:
        """The field that names this source's file, e.g. "sources[0].location"."""
        return f"{self.field}.{'object' if self.kind == 'object' else 'location'}"


@dataclasses.dataclass(frozen=True)
class ConfigDecl:
    name: str
    description: str = ""
    size: tuple[int, int] | None = None
    drop_leaked_from_test: bool = False


@dataclasses.dataclass(frozen=True)
class Entry:
    file: Path
    index: int
    name: str
    version: str
    description: str
    format: str
    sources: tuple[Source, ...]
    mode: str
    classes: tuple[str, ...]
    size: tuple[int, int] | None = None
    release_notes: dict = dataclasses.field(default_factory=dict)
    csv_labels: tuple[int, ...] | None = None
    cleaning: dict = dataclasses.field(default_factory=dict)
    configs: tuple[ConfigDecl, ...] = ()
    homepage: str = ""
    license: str = ""
    citation: str = ""

    @property
    def channels(self) -> int:
        return MODES[self.mode]

    @property
    def shape(self) -> tuple[int | None, int | None, int]:
        height, width = self.size or (None, None)
        return height, width, self.channels

    @property
    def splits(self) -> tuple[str, ...]:
        if self.format == "zip_folders":
            return ("train", "test")
        return tuple(dict.fromkeys(source.split for source in self.sources))

    def error(self, field: str | None, problem: str) -> CatalogError:
        return CatalogError(self.file, repr(self.name), field, problem)

    def sources_for(self, split: str, config: str | None = None) -> list[Source]:
        return [s for s in self.sources
                if s.split == split and (s.config is None or s.config == config)]

    def file_labels(self) -> tuple[int, ...]:
        """The label each class has in a CSV (default: its index)."""
        return self.csv_labels if self.csv_labels is not None else tuple(range(len(self.classes)))


# --- allowed roots ------------------------------------------------------------------

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
    from sign_datasets.io import sources
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
    bad = _forbidden_char(text)
    if bad is not None:
        raise PathRefused(f"{_shown(text)} holds the control character {bad!r}")
    try:
        expanded = Path(text).expanduser()
    except RuntimeError:
        user = text[1:].split("/", 1)[0]
        raise PathRefused(f"{_shown(text)}: no user {_shown(user)} on this machine, so '~' "
                          "names no folder; give the path relative to the catalog") from None
    if not expanded.is_absolute():
        expanded = (base or Path.cwd()) / expanded
    try:
        real = expanded.resolve()
    except (OSError, RuntimeError, ValueError) as error:   # a symlink loop, ENAMETOOLONG
        raise PathRefused(f"{_shown(text)} cannot be resolved "
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


def source_path(entry: "Entry", source: "Source") -> Path | None:
    """The real local file a source is read from, checked beneath the allowed
    roots now; None for a source that is not on this machine.

    Every opener of a catalog source calls this right before opening, and
    opens what it returns: the catalog was checked when it was read, but a
    symlink may have been swapped since. Raises CatalogError naming the field.
    """
    if source.kind == "path":
        raw = source.target
    elif source.kind == "object":
        from sign_datasets.io import sources
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
        from sign_datasets.io import guards
        guards.pin(real)  # every later open must meet this very file
    return real


# --- validation ------------------------------------------------------------------------

def classify_location(text: str) -> tuple[str, str] | None:
    """("url", url) or ("path", path: as written, or a file:// URL's path
    percent-decoded), or None when it is neither."""
    if not text.strip() or _forbidden_char(text) is not None:
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
                or parts.query or parts.fragment or _forbidden_char(path) is not None):
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
        bad = _forbidden_char(text)
        if bad is not None:
            return f"holds the control character {bad!r}"
        if "\\" in text:
            return "holds a backslash; separate folders with '/'"
        if text.startswith(("/", "~")):
            return "must be relative to SIGN_DATASETS_SOURCE"
        if any(part in ("", ".", "..") for part in text.split("/")):
            return "has an empty, '.' or '..' part (percent-encoded ones count)"
    return None


def class_name_problem(name: str) -> str | None:
    """Why `name` (NFC) cannot be a class name, or None.

    Class names end up in labels.txt (one per line), on pages and in zip
    folder matches: nothing invisible, nothing that reads as a path.
    """
    if not name.strip():
        return "is empty"
    if len(name) > MAX_CLASS_NAME:
        return f"is {len(name):,} characters long, more than {MAX_CLASS_NAME}"
    bad = _forbidden_char(name)
    if bad is not None:
        return f"holds the control or format character {bad!r}"
    if "/" in name or "\\" in name:
        return "holds '/' or '\\'"
    if name != name.strip():
        return "has leading or trailing whitespace"
    if name in (".", ".."):
        return "is '.' or '..'"
    return None


def _distinct_labels(sources: list[Source]) -> list[Source]:
    """The sources, those sharing a file name labelled by the shortest path
    suffix that tells them apart (`2023/data.csv`, `2024/data.csv`): keys
    stay unique and say which file a record came from. Sources with a name
    of their own keep the historic label, so existing datasets keep their keys."""
    groups: dict[str, list[Source]] = {}
    for source in sources:
        groups.setdefault(source.label, []).append(source)
    names: dict[str, str] = {}
    for group in groups.values():
        files = {(s.kind, s.target, s.member): s for s in group}
        if len(files) == 1:
            continue
        deepest, depth = max(len(s.path_parts()) for s in group), 1
        for depth in range(2, deepest + 1):
            labels = {s.suffix_label(depth) for s in files.values()}
            if len(labels) == len(files):
                break
        for source in group:
            names[source.field] = source.suffix_label(depth)
    return [dataclasses.replace(s, name=names[s.field]) if s.field in names else s
            for s in sources]


class _Checker:
    """Validates one raw entry into an `Entry`; raises on the first problem."""

    def __init__(self, file: Path, index: int, raw: Any, roots: list[Path]):
        self.file, self.index, self.raw, self.roots = file, index, raw, roots
        name = raw.get("name") if isinstance(raw, dict) else None
        self.entry = _shown(name) if isinstance(name, str) and name else f"#{index + 1} (no name)"

    def fail(self, field: str | None, problem: str) -> CatalogError:
        return CatalogError(self.file, self.entry, field, problem)

    def table(self, raw: Any, fields: dict, where: str, required: Iterable[str] = ()) -> dict:
        if not isinstance(raw, dict):
            raise self.fail(where or None, f"expected a table, found {_type_name(raw)}")
        prefix = f"{where}." if where else ""
        for key, value in raw.items():
            if key not in fields:
                raise self.fail(prefix + _key_shown(key), "unknown key; known keys are "
                                + ", ".join(sorted(fields)))
            if not _is(value, fields[key]):
                raise self.fail(prefix + key, f"expected {_expected(fields[key])}, "
                                              f"found {_type_name(value)}")
        for key in required:
            if key not in raw:
                raise self.fail(prefix + key, "missing")
        return raw

    def count(self, values: Any, field: str, cap: int, what: str) -> None:
        if len(values) > cap:
            raise self.fail(field, f"{len(values):,} {what}, more than the {cap:,} a catalog "
                                   "entry may have")

    def text(self, value: str, field: str, cap: int = MAX_TEXT) -> str:
        if len(value) > cap:
            raise self.fail(field, f"{len(value):,} characters, more than {cap:,}; shorten it "
                                   "or link to a longer text from `homepage`")
        return value

    def size(self, value: Any, field: str, channels: int,
             max_values: int = MAX_IMAGE_VALUES) -> tuple[int, int] | None:
        if value is None:
            return None
        if (len(value) != 2 or not all(_is(v, (int,)) for v in value)
                or not all(v > 0 for v in value)):
            raise self.fail(field, f"expected [height, width] of two positive integers, "
                                   f"found {_shown(value)}")
        height, width = int(value[0]), int(value[1])
        if max(height, width) > MAX_SIDE:
            raise self.fail(field, f"{height}x{width}: a side may be at most {MAX_SIDE:,} pixels")
        if height * width * channels > max_values:
            raise self.fail(field, f"{height}x{width}x{channels} is {height * width * channels:,} "
                                   f"values per image, more than {max_values:,}")
        return height, width

    def check(self) -> Entry:
        fields = {key: types for key, (types, _) in ENTRY_FIELDS.items()}
        raw = self.table(self.raw, fields, "",
                         [key for key, (_, required) in ENTRY_FIELDS.items() if required])
        name, notes = self.name_and_versions(raw)
        fmt = raw["format"]
        if fmt not in FORMATS:
            raise self.fail("format", f"{_shown(fmt)} is not one of {', '.join(FORMATS)}")
        image = self.table(raw["image"], IMAGE_FIELDS, "image", ["mode"])
        if image["mode"] not in MODES:
            raise self.fail("image.mode", f"{_shown(image['mode'])} is not one of L, RGB")
        channels = MODES[image["mode"]]
        # A csv_pixels row holds every value as a column: a smaller cap.
        size = self.size(image.get("size"), "image.size", channels,
                         MAX_CSV_VALUES if fmt == "csv_pixels" else MAX_IMAGE_VALUES)
        if size is None and fmt != "zip_folders":
            raise self.fail("image.size", f"missing; {fmt} stores images of one fixed size")
        classes = self.classes(raw["classes"])
        csv_labels = self.csv_labels(raw.get("csv_labels"), fmt, classes)

        cleaning = self.table(raw.get("cleaning", {}), CLEANING_FIELDS[fmt], "cleaning")
        share = cleaning.get("max_failed_share")
        if share is not None and not 0 <= share <= 1:
            raise self.fail("cleaning.max_failed_share", f"{share} is not between 0 and 1")

        configs = self.configs(raw.get("configs", []), fmt, channels)
        config_names = [c.name for c in configs]
        sources = self.sources(raw["sources"], fmt, config_names)
        return Entry(
            file=self.file, index=self.index, name=name, version=raw["version"],
            description=self.text(raw["description"], "description").strip(), format=fmt,
            sources=sources, mode=image["mode"], classes=classes, size=size,
            release_notes=dict(notes), csv_labels=csv_labels, cleaning=dict(cleaning),
            configs=tuple(configs), homepage=self.homepage(raw.get("homepage", "")),
            license=self.text(raw.get("license", ""), "license"),
            citation=self.text(raw.get("citation", ""), "citation").strip())

    def name_and_versions(self, raw: dict) -> tuple[str, dict]:
        name = raw["name"]
        if not _NAME.fullmatch(name):
            raise self.fail("name", f"{_shown(name)} is not a dataset name: lowercase letters, "
                                    "digits and '_', starting with a letter, at most 64")
        if not _VERSION.fullmatch(raw["version"]):
            raise self.fail("version", f"{_shown(raw['version'])} is not MAJOR.MINOR.PATCH")
        notes = raw.get("release_notes", {})
        self.count(notes, "release_notes", MAX_RELEASE_NOTES, "release notes")
        for version, text in notes.items():
            if not _VERSION.fullmatch(version):
                raise self.fail(f"release_notes.{_key_shown(version)}",
                                "not a MAJOR.MINOR.PATCH version")
            if not isinstance(text, str):
                raise self.fail(f"release_notes.{version}",
                                f"expected a string, found {_type_name(text)}")
            self.text(text, f"release_notes.{version}")
        return name, notes

    def homepage(self, url: str) -> str:
        if not url:
            return ""
        found = classify_location(url) if len(url) <= MAX_LOCATION else None
        if (found is None or found[0] != "url" or not url.lower().startswith(("http://", "https://"))
                or any(c.isspace() for c in url)):
            raise self.fail("homepage", f"{_shown(url)} is not an http(s) URL")
        return url

    def classes(self, raw: list) -> tuple[str, ...]:
        if not raw:
            raise self.fail("classes", "empty; list the class names")
        self.count(raw, "classes", MAX_CLASSES, "classes")
        names = []
        for i, value in enumerate(raw):
            if not isinstance(value, str):
                raise self.fail(f"classes[{i}]", f"expected a string, found {_type_name(value)}")
            name = unicodedata.normalize("NFC", value)
            problem = class_name_problem(name)
            if problem is not None:
                raise self.fail(f"classes[{i}]", f"{_shown(value)} {problem}")
            names.append(name)
        self.no_twin_classes(raw, names)
        return tuple(names)

    def no_twin_classes(self, raw: list[str], names: list[str]) -> None:
        """Refuses two classes a reader could not tell apart: labels are
        compared exactly (after NFC), so such twins would split one class."""
        exact: dict[str, int] = {}
        folded: dict[str, int] = {}
        for i, name in enumerate(names):
            j = exact.get(name)
            if j is not None and raw[i] != raw[j]:
                raise self.fail("classes", f"classes[{j}] {ascii(raw[j])} and classes[{i}] "
                                           f"{ascii(raw[i])} differ only by Unicode "
                                           "normalisation; keep one")
            if j is not None:
                raise self.fail("classes", f"classes[{j}] and classes[{i}] are both "
                                           f"{_shown(name)}; keep one")
            key = unicodedata.normalize("NFC", name.casefold())
            j = folded.get(key)
            if j is not None:
                raise self.fail("classes", f"classes[{j}] {_shown(names[j])} and classes[{i}] "
                                           f"{_shown(name)} differ only in letter case; "
                                           "rename or merge them")
            exact[name], folded[key] = i, i

    def csv_labels(self, csv_labels: Any, fmt: str, classes: tuple) -> tuple[int, ...] | None:
        if csv_labels is None:
            return None
        if fmt != "csv_pixels":
            raise self.fail("csv_labels", f"only csv_pixels datasets map file labels, "
                                          f"this one is {fmt}")
        if len(csv_labels) != len(classes) or not all(_is(v, (int,)) for v in csv_labels):
            raise self.fail("csv_labels", f"expected {len(classes)} integers (the file's "
                                          f"label of each class), found {_shown(csv_labels)}")
        if len(set(csv_labels)) != len(csv_labels):
            raise self.fail("csv_labels", "two classes share a file label")
        return tuple(csv_labels)

    def configs(self, raw: list, fmt: str, channels: int) -> list[ConfigDecl]:
        self.count(raw, "configs", MAX_CONFIGS, "configs")
        configs = []
        for i, config in enumerate(raw):
            where = f"configs[{i}]"
            config = self.table(config, CONFIG_FIELDS, where, ["name"])
            if not _CONFIG_NAME.fullmatch(config["name"]):
                raise self.fail(f"{where}.name", f"{_shown(config['name'])} is not a config "
                                                 "name: lowercase letters, digits and '_', "
                                                 "not starting with '_', at most 64")
            if fmt != "zip_folders":
                for key in ("size", "drop_leaked_from_test"):
                    if key in config:
                        raise self.fail(f"{where}.{key}", "only zip_folders configs have it")
            configs.append(ConfigDecl(
                name=config["name"],
                description=self.text(config.get("description", ""), f"{where}.description"),
                size=self.size(config.get("size"), f"{where}.size", channels),
                drop_leaked_from_test=config.get("drop_leaked_from_test", False)))
        names = [c.name for c in configs]
        if len(set(names)) != len(names):
            raise self.fail("configs", f"repeated config names: {names}")
        return configs

    def sources(self, raw: list, fmt: str, config_names: list[str]) -> tuple[Source, ...]:
        if not raw:
            raise self.fail("sources", "empty; name at least one source")
        self.count(raw, "sources", MAX_SOURCES, "sources")
        sources = [self.source(i, value, fmt, config_names) for i, value in enumerate(raw)]
        if fmt == "zip_folders" and len(sources) != 1:
            raise self.fail("sources", "a zip_folders dataset reads one zip holding both splits")
        for config in config_names or [None]:
            if fmt != "zip_folders" and not any(s.split == "train" for s in sources
                                                if s.config in (None, config)):
                raise self.fail("sources", "no source for the train split"
                                + (f" of config {config!r}" if config else ""))
        self.no_repeated_sources(sources)
        sources = _distinct_labels(sources)
        labels = [s.label for s in sources]
        clash = next((s for s in sources if labels.count(s.label) > 1
                      and any((o.target, o.member) != (s.target, s.member)
                              for o in sources if o.label == s.label)), None)
        if clash is not None:
            raise self.fail(clash.where_field, f"two different sources are both named "
                                               f"{_shown(clash.label)}; rename one file")
        return tuple(sources)

    def no_repeated_sources(self, sources: list[Source]) -> None:
        """One file read twice into one split would repeat its keys."""
        seen: dict[tuple, Source] = {}
        for source in sources:
            key = (source.kind, source.target, source.member, source.split)
            first = seen.get(key)
            if first is not None and (None in (first.config, source.config)
                                      or first.config == source.config):
                raise self.fail(source.where_field, f"repeats {first.field} for split "
                                                    f"{source.split!r}; list each file once")
            seen.setdefault(key, source)

    def source(self, i: int, raw: Any, fmt: str, config_names: list[str]) -> Source:
        where = f"sources[{i}]"
        raw = self.table(raw, SOURCE_FIELDS, where)
        given = [key for key in ("location", "object") if key in raw]
        if len(given) != 1:
            raise self.fail(f"{where}.location", "give either `location` (a URL or a path) or "
                                                 "`object` (a name under SIGN_DATASETS_SOURCE)")
        if "object" in raw:
            kind, target = "object", self.object_name(raw["object"], f"{where}.object")
        else:
            kind, target = self.location(raw["location"], f"{where}.location")
        sha = raw.get("sha256")
        if sha is not None and not _SHA256.fullmatch(sha.lower()):
            raise self.fail(f"{where}.sha256", f"{_shown(sha)} is not 64 hexadecimal digits")
        split = raw.get("split", "train")
        if fmt == "zip_folders":
            for key in ("split", "member", "config"):
                if key in raw:
                    raise self.fail(f"{where}.{key}", "a zip_folders source is the zip itself; "
                                                      "its folders name the splits")
        elif not _SPLIT.fullmatch(split):
            raise self.fail(f"{where}.split", f"{_shown(split)} is not a split name: lowercase "
                                              "letters, digits and '_', at most 64")
        member = raw.get("member")
        if member is not None and (not member.strip() or len(member) > MAX_LOCATION
                                   or _forbidden_char(member) is not None):
            raise self.fail(f"{where}.member", f"{_shown(member)} is not a member name")
        config = raw.get("config")
        if config is not None and config not in config_names:
            raise self.fail(f"{where}.config", f"no config {_shown(config)} in `configs`")
        return Source(kind=kind, target=target, split=split, member=member,
                      sha256=sha.lower() if sha else None, config=config, field=where)

    def object_name(self, name: str, field: str) -> str:
        problem = object_name_problem(name)
        if problem is not None:
            raise self.fail(field, f"{_shown(name)} is not an object name: it {problem}")
        from sign_datasets.io import sources
        try:
            local = sources.local_path(sources.object_url(name))
        except sources.SourceConfigError:
            return name     # a setting's error, reported where the setting is used
        if local is not None:
            self.local(os.fspath(local), field)
        return name

    def location(self, text: str, field: str) -> tuple[str, str]:
        found = classify_location(text) if len(text) <= MAX_LOCATION else None
        if found is None:
            raise self.fail(field, f"{_shown(text)} is neither a URL (http, https, gs, file) "
                                   f"nor a path of at most {MAX_LOCATION:,} characters without "
                                   "control characters")
        kind, target = found
        return (kind, str(self.local(target, field))) if kind == "path" else (kind, target)

    def local(self, path: str, field: str) -> Path:
        try:
            return resolve_beneath(path, self.roots, base=self.file.resolve().parent)
        except PathRefused as error:
            raise self.fail(field, str(error)) from None


def _read_catalog(path: Path) -> str:
    """The text of a catalog file: a regular file of at most MAX_CATALOG_BYTES
    of UTF-8 (opened without blocking: a FIFO would wait forever)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise CatalogError(path, None, None, f"no such catalog file (named by {CATALOG_ENV}?)") \
            from None
    except OSError as error:
        raise CatalogError(path, None, None, f"cannot be read: {error.strerror}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise CatalogError(path, None, None, "is a folder; name the catalog's .toml file"
                           if stat.S_ISDIR(mode) else "is not a regular file")
    os.set_blocking(fd, True)
    with os.fdopen(fd, "rb") as stream:
        try:
            data = stream.read(MAX_CATALOG_BYTES + 1)
        except OSError as error:
            raise CatalogError(path, None, None, f"cannot be read: {error.strerror}") from None
    if len(data) > MAX_CATALOG_BYTES:
        raise CatalogError(path, None, None, f"larger than {MAX_CATALOG_BYTES // 2**20} MiB; "
                                             "split it into several catalogs")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CatalogError(path, None, None, f"not UTF-8 text (byte {error.start} is "
                                             f"{data[error.start]:#04x})") from None


def load_catalog(path: Path | str) -> list[Entry]:
    """Parses and checks one catalog file (names within the file are unique)."""
    path = Path(path)
    text = _read_catalog(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise CatalogError(path, None, None, f"not valid TOML: {error}") from None
    except RecursionError:
        raise CatalogError(path, None, None, "arrays or tables nested too deeply") from None
    unknown = sorted(set(data) - {"dataset"})
    if unknown:
        raise CatalogError(path, None, _key_shown(unknown[0]),
                           "unknown key; a catalog holds [[dataset]] entries only")
    raw_entries = data.get("dataset", [])
    if not isinstance(raw_entries, list):
        raise CatalogError(path, None, "dataset", "expected [[dataset]] entries (an array of "
                                                  "tables)")
    if len(raw_entries) > MAX_ENTRIES:
        raise CatalogError(path, None, "dataset", f"{len(raw_entries):,} entries, more than "
                                                  f"{MAX_ENTRIES:,}; split the catalog")
    try:
        roots = allowed_roots(path)
    except PathRefused as error:
        raise CatalogError(path, None, None, str(error)) from None
    entries: list[Entry] = []
    for index, raw in enumerate(raw_entries):
        entry = _Checker(path, index, raw, roots).check()
        first = next((e for e in entries if e.name == entry.name), None)
        if first is not None:
            raise entry.error("name", f"duplicate name: entry #{first.index + 1} of this file "
                                      "has it too")
        entries.append(entry)
    return entries


# --- the catalogs in force ----------------------------------------------------------------

_PROJECT: list[Entry] | None = None
# name -> (entry, generated class) of every team dataset registered in this process
_TEAM: dict[str, tuple[Entry, type]] = {}


def project_entries() -> list[Entry]:
    global _PROJECT
    if _PROJECT is None:
        _PROJECT = load_catalog(PROJECT_CATALOG)
    return _PROJECT


def project_entry(name: str) -> Entry:
    for entry in project_entries():
        if entry.name == name:
            return entry
    raise KeyError(f"{PROJECT_CATALOG}: no entry {name!r}")


def team_entries() -> list[Entry]:
    return [entry for entry, _ in _TEAM.values()]


def all_entries() -> list[Entry]:
    return project_entries() + team_entries()


def catalog_paths_from_env() -> list[Path]:
    from sign_datasets.io import settings
    return settings.path_list(CATALOG_ENV)


def _tfds_names() -> set[str]:
    from tensorflow_datasets.core import registered
    return set(registered.list_imported_builders())


def check_names(entries: list[Entry]) -> None:
    """Refuses a name used twice (by the project or an earlier catalog) or one
    TFDS already has."""
    seen: dict[str, Entry] = {e.name: e for e in project_entries()}
    seen.update({name: entry for name, (entry, _) in _TEAM.items()})
    ours = set(seen)
    tfds_names = _tfds_names()
    for entry in entries:
        first = seen.get(entry.name)
        if first is not None and first is not entry:
            where = "the project's catalog (sign_datasets/catalog/catalog.toml)" \
                if first.file == PROJECT_CATALOG else f"{first.file} (entry #{first.index + 1})"
            raise entry.error("name", f"duplicate name: {where} declares {entry.name!r} too")
        if entry.name in tfds_names and entry.name not in ours:
            raise entry.error("name", f"{entry.name!r} clashes with a dataset TFDS already has; "
                                      "choose another name")
        seen[entry.name] = entry


def register_file(path: Path | str) -> list[Entry]:
    """Validates a team catalog and registers its datasets with TFDS.

    All-or-nothing: one bad entry registers none of the file's. A file already
    registered unchanged in this process is a no-op.
    """
    entries = load_catalog(path)
    fresh = [e for e in entries if not (e.name in _TEAM and _TEAM[e.name][0] == e)]
    check_names(fresh)
    for entry in fresh:
        _TEAM[entry.name] = (entry, builder_class(entry))
    return entries


def register_from_env() -> list[Entry]:
    """What `import sign_datasets` runs: the project catalog, then every file
    of SIGN_DATASETS_CATALOG."""
    project_entries()
    registered = []
    for path in catalog_paths_from_env():
        registered += register_file(path)
    return registered


def dataset_names(entries: Iterable[Entry] | None = None) -> list[str]:
    """'name/config' for every config of every entry ('name' without configs)."""
    return dataset_names_of([e.name for e in (all_entries() if entries is None else entries)])


def dataset_names_of(names: Iterable[str]) -> list[str]:
    import tensorflow_datasets as tfds
    found = []
    for name in names:
        configs = tfds.builder_cls(name).BUILDER_CONFIGS
        found += [f"{name}/{c.name}" for c in configs] if configs else [name]
    return found


# --- generated builders -----------------------------------------------------------------

def sha256_of(path: Path, roots: Iterable[Path] | None = None) -> str:
    """The file's sha256; with `roots`, read only if it lies beneath them
    (`open_beneath`: a catalog source's file)."""
    from sign_datasets.io import guards
    with (guards.open_source(path) if roots is None else open_beneath(path, roots)) as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def builder_class(entry: Entry) -> type:
    """A TFDS builder class for a team entry, registered under its name."""
    from sign_datasets.catalog import generated
    return generated.make_class(entry)
