"""Sign Language MNIST from the course's zip of image folders (sign-language-img.zip)."""

from sign_datasets.generate.builder import RAW_PIXELS
from sign_datasets.catalog.generated import project_folder_builder


# Version, release notes, configs, archive, classes and mode: sign_datasets/catalog/catalog.toml.
class Builder(project_folder_builder("sign_language_img")):
    """Sign Language MNIST as 28x28 grayscale JPEGs in Train/<letter>/ and Test/<letter>/."""

    # The same features as every sign-language dataset (one model serves
    # all): raw 28x28 uint8 pixels, decoded once at build time, so that an
    # epoch needs no JPEG decode per image (docs/BENCHMARKS.md).
    STORAGE = RAW_PIXELS
