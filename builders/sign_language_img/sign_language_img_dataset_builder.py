"""Sign Language MNIST from the course's zip of image folders (sign-language-img.zip)."""

import tensorflow_datasets as tfds

from sign_datasets.builder import ENCODED_IMAGE, sign_features
from sign_datasets.catalog_builders import builder_configs
from sign_datasets.catalog_file import project_entry
from sign_datasets.formats.zip_folders import ImageFolderBuilder

# Version, release notes, configs and sources: sign_datasets/catalog.toml.
ENTRY = project_entry("sign_language_img")


class Builder(ImageFolderBuilder):
    """Sign Language MNIST as 28x28 grayscale JPEGs in Train/<letter>/ and Test/<letter>/."""

    VERSION = tfds.core.Version(ENTRY.version)
    RELEASE_NOTES = ENTRY.release_notes
    BUILDER_CONFIGS = builder_configs(ENTRY)
    HOMEPAGE = ENTRY.homepage

    ARCHIVE = ENTRY.sources[0].target
    CLASS_NAMES = ENTRY.classes
    MODE = ENTRY.mode

    def _features(self):
        # The same features as every sign-language dataset: one model serves all.
        # The JPEGs stay encoded: TensorFlow then decodes them exactly as keras
        # does, which Pillow in the workers would not (its IDCT differs by up
        # to 3 levels from TensorFlow's default INTEGER_FAST one).
        return sign_features(self.image_shape(), storage=ENCODED_IMAGE)
