"""Sign Language MNIST images listed by URL in the course's sign_mnist_json/data.json."""

import dataclasses
import functools

import tensorflow_datasets as tfds

from sign_datasets.io import fetcher
from sign_datasets.generate.builder import CleanedBuilder, sign_features
from sign_datasets.catalog.schema import project_entry
from sign_datasets.formats import json_urls
from sign_datasets.formats.base64_json import SignExamples
from sign_datasets.core.plans import positioned

# Version, release notes, configs and sources: sign_datasets/catalog/catalog.toml.
ENTRY = project_entry("sign_mnist_json")
ARCHIVE = ENTRY.sources[0].target
MEMBER = ENTRY.sources[0].member


@dataclasses.dataclass
class JsonConfig(tfds.core.BuilderConfig):
    # Above this share of failed records the build stops rather than ship a
    # dataset with a hole; SIGN_DATASETS_MAX_FAILED_SHARE overrides it.
    max_failed_share: float = fetcher.DEFAULT_MAX_FAILED_SHARE


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
        cache = fetcher.download_cache_dir(dl_manager.download_dir)
        # The course has no test split for this source.
        return {"train": self._generate_examples(archive, cache)}

    def _generate_examples(self, archive, cache):
        source = f"{ARCHIVE}/{MEMBER}"
        limit = fetcher.max_failed_share(self.builder_config.max_failed_share)
        if self.generates_on_beam:
            with self.open_member(archive, MEMBER) as stream:
                records = positioned([json_urls.read(stream, source)])
            return self.beam_examples(json_urls.beam_plan(
                self.info.full_name, "train", records, cache,
                check=functools.partial(fetcher.check_failed_share, limit=limit, what=source)))
        return self._generate_locally(archive, cache, source, limit)

    def _generate_locally(self, archive, cache, source, limit):
        examples = SignExamples()
        with self.open_member(archive, MEMBER) as stream, fetcher.Fetcher(cache) as fetch:
            records = json_urls.fetch_records(json_urls.read(stream, source), fetch)
            yield from self.cleaned_examples("train", records, json_urls.image_rules(), examples)
        examples.record(self.info, "train")
        fetcher.check_failed_share(self.cleaning_report()["train"], limit, source)
