"""TFDS-style tests of sign_mnist_csv on its dummy_data (see scripts/make_dummy_data.py)."""

import os
import tempfile
from unittest import mock

import tensorflow_datasets as tfds

from sign_datasets.builders.sign_mnist_csv import sign_mnist_csv_dataset_builder


class SignMnistCsvOriginalTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = sign_mnist_csv_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["original"]
    SPLITS = {"train": 20, "test": 10}
    DL_DOWNLOAD_RESULT = "databasesLoadData.zip"
    SKIP_CHECKSUMS = True


class SignMnistCsvDirtyTest(tfds.testing.DatasetBuilderTestCase):
    """The dirty copy holds the same 20 rows plus three junk rows."""

    DATASET_CLASS = sign_mnist_csv_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["dirty"]
    SPLITS = {"train": 20, "test": 10}
    DL_DOWNLOAD_RESULT = "databasesLoadData.zip"
    SKIP_CHECKSUMS = True

    def test_cleaning_report(self):
        # dummy_data/ has the bucket's layout, so it can stand in as the source.
        with tempfile.TemporaryDirectory() as data_dir, mock.patch.dict(
                os.environ, {"SIGN_DATASETS_SOURCE": str(self.dummy_data)}):
            builder = sign_mnist_csv_dataset_builder.Builder(config="dirty", data_dir=data_dir)
            builder.download_and_prepare()
            report = builder.info.metadata["cleaning"]["train"]
        self.assertEqual(report["records"], 23)
        self.assertEqual(report["kept"], 20)
        self.assertEqual(report["drops"], {"duplicate_row": 1, "non_numeric_cell": 1,
                                           "unknown_label": 1})
        prefix = "databasesLoadData.zip/sign_mnist_train/sign_mnist_train_clean.csv:"
        # header is line 1; inserted rows sit at data indices 5, 9, 12
        self.assertEqual(report["examples"], {"duplicate_row": [prefix + "7"],
                                              "non_numeric_cell": [prefix + "11"],
                                              "unknown_label": [prefix + "14"]})


if __name__ == "__main__":
    tfds.testing.test_main()
