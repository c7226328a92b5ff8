"""The builder of a dataset read from one zip of `<split>/<class>/<image>`
folders: a dataset only declares its archive, class names, colour mode and
sizes (as catalog entries do, `catalog.generated`)."""

from __future__ import annotations

import dataclasses

import tensorflow_datasets as tfds

from sign_datasets.formats import zip_folders, zip_layout
from sign_datasets.generate.builder import ENCODED_IMAGE, RAW_PIXELS, CleanedBuilder, image_features
from sign_datasets.io.archives import ArchiveLimits


@dataclasses.dataclass
class FolderConfig(tfds.core.BuilderConfig):
    """size: (height, width) every image is resized to; None keeps native sizes.
    drop_leaked_from_test: drop test images whose pixels equal a train image.
    drop_near_leaked_from_test: drop test images with a near copy in train,
    at most near_distance bits apart (None: core.near.DEFAULT_DISTANCE)."""

    size: tuple[int, int] | None = None
    drop_leaked_from_test: bool = False
    drop_near_leaked_from_test: bool = False
    near_distance: int | None = None


class ImageFolderBuilder(CleanedBuilder, skip_registration=True):
    """A dataset read from one zip of `<split>/<class>/<image>` folders."""

    ARCHIVE: str = ""
    CLASS_NAMES: tuple[str, ...] = ()
    MODE: str = "RGB"
    ARCHIVE_LIMITS = ArchiveLimits()
    # ENCODED_IMAGE keeps (or PNG-encodes) image bytes; RAW_PIXELS stores
    # the decoded pixels, for configs of one fixed, small size.
    STORAGE: str = ENCODED_IMAGE

    def image_shape(self) -> tuple[int | None, int | None, int]:
        height, width = self.builder_config.size or (None, None)
        return height, width, 1 if self.MODE == "L" else 3

    def decode_spec(self) -> zip_folders.DecodeSpec:
        size = self.builder_config.size
        return zip_folders.DecodeSpec(mode=self.MODE, size=tuple(size) if size else None,
                                      raw=self.STORAGE == RAW_PIXELS)

    def _features(self):
        return image_features(self.image_shape(), self.STORAGE, self.CLASS_NAMES)

    def _split_generators(self, dl_manager):
        path = self.download_object(dl_manager, self.ARCHIVE)
        archive = zip_layout.scan_archive(path, self.CLASS_NAMES, source=self.ARCHIVE,
                                           limits=self.ARCHIVE_LIMITS)
        self.info.metadata["junk"] = archive.junk_report()
        self.info.metadata["layout"] = archive.layout_report()
        plans = zip_folders.split_plans(self.info.full_name, archive, self.decode_spec(),
                                        self.builder_config.drop_leaked_from_test)
        return {split: self._generate_examples(plan) for split, plan in plans.items()}
