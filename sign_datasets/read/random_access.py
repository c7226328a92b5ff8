"""Example i of an ArrayRecord build, for data loaders that sample by index.

`ArrayRecordSource` has what Grain's `DataLoader` and PyTorch's `DataLoader`
take as a data source: `__len__` and `__getitem__` (and `__getitems__`, which
PyTorch uses to fetch a batch in one call). It imports no TensorFlow, and it
pickles as the build's folder and split, so worker processes open their own
readers.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow_datasets as tfds

from sign_datasets.read.batches import ExampleDecoder, FileFormat, built, open_records


class ArrayRecordSource:
    """{"image": array, "label": int64} of one split of an ArrayRecord build, by index."""

    def __init__(self, name, split: str = "train", *, data_dir: str | None = None):
        builder = built(name, data_dir)
        info = builder.info
        if FileFormat(info.file_format or FileFormat.TFRECORD) != FileFormat.ARRAY_RECORD:
            raise ValueError(
                f"{info.full_name} is stored as {FileFormat(info.file_format or 'tfrecord').value}; "
                f"random access needs an ArrayRecord build: `sign-datasets build {builder.name} "
                "--file-format array_record`")
        self.folder, self.split = os.fspath(builder.data_dir), split
        self._open(info)

    def _open(self, info) -> None:
        self.decoder = ExampleDecoder.for_info(info)
        self.records = open_records(info, self.split)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index) -> dict[str, np.ndarray]:
        index = int(index)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} examples")
        batch = self.decoder(self.records.read([index]))
        return {"image": batch["image"][0], "label": batch["label"][0]}

    def __getitems__(self, indices) -> list[dict[str, np.ndarray]]:
        batch = self.decoder(self.records.read(np.asarray(indices, np.int64)))
        return [{"image": image, "label": label} for image, label in zip(batch["image"], batch["label"])]

    def __getstate__(self) -> dict:
        # Readers and decoders do not pickle; each process opens its own.
        return {"folder": self.folder, "split": self.split}

    def __setstate__(self, state: dict) -> None:
        self.folder, self.split = state["folder"], state["split"]
        self._open(tfds.builder_from_directory(self.folder).info)

    def __repr__(self) -> str:
        return f"ArrayRecordSource({self.folder!r}, split={self.split!r}, {len(self)} examples)"
