"""Sign Language MNIST from the course's CSVs of 28x28 pixel rows."""

import dataclasses
import functools

import tensorflow_datasets as tfds

from sign_datasets.generate.builder import CleanedBuilder, sign_features
from sign_datasets.catalog.schema import project_entry
from sign_datasets.formats import csv_pixels
from sign_datasets.core.labels import CSV_LABEL_TO_INDEX

# Version, release notes, configs and sources: sign_datasets/catalog/catalog.toml.
ENTRY = project_entry("sign_mnist_csv")
ARCHIVE = ENTRY.sources[0].target
TEST_MEMBER = ENTRY.sources_for("test")[0].member


@dataclasses.dataclass
class CsvConfig(tfds.core.BuilderConfig):
    train_member: str = ""


class Builder(CleanedBuilder):
    """Sign Language MNIST: 24 static letters of American Sign Language."""

    VERSION = tfds.core.Version(ENTRY.version)
    RELEASE_NOTES = ENTRY.release_notes
    BUILDER_CONFIGS = [CsvConfig(name=c.name, description=c.description,
                                 train_member=ENTRY.sources_for("train", c.name)[0].member)
                       for c in ENTRY.configs]
    HOMEPAGE = ENTRY.homepage

    def _features(self):
        return sign_features()

    def _split_generators(self, dl_manager):
        archive = self.download_object(dl_manager, ARCHIVE)
        return {
            "train": self._generate_examples(archive, self.builder_config.train_member, "train"),
            "test": self._generate_examples(archive, TEST_MEMBER, "test"),
        }

    def _generate_examples(self, archive, member, split):
        if self.generates_on_beam:
            return self.beam_examples(csv_pixels.beam_plan(
                self.info.full_name, split,
                [csv_pixels.CsvFile(str(archive), member, f"{ARCHIVE}/{member}")],
                rules=csv_pixels.row_rules(CSV_LABEL_TO_INDEX),
                to_example=functools.partial(csv_pixels.to_example, label_map=CSV_LABEL_TO_INDEX)))
        return self._generate_locally(archive, member, split)

    def _generate_locally(self, archive, member, split):
        with self.open_member(archive, member) as stream:
            rows = csv_pixels.read(stream, f"{ARCHIVE}/{member}",
                                   rules=csv_pixels.row_rules(CSV_LABEL_TO_INDEX))
            yield from self.cleaned_examples(
                split, rows, [csv_pixels.no_repeats()],
                functools.partial(csv_pixels.to_example, label_map=CSV_LABEL_TO_INDEX))
