"""Every dataset of the catalogs in force: names checked, builders found, what
is built where and what it holds."""

from __future__ import annotations

import dataclasses
import datetime
import re
import sys
from pathlib import Path
from typing import Iterable

import tensorflow_datasets as tfds
from tensorflow_datasets.core.registered import DatasetNotFoundError

from sign_datasets.catalog.entries import Entry
from sign_datasets.catalog.teams import all_entries
from sign_datasets.core.cleaning import format_quality, format_report


class NotBuiltError(LookupError):
    pass


class UnknownDatasetError(LookupError):
    """A name that is no dataset or config of the catalogs in force."""


# NAME, NAME/CONFIG, either with :VERSION (TFDS's spelling).
_DATASET_NAME = re.compile(
    r"([a-z][a-z0-9_]*)(?:/([a-z0-9][a-z0-9_]*))?(?::([0-9]+\.[0-9]+\.[0-9]+))?")


def check_name(name: str) -> type:
    """The builder class `name` (NAME, NAME/CONFIG, either with :VERSION)
    refers to, or UnknownDatasetError with one clear line.

    TFDS answers an unknown name with a list of its 1,000 datasets, an
    unknown config with a ValueError about builder kwargs and an unknown
    version with an AssertionError.
    """
    match = _DATASET_NAME.fullmatch(name)
    if match is None:
        raise UnknownDatasetError(f"{name!r} is not a dataset name; write NAME or NAME/CONFIG, "
                                  "e.g. sign_mnist_csv/dirty (`sign-datasets list` names them all)")
    try:
        cls = tfds.builder_cls(match.group(1))
    except DatasetNotFoundError:
        raise UnknownDatasetError(
            f"{name}: no such dataset; `sign-datasets list` names them all (a team dataset "
            "needs its catalog file in SIGN_DATASETS_CATALOG)") from None
    configs = [config.name for config in cls.BUILDER_CONFIGS]
    if match.group(2) and match.group(2) not in configs:
        raise UnknownDatasetError(
            f"{name}: {match.group(1)} has no config {match.group(2)!r}; it has "
            + (", ".join(configs) if configs else "none (write just the name)"))
    versions = [str(cls.VERSION)] + [str(v) for v in getattr(cls, "SUPPORTED_VERSIONS", [])]
    if match.group(3) and match.group(3) not in versions:
        raise UnknownDatasetError(f"{name}: {match.group(1)} has no version {match.group(3)}; "
                                  f"it has {', '.join(versions)}")
    return cls


def find_builder(name: str, **kwargs):
    """tfds.builder(name), with one clear line for a name that is not ours."""
    check_name(name)
    return tfds.builder(name, **kwargs)


def prepared_builder(name: str, data_dir: str | None = None, build: bool = True):
    """The builder of a built dataset. One not built yet is built first, as
    tfds.load does, saying so; with `build=False` that is a NotBuiltError
    saying how to build it (the --no-build of show, train and evaluate)."""
    builder = find_builder(name, data_dir=data_dir)
    if not builder.is_prepared():
        if not build:
            raise NotBuiltError(
                f"{name} is not built in {builder.data_dir}; run `sign-datasets build {name}` "
                "(or pass --data-dir where it was built, or leave out --no-build)")
        print(f"{name} is not built in {builder.data_dir}: building it first "
              "(--no-build refuses instead)", file=sys.stderr, flush=True)
        builder.download_and_prepare()
    return builder


def all_dataset_names() -> list[str]:
    """Every dataset/config of the catalogs in force, e.g. 'sign_mnist_csv/dirty':
    the project's datasets, then the team catalogs' ones."""
    return dataset_names(all_entries())


def dataset_names(entries: Iterable[Entry]) -> list[str]:
    """'name/config' for every config of every entry ('name' without configs)."""
    found = []
    for entry in entries:
        configs = tfds.builder_cls(entry.name).BUILDER_CONFIGS
        found += [f"{entry.name}/{c.name}" for c in configs] if configs else [entry.name]
    return found


def stored_report(name: str, data_dir: str | None = None) -> dict:
    """The cleaning report stored with a built dataset: {full_name: {split: counts}}."""
    dataset = find_builder(name, data_dir=data_dir)
    if not dataset.is_prepared():
        raise NotBuiltError(
            f"{name} is not built in {dataset.data_dir}; run `sign-datasets build {name}` "
            "(or pass --data-dir where it was built)")
    cleaning = dict(dataset.info.metadata or {}).get("cleaning")
    if not cleaning:
        raise NotBuiltError(f"{name} in {dataset.data_dir} has no cleaning report "
                            "(built by another tool?)")
    return {dataset.info.full_name: cleaning}


