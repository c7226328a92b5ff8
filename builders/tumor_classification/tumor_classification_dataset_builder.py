"""Lung CT slices from the course's TumorClassification.zip."""

import tensorflow_datasets as tfds

from sign_datasets.formats.zip_folders import FolderConfig, ImageFolderBuilder


class Builder(ImageFolderBuilder):
    """Lung CT slices: benign, malignant or normal, in grayscale."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release: image folders with cleaning accounting."}
    BUILDER_CONFIGS = [
        FolderConfig(name="native", description="Every slice at its own size, grayscale."),
        FolderConfig(name="124x124", size=(124, 124),
                     description="Every slice resized to 124x124, grayscale (the course's size)."),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "native"

    ARCHIVE = "TumorClassification.zip"
    CLASS_NAMES = ("BENIGN", "MALIGNANT", "NORMAL")
    # CT slices carry no colour (files saved as RGB hold three equal channels),
    # and the course trains on grayscale.
    MODE = "L"
