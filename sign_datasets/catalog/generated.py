"""TFDS builder classes generated from team catalog entries.

One base class per source format; `make_class` subclasses it with `type()`
for an entry, which registers it with TFDS under the entry's name. The
readers and the cleaning accounting are the course builders' own
(`CleanedBuilder`, `sign_datasets.formats`); only where the sources are and
what the labels are comes from the catalog.
"""

from __future__ import annotations

import contextlib
import functools
import os
import unicodedata
from pathlib import Path
from typing import Iterator

import numpy as np
import tensorflow_datasets as tfds

from sign_datasets.io import downloads, failed_share, guards
from sign_datasets.io import sources
from sign_datasets.generate.builder import CleanedBuilder, raw_image_feature
from sign_datasets.catalog.entries import Entry, Source
from sign_datasets.catalog.loader import project_entry
from sign_datasets.catalog.paths import (PathRefused, allowed_roots, open_beneath, sha256_of,
                                         source_path)
from sign_datasets.core.cleaning import Dropped, MissingSource, SourceError
from sign_datasets.formats import base64_json, csv_lines, csv_pixels, json_urls
from sign_datasets.generate.folder_builder import FolderConfig, ImageFolderBuilder
from sign_datasets.io.archives import open_member
from sign_datasets.core.plans import SplitPlan, positioned


class ChecksumMismatch(SourceError):
    """A source's bytes differ from the sha256 its catalog entry states."""


class CatalogDataset:
    """What every generated builder shares: metadata and sources from its entry."""

    ENTRY: Entry

    def _info(self) -> tfds.core.DatasetInfo:
        entry = self.ENTRY
        # Not dataset_info_from_configs: that would read a README beside this
        # module; the catalog is where a team dataset is described.
        return tfds.core.DatasetInfo(
            builder=self, description=entry.description, features=self._features(),
            supervised_keys=("image", "label"), homepage=entry.homepage or None,
            citation=entry.citation or None, license=entry.license or None,
            metadata=tfds.core.MetadataDict())

    def config_name(self) -> str | None:
        return self.builder_config.name if self.builder_config else None

    def fetch_source(self, dl_manager, source: Source) -> Path | str:
        """The file of one source (a URL string under a remote download dir),
        its sha256 checked if the entry gives one.

        A local file (a path, or an object under a folder source) is first
        resolved again and checked beneath the allowed roots: a symlink may
        have been swapped since the catalog was read. A path is then read
        where it is (the checked real path); a URL or bucket object goes
        through the URL policy (`downloads.download_source`), which downloads a
        remote one once into the download dir.
        """
        entry = self.ENTRY
        where = f"{entry.file}: entry {entry.name!r}: field '{source.field}"
        local = source_path(entry, source)  # None for a source on another machine
        if source.kind == "path":
            path = local
            if not path.exists():
                raise MissingSource(f"{where}.location': {source.target} does not exist")
        else:
            url = (sources.object_url(source.target) if source.kind == "object"
                   else source.target)
            field = "object" if source.kind == "object" else "location"
            try:
                path = downloads.download_source(url, dl_manager.download_dir)
            except (downloads.SourceDownloadError, MissingSource) as error:
                raise type(error)(f"{where}.{field}': {error}") from None
        if source.sha256:
            found = sha256_of(path)
            if found != source.sha256:
                # Wrong bytes are not kept: the next build downloads again.
                removed = downloads.discard_download(path, dl_manager.download_dir)
                raise ChecksumMismatch(
                    f"{where}.sha256': {source.target} has sha256 {found}, the catalog states "
                    f"{source.sha256}" + ("; the download was removed" if removed else ""))
        return path

    def download_object(self, dl_manager, name: str) -> Path | str:
        for source in self.ENTRY.sources:
            if source.label == name:
                return self.fetch_source(dl_manager, source)
        raise KeyError(f"{self.ENTRY.name}: no source {name!r}")

    @contextlib.contextmanager
    def open_source(self, path: Path, source: Source) -> Iterator:
        if source.member:
            with contextlib.ExitStack() as stack:
                try:
                    stream = stack.enter_context(open_member(path, source.member))
                except MissingSource as error:
                    raise MissingSource(f"{self.ENTRY.file}: entry {self.ENTRY.name!r}: field "
                                        f"'{source.field}.member': {error}") from None
                yield stream
        elif source.kind == "path":
            # Checked once more as it is opened: the build may have run a while.
            try:
                stream = open_beneath(path, allowed_roots(self.ENTRY.file))
            except PathRefused as error:
                raise self.ENTRY.error(source.where_field, str(error)) from None
            with stream:
                yield stream
        else:
            with guards.open_source(path) as stream:  # a gs:// download dir too
                yield stream

    def source_records(self, fetched: list[tuple[Source, Path]], reader) -> Iterator[Iterator]:
        """Per source of a split, in catalog order, its records:
        reader(stream, source label). Each is read to its end before the next
        source is opened."""
        for source, path in fetched:
            with self.open_source(path, source) as stream:
                yield reader(stream, source.label)

    def positioned_records(self, fetched: list[tuple[Source, Path]], reader) -> Iterator:
        """(position, record) of every record of a split's sources, as they
        are read (see `plans.positioned`): a plan's input."""
        return positioned(self.source_records(fetched, reader))

    def split_sources(self, dl_manager) -> dict[str, list[tuple[Source, Path]]]:
        """{split: [(source, downloaded path)]} for this config, in catalog order."""
        chosen = {}
        for split in self.ENTRY.splits:
            found = self.ENTRY.sources_for(split, self.config_name())
            if found:
                chosen[split] = [(source, self.fetch_source(dl_manager, source))
                                 for source in found]
        return chosen


