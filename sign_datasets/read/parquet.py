"""A built dataset's splits as Parquet files laid out the way Hugging Face
stores image datasets.

Each row holds `image`, a struct of PNG `bytes` and `path`, and `label`, the
class index. The Arrow schema carries the features as `datasets` writes them
(Image, ClassLabel with the class names), so `datasets.load_dataset` reads
the label as a ClassLabel even without the dataset card. Files are named
`data/{split}-{i:05d}-of-{n:05d}.parquet`, which `datasets` maps to splits.

Pixels are read decoded from the build and written as PNG, losslessly:
every tool that reads the export sees the pixels TFDS gives, whatever JPEG
decoder it has. The same build gives the same bytes (rows in shard order,
fixed PNG and Parquet settings, no timestamps).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import tensorflow_datasets as tfds
from tqdm import tqdm

from sign_datasets.core.images import encode_png

IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
ROWS_PER_GROUP = 1_000          # rows a reader decodes at a time
MAX_FILE_BYTES = 256 * 2**20    # past this a split goes on in a new file
DATA_FOLDER = "data"


class ExportError(ValueError):
    """A dataset that cannot be exported as it is; the message says why."""


@dataclasses.dataclass(frozen=True)
class SplitFiles:
    """What one split became: its files (relative to the export folder),
    examples and bytes of Parquet."""

    split: str
    files: tuple[str, ...]
    examples: int
    num_bytes: int


def ordered_splits(builder) -> list[str]:
    """train first, then the others by name (the order every output lists them)."""
    return sorted(builder.info.splits, key=lambda s: (s != "train", s))


def class_names(builder) -> list[str]:
    features = builder.info.features
    if set(features) != {"image", "label"} or not isinstance(features["label"],
                                                              tfds.features.ClassLabel):
        raise ExportError(f"{builder.info.full_name}: export knows datasets of an image and a "
                          f"class label; this one has {', '.join(sorted(features))}")
    return list(features["label"].names)


def hf_features(names: list[str]) -> dict:
    """The features as `datasets.Features.to_dict()` writes them."""
    return {"image": {"_type": "Image"},
            "label": {"names": list(names), "_type": "ClassLabel"}}


def schema(names: list[str]) -> pa.Schema:
    metadata = {"huggingface": json.dumps({"info": {"features": hf_features(names)}},
                                          sort_keys=True)}
    return pa.schema([("image", IMAGE_TYPE), ("label", pa.int64())], metadata=metadata)


def examples(builder, split: str) -> Iterator[tuple[np.ndarray, int]]:
    """(pixels (H, W, C) uint8, label) of a split, in the order of its shards."""
    # One shard at a time: the rows keep the build's order, run after run.
    config = tfds.ReadConfig(interleave_cycle_length=1)
    dataset = builder.as_dataset(split=split, shuffle_files=False, read_config=config)
    if None not in builder.info.features["image"].shape:
        # Images of one size come out of TensorFlow a batch at a time: ten
        # times fewer trips through its iterator than one example at a time.
        for batch in tfds.as_numpy(dataset.batch(ROWS_PER_GROUP).prefetch(2)):
            yield from zip(batch["image"], batch["label"].tolist())
        return
    for example in tfds.as_numpy(dataset.prefetch(64)):
        yield example["image"], int(example["label"])


def _batches(rows: Iterator[tuple[np.ndarray, int]], size: int) -> Iterator[pa.RecordBatch]:
    images, labels = [], []
    for pixels, label in rows:
        images.append({"bytes": encode_png(pixels), "path": None})
        labels.append(label)
        if len(labels) == size:
            yield pa.record_batch([pa.array(images, IMAGE_TYPE), pa.array(labels, pa.int64())],
                                  names=["image", "label"])
            images, labels = [], []
    if labels:
        yield pa.record_batch([pa.array(images, IMAGE_TYPE), pa.array(labels, pa.int64())],
                              names=["image", "label"])


def _writer(path: Path, table_schema: pa.Schema) -> pq.ParquetWriter:
    # Fixed settings: the bytes depend on the rows only (and pyarrow's version,
    # which the file names in its created_by).
    return pq.ParquetWriter(path, table_schema, compression="snappy", use_dictionary=False,
                            write_statistics=False, store_schema=True)


def write_split(builder, split: str, out: Path, progress: bool = True) -> SplitFiles:
    """Writes one split into out/data/ and names its files `-of-N` once N is known."""
    names = class_names(builder)
    table_schema = schema(names)
    total = builder.info.splits[split].num_examples
    folder = out / DATA_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    parts: list[Path] = []
    writer, written, count = None, 0, 0
    bar = tqdm(total=total, unit=" images", desc=f"{builder.info.full_name} {split}",
               disable=not progress, leave=False)
    try:
        for batch in _batches(examples(builder, split), ROWS_PER_GROUP):
            if writer is None or written >= MAX_FILE_BYTES:
                if writer is not None:
                    writer.close()
                parts.append(folder / f"{split}-{len(parts):05d}.part")
                writer, written = _writer(parts[-1], table_schema), 0
            writer.write_batch(batch, row_group_size=ROWS_PER_GROUP)
            written += batch.nbytes
            count += batch.num_rows
            bar.update(batch.num_rows)
    finally:
        bar.close()
        if writer is not None:
            writer.close()
    if not parts:  # an empty split is still a file, so that every split has one
        parts.append(folder / f"{split}-00000.part")
        _writer(parts[-1], table_schema).close()
    files = []
    for i, part in enumerate(parts):
        final = folder / f"{split}-{i:05d}-of-{len(parts):05d}.parquet"
        part.rename(final)
        files.append(final)
    return SplitFiles(split=split, files=tuple(f"{DATA_FOLDER}/{f.name}" for f in files),
                      examples=count, num_bytes=sum(f.stat().st_size for f in files))


def write_splits(builder, out: Path, progress: bool = True) -> list[SplitFiles]:
    """Every split of a built dataset as Parquet files under out/data/."""
    class_names(builder)  # refuse before any file
    return [write_split(builder, split, out, progress) for split in ordered_splits(builder)]