def stored_quality(name: str, data_dir: str | None = None) -> dict:
    """The quality report (near copies, flagged images) stored with a built
    dataset: {full_name: report}, empty when it has none."""
    dataset = find_builder(name, data_dir=data_dir)
    quality = dict(dataset.info.metadata or {}).get("quality")
    return {dataset.info.full_name: quality} if quality else {}


# --- what is built where ----------------------------------------------------------

@dataclasses.dataclass
class Status:
    """One dataset/config as found in a data dir."""

    name: str
    version: str
    built: bool
    data_dir: str
    examples: dict = dataclasses.field(default_factory=dict)
    size_bytes: int = 0
    build_date: str = ""
    classes: int = 0


def status(name: str, data_dir: str | None = None) -> Status:
    """Whether `name` is built in `data_dir`, and what it holds. Reads only
    dataset_info.json and file sizes: nothing is generated."""
    builder = tfds.builder(name, data_dir=data_dir)
    built = builder.is_prepared()
    found = Status(name=name, version=str(builder.version), built=built,
                   data_dir=str(builder.data_dir))
    label = builder.info.features["label"] if "label" in builder.info.features else None
    found.classes = label.num_classes if label is not None else 0
    if built:
        found.examples = {split: info.num_examples for split, info in builder.info.splits.items()}
        folder = Path(str(builder.data_dir))
        found.size_bytes = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        stamp = (folder / "dataset_info.json").stat().st_mtime
        found.build_date = datetime.datetime.fromtimestamp(stamp, datetime.timezone.utc) \
            .strftime("%Y-%m-%d %H:%M UTC")
    return found


def human_size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def format_examples(examples: dict) -> str:
    return ", ".join(f"{split}={count}" for split, count in sorted(
        examples.items(), key=lambda kv: (kv[0] != "train", kv[0])))


def format_status_table(statuses: list[Status]) -> str:
    header = ("dataset/config", "version", "built", "examples", "size", "data dir")
    rows = [(s.name, s.version, "yes" if s.built else "no",
             format_examples(s.examples) if s.built else "-",
             human_size(s.size_bytes) if s.built else "-", s.data_dir) for s in statuses]
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def describe(name: str, data_dir: str | None = None) -> str:
    """What `sign-datasets info NAME` prints: features, splits and counts,
    cleaning and leakage reports, release notes, how to load it."""
    builder = find_builder(name, data_dir=data_dir)
    info = builder.info
    built = builder.is_prepared()
    lines = [info.full_name, "=" * len(info.full_name), ""]
    if info.description:
        lines += [info.description.strip(), ""]
    where = f"built in {builder.data_dir}" if built else \
        f"not built (would be {builder.data_dir}); run `sign-datasets build {name}`"
    lines += [f"Status: {where}", "", "Features:", str(info.features), ""]
    lines += ["Splits:"]
    if built:
        lines += [f"  {split}: {count} examples"
                  for split, count in sorted(((s, i.num_examples) for s, i in info.splits.items()),
                                             key=lambda kv: (kv[0] != "train", kv[0]))]
    else:
        lines += ["  (not built)"]
    metadata = dict(info.metadata or {})
    if metadata.get("cleaning"):
        lines += ["", format_report({info.full_name: metadata["cleaning"]},
                                    title="Cleaning report")]
    leakage = metadata.get("leakage")
    if leakage:
        verb = "dropped from test" if leakage.get("dropped_from_test") else "kept in test"
        lines += ["", f"Leakage: {leakage['count']} test images equal a train image ({verb})"]
        lines += [f"  {example}" for example in leakage.get("examples", [])]
    if metadata.get("quality"):
        lines += ["", format_quality({info.full_name: metadata["quality"]})]
    notes = builder.release_notes
    if notes:
        lines += ["", "Release notes:"]
        lines += [f"  {version}: {text}" for version, text in sorted(
            notes.items(), key=lambda kv: tuple(int(p) for p in kv[0].split(".")), reverse=True)]
    lines += ["", "Load:", f"  tfds.load({name!r}, split=\"train\""
              + (f", data_dir={data_dir!r})" if data_dir else ")")]
    return "\n".join(lines)

