"""Datasets declared in TOML catalogs rather than in Python.

A catalog file holds `[[dataset]]` entries: name, version and release notes,
description, one of the four source formats, where the sources are (URL or
path, optional sha256 each), image mode and size, class names, cleaning
options and the usual metadata. README.md ("The team catalog") has a full
example.

Two kinds of catalog exist:

* the project's own, `sign_datasets/catalog.toml`: the seven course
  datasets. Their builders stay in `builders/` (TFDS's folder layout, with
  READMEs, dummy data and checksums); they read their version, release notes,
  homepage, archive, classes and mode from their entry here.
* team catalogs, named by `SIGN_DATASETS_CATALOG` (paths separated by `:`):
  `import sign_datasets` validates them and generates one TFDS builder class
  per entry (`builder_class`), registered under the entry's name.

Every problem is a `CatalogError` naming the file, the entry and the field.
A local path may only point beneath an allowed root (`allowed_roots`), so
that a catalog found on a shared disk cannot make a build read arbitrary
files of the machine that builds it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import tomllib
import urllib.parse
from pathlib import Path
from typing import Any, Iterable

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

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SPLIT = re.compile(r"^[a-z][a-z0-9_]*$")

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

    @property
    def label(self) -> str:
        """The name messages use: the file's name, and the member inside it."""
        base = self.target.rstrip("/").rsplit("/", 1)[-1] or self.target
        return f"{base}/{self.member}" if self.member else base


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

def allowed_roots(catalog_file: Path) -> list[Path]:
    """Where a catalog's local paths may point: the catalog's own folder, the
    SIGN_DATASETS_SOURCE folder and every folder of SIGN_DATASETS_ALLOWED_ROOTS.

    The setting is the builder's, not the catalog's: a catalog that could
    widen its own roots would guard nothing.
    """
    roots = [Path(catalog_file).resolve().parent]
    from sign_datasets import sources
    raw_source = os.environ.get(sources.SOURCE_ENV, "").strip()
    if raw_source:
        parts = urllib.parse.urlsplit(raw_source)
        if parts.scheme == "file":
            roots.append(Path(urllib.parse.unquote(parts.path)).resolve())
        elif len(parts.scheme) <= 1:
            roots.append(Path(raw_source).expanduser().resolve())
    for raw in os.environ.get(ALLOWED_ROOTS_ENV, "").split(":"):
        if raw.strip():
            roots.append(Path(raw.strip()).expanduser().resolve())
    return list(dict.fromkeys(roots))


