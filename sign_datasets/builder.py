"""What every builder of the project shares.

A builder in `builders/` declares features, source objects, a reader and
rules; this base class turns that into TFDS generation with cleaning
accounting stored in `info.metadata["cleaning"]` and printed after a build.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import os
import sys
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import tensorflow_datasets as tfds
from etils import epath

from sign_datasets import determinism, sources
from sign_datasets.cleaning import SplitReport, clean, format_report
from sign_datasets.labels import SIGN_LETTERS

determinism.install()


def sign_features(shape=(28, 28, 1)) -> tfds.features.FeaturesDict:
    """The features every sign-language dataset shares, so one model serves all."""
    return tfds.features.FeaturesDict({
        "image": tfds.features.Image(shape=shape),
        "label": tfds.features.ClassLabel(names=SIGN_LETTERS),
    })


SHUFFLE_MEMORY_ENV = "SIGN_DATASETS_SHUFFLE_MEMORY_MB"
DEFAULT_SHUFFLE_MEMORY_MB = 64


@contextlib.contextmanager
def bounded_shuffle_memory():
    """Caps what TFDS's shuffler holds in memory before it spills to disk.

    TFDS keeps up to 1 GB of serialized examples in memory; with that, a
    build's peak memory grows with the dataset. Spilled buckets come back in
    the same hashed-key order, so the shards are byte-identical either way.
    """
    from tensorflow_datasets.core import shuffle

    limit = int(float(os.environ.get(SHUFFLE_MEMORY_ENV, DEFAULT_SHUFFLE_MEMORY_MB)) * (1 << 20))
    previous = shuffle.MAX_MEM_BUFFER_SIZE
    shuffle.MAX_MEM_BUFFER_SIZE = min(previous, limit)
    try:
        yield
    finally:
        shuffle.MAX_MEM_BUFFER_SIZE = previous


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

    # --- sources -------------------------------------------------------------

    def download_object(self, dl_manager: tfds.download.DownloadManager, name: str) -> Path:
        """Downloads one bucket object (through TFDS's cache) and returns its path."""
        url = sources.object_url(name)
        return Path(os.fspath(dl_manager.download(sources.download_target(url))))

    @staticmethod
    @contextlib.contextmanager
    def open_member(archive: Path, member: str) -> Iterator[Any]:
        """Streams one member of a zip without extracting it to disk."""
        with zipfile.ZipFile(archive) as zf:
            try:
                info = zf.getinfo(member)
            except KeyError:
                found = sorted(n for n in zf.namelist() if not n.endswith("/"))[:20]
                raise FileNotFoundError(
                    f"{archive.name}: no member {member!r}; it holds {found}") from None
            # ZipExtFile.readline is pure Python; a C buffer in front of it
            # makes line-by-line reading several times faster.
            with io.BufferedReader(zf.open(info), buffer_size=1 << 20) as stream:
                yield stream

    # --- cleaning and accounting ---------------------------------------------

    def cleaned_examples(
        self,
        split: str,
        records: Iterable[Any],
        rules: Iterable[Callable[[Any], Any]],
        to_example: Callable[[Any], tuple[Any, dict]],
    ) -> Iterator[tuple[Any, dict]]:
        """Yields (key, example) for records that pass `rules`; counts the rest."""
        report = SplitReport()
        for record in clean(records, rules, report):
            yield to_example(record)
        report.check_balance()
        self.record_report(split, report)

    def record_report(self, split: str, report: SplitReport) -> None:
        cleaning = dict(self.info.metadata.get("cleaning", {}))
        cleaning[split] = report.to_dict()
        self.info.metadata["cleaning"] = cleaning

    def cleaning_report(self) -> dict:
        return dict(self.info.metadata.get("cleaning", {})) if self.info.metadata else {}

    def download_and_prepare(self, *args, **kwargs):
        already_built = self.is_prepared()
        with bounded_shuffle_memory():
            result = super().download_and_prepare(*args, **kwargs)
        report = self.cleaning_report()
        if report and not already_built:
            print(format_report({self.info.full_name: report}, title="Cleaning report"),
                  file=sys.stderr)
        return result
