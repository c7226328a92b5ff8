"""Sign Language MNIST images embedded as base64 in the course's sign_mnist_base64/data.json."""

import tensorflow_datasets as tfds

from sign_datasets.builder import CleanedBuilder, sign_features
from sign_datasets.formats import base64_json

ARCHIVE = "databasesLoadData.zip"
MEMBER = "sign_mnist_base64/data.json"


class Builder(CleanedBuilder):
    """Sign-language letters decoded from a JSON object of label -> base64 image."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release: tolerant base64 reading, counted drops, resize rule."}
    HOMEPAGE = "https://www.kaggle.com/datamunge/sign-language-mnist"

    def _features(self):
        return sign_features()

    def _split_generators(self, dl_manager):
        archive = self.download_object(dl_manager, ARCHIVE)
        # The course has no test split for this source.
        return {"train": self._generate_examples(archive)}

    def _generate_examples(self, archive):
        examples = base64_json.SignExamples()
        with self.open_member(archive, MEMBER) as stream:
            entries = base64_json.read(stream, f"{ARCHIVE}/{MEMBER}")
            yield from self.cleaned_examples("train", entries, base64_json.entry_rules(), examples)
        examples.record(self.info, "train")
