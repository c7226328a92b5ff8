"""What every builder of the project shares.

A builder declares its features and sources and makes one plan per split
with its format module (`formats.*.plan`); this base class runs each plan on
the local runner or on Beam, stores the cleaning accounting in
`info.metadata["cleaning"]` and prints it after a build, and guards the
build (one at a time, nothing published on failure, a full disk named).
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import os
import sys
import uuid
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import tensorflow_datasets as tfds
from etils import epath
from tensorflow_datasets.core import shuffle

from sign_datasets.core import near, quality
from sign_datasets.core.cleaning import SourceError, SplitReport, format_quality, format_report
from sign_datasets.core.labels import SIGN_LETTERS
from sign_datasets.core.plans import NearShare, SplitPlan
from sign_datasets.generate import determinism, local, safety
from sign_datasets.io import downloads, failed_share, settings, sources


# How a dataset stores its images. Raw uint8 pixels cost more disk than PNG
# (+2% on the replica, +9% for the one real 28x28 sign we have), but a batch
# of them decodes in one op while PNGs decode one at a time: an epoch reads
# several times faster (docs/BENCHMARKS.md, "Read path"). Readers hand an
# (H, W, C) uint8 array for RAW_PIXELS and PNG/JPEG bytes (or an array) for
# ENCODED_IMAGE.
RAW_PIXELS = "raw"
ENCODED_IMAGE = "encoded"


def raw_image_feature(shape) -> tfds.features.Tensor:
    """An image stored as its raw uint8 pixels: TFDS's own feature, so any
    process loads it without this package."""
    if None in shape:
        raise ValueError(f"raw pixels need a fixed image shape, got {shape}")
    return tfds.features.Tensor(shape=tuple(shape), dtype=np.uint8, encoding="bytes",
                                doc="uint8 pixels, (height, width, channels)")


def image_features(shape, storage: str, classes) -> tfds.features.FeaturesDict:
    """`image` and `label`: the features of every dataset of the project.

    Both storages load as the same uint8 `image` tensor in any process, with
    or without this package (tfds.features.Tensor is TFDS's own feature).
    """
    if storage == RAW_PIXELS:
        image = raw_image_feature(shape)
    elif storage == ENCODED_IMAGE:
        image = tfds.features.Image(shape=shape)
    else:
        raise ValueError(f"storage must be {RAW_PIXELS!r} or {ENCODED_IMAGE!r}, got {storage!r}")
    return tfds.features.FeaturesDict({
        "image": image,
        "label": tfds.features.ClassLabel(names=list(classes)),
    })


def sign_features(shape=(28, 28, 1), storage: str = RAW_PIXELS) -> tfds.features.FeaturesDict:
    """The features every sign-language dataset shares, so one model serves all."""
    return image_features(shape, storage, SIGN_LETTERS)


SHUFFLE_MEMORY_ENV = "SIGN_DATASETS_SHUFFLE_MEMORY_MB"
DEFAULT_SHUFFLE_MEMORY_MB = 64


def shuffle_memory_bytes() -> int:
    megabytes = settings.number(SHUFFLE_MEMORY_ENV, DEFAULT_SHUFFLE_MEMORY_MB, float, positive=True)
    return max(1, int(megabytes * (1 << 20)))


@contextlib.contextmanager
def bounded_shuffle_memory():
    """Caps what TFDS's shuffler holds in memory before it spills to disk.

    TFDS keeps up to 1 GB of serialized examples in memory; with that, a
    build's peak memory grows with the dataset. Spilled buckets come back in
    the same hashed-key order, so the shards are byte-identical either way.
    """
    limit = shuffle_memory_bytes()
    previous = shuffle.MAX_MEM_BUFFER_SIZE
    shuffle.MAX_MEM_BUFFER_SIZE = min(previous, limit)
    try:
        yield
    finally:
        shuffle.MAX_MEM_BUFFER_SIZE = previous


# Beneath the download dir: the per-split summaries Beam workers write.
BEAM_SUMMARIES = "beam_summaries"


@dataclasses.dataclass
class BeamBuild:
    """The Beam splits of one build in progress and where their summaries go."""

    summary_dir: epath.Path
    plans: list = dataclasses.field(default_factory=list)


def _beam_lib():
    from sign_datasets.generate import beam  # only Beam builds need apache-beam

    return beam


@contextlib.contextmanager
def _fresh_downloads_removed_on_source_errors():
    """A build that stops on a source error removes the sources it just
    downloaded (an HTML error page, a file a server cut short), so the next
    build downloads them again instead of failing on the same bytes forever;
    the error says so."""
    downloads.forget_fresh_downloads()
    try:
        yield
    except failed_share.TooManyFailures:
        # Image URLs failed, not the source file: a rerun fetches only those.
        downloads.forget_fresh_downloads()
        raise
    except SourceError as error:
        removed = downloads.discard_fresh_downloads()
        if removed and len(error.args) == 1 and isinstance(error.args[0], str):
            names = ", ".join(sources.downloaded_name(path) for path in removed)
            error.args = (f"{error.args[0]} (downloaded by this build and now removed, so the "
                          f"next build downloads it again: {names})",)
        raise
    downloads.forget_fresh_downloads()


class CleanedBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A GeneratorBasedBuilder whose examples pass through named cleaning rules."""

    HOMEPAGE: str = ""
    SUPERVISED_KEYS = ("image", "label")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # TFDS finds README.md, CITATIONS.bib and checksums.tsv by rebuilding
        # the folder from the module name, which fails when builders/ is
        # mapped under sign_datasets (editable installs). The file knows.
        cls.pkg_dir_path = epath.Path(inspect.getfile(cls)).parent

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> epath.Path:
        # Same reason: checksums.tsv is looked up beside this file.
        return epath.Path(inspect.getfile(cls))

    def _features(self) -> tfds.features.FeatureConnector:
        raise NotImplementedError

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=self._features(),
            supervised_keys=self.SUPERVISED_KEYS,
            homepage=self.HOMEPAGE or None,
            metadata=tfds.core.MetadataDict(),
        )

    def _example_writer(self):
        # TFDS's hook for where serialized examples go, local and Beam builds
        # alike: ours go with sorted feature maps (determinism.py).
        return determinism.SortedMapsWriter(super()._example_writer())

    # --- sources -------------------------------------------------------------

    def download_object(self, dl_manager: tfds.download.DownloadManager, name: str) -> Path | str:
        """The file of one bucket object: read in place from a local source,
        else downloaded once into the download dir through the URL policy
        (`downloads.download_source`; a later build sends no request). Under
        a remote download dir (gs://) it is a URL string, which the format
        readers open through `guards.open_source`."""
        return downloads.download_source(sources.object_url(name), dl_manager.download_dir)

    # --- generation: one plan per split, on the runner the build asks for --------

    def _generate_examples(self, plan: SplitPlan):
        """The (key, example) of one split's plan, its cleaning report stored
        in info.metadata: under Beam a PTransform when the build was given Beam
        options, else a generator reading on every core of this machine.
        A builder's `_split_generators` gives each split's plan to it."""
        if getattr(self, "_beam_build", None) is not None:
            return self._beam_examples(plan)
        return self._local_examples(plan)

    def near_share(self) -> NearShare:
        """The quality report's options and state for this build, made on
        first use: a config's own options, else its catalog entry's. Every
        build reports near copies; only the drop option changes the data."""
        share = getattr(self, "_near", None)
        if share is None:
            config = self.builder_config
            if hasattr(config, "drop_near_leaked_from_test"):
                drop, distance = config.drop_near_leaked_from_test, config.near_distance
            else:
                entry = getattr(self, "ENTRY", None)
                cleaning = (entry.cleaning_for(config.name if config else None)
                            if entry is not None else {})
                drop = cleaning.get("drop_near_leaked_from_test", False)
                distance = cleaning.get("near_distance")
            share = self._near = NearShare(
                distance=near.DEFAULT_DISTANCE if distance is None else distance,
                drop_from_test=drop)
        return share

    def _local_examples(self, plan: SplitPlan) -> Iterator[tuple[Any, dict]]:
        outcome = local.Outcome(SplitReport())
        share = self.near_share()
        yield from local.examples(plan, outcome, near=share)
        self._store_outcome(plan, outcome.report, outcome.noted, outcome.leakage)
        empty = safety.no_records_error(self.info.full_name, plan.split, outcome.report)
        if empty is not None:
            # Raised once TFDS refuses the empty split (download_and_prepare),
            # so that the plan's own end-of-split check speaks first.
            self._empty_splits = {**getattr(self, "_empty_splits", {}), plan.split: empty}
        if plan.check is not None:
            plan.check(outcome.report.to_dict())

    def _beam_examples(self, plan: SplitPlan):
        build = self._beam_build
        if plan.split == "test" and plan.facts is not None and self.near_share().drop_from_test:
            raise SourceError(f"{self.info.full_name}: dropping test images with a near copy in "
                              "train is done by a local build only (the test split waits for "
                              "all of train's hashes); build it without Beam options.")
        summary_path = os.fspath(build.summary_dir / f"{plan.split}.json")
        build.plans.append((plan, summary_path))
        return _beam_lib().CleanedSplit(plan, summary_path, self.near_share())

    def _store_outcome(self, plan: SplitPlan, report: SplitReport, noted: int,
                       leakage: dict | None) -> None:
        self.record_report(plan.split, report)
        if plan.note_key:
            counts = dict(self.info.metadata.get(plan.note_key, {}))
            counts[plan.split] = noted
            self.info.metadata[plan.note_key] = counts
        if leakage is not None:
            self.info.metadata["leakage"] = leakage

    def record_report(self, split: str, report: SplitReport) -> None:
        cleaning = dict(self.info.metadata.get("cleaning", {}))
        cleaning[split] = report.to_dict()
        self.info.metadata["cleaning"] = cleaning

    def cleaning_report(self) -> dict:
        return dict(self.info.metadata.get("cleaning", {})) if self.info.metadata else {}

    # --- scale-out on Apache Beam ------------------------------------------------

    def _generate_splits(self, dl_manager, download_config):
        if download_config.beam_runner is None and download_config.beam_options is None:
            share = self.near_share()
            try:
                split_infos = super()._generate_splits(dl_manager, download_config)
            except BaseException:
                local.abandon_reports(share)
                raise
            self._store_quality(share)
            return split_infos
        # Workers write each split's summary here; it must be a folder they
        # all reach, as the download dir is (gs:// on Dataflow).
        summary_dir = (epath.Path(os.fspath(dl_manager.download_dir)) / BEAM_SUMMARIES
                       / f"{self.name}-{self.builder_config.name if self.builder_config else ''}"
                         f"-{self.version}-{uuid.uuid4().hex}")
        summary_dir.mkdir(parents=True, exist_ok=True)
        self._beam_build = BeamBuild(summary_dir)
        try:
            split_infos = super()._generate_splits(dl_manager, download_config)
        except Exception as error:
            # TFDS's writer stops the pipeline on an empty split without
            # naming a file or a reason; the split's summary knows both.
            empty = self._beam_empty_split()
            if empty is None:
                raise
            raise empty from error
        finally:
            self._beam_build = None
            summary_dir.rmtree(missing_ok=True)
        self._check_written_examples(split_infos)
        return split_infos

    def _check_written_examples(self, split_infos) -> None:
        """The balance of a Beam build: each split holds as many examples as
        its summary kept, or the runner lost or repeated some."""
        cleaning = self.cleaning_report()
        for info in split_infos:
            kept = cleaning.get(info.name, {}).get("kept")
            if kept is not None and kept != info.num_examples:
                raise AssertionError(
                    f"{self.info.full_name} {info.name}: cleaning accounting broken under Beam: "
                    f"{info.num_examples} examples written, the pipeline's report kept {kept}")

    def _process_pipeline_result(self, pipeline_result) -> None:
        build = getattr(self, "_beam_build", None)
        if build is None:
            return
        # The summaries are the one account: runners differ in what metrics
        # they give back (Beam's DaskRunner none at all).
        for plan, summary_path in build.plans:
            self._store_outcome(plan, *_beam_lib().split_outcome(plan, summary_path))
        self._beam_quality(build.plans)
        for plan, _ in build.plans:
            if plan.check is not None:
                plan.check(self.cleaning_report()[plan.split])

    def _beam_quality(self, plans: list) -> None:
        """The quality report of a Beam build, from the kept images' facts
        its pipeline collected, computed as the local runner does (train
        first, for test's near copies in train)."""
        share = self.near_share()
        for plan, summary_path in sorted(plans, key=lambda item: item[0].split != "train"):
            rows = _beam_lib().read_facts(summary_path)
            if rows is not None:
                found = _beam_lib().beam_near
                pairs = found.read_found(summary_path, "pairs")
                if pairs is None:
                    raise AssertionError(f"{self.info.full_name}: the {plan.split} split's near "
                                         "pairs were not written by the pipeline")
                local.quality_of_rows(share, plan.split, rows, pairs,
                                      found.read_found(summary_path, "nearest"))
        self._store_quality(share)

    def _store_quality(self, share: NearShare) -> None:
        """info.metadata["quality"] from every split's report (a local build's
        near pairs were searched in the background: waited for here)."""
        if share.splits:
            self.info.metadata["quality"] = quality.build_report(
                local.finished_reports(share), share.distance, share.leak,
                share.train_channels)

    def _beam_empty_split(self) -> Exception | None:
        """The clear error for a split that came out empty, if one did."""
        for plan, summary_path in self._beam_build.plans:
            summary = _beam_lib().read_summary(summary_path)
            if summary is not None:
                if plan.check is not None:
                    # As in the local path, a builder's own check speaks first
                    # (sign_mnist_json's TooManyFailures).
                    plan.check(summary["report"])
                empty = safety.no_records_error(self.info.full_name, plan.split,
                                                SplitReport.from_dict(summary["report"]))
                if empty is not None:
                    return empty
        return None

    def is_prepared(self) -> bool:
        # TFDS's own logs "Variant folder ... has no dataset_info.json" for a
        # folder that does not exist yet (every first build, every `list` of
        # datasets not built): an alarming line about nothing.
        return self.data_path.exists() and super().is_prepared()

    def download_and_prepare(self, *args, **kwargs):
        already_built = self.is_prepared()
        self._near = None  # each build reports its own near copies
        # A built dataset is only read (tfds.load calls this too): no lock
        # file, so read-only shared data dirs keep working.
        with contextlib.nullcontext() if already_built else \
                safety.build_lock(self.data_path, self.info.full_name):
            if not already_built and self.is_prepared():
                # Built by the process this one waited for: read what it wrote.
                already_built = True
                self.info.read_from_directory(self.data_path)
            elif not already_built:
                safety.remove_leftovers(self.data_path)
            with bounded_shuffle_memory(), _fresh_downloads_removed_on_source_errors():
                try:
                    result = super().download_and_prepare(*args, **kwargs)
                except AssertionError:
                    # TFDS's "No examples were yielded" names neither file nor cause.
                    empty = next(iter(getattr(self, "_empty_splits", {}).values()), None)
                    if empty is None:
                        raise
                    raise empty from None
                except Exception as error:
                    full = safety.disk_full_error(error, self.info.full_name, self.data_dir_root)
                    if full is None:
                        raise
                    raise full from error
        report = self.cleaning_report()
        if report and not already_built:
            print(format_report({self.info.full_name: report}, title="Cleaning report"),
                  file=sys.stderr)
            found = self.info.metadata.get("quality")
            if found:
                print(format_quality({self.info.full_name: found}), file=sys.stderr)
            junk = dict(self.info.metadata.get("junk") or {})
            if junk:
                # Archive members that are no records (unsafe names, folders
                # outside the splits, system files): skipped, and said so.
                where = "; ".join(f"{place}: " + ", ".join(f"{kind}={count}" for kind, count
                                                          in sorted(kinds.items()))
                                  for place, kinds in sorted(junk.items()))
                print(f"Skipped archive members (not records): {where}", file=sys.stderr)
        return result
