"""Imports every builder so that TFDS registers it by name."""

from sign_datasets.builders.sign_mnist_csv import sign_mnist_csv_dataset_builder  # noqa: F401

BUILDERS = ("sign_mnist_csv",)
