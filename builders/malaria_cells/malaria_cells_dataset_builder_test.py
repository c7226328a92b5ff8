"""TFDS-style tests of malaria_cells on its dummy_data (scripts/make_dummy_data_folders.py)."""

import tensorflow_datasets as tfds

from sign_datasets.builders.malaria_cells import malaria_cells_dataset_builder


class MalariaCellsTest(tfds.testing.DatasetBuilderTestCase):
    """A wrapper folder and lower-case train/ and test/; every config."""

    DATASET_CLASS = malaria_cells_dataset_builder.Builder
    SPLITS = {"train": 4, "test": 2}
    DL_DOWNLOAD_RESULT = "MalariaCells.zip"
    SKIP_CHECKSUMS = True


if __name__ == "__main__":
    tfds.testing.test_main()
