"""Tom and Jerry cartoon frames from the course's TomAndJerry.zip."""

import tensorflow_datasets as tfds

from sign_datasets.formats.zip_folders import FolderConfig, ImageFolderBuilder


class Builder(ImageFolderBuilder):
    """Cartoon frames showing Tom or Jerry, in RGB."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release: image folders with cleaning accounting."}
    BUILDER_CONFIGS = [
        FolderConfig(name="native", description="Every frame at its own size, RGB."),
        FolderConfig(name="640x480", size=(480, 640),
                     description="Every frame as 640 wide by 480 high, RGB (the course's size)."),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "native"

    ARCHIVE = "TomAndJerry.zip"
    # Alphabetical, as keras' image_dataset_from_directory numbers the folders,
    # so models trained the course's way read the same label numbers.
    CLASS_NAMES = ("Jerry", "Tom")
    MODE = "RGB"
