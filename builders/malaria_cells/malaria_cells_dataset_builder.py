"""Malaria cell crops from the course's MalariaCells.zip."""

import tensorflow_datasets as tfds

from sign_datasets.formats.zip_folders import FolderConfig, ImageFolderBuilder


class Builder(ImageFolderBuilder):
    """Thin-blood-smear cell crops, parasitized or uninfected, in RGB."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release: image folders with cleaning accounting."}
    BUILDER_CONFIGS = [
        FolderConfig(name="native", description="Every crop at its own size, RGB."),
        FolderConfig(name="124x124", size=(124, 124),
                     description="Every crop resized to 124x124, RGB (the course's size)."),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "native"
    HOMEPAGE = "https://lhncbc.nlm.nih.gov/LHC-research/LHC-projects/image-processing/malaria-datasheet.html"

    ARCHIVE = "MalariaCells.zip"
    CLASS_NAMES = ("Parasitized", "Uninfected")
    MODE = "RGB"
