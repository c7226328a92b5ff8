"""TFDS-style tests of tom_and_jerry on its dummy_data (scripts/make_dummy_data_folders.py)."""

import tensorflow_datasets as tfds

from sign_datasets.builders.tom_and_jerry import tom_and_jerry_dataset_builder


class TomAndJerryTest(tfds.testing.DatasetBuilderTestCase):
    """Lower-case class folders and upper-case .JPG names; every config."""

    DATASET_CLASS = tom_and_jerry_dataset_builder.Builder
    SPLITS = {"train": 4, "test": 2}
    DL_DOWNLOAD_RESULT = "TomAndJerry.zip"
    SKIP_CHECKSUMS = True


if __name__ == "__main__":
    tfds.testing.test_main()
