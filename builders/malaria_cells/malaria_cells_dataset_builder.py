"""Malaria cell crops from the course's MalariaCells.zip."""

import tensorflow_datasets as tfds

from sign_datasets.catalog_builders import builder_configs
from sign_datasets.catalog_file import project_entry
from sign_datasets.formats.zip_folders import ImageFolderBuilder

# Version, release notes, configs, archive, classes and mode: sign_datasets/catalog.toml.
ENTRY = project_entry("malaria_cells")


class Builder(ImageFolderBuilder):
    """Thin-blood-smear cell crops, parasitized or uninfected, in RGB."""

    VERSION = tfds.core.Version(ENTRY.version)
    RELEASE_NOTES = ENTRY.release_notes
    BUILDER_CONFIGS = builder_configs(ENTRY)
    HOMEPAGE = ENTRY.homepage

    ARCHIVE = ENTRY.sources[0].target
    CLASS_NAMES = ENTRY.classes
    MODE = ENTRY.mode
