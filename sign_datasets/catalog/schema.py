"""What a catalog entry may say, and the check of one raw entry into an `Entry`.

An entry names its dataset, version and release notes, description, one of
the four source formats, where the sources are (URL or path, optional sha256
each), image mode and size, class names, cleaning options and the usual
metadata. README.md ("The team catalog") has a full example.

A catalog is untrusted input (docs/SECURITY.md): every name that becomes part
of a path matches a strict pattern, every size and count has a cap, and every
local path lies beneath an allowed root (`paths`). Every problem is a
`CatalogError` naming the file, the entry and the field.
"""

from __future__ import annotations

import datetime
import os
import re
import unicodedata
from pathlib import Path
from typing import Any, Iterable

from sign_datasets.core import near
from sign_datasets.catalog.entries import (MODES, CatalogError, ConfigDecl, Entry, Source,
                                           distinct_labels)
from sign_datasets.catalog.paths import (MAX_LOCATION, PathRefused, classify_location,
                                         forbidden_char, object_name_problem, resolve_beneath,
                                         shown)
from sign_datasets.io.sources import SourceConfigError, local_path, object_url

FORMATS = ("csv_pixels", "json_urls", "base64_json", "zip_folders")

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
    "creator": ((str,), False),
    "date_published": ((str, datetime.date), False),
}
SOURCE_FIELDS = {"location": (str,), "object": (str,), "split": (str,), "member": (str,),
                 "sha256": (str,), "config": (str,)}
IMAGE_FIELDS = {"mode": (str,), "size": (list,)}
CONFIG_FIELDS = {"name": (str,), "description": (str,), "size": (list,),
                 "drop_leaked_from_test": (bool,), "cleaning": (dict,)}
# Near copies (core.near): every format reads images, so every format has them.
NEAR_FIELDS = {"drop_near_leaked_from_test": (bool,), "near_distance": (int,)}
# Which cleaning options each reader understands.
CLEANING_FIELDS = {
    "csv_pixels": {"drop_duplicates": (bool,), **NEAR_FIELDS},
    "zip_folders": {"drop_leaked_from_test": (bool,), **NEAR_FIELDS},
    "json_urls": {"max_failed_share": (int, float), **NEAR_FIELDS},
    "base64_json": {**NEAR_FIELDS},
}

# Names that become parts of data-dir paths. Matched with fullmatch: `$`
# would let a trailing newline through, `\d` any Unicode digit.
_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_CONFIG_NAME = re.compile(r"[a-z0-9][a-z0-9_]{0,63}")
_VERSION = re.compile(r"[0-9]{1,9}\.[0-9]{1,9}\.[0-9]{1,9}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SPLIT = re.compile(r"[a-z][a-z0-9_]{0,63}")

# Caps: past one, a clear CatalogError instead of work or memory without bound.
MAX_SOURCES = 1_000
MAX_CONFIGS = 100
MAX_RELEASE_NOTES = 1_000
MAX_CLASSES = 10_000
MAX_CLASS_NAME = 200
MAX_TEXT = 64 * 1024            # description, citation, license, release notes
MAX_SIDE = 16_384
MAX_IMAGE_VALUES = 40_000_000   # height * width * channels, as images.MAX_IMAGE_PIXELS
MAX_CSV_VALUES = 1_000_000      # a csv_pixels row holds one column per value

_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "a boolean",
               list: "an array", dict: "a table"}
MAX_CREATOR = 1_000


