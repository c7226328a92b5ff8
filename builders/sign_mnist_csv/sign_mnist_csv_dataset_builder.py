"""Sign Language MNIST from the course's CSVs of 28x28 pixel rows."""

import dataclasses

import tensorflow_datasets as tfds

from sign_datasets.builder import CleanedBuilder, sign_features
from sign_datasets.formats import csv_pixels
from sign_datasets.labels import CSV_LABEL_TO_INDEX

ARCHIVE = "databasesLoadData.zip"
TEST_MEMBER = "sign_mnist_test/sign_mnist_test.csv"


@dataclasses.dataclass
class CsvConfig(tfds.core.BuilderConfig):
    train_member: str = ""


class Builder(CleanedBuilder):
    """Sign Language MNIST: 24 static letters of American Sign Language."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release: cleaning rules with accounting."}
    BUILDER_CONFIGS = [
        CsvConfig(name="original", train_member="sign_mnist_train/sign_mnist_train.csv",
                  description="sign_mnist_train.csv as train, sign_mnist_test.csv as test."),
        CsvConfig(name="dirty", train_member="sign_mnist_train/sign_mnist_train_clean.csv",
                  description="The course's dirty copy (sign_mnist_train_clean.csv, despite "
                              "its name) as train, cleaned during generation."),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "original"
    HOMEPAGE = "https://www.kaggle.com/datamunge/sign-language-mnist"

    def _features(self):
        return sign_features()

    def _split_generators(self, dl_manager):
        archive = self.download_object(dl_manager, ARCHIVE)
        return {
            "train": self._generate_examples(archive, self.builder_config.train_member, "train"),
            "test": self._generate_examples(archive, TEST_MEMBER, "test"),
        }

    def _generate_examples(self, archive, member, split):
        with self.open_member(archive, member) as stream:
            rows = csv_pixels.read(stream, f"{ARCHIVE}/{member}",
                                   rules=csv_pixels.row_rules(CSV_LABEL_TO_INDEX))
            yield from self.cleaned_examples(
                split, rows, [csv_pixels.no_repeats()],
                lambda row: (row.line, {"image": row.png,
                                        "label": CSV_LABEL_TO_INDEX[row.label]}))
