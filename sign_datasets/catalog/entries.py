"""What a checked catalog entry is: `Entry`, its `Source`s and `ConfigDecl`s,
and `CatalogError`, the one error every catalog problem becomes.

A catalog file holds `[[dataset]]` entries (README.md, "The team catalog");
`schema` checks one raw entry into an `Entry`, `loader` reads a file of them.
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from pathlib import Path

MODES = {"L": 1, "RGB": 3}


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
    # suffix that tells them apart (see `distinct_labels`).
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
    # Cleaning options of this config alone (the near-copy keys).
    cleaning: dict = dataclasses.field(default_factory=dict)


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
    # For Croissant and dataset cards; empty means the export's default
    # (read/export.py: the homepage's host, the build date).
    creator: str = ""
    date_published: str = ""    # YYYY-MM-DD

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

    def cleaning_for(self, config: str | None) -> dict:
        """The entry's cleaning options, overridden by those of `config`."""
        merged = dict(self.cleaning)
        for declared in self.configs:
            if declared.name == config:
                merged.update(declared.cleaning)
        return merged

    def file_labels(self) -> tuple[int, ...]:
        """The label each class has in a CSV (default: its index)."""
        return self.csv_labels if self.csv_labels is not None else tuple(range(len(self.classes)))


def distinct_labels(sources: list[Source]) -> list[Source]:
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


