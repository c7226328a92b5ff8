"""Sign Language MNIST from the course's zip of image folders (sign-language-img.zip)."""

from sign_datasets.builder import ENCODED_IMAGE, sign_features
from sign_datasets.catalog_builders import project_folder_builder


# Version, release notes, configs, archive, classes and mode: sign_datasets/catalog.toml.
class Builder(project_folder_builder("sign_language_img")):
    """Sign Language MNIST as 28x28 grayscale JPEGs in Train/<letter>/ and Test/<letter>/."""


    def _features(self):
        # The same features as every sign-language dataset: one model serves all.
        # The JPEGs stay encoded: TensorFlow then decodes them exactly as keras
        # does, which Pillow in the workers would not (its IDCT differs by up
        # to 3 levels from TensorFlow's default INTEGER_FAST one).
        return sign_features(self.image_shape(), storage=ENCODED_IMAGE)
