"""Sign Language MNIST images embedded as base64 in the course's sign_mnist_base64/data.json."""

import tensorflow_datasets as tfds

from sign_datasets.catalog.loader import project_entry
from sign_datasets.core.plans import positioned
from sign_datasets.formats import base64_json
from sign_datasets.generate.builder import CleanedBuilder, sign_features
from sign_datasets.io.archives import open_member

# Version, release notes, configs and sources: sign_datasets/catalog/catalog.toml.
ENTRY = project_entry("sign_mnist_base64")
ARCHIVE = ENTRY.sources[0].target
MEMBER = ENTRY.sources[0].member


def _entries(archive):
    with open_member(archive, MEMBER) as stream:
        yield from positioned([base64_json.read(stream, f"{ARCHIVE}/{MEMBER}")])


class Builder(CleanedBuilder):
    """Sign-language letters decoded from a JSON object of label -> base64 image."""

    VERSION = tfds.core.Version(ENTRY.version)
    RELEASE_NOTES = ENTRY.release_notes
    HOMEPAGE = ENTRY.homepage

    def _features(self):
        return sign_features()

    def _split_generators(self, dl_manager):
        archive = self.download_object(dl_manager, ARCHIVE)
        # The course has no test split for this source.
        return {"train": self._generate_examples(
            base64_json.plan(self.info.full_name, "train", _entries(archive)))}
