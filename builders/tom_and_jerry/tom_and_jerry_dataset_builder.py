"""Tom and Jerry cartoon frames from the course's TomAndJerry.zip."""

import tensorflow_datasets as tfds

from sign_datasets.catalog_builders import builder_configs
from sign_datasets.catalog_file import project_entry
from sign_datasets.formats.zip_folders import ImageFolderBuilder

# Version, release notes, configs, archive, classes and mode: sign_datasets/catalog.toml.
ENTRY = project_entry("tom_and_jerry")


class Builder(ImageFolderBuilder):
    """Cartoon frames showing Tom or Jerry, in RGB."""

    VERSION = tfds.core.Version(ENTRY.version)
    RELEASE_NOTES = ENTRY.release_notes
    BUILDER_CONFIGS = builder_configs(ENTRY)
    HOMEPAGE = ENTRY.homepage

    ARCHIVE = ENTRY.sources[0].target
    CLASS_NAMES = ENTRY.classes
    MODE = ENTRY.mode
