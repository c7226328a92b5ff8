"""Sign Language MNIST images listed by URL in the course's sign_mnist_json/data.json."""

import dataclasses
import functools

import tensorflow_datasets as tfds

from sign_datasets.catalog.loader import project_entry
from sign_datasets.core.plans import positioned
from sign_datasets.formats import json_urls
from sign_datasets.generate.builder import CleanedBuilder, sign_features
from sign_datasets.io import downloads, failed_share
from sign_datasets.io.archives import open_member

# Version, release notes, configs and sources: sign_datasets/catalog/catalog.toml.
ENTRY = project_entry("sign_mnist_json")
ARCHIVE = ENTRY.sources[0].target
MEMBER = ENTRY.sources[0].member
SOURCE = f"{ARCHIVE}/{MEMBER}"


@dataclasses.dataclass
class JsonConfig(tfds.core.BuilderConfig):
    # Above this share of failed records the build stops rather than ship a
    # dataset with a hole; SIGN_DATASETS_MAX_FAILED_SHARE overrides it.
    max_failed_share: float = failed_share.DEFAULT_MAX_FAILED_SHARE


def _records(archive):
    with open_member(archive, MEMBER) as stream:
        yield from positioned([json_urls.read(stream, SOURCE)])


class Builder(CleanedBuilder):
    """Sign-language letters fetched from the image URLs of a JSON Lines file."""

    VERSION = tfds.core.Version(ENTRY.version)
    RELEASE_NOTES = ENTRY.release_notes
    BUILDER_CONFIGS = [JsonConfig(name=c.name, description=c.description,
                                  max_failed_share=ENTRY.cleaning["max_failed_share"])
                       for c in ENTRY.configs]
    HOMEPAGE = ENTRY.homepage

    def _features(self):
        return sign_features()

    def _split_generators(self, dl_manager):
        archive = self.download_object(dl_manager, ARCHIVE)
        limit = failed_share.max_failed_share(self.builder_config.max_failed_share)
        # The course has no test split for this source.
        return {"train": self._generate_examples(json_urls.plan(
            self.info.full_name, "train", _records(archive),
            downloads.download_cache_dir(dl_manager.download_dir),
            check=functools.partial(failed_share.check_failed_share, limit=limit, what=SOURCE)))}
