"""TFDS-style tests of sign_language_img on its dummy_data (scripts/make_dummy_data_folders.py)."""

import os
import tempfile
from unittest import mock

import tensorflow_datasets as tfds

from sign_datasets.builders.sign_language_img import sign_language_img_dataset_builder

PREFIX = "sign-language-img.zip/"


class SignLanguageImgTest(tfds.testing.DatasetBuilderTestCase):
    """9 good train images plus a repeat and a truncated one; 6 test images,
    one of which repeats a train image and is kept."""

    DATASET_CLASS = sign_language_img_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["28x28"]
    SPLITS = {"train": 9, "test": 6}
    DL_DOWNLOAD_RESULT = "sign-language-img.zip"
    SKIP_CHECKSUMS = True

    def test_reports(self):
        # dummy_data/ has the bucket's layout, so it can stand in as the source.
        with tempfile.TemporaryDirectory() as data_dir, mock.patch.dict(
                os.environ, {"SIGN_DATASETS_SOURCE": str(self.dummy_data)}):
            builder = sign_language_img_dataset_builder.Builder(data_dir=data_dir)
            builder.download_and_prepare()
            metadata = builder.info.metadata
        self.assertEqual(metadata["cleaning"]["train"]["drops"],
                         {"corrupt_image": 1, "duplicate_image": 1})
        self.assertEqual(metadata["cleaning"]["train"]["examples"],
                         {"corrupt_image": [PREFIX + "Train/C/0009.jpg"],
                          "duplicate_image": [PREFIX + "Train/B/0004.jpg"]})
        self.assertEqual(metadata["junk"], {
            "archive": {"text_file": 1},
            "train": {"hidden_file": 1, "macos_metadata": 1, "thumbs_db": 1}})
        self.assertEqual(metadata["leakage"], {
            "count": 1, "dropped_from_test": False,
            "examples": [PREFIX + "Test/C/0002.jpg = " + PREFIX + "Train/A/0002.jpg"]})


class SignLanguageImgNoLeakageTest(tfds.testing.DatasetBuilderTestCase):
    """The leaked test image is dropped."""

    DATASET_CLASS = sign_language_img_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["28x28_no_leakage"]
    SPLITS = {"train": 9, "test": 5}
    DL_DOWNLOAD_RESULT = "sign-language-img.zip"
    SKIP_CHECKSUMS = True


if __name__ == "__main__":
    tfds.testing.test_main()