def _type_name(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _expected(types: tuple[type, ...]) -> str:
    return " or ".join(_TYPE_NAMES.get(t, f"a {t.__name__}") for t in types)


def key_shown(key: str) -> str:
    """A TOML key for a field name in a message: as written when short and plain."""
    return key if len(key) <= 40 and forbidden_char(key) is None else shown(key, 40)


def _is(value: Any, types: tuple[type, ...]) -> bool:
    # TOML booleans are Python ints too; `true` is no count.
    if isinstance(value, bool) and bool not in types:
        return False
    return isinstance(value, types)


def class_name_problem(name: str) -> str | None:
    """Why `name` (NFC) cannot be a class name, or None.

    Class names end up in labels.txt (one per line), on pages and in zip
    folder matches: nothing invisible, nothing that reads as a path.
    """
    if not name.strip():
        return "is empty"
    if len(name) > MAX_CLASS_NAME:
        return f"is {len(name):,} characters long, more than {MAX_CLASS_NAME}"
    bad = forbidden_char(name)
    if bad is not None:
        return f"holds the control or format character {bad!r}"
    if "/" in name or "\\" in name:
        return "holds '/' or '\\'"
    if name != name.strip():
        return "has leading or trailing whitespace"
    if name in (".", ".."):
        return "is '.' or '..'"
    return None



class EntryChecker:
    """Validates one raw entry into an `Entry`; raises on the first problem."""

    def __init__(self, file: Path, index: int, raw: Any, roots: list[Path]):
        self.file, self.index, self.raw, self.roots = file, index, raw, roots
        name = raw.get("name") if isinstance(raw, dict) else None
        self.entry = shown(name) if isinstance(name, str) and name else f"#{index + 1} (no name)"

    def fail(self, field: str | None, problem: str) -> CatalogError:
        return CatalogError(self.file, self.entry, field, problem)

    def table(self, raw: Any, fields: dict, where: str, required: Iterable[str] = ()) -> dict:
        if not isinstance(raw, dict):
            raise self.fail(where or None, f"expected a table, found {_type_name(raw)}")
        prefix = f"{where}." if where else ""
        for key, value in raw.items():
            if key not in fields:
                raise self.fail(prefix + key_shown(key), "unknown key; known keys are "
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
                                   f"found {shown(value)}")
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
            raise self.fail("format", f"{shown(fmt)} is not one of {', '.join(FORMATS)}")
        image = self.table(raw["image"], IMAGE_FIELDS, "image", ["mode"])
        if image["mode"] not in MODES:
            raise self.fail("image.mode", f"{shown(image['mode'])} is not one of L, RGB")
        channels = MODES[image["mode"]]
        # A csv_pixels row holds every value as a column: a smaller cap.
        size = self.size(image.get("size"), "image.size", channels,
                         MAX_CSV_VALUES if fmt == "csv_pixels" else MAX_IMAGE_VALUES)
        if size is None and fmt != "zip_folders":
            raise self.fail("image.size", f"missing; {fmt} stores images of one fixed size")
        classes = self.classes(raw["classes"])
        csv_labels = self.csv_labels(raw.get("csv_labels"), fmt, classes)

        cleaning = self.table(raw.get("cleaning", {}), CLEANING_FIELDS[fmt], "cleaning")
        self.near_distance(cleaning, "cleaning")
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
            citation=self.text(raw.get("citation", ""), "citation").strip(),
            creator=self.text(raw.get("creator", ""), "creator", MAX_CREATOR).strip(),
            date_published=self.date(raw.get("date_published")))

    def name_and_versions(self, raw: dict) -> tuple[str, dict]:
        name = raw["name"]
        if not _NAME.fullmatch(name):
            raise self.fail("name", f"{shown(name)} is not a dataset name: lowercase letters, "
                                    "digits and '_', starting with a letter, at most 64")
        if not _VERSION.fullmatch(raw["version"]):
            raise self.fail("version", f"{shown(raw['version'])} is not MAJOR.MINOR.PATCH")
        notes = raw.get("release_notes", {})
        self.count(notes, "release_notes", MAX_RELEASE_NOTES, "release notes")
        for version, text in notes.items():
            if not _VERSION.fullmatch(version):
                raise self.fail(f"release_notes.{key_shown(version)}",
                                "not a MAJOR.MINOR.PATCH version")
            if not isinstance(text, str):
                raise self.fail(f"release_notes.{version}",
                                f"expected a string, found {_type_name(text)}")
            self.text(text, f"release_notes.{version}")
        return name, notes

    def date(self, value: Any) -> str:
        """date_published: a TOML date or a "YYYY-MM-DD" string, as YYYY-MM-DD."""
        if value is None:
            return ""
        if isinstance(value, datetime.datetime):  # a subclass of date: not a day
            raise self.fail("date_published", "expected a date such as 2024-05-01, found a "
                                              "date and time")
        if isinstance(value, str):
            try:
                value = datetime.date.fromisoformat(value) if len(value) == 10 else None
            except ValueError:
                value = None
            if value is None:
                raise self.fail("date_published", "expected a date such as 2024-05-01")
        return value.isoformat()

    def homepage(self, url: str) -> str:
        if not url:
            return ""
        found = classify_location(url) if len(url) <= MAX_LOCATION else None
        if (found is None or found[0] != "url" or not url.lower().startswith(("http://", "https://"))
                or any(c.isspace() for c in url)):
            raise self.fail("homepage", f"{shown(url)} is not an http(s) URL")
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
                raise self.fail(f"classes[{i}]", f"{shown(value)} {problem}")
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
                                           f"{shown(name)}; keep one")
            key = unicodedata.normalize("NFC", name.casefold())
            j = folded.get(key)
            if j is not None:
                raise self.fail("classes", f"classes[{j}] {shown(names[j])} and classes[{i}] "
                                           f"{shown(name)} differ only in letter case; "
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
                                          f"label of each class), found {shown(csv_labels)}")
        if len(set(csv_labels)) != len(csv_labels):
            raise self.fail("csv_labels", "two classes share a file label")
        return tuple(csv_labels)

    def near_distance(self, cleaning: dict, where: str) -> None:
        distance = cleaning.get("near_distance")
        if distance is not None and not 0 <= distance <= near.MAX_DISTANCE:
            raise self.fail(f"{where}.near_distance",
                            f"{distance} is not between 0 and {near.MAX_DISTANCE} bits")

    def configs(self, raw: list, fmt: str, channels: int) -> list[ConfigDecl]:
        self.count(raw, "configs", MAX_CONFIGS, "configs")
        configs = []
        for i, config in enumerate(raw):
            where = f"configs[{i}]"
            config = self.table(config, CONFIG_FIELDS, where, ["name"])
            if not _CONFIG_NAME.fullmatch(config["name"]):
                raise self.fail(f"{where}.name", f"{shown(config['name'])} is not a config "
                                                 "name: lowercase letters, digits and '_', "
                                                 "not starting with '_', at most 64")
            if fmt != "zip_folders":
                for key in ("size", "drop_leaked_from_test"):
                    if key in config:
                        raise self.fail(f"{where}.{key}", "only zip_folders configs have it")
            cleaning = self.table(config.get("cleaning", {}), NEAR_FIELDS, f"{where}.cleaning")
            self.near_distance(cleaning, f"{where}.cleaning")
            configs.append(ConfigDecl(
                name=config["name"], cleaning=dict(cleaning),
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
        sources = distinct_labels(sources)
        labels = [s.label for s in sources]
        clash = next((s for s in sources if labels.count(s.label) > 1
                      and any((o.target, o.member) != (s.target, s.member)
                              for o in sources if o.label == s.label)), None)
        if clash is not None:
            raise self.fail(clash.where_field, f"two different sources are both named "
                                               f"{shown(clash.label)}; rename one file")
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
            raise self.fail(f"{where}.sha256", f"{shown(sha)} is not 64 hexadecimal digits")
        split = raw.get("split", "train")
        if fmt == "zip_folders":
            for key in ("split", "member", "config"):
                if key in raw:
                    raise self.fail(f"{where}.{key}", "a zip_folders source is the zip itself; "
                                                      "its folders name the splits")
        elif not _SPLIT.fullmatch(split):
            raise self.fail(f"{where}.split", f"{shown(split)} is not a split name: lowercase "
                                              "letters, digits and '_', at most 64")
        member = raw.get("member")
        if member is not None and (not member.strip() or len(member) > MAX_LOCATION
                                   or forbidden_char(member) is not None):
            raise self.fail(f"{where}.member", f"{shown(member)} is not a member name")
        config = raw.get("config")
        if config is not None and config not in config_names:
            raise self.fail(f"{where}.config", f"no config {shown(config)} in `configs`")
        return Source(kind=kind, target=target, split=split, member=member,
                      sha256=sha.lower() if sha else None, config=config, field=where)

    def object_name(self, name: str, field: str) -> str:
        problem = object_name_problem(name)
        if problem is not None:
            raise self.fail(field, f"{shown(name)} is not an object name: it {problem}")
        try:
            local = local_path(object_url(name))
        except SourceConfigError:
            return name     # a setting's error, reported where the setting is used
        if local is not None:
            self.local(os.fspath(local), field)
        return name

    def location(self, text: str, field: str) -> tuple[str, str]:
        found = classify_location(text) if len(text) <= MAX_LOCATION else None
        if found is None:
            raise self.fail(field, f"{shown(text)} is neither a URL (http, https, gs, file) "
                                   f"nor a path of at most {MAX_LOCATION:,} characters without "
                                   "control characters")
        kind, target = found
        return (kind, str(self.local(target, field))) if kind == "path" else (kind, target)

    def local(self, path: str, field: str) -> Path:
        try:
            return resolve_beneath(path, self.roots, base=self.file.resolve().parent)
        except PathRefused as error:
            raise self.fail(field, str(error)) from None