def _near_options(cleaning: dict) -> dict:
    return {"drop_near_leaked_from_test": cleaning.get("drop_near_leaked_from_test", False),
            "near_distance": cleaning.get("near_distance")}


def builder_configs(entry: Entry) -> list:
    """The TFDS configs an entry declares (a zip_folders entry always has one)."""
    if entry.format == "zip_folders":
        leaked = entry.cleaning.get("drop_leaked_from_test", False)
        if not entry.configs:
            # ImageFolderBuilder reads size and leakage from a config.
            return [FolderConfig(name="default", size=entry.size, drop_leaked_from_test=leaked,
                                 description="As declared in the catalog.",
                                 **_near_options(entry.cleaning))]
        return [FolderConfig(name=c.name, description=c.description, size=c.size or entry.size,
                             drop_leaked_from_test=c.drop_leaked_from_test or leaked,
                             **_near_options(entry.cleaning_for(c.name)))
                for c in entry.configs]
    return [tfds.core.BuilderConfig(name=c.name, description=c.description)
            for c in entry.configs]


def project_folder_builder(name: str) -> type:
    """The base class of a project zip_folders builder, declared by its entry in
    catalog.toml: version, release notes, configs, homepage, archive, classes
    and mode. The builder in builders/<name>/ subclasses it and adds only
    what the catalog cannot say (a docstring, special features)."""
    entry = project_entry(name)
    attrs = {
        "VERSION": tfds.core.Version(entry.version),
        "RELEASE_NOTES": dict(entry.release_notes),
        "BUILDER_CONFIGS": builder_configs(entry),
        "HOMEPAGE": entry.homepage,
        "ARCHIVE": entry.sources[0].target,
        "CLASS_NAMES": entry.classes,
        "MODE": entry.mode,
        "ENTRY": entry,
        "__module__": __name__,
    }
    # skip_registration: only the builder's own subclass is a dataset.
    return type(f"Declared_{name}", (ImageFolderBuilder,), attrs, skip_registration=True)


def _image_feature(entry: Entry):
    return raw_image_feature(entry.shape)


# --- rules shared by the JSON formats -------------------------------------------

@functools.lru_cache(maxsize=64)
def _class_index(classes: tuple[str, ...]) -> dict[str, int]:
    return {name: index for index, name in enumerate(classes)}


def known_label(record, classes: tuple[str, ...]):
    """Rule: the record's label must be one of the classes, exactly as
    written after Unicode NFC (the catalog's class names are NFC). No case or
    space folding: `Dog` next to `dog` would be a guess about the data."""
    label = record.label
    if isinstance(label, str):
        index = _class_index(classes).get(unicodedata.normalize("NFC", label))
        if index is not None:
            record.label_index = index
            return record
    raise Dropped("unknown_label", record.where,
                  f"{str(label)[:40]!r} is not one of the {len(classes)} classes")


