"""TFDS-style tests of tumor_classification on its dummy_data (scripts/make_dummy_data_folders.py)."""

import tensorflow_datasets as tfds

from sign_datasets.builders.tumor_classification import tumor_classification_dataset_builder


class TumorClassificationTest(tfds.testing.DatasetBuilderTestCase):
    """training/ and testing/ folders, RGB files of grey content; every config."""

    DATASET_CLASS = tumor_classification_dataset_builder.Builder
    SPLITS = {"train": 3, "test": 3}
    DL_DOWNLOAD_RESULT = "TumorClassification.zip"
    SKIP_CHECKSUMS = True


if __name__ == "__main__":
    tfds.testing.test_main()
