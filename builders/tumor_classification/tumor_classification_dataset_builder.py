"""Lung CT slices from the course's TumorClassification.zip."""

import tensorflow_datasets as tfds

from sign_datasets.catalog_builders import builder_configs
from sign_datasets.catalog_file import project_entry
from sign_datasets.formats.zip_folders import ImageFolderBuilder

# Version, release notes, configs, archive, classes and mode: sign_datasets/catalog.toml.
ENTRY = project_entry("tumor_classification")


class Builder(ImageFolderBuilder):
    """Lung CT slices: benign, malignant or normal, in grayscale."""

    VERSION = tfds.core.Version(ENTRY.version)
    RELEASE_NOTES = ENTRY.release_notes
    BUILDER_CONFIGS = builder_configs(ENTRY)
    HOMEPAGE = ENTRY.homepage

    ARCHIVE = ENTRY.sources[0].target
    CLASS_NAMES = ENTRY.classes
    MODE = ENTRY.mode
