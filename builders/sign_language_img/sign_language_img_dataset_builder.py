"""Sign Language MNIST from the course's zip of image folders (sign-language-img.zip)."""

import tensorflow_datasets as tfds

from sign_datasets.builder import sign_features
from sign_datasets.formats.zip_folders import FolderConfig, ImageFolderBuilder
from sign_datasets.labels import SIGN_LETTERS


class Builder(ImageFolderBuilder):
    """Sign Language MNIST as 28x28 grayscale JPEGs in Train/<letter>/ and Test/<letter>/."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release: image folders with cleaning accounting."}
    BUILDER_CONFIGS = [
        FolderConfig(name="28x28", size=(28, 28),
                     description="Every image as 28x28 grayscale (the originals' size)."),
        FolderConfig(name="28x28_no_leakage", size=(28, 28), drop_leaked_from_test=True,
                     description="As 28x28, without the test images whose pixels equal a "
                                 "train image's."),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "28x28"
    HOMEPAGE = "https://www.kaggle.com/datamunge/sign-language-mnist"

    ARCHIVE = "sign-language-img.zip"
    CLASS_NAMES = SIGN_LETTERS
    MODE = "L"

    def _features(self):
        # The same features as every sign-language dataset: one model serves all.
        return sign_features(self.image_shape())
