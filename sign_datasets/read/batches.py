"""A built dataset as batches of NumPy arrays, with no TensorFlow in the process.

`batches()` is the read path for JAX, PyTorch or plain NumPy: it reads the
shards TFDS wrote (TFRecord or ArrayRecord, as the dataset's info says),
parses the tf.Example protos with the copy TFDS vendors, and decodes a whole
batch at once when the image is stored as raw bytes (one np.frombuffer).
Shuffling permutes record indices (a few bytes per example), never examples.
`pipeline()` (read/pipeline.py) is the TensorFlow path over the same shards.
"""

from __future__ import annotations

import math
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator

import cv2
import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.core import file_adapters
from tensorflow_datasets.proto import tf_example_pb2

from sign_datasets.read.records import ArrayRecordShards, TFRecordShards

FileFormat = file_adapters.FileFormat
# Records read per call to the shard readers (rounded to whole batches).
READ_BLOCK = 1024


def batches(name, split: str = "train", *, batch_size: int = 128, shuffle: bool = True,
            seed: int | None = None, data_dir: str | None = None,
            drop_remainder: bool = False) -> "Batches":
    """Batches {"image": uint8 (B, H, W, C), "label": int64 (B,)} of a built dataset.

    Args:
      name: a registered name such as "sign_mnist_csv/dirty", or a TFDS
        builder (then `data_dir` is ignored). The dataset must be built.
      split: any TFDS split string, slices included ("train[:90%]").
      batch_size: examples per batch; the last batch is smaller unless
        `drop_remainder`.
      shuffle: a new order of the examples every epoch (every iteration of
        the returned object), over the whole split.
      seed: makes the sequence of epochs reproducible.
      data_dir: the TFDS data dir the dataset was built in.
      drop_remainder: drops the last, smaller batch.

    Returns:
      An iterable with one epoch per iteration and `len()` batches. Images
      keep the dataset's stored dtype (uint8 for every dataset here).
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    builder = built(name, data_dir)
    decoder = ExampleDecoder.for_info(builder.info)
    records = open_records(builder.info, split)
    return Batches(records, decoder, batch_size, shuffle, seed, drop_remainder)


class Batches:
    """Epochs of batches of one split; each iteration is one epoch."""

    def __init__(self, records, decoder: "ExampleDecoder", batch_size: int, shuffle: bool,
                 seed: int | None, drop_remainder: bool):
        self.records, self.decoder = records, decoder
        self.batch_size, self.shuffle, self.drop_remainder = batch_size, shuffle, drop_remainder
        # Epoch k of a seed draws its order from (seed, k): reproducible
        # without depending on how far earlier epochs were read.
        self.seed = seed if seed is not None else np.random.SeedSequence().entropy
        self.epoch = 0

    def __len__(self) -> int:
        count = len(self.records)
        return count // self.batch_size if self.drop_remainder else math.ceil(count / self.batch_size)

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        order = self.order(self.epoch)
        self.epoch += 1
        return self._batches(order)

    def order(self, epoch: int) -> np.ndarray:
        """The record indices of one epoch, in the order they are read."""
        count = len(self.records)
        if not self.shuffle:
            return np.arange(count, dtype=np.int64)
        return np.random.default_rng([self.seed, epoch]).permutation(count)

    def _batches(self, order: np.ndarray) -> Iterator[dict[str, np.ndarray]]:
        size = self.batch_size
        stop = len(order) - len(order) % size if self.drop_remainder else len(order)
        # Records are read a block of whole batches at a time: ArrayRecord's
        # cost is per call as much as per record.
        block = size * max(1, READ_BLOCK // size)
        for first in range(0, stop, block):
            records = self.records.read(order[first:min(first + block, stop)])
            for start in range(0, len(records), size):
                yield self.decoder(records[start:start + size])


# --- the dataset ------------------------------------------------------------------

def built(name, data_dir, reader: str = "batches()"):
    """The prepared builder of `name` for `reader`, or a one-line error."""
    builder = name if isinstance(name, tfds.core.DatasetBuilder) else tfds.builder(name, data_dir=data_dir)
    if not builder.is_prepared():
        raise FileNotFoundError(
            f"{builder.info.full_name} is not built in {builder.data_dir}; run "
            f"`sign-datasets build {builder.name}` (or pass data_dir where it was built)")
    if not builder.info.supervised_keys:
        raise ValueError(f"{builder.info.full_name} has no supervised_keys; {reader} needs "
                         "to know which feature is the image and which the label")
    return builder


def open_records(info, split: str):
    """The split's records, by index, from the shards in the build's file format."""
    try:
        instructions = info.splits[split].file_instructions
    except (KeyError, ValueError) as error:
        raise ValueError(f"{info.full_name}, split {split!r}: {_one_line(error)}") from None
    file_format = FileFormat(info.file_format or FileFormat.TFRECORD)
    if file_format == FileFormat.ARRAY_RECORD:
        return ArrayRecordShards(instructions)
    if file_format == FileFormat.TFRECORD:
        return TFRecordShards(instructions)
    raise ValueError(f"{info.full_name} is stored as {file_format.value}; batches() reads "
                     "tfrecord and array_record builds")


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


# --- decoding ---------------------------------------------------------------------

class ExampleDecoder:
    """Serialized tf.Examples of a batch to {"image": array, "label": array}."""

    def __init__(self, image_key: str, label_key: str, images: Callable[[list], np.ndarray]):
        self.image_key, self.label_key = image_key, label_key
        self.images = images

    def __call__(self, records: list[bytes]) -> dict[str, np.ndarray]:
        parse, image_key, label_key = tf_example_pb2.Example.FromString, self.image_key, self.label_key
        values, labels = [], []
        for record in records:
            feature = parse(record).features.feature
            values.append(feature[image_key])
            labels.append(feature[label_key].int64_list.value[0])
        return {"image": self.images(values), "label": np.array(labels, np.int64)}

    @classmethod
    def for_info(cls, info) -> "ExampleDecoder":
        image_key, label_key = info.supervised_keys
        refuse = _Refusal(info.full_name)
        if not (isinstance(image_key, str) and isinstance(label_key, str)):
            refuse(f"its supervised_keys {info.supervised_keys!r} are not two feature names")
        image, label = info.features[image_key], info.features[label_key]
        label_info = label.get_serialized_info()
        if not (isinstance(label_info, tfds.features.TensorInfo) and label_info.shape == ()
                and np.dtype(label_info.np_dtype) == np.int64):
            refuse(f"its label {label_key!r} is not one integer")
        shape = tuple(image.shape)
        if not shape or None in shape:
            refuse(f"its image {image_key!r} has no fixed shape ({shape})")
        return cls(image_key, label_key, _image_decoder(image, shape, refuse))


class _Refusal:
    def __init__(self, full_name: str):
        self.full_name = full_name

    def __call__(self, why: str):
        raise ValueError(f"batches() cannot read {self.full_name}: {why}; "
                         "sign_datasets.pipeline() reads it with TensorFlow")


def _image_decoder(image, shape: tuple, refuse: _Refusal) -> Callable[[list], np.ndarray]:
    dtype = np.dtype(image.np_dtype)
    if isinstance(image, tfds.features.Image):
        return _EncodedImages(shape, dtype)
    if not isinstance(image, tfds.features.Tensor):
        refuse(f"its image feature is a {type(image).__name__}")
    encoding = image.to_json_content().encoding
    if encoding == "bytes":
        return lambda values: _from_bytes(b"".join([v.bytes_list.value[0] for v in values]),
                                          dtype, shape)
    if encoding == "zlib":
        return lambda values: _from_bytes(
            b"".join([zlib.decompress(v.bytes_list.value[0]) for v in values]), dtype, shape)
    if encoding == "none" and dtype.kind in "iu":
        return lambda values: np.array([v.int64_list.value for v in values],
                                       np.int64).astype(dtype).reshape(-1, *shape)
    refuse(f"its image tensor is stored as {encoding!r} {dtype}")


def _from_bytes(joined: bytes, dtype: np.dtype, shape: tuple) -> np.ndarray:
    return np.frombuffer(joined, dtype).reshape(-1, *shape)


class _EncodedImages:
    """PNG or JPEG images decoded with OpenCV, in threads (it releases the GIL)."""

    def __init__(self, shape: tuple, dtype: np.dtype):
        self.shape, self.dtype = shape, dtype
        self.pool: ThreadPoolExecutor | None = None

    def __call__(self, values: list) -> np.ndarray:
        if self.pool is None:
            self.pool = ThreadPoolExecutor(thread_name_prefix="batches-decode")
        encoded = [v.bytes_list.value[0] for v in values]
        return np.stack(list(self.pool.map(self.decode, encoded))) if encoded else \
            np.zeros((0, *self.shape), self.dtype)

    def decode(self, data: bytes) -> np.ndarray:
        pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if pixels is None:
            raise ValueError("an image of the dataset is neither PNG nor JPEG that OpenCV reads")
        if pixels.ndim == 2:
            pixels = pixels[..., None]
        elif pixels.shape[-1] == 3:
            pixels = cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
        elif pixels.shape[-1] == 4:
            pixels = cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGBA)
        if self.shape[-1] == 1 and pixels.shape[-1] != 1:
            pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)[..., None]
        if pixels.shape != self.shape:
            raise ValueError(f"an image of the dataset is {pixels.shape}, not {self.shape}")
        return pixels.astype(self.dtype, copy=False)
