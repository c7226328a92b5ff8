"""TFDS-style tests of sign_mnist_json on its dummy_data (see scripts/make_dummy_data_json.py).

dummy_data/ has the bucket's layout (databasesLoadData.zip beside img_mnist/),
so with SIGN_DATASETS_SOURCE pointing at it the bucket URLs of data.json are
read from there as file:// URLs, through the same fetcher as http ones.
"""

import os
import tempfile
from unittest import mock

import tensorflow_datasets as tfds

from sign_datasets.builders.sign_mnist_json import sign_mnist_json_dataset_builder

SOURCE = "databasesLoadData.zip/sign_mnist_json/data.json"
BUCKET = "https://storage.googleapis.com/platzi-tf2/"


class SignMnistJsonTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = sign_mnist_json_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["default"]
    SPLITS = {"train": 18}
    DL_DOWNLOAD_RESULT = "databasesLoadData.zip"
    SKIP_CHECKSUMS = True

    def setUp(self):
        super().setUp()
        patcher = mock.patch.dict(os.environ, {"SIGN_DATASETS_SOURCE": str(self.dummy_data)})
        patcher.start()
        self.addCleanup(patcher.stop)

    def test_cleaning_report(self):
        with tempfile.TemporaryDirectory() as data_dir:
            builder = sign_mnist_json_dataset_builder.Builder(data_dir=data_dir)
            builder.download_and_prepare()
            metadata = builder.info.metadata
        report = metadata["cleaning"]["train"]
        self.assertEqual((report["records"], report["kept"]), (20, 18))
        self.assertEqual(report["drops"], {"not_found": 1, "unknown_label": 1})
        self.assertEqual(report["examples"], {
            "not_found": [f"{SOURCE}:9 {BUCKET}img_mnist/404_E.jpg"],
            "unknown_label": [f"{SOURCE}:13 {BUCKET}img_mnist/1_A.jpg"],
        })
        self.assertEqual(metadata["resized"], {"train": 1})


if __name__ == "__main__":
    tfds.testing.test_main()
