"""TFDS-style tests of sign_mnist_base64 on its dummy_data (see scripts/make_dummy_data_json.py)."""

import os
import tempfile
from unittest import mock

import tensorflow_datasets as tfds

from sign_datasets.builders.sign_mnist_base64 import sign_mnist_base64_dataset_builder

SOURCE = "databasesLoadData.zip/sign_mnist_base64/data.json"


class SignMnistBase64Test(tfds.testing.DatasetBuilderTestCase):
    """The dummy file is a list holding every accepted form and three bad entries."""

    DATASET_CLASS = sign_mnist_base64_dataset_builder.Builder
    SPLITS = {"train": 6}
    DL_DOWNLOAD_RESULT = "databasesLoadData.zip"
    SKIP_CHECKSUMS = True

    def test_cleaning_report(self):
        with tempfile.TemporaryDirectory() as data_dir, mock.patch.dict(
                os.environ, {"SIGN_DATASETS_SOURCE": str(self.dummy_data)}):
            builder = sign_mnist_base64_dataset_builder.Builder(data_dir=data_dir)
            builder.download_and_prepare()
            metadata = builder.info.metadata
        report = metadata["cleaning"]["train"]
        self.assertEqual((report["records"], report["kept"]), (9, 6))
        self.assertEqual(report["drops"], {"bad_base64": 1, "not_an_image": 1, "unknown_label": 1})
        # Each entry is named by the line of its label and its number in the file.
        self.assertEqual(report["examples"], {
            "unknown_label": [f"{SOURCE}:16 entry 5 label 'j'"],
            "bad_base64": [f"{SOURCE}:19 entry 6 label 'd'"],
            "not_an_image": [f"{SOURCE}:22 entry 7 label 'e'"],
        })
        self.assertEqual(metadata["resized"], {"train": 1})


if __name__ == "__main__":
    tfds.testing.test_main()