def source_keyed_example(record) -> tuple[str, dict]:
    """(key, example) of a kept record, keyed by its file too: a split may
    read several files."""
    key, example = base64_json.sign_example(record)
    return f"{record.source}:{key}", example


# --- one base per format --------------------------------------------------------------

class ZipFoldersDataset(CatalogDataset, ImageFolderBuilder, skip_registration=True):
    """A zip of `<split>/<class>/<image>` folders."""


class RecordsDataset(CatalogDataset, CleanedBuilder, skip_registration=True):
    """The formats read as records (not image folders): an image and a label
    each, every split from its sources of the entry."""

    def _features(self):
        return tfds.features.FeaturesDict({
            "image": _image_feature(self.ENTRY),
            "label": tfds.features.ClassLabel(names=self.ENTRY.classes)})

    def _split_generators(self, dl_manager):
        return {split: self._generate_examples(self.split_plan(split, fetched, dl_manager))
                for split, fetched in self.split_sources(dl_manager).items()}


class CsvPixelsDataset(RecordsDataset, skip_registration=True):
    """CSV files of `label,pixel1,...` rows; several files of one split are read in turn."""

    def split_plan(self, split, fetched, dl_manager) -> SplitPlan:
        entry = self.ENTRY
        label_map = {file_label: index for index, file_label in enumerate(entry.file_labels())}
        files = [csv_lines.CsvFile(os.fspath(path), source.member, source.label)
                 for source, path in fetched]
        return csv_pixels.plan(
            self.info.full_name, split, files,
            rules=csv_pixels.row_rules(label_map, int(np.prod(entry.shape))),
            to_example=functools.partial(csv_pixels.source_keyed_example, label_map=label_map),
            shape=entry.shape, drop_repeats=entry.cleaning.get("drop_duplicates", True))


class JsonUrlsDataset(RecordsDataset, skip_registration=True):
    """JSON Lines (or an array) of {"content": URL, "label": class}; images fetched."""

    def split_plan(self, split, fetched, dl_manager) -> SplitPlan:
        entry = self.ENTRY
        configured = entry.cleaning.get("max_failed_share", failed_share.DEFAULT_MAX_FAILED_SHARE)
        limit = failed_share.max_failed_share(configured)
        return json_urls.plan(
            self.info.full_name, split, self.positioned_records(fetched, json_urls.read),
            downloads.download_cache_dir(dl_manager.download_dir),
            check=functools.partial(failed_share.check_failed_share, limit=limit,
                                    what=f"{entry.name} ({split})"),
            label_rule=functools.partial(known_label, classes=entry.classes),
            rules=[json_urls.fetched_bytes,
                   functools.partial(base64_json.to_pixels, shape=entry.shape, mode=entry.mode)],
            to_example=source_keyed_example)


class Base64JsonDataset(RecordsDataset, skip_registration=True):
    """JSON of label -> base64 image (or records of them)."""

    def split_plan(self, split, fetched, dl_manager) -> SplitPlan:
        entry = self.ENTRY
        rules = [functools.partial(known_label, classes=entry.classes),
                 base64_json.decode_payload,
                 functools.partial(base64_json.to_pixels, shape=entry.shape, mode=entry.mode)]
        return base64_json.plan(
            self.info.full_name, split, self.positioned_records(fetched, base64_json.read),
            rules=rules, to_example=source_keyed_example)


BASES = {"zip_folders": ZipFoldersDataset, "csv_pixels": CsvPixelsDataset,
         "json_urls": JsonUrlsDataset, "base64_json": Base64JsonDataset}


def make_class(entry: Entry) -> type:
    """Creates (and so registers with TFDS) the builder class of `entry`."""
    attrs = {
        "name": entry.name,
        "ENTRY": entry,
        "VERSION": tfds.core.Version(entry.version),
        "RELEASE_NOTES": dict(entry.release_notes),
        "HOMEPAGE": entry.homepage,
        "BUILDER_CONFIGS": builder_configs(entry),
        "__module__": __name__,
        "__doc__": entry.description,
    }
    if entry.format == "zip_folders":
        attrs.update(ARCHIVE=entry.sources[0].label, CLASS_NAMES=entry.classes, MODE=entry.mode)
    class_name = "".join(part.title() for part in entry.name.split("_"))
    attrs["__qualname__"] = class_name
    return type(class_name, (BASES[entry.format],), attrs)