def _beneath(path: Path, roots: Iterable[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


# --- validation ------------------------------------------------------------------------

def classify_location(text: str) -> tuple[str, str] | None:
    """("url", url) or ("path", path as written), or None when it is neither."""
    if not text.strip() or any(c in text for c in "\0\r\n"):
        return None
    parts = urllib.parse.urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme in URL_SCHEMES:
        return ("url", text) if parts.netloc else None
    if scheme == "file":
        path = urllib.parse.unquote(parts.path)
        return ("path", path) if parts.netloc in ("", "localhost") and path.startswith("/") else None
    if len(scheme) > 1:   # ftp:, s3:, mailto: ... (one letter is a drive)
        return None
    return "path", text


class _Checker:
    """Validates one raw entry into an `Entry`; raises on the first problem."""

    def __init__(self, file: Path, index: int, raw: Any, roots: list[Path]):
        self.file, self.index, self.raw, self.roots = file, index, raw, roots
        name = raw.get("name") if isinstance(raw, dict) else None
        self.entry = repr(name) if isinstance(name, str) and name else f"#{index + 1} (no name)"

    def fail(self, field: str | None, problem: str) -> CatalogError:
        return CatalogError(self.file, self.entry, field, problem)

    def table(self, raw: Any, fields: dict, where: str, required: Iterable[str] = ()) -> dict:
        if not isinstance(raw, dict):
            raise self.fail(where or None, f"expected a table, found {_type_name(raw)}")
        prefix = f"{where}." if where else ""
        for key, value in raw.items():
            if key not in fields:
                raise self.fail(prefix + key, "unknown key; known keys are "
                                + ", ".join(sorted(fields)))
            if not _is(value, fields[key]):
                raise self.fail(prefix + key, f"expected {_expected(fields[key])}, "
                                              f"found {_type_name(value)}")
        for key in required:
            if key not in raw:
                raise self.fail(prefix + key, "missing")
        return raw

    def size(self, value: Any, field: str) -> tuple[int, int] | None:
        if value is None:
            return None
        if (len(value) != 2 or not all(_is(v, (int,)) for v in value)
                or not all(0 < v <= 100_000 for v in value)):
            raise self.fail(field, f"expected [height, width] of two positive integers, "
                                   f"found {value!r}")
        return int(value[0]), int(value[1])

    def check(self) -> Entry:
        fields = {key: types for key, (types, _) in ENTRY_FIELDS.items()}
        raw = self.table(self.raw, fields, "",
                         [key for key, (_, required) in ENTRY_FIELDS.items() if required])
        name = raw["name"]
        if not _NAME.match(name):
            raise self.fail("name", f"{name!r} is not a dataset name: lowercase letters, digits "
                                    "and '_', starting with a letter")
        if not _VERSION.match(raw["version"]):
            raise self.fail("version", f"{raw['version']!r} is not MAJOR.MINOR.PATCH")
        notes = raw.get("release_notes", {})
        for version, text in notes.items():
            if not _VERSION.match(version):
                raise self.fail(f"release_notes.{version}", "not a MAJOR.MINOR.PATCH version")
            if not isinstance(text, str):
                raise self.fail(f"release_notes.{version}",
                                f"expected a string, found {_type_name(text)}")
        fmt = raw["format"]
        if fmt not in FORMATS:
            raise self.fail("format", f"{fmt!r} is not one of {', '.join(FORMATS)}")

        image = self.table(raw["image"], IMAGE_FIELDS, "image", ["mode"])
        if image["mode"] not in MODES:
            raise self.fail("image.mode", f"{image['mode']!r} is not one of L, RGB")
        size = self.size(image.get("size"), "image.size")
        if size is None and fmt != "zip_folders":
            raise self.fail("image.size", f"missing; {fmt} stores images of one fixed size")

        classes = raw["classes"]
        if not classes:
            raise self.fail("classes", "empty; list the class names")
        for i, value in enumerate(classes):
            if not isinstance(value, str) or not value.strip():
                raise self.fail(f"classes[{i}]", f"expected a non-empty string, found {value!r}")
        repeated = sorted({c for c in classes if classes.count(c) > 1})
        if repeated:
            raise self.fail("classes", f"repeated class names: {repeated}")

        csv_labels = raw.get("csv_labels")
        if csv_labels is not None:
            if fmt != "csv_pixels":
                raise self.fail("csv_labels", f"only csv_pixels datasets map file labels, "
                                              f"this one is {fmt}")
            if len(csv_labels) != len(classes) or not all(_is(v, (int,)) for v in csv_labels):
                raise self.fail("csv_labels", f"expected {len(classes)} integers (the file's "
                                              f"label of each class), found {csv_labels!r}")
            if len(set(csv_labels)) != len(csv_labels):
                raise self.fail("csv_labels", "two classes share a file label")

        cleaning = self.table(raw.get("cleaning", {}), CLEANING_FIELDS[fmt], "cleaning")
        share = cleaning.get("max_failed_share")
        if share is not None and not 0 <= share <= 1:
            raise self.fail("cleaning.max_failed_share", f"{share} is not between 0 and 1")

        configs = []
        for i, config in enumerate(raw.get("configs", [])):
            where = f"configs[{i}]"
            config = self.table(config, CONFIG_FIELDS, where, ["name"])
            if fmt != "zip_folders":
                for key in ("size", "drop_leaked_from_test"):
                    if key in config:
                        raise self.fail(f"{where}.{key}", "only zip_folders configs have it")
            configs.append(ConfigDecl(
                name=config["name"], description=config.get("description", ""),
                size=self.size(config.get("size"), f"{where}.size"),
                drop_leaked_from_test=config.get("drop_leaked_from_test", False)))
        config_names = [c.name for c in configs]
        if len(set(config_names)) != len(config_names):
            raise self.fail("configs", f"repeated config names: {config_names}")

        sources = tuple(self.source(i, value, fmt, config_names)
                        for i, value in enumerate(raw["sources"]))
        if not sources:
            raise self.fail("sources", "empty; name at least one source")
        if fmt == "zip_folders" and len(sources) != 1:
            raise self.fail("sources", "a zip_folders dataset reads one zip holding both splits")
        for config in config_names or [None]:
            if fmt != "zip_folders" and not any(s.split == "train" for s in sources
                                                if s.config in (None, config)):
                raise self.fail("sources", "no source for the train split"
                                + (f" of config {config!r}" if config else ""))
        return Entry(
            file=self.file, index=self.index, name=name, version=raw["version"],
            description=raw["description"].strip(), format=fmt, sources=sources,
            mode=image["mode"], classes=tuple(classes), size=size, release_notes=dict(notes),
            csv_labels=tuple(csv_labels) if csv_labels is not None else None,
            cleaning=dict(cleaning), configs=tuple(configs),
            homepage=raw.get("homepage", ""), license=raw.get("license", ""),
            citation=raw.get("citation", "").strip())

    def source(self, i: int, raw: Any, fmt: str, config_names: list[str]) -> Source:
        where = f"sources[{i}]"
        raw = self.table(raw, SOURCE_FIELDS, where)
        given = [key for key in ("location", "object") if key in raw]
        if len(given) != 1:
            raise self.fail(f"{where}.location", "give either `location` (a URL or a path) or "
                                                 "`object` (a name under SIGN_DATASETS_SOURCE)")
        if "object" in raw:
            kind, target = "object", raw["object"]
            if not target.strip() or target.startswith("/") or ".." in target.split("/"):
                raise self.fail(f"{where}.object", f"{target!r} is not an object name")
        else:
            found = classify_location(raw["location"])
            if found is None:
                raise self.fail(f"{where}.location",
                                f"{raw['location']!r} is neither a URL (http, https, gs, "
                                "file) nor a path")
            kind, target = found
            if kind == "path":
                path = Path(target).expanduser()
                if not path.is_absolute():
                    path = self.file.resolve().parent / path
                resolved = path.resolve()
                if not _beneath(resolved, self.roots):
                    raise self.fail(f"{where}.location",
                                    f"{resolved} is outside the allowed roots "
                                    f"({', '.join(map(str, self.roots))}); add its folder to "
                                    f"{ALLOWED_ROOTS_ENV} to allow it")
                target = str(resolved)
        sha = raw.get("sha256")
        if sha is not None and not _SHA256.match(sha.lower()):
            raise self.fail(f"{where}.sha256", f"{sha!r} is not 64 hexadecimal digits")
        split = raw.get("split", "train")
        if fmt == "zip_folders":
            for key in ("split", "member", "config"):
                if key in raw:
                    raise self.fail(f"{where}.{key}", "a zip_folders source is the zip itself; "
                                                      "its folders name the splits")
        elif not _SPLIT.match(split):
            raise self.fail(f"{where}.split", f"{split!r} is not a split name")
        config = raw.get("config")
        if config is not None and config not in config_names:
            raise self.fail(f"{where}.config", f"no config {config!r} in `configs`")
        return Source(kind=kind, target=target, split=split, member=raw.get("member"),
                      sha256=sha.lower() if sha else None, config=config, field=where)


def load_catalog(path: Path | str) -> list[Entry]:
    """Parses and checks one catalog file (names within the file are unique)."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise CatalogError(path, None, None, f"no such catalog file (named by {CATALOG_ENV}?)") \
            from None
    except (OSError, UnicodeDecodeError) as error:
        raise CatalogError(path, None, None, f"cannot be read: {error}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise CatalogError(path, None, None, f"not valid TOML: {error}") from None
    unknown = sorted(set(data) - {"dataset"})
    if unknown:
        raise CatalogError(path, None, unknown[0], "unknown key; a catalog holds "
                                                   "[[dataset]] entries only")
    raw_entries = data.get("dataset", [])
    if not isinstance(raw_entries, list):
        raise CatalogError(path, None, "dataset", "expected [[dataset]] entries (an array of "
                                                  "tables)")
    roots = allowed_roots(path)
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
    return [Path(p).expanduser() for p in os.environ.get(CATALOG_ENV, "").split(":") if p.strip()]


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
            where = "the project's catalog (sign_datasets/catalog.toml)" \
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

def sha256_of(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def builder_class(entry: Entry) -> type:
    """A TFDS builder class for a team entry, registered under its name."""
    from sign_datasets import catalog_builders
    return catalog_builders.make_class(entry)
