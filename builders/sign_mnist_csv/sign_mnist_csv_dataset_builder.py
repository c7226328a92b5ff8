"""Sign Language MNIST from the course's CSVs of 28x28 pixel rows."""

import dataclasses
import functools

import tensorflow_datasets as tfds

from sign_datasets.catalog.loader import project_entry
from sign_datasets.core.labels import CSV_LABEL_TO_INDEX
from sign_datasets.formats import csv_lines, csv_pixels
from sign_datasets.generate.builder import CleanedBuilder, sign_features

# Version, release notes, configs and sources: sign_datasets/catalog/catalog.toml.
ENTRY = project_entry("sign_mnist_csv")
ARCHIVE = ENTRY.sources[0].target
TEST_MEMBER = ENTRY.sources_for("test")[0].member


@dataclasses.dataclass
class CsvConfig(tfds.core.BuilderConfig):
    train_member: str = ""


class Builder(CleanedBuilder):
    """Sign Language MNIST: 24 static letters of American Sign Language."""

    # Read by CleanedBuilder.near_share for a config's cleaning options.
    ENTRY = ENTRY
    VERSION = tfds.core.Version(ENTRY.version)
    RELEASE_NOTES = ENTRY.release_notes
    BUILDER_CONFIGS = [CsvConfig(name=c.name, description=c.description,
                                 train_member=ENTRY.sources_for("train", c.name)[0].member)
                       for c in ENTRY.configs]
    HOMEPAGE = ENTRY.homepage

    def _features(self):
        return sign_features()

    def _split_generators(self, dl_manager):
        archive = str(self.download_object(dl_manager, ARCHIVE))
        members = {"train": self.builder_config.train_member, "test": TEST_MEMBER}
        return {split: self._generate_examples(csv_pixels.plan(
                    self.info.full_name, split,
                    [csv_lines.CsvFile(archive, member, f"{ARCHIVE}/{member}")],
                    rules=csv_pixels.row_rules(CSV_LABEL_TO_INDEX),
                    to_example=functools.partial(csv_pixels.to_example,
                                                 label_map=CSV_LABEL_TO_INDEX)))
                for split, member in members.items()}
