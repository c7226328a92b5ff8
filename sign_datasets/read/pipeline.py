"""The training read path: a prepared dataset as a tuned tf.data pipeline.

`tfds.load` parses and decodes one example at a time; for 28x28 images that
per-example work costs far more than the pixels themselves (see
docs/BENCHMARKS.md, "Read path"). `pipeline()` reads the same shards, but
parses whole batches of serialized examples with one `tf.io.parse_example`
call and, when the image is stored as raw uint8 bytes, decodes the batch with
one `tf.io.decode_raw`. It works on any prepared TFDS dataset with
`supervised_keys`; datasets whose features it cannot read in batches go
through TFDS's own per-example reader with the same options.

TensorFlow is imported inside the functions: `import sign_datasets` stays
cheap for the commands that never read data.
"""

from __future__ import annotations

import math
import os
from typing import Callable

import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.core import file_adapters

from sign_datasets.read.batches import built
from sign_datasets.read.records import ArrayRecordShards

# Shuffle buffers hold examples in memory; bound them by bytes, not by count,
# so a split of large images cannot take the machine's memory.
SHUFFLE_BUFFER_BYTES = 256 * 1024 ** 2
# Parallel readers over the shards of a split; beyond this the gain is nil on
# one machine and each reader holds its own read buffer.
MAX_PARALLEL_SHARDS = 16
READ_BUFFER_BYTES = 8 * 1024 ** 2
# Indices read from ArrayRecord shards per Python call.
ARRAY_RECORD_BLOCK = 1024


def pipeline(name, split: str = "train", *, batch_size: int = 128, shuffle: bool = True,
             seed: int | None = None, cache: bool | str = False,
             augment: Callable | None = None, preprocess: Callable | None = None,
             data_dir: str | None = None, shuffle_buffer: int | None = None,
             drop_remainder: bool = False):
    """(images, labels) batches of a prepared dataset, tuned for training.

    Args:
      name: a registered name such as "sign_mnist_csv/dirty", or a TFDS
        builder (then `data_dir` is ignored). The dataset must be prepared.
      split: any TFDS split string, slices included ("train[:90%]").
      batch_size: examples per batch. The last batch is smaller unless
        `drop_remainder`.
      shuffle: shuffles the order of the shards and of the examples, anew
        every epoch. The buffer holds the whole split when it fits in
        `SHUFFLE_BUFFER_BYTES` (256 MiB), else as many examples as do.
        Datasets built with `file_format="array_record"` are shuffled whole,
        whatever their size, by index.
      seed: makes the shuffled order reproducible: the same seed gives the
        same sequence of epochs. Without a seed, shuffled pipelines also let
        parallel stages deliver out of order, which is faster.
      cache: True keeps the decoded examples in memory after the first epoch;
        a path keeps them in files with that prefix. Later epochs then read
        no shards at all. The first epoch must run to its end to fill it.
      augment: a function (images, labels) -> (images, labels) applied to
        each batch after the cache, so it draws new randomness every epoch.
        It receives batches: write it with batched ops (tf.image.* accept
        them).
      preprocess: a function (image, label) -> (image, label) applied to each
        example before the cache, e.g. resizing images of varying size so
        that they can be batched. Examples then go through tf.data one by
        one (decoding stays batched where it can), which is slower.
      data_dir: the TFDS data dir the dataset was built in.
      shuffle_buffer: examples in the shuffle buffer, instead of the bound
        by bytes above.
      drop_remainder: drops the last, smaller batch (for fixed batch shapes).

    Returns:
      A tf.data.Dataset of (images, labels): images in the dataset's stored
      dtype (uint8 for every dataset of this project) with shape
      (batch, height, width, channels), labels int64 of shape (batch,). Its
      cardinality is the number of batches, so Keras knows the epoch length.

    Decoding happens in batches when the image is a fixed-shape
    `tfds.features.Tensor` (one decode_raw per batch) and, for a fixed-shape
    `tfds.features.Image`, in one parallel map call per batch; otherwise one
    example at a time. Every stage runs on min(16, cores) threads and the last
    one prefetches; tf.data's autotuning is off (see the end of this function).
    """
    tf = _tensorflow()
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    builder = built(name, data_dir, "pipeline()")
    info = builder.info
    reader = _BatchDecoder.for_features(info)
    count = info.splits[split].num_examples
    ordered = seed is not None or not shuffle

    if reader is not None and preprocess is None:
        # Shuffling serialized records before decoding holds them in the
        # buffer as stored; with a cache the decoded examples are shuffled.
        shuffle_records = shuffle and not cache
        buffer = shuffle_buffer or _buffer_for(count, _serialized_bytes(info))
        batches = _serialized_batches(builder, split, batch_size, shuffle_records, seed, buffer,
                                      drop_remainder and not (cache and shuffle))
        batches = batches.map(reader, num_parallel_calls=tf.data.AUTOTUNE, deterministic=ordered)
        if cache and shuffle:
            # Examples are reshuffled one by one each epoch; cached batches
            # would keep the same examples together for good.
            batches = _cache_shuffle_batch(batches.unbatch(), count, batch_size, seed, cache,
                                           shuffle_buffer, drop_remainder)
        elif cache:
            batches = _cached(batches, cache)
    else:
        if reader is not None:
            # Shuffled after preprocess; the shards' order is shuffled here so
            # that a buffer smaller than the split still mixes them.
            examples = (_serialized_batches(builder, split, batch_size, False, seed, 1, False,
                                            shuffle_files=shuffle and not cache)
                        .map(reader, num_parallel_calls=tf.data.AUTOTUNE, deterministic=ordered)
                        .unbatch())
        else:
            examples = _examples_one_by_one(builder, split, shuffle, seed)
        if preprocess is not None:
            examples = examples.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE,
                                    deterministic=ordered)
        if not shuffle:
            examples = _cached(examples, cache) if cache else examples
            batches = examples.batch(batch_size, drop_remainder=drop_remainder)
        else:
            batches = _cache_shuffle_batch(examples, count, batch_size, seed, cache,
                                           shuffle_buffer, drop_remainder)

    if augment is not None:
        batches = batches.map(augment, num_parallel_calls=tf.data.AUTOTUNE, deterministic=ordered)
    num_batches = count // batch_size if drop_remainder else math.ceil(count / batch_size)
    batches = batches.apply(tf.data.experimental.assert_cardinality(num_batches))
    options = tf.data.Options()
    options.deterministic = ordered
    # With autotuning on, dropping an iterator waits for tf.data's tuning
    # thread to wake up, and Keras starts a new iterator every epoch. Without
    # it, AUTOTUNE stages run on min(16, cores) threads, as the tuner chose.
    options.autotune.enabled = False
    return batches.with_options(options).prefetch(tf.data.AUTOTUNE)


def _tensorflow():
    try:
        import tensorflow as tf
    except ModuleNotFoundError as error:
        if error.name != "tensorflow":
            raise
        raise ModuleNotFoundError("pipeline() needs TensorFlow, which is not installed: pip install "
                                  "'sign-datasets[tensorflow]' (sign_datasets.batches() reads "
                                  "without it)", name="tensorflow") from None
    return tf


# --- the dataset --------------------------------------------------------------


def _is_random_access(info) -> bool:
    return info.file_format in file_adapters.FileFormat.with_random_access()


def _image_bytes(examples) -> int | None:
    """Bytes of one image as the examples hold it (after any preprocess)."""
    spec = examples.element_spec[0]
    if not spec.shape.is_fully_defined():
        return None
    return spec.shape.num_elements() * spec.dtype.size


def _serialized_bytes(info) -> int | None:
    """Mean size of a stored example (TFDS records no sizes for slices of a split)."""
    splits = list(info.splits.values())
    examples = sum(split.num_examples for split in splits)
    stored = sum(int(split.num_bytes) for split in splits)
    return max(1, stored // examples) if examples and stored else None


def _buffer_for(count: int, element_bytes: int | None) -> int:
    if not element_bytes:
        return max(1, min(count, 10_000))
    return max(1, min(count, SHUFFLE_BUFFER_BYTES // element_bytes))


# --- serialized examples, in batches --------------------------------------------

def _serialized_batches(builder, split, batch_size, shuffle, seed, buffer, drop_remainder,
                        shuffle_files=None):
    """Batches of serialized tf.Example strings of one split.

    shuffle: the records (and the shards' order, unless `shuffle_files` says
    otherwise)."""
    import tensorflow as tf

    instructions = builder.info.splits[split].file_instructions
    if _is_random_access(builder.info):
        return _array_record_batches(instructions, batch_size, shuffle, seed, drop_remainder)
    adapter = file_adapters.ADAPTER_FOR_FORMAT[builder.info.file_format]
    files = tf.data.Dataset.from_tensor_slices((
        [os.fspath(i.filename) for i in instructions],
        tf.constant([i.skip for i in instructions], tf.int64),
        tf.constant([i.take for i in instructions], tf.int64)))
    if (shuffle if shuffle_files is None else shuffle_files) and len(instructions) > 1:
        files = files.shuffle(len(instructions), seed=seed, reshuffle_each_iteration=True)

    def read_in_batches(path, skip, take):
        return adapter.make_tf_data(path, READ_BUFFER_BYTES).skip(skip).take(take).batch(batch_size)

    # Readers hand over whole batches: a parallel interleave pays a thread
    # hand-off per element, which for 800-byte records costs more than the
    # reading. Unshuffled, one reader goes through the shards in their order
    # (ahead of the consumer); rebatch evens out the batches at shard ends.
    blocks = files.interleave(
        read_in_batches,
        cycle_length=max(1, min(len(instructions), MAX_PARALLEL_SHARDS)) if shuffle else 1,
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=seed is not None or not shuffle)
    if shuffle:
        return (blocks.unbatch().shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
                .batch(batch_size, drop_remainder=drop_remainder))
    return blocks.rebatch(batch_size, drop_remainder=drop_remainder)


def _array_record_batches(instructions, batch_size, shuffle, seed, drop_remainder):
    """Reads by index: the shuffle permutes indices, not examples, so it is
    global at the cost of a few bytes per example."""
    import tensorflow as tf

    shards = ArrayRecordShards(instructions)
    indices = tf.data.Dataset.range(len(shards))
    if shuffle:
        indices = indices.shuffle(len(shards), seed=seed, reshuffle_each_iteration=True)

    def read_joined(block):
        # One string and its cut points cross into TensorFlow far faster than
        # a list of a thousand small strings.
        records = shards.read(block.numpy())
        lengths = np.fromiter(map(len, records), np.int64, len(records))
        return b"".join(records), np.cumsum(lengths) - lengths, lengths

    def read_block(block):
        joined, starts, lengths = tf.py_function(read_joined, [block],
                                                 (tf.string, tf.int64, tf.int64))
        return tf.strings.substr(tf.ensure_shape(joined, []), tf.ensure_shape(starts, [None]),
                                 tf.ensure_shape(lengths, [None]))

    # One Python call per block of indices: the readers' cost is per call as
    # much as per record. Reads stay in one thread (the readers are not
    # documented as thread-safe); prefetching overlaps them with decoding.
    return (indices.batch(ARRAY_RECORD_BLOCK).map(read_block).prefetch(2)
            .rebatch(batch_size, drop_remainder=drop_remainder))


class _BatchDecoder:
    """Parses and decodes a batch of serialized examples into (images, labels)."""

    def __init__(self, image_key, label_key, image_spec, decode_images):
        import tensorflow as tf
        self.image_key, self.label_key = image_key, label_key
        self.spec = {image_key: image_spec, label_key: tf.io.FixedLenFeature([], tf.int64)}
        self.decode_images = decode_images

    def __call__(self, serialized):
        import tensorflow as tf
        parsed = tf.io.parse_example(serialized, self.spec)
        return self.decode_images(parsed[self.image_key]), parsed[self.label_key]

    @classmethod
    def for_features(cls, info) -> "_BatchDecoder | None":
        """The batch decoder of these features, or None if they need TFDS's
        per-example reader (nested features, shapes not fixed, ...)."""
        import tensorflow as tf

        image_key, label_key = info.supervised_keys
        if not (isinstance(image_key, str) and isinstance(label_key, str)):
            return None
        image, label = info.features[image_key], info.features[label_key]
        label_info = label.get_serialized_info()
        if not (isinstance(label_info, tfds.features.TensorInfo) and label_info.shape == ()
                and label_info.tf_dtype == tf.int64):
            return None
        if not isinstance(image.get_serialized_info(), tfds.features.TensorInfo):
            return None
        shape = tuple(image.shape)
        if not shape or None in shape:
            return None
        dtype = image.tf_dtype

        if isinstance(image, tfds.features.Tensor):
            encoding = image.to_json_content().encoding
            if encoding in ("bytes", "zlib"):
                def decode(values):
                    if encoding == "zlib":
                        values = tf.io.decode_compressed(values, compression_type="ZLIB")
                    return tf.reshape(tf.io.decode_raw(values, dtype), (-1, *shape))
                return cls(image_key, label_key, tf.io.FixedLenFeature([], tf.string), decode)
            if encoding == "none" and dtype.is_integer:
                return cls(image_key, label_key, tf.io.FixedLenFeature(shape, tf.int64),
                           lambda values: tf.cast(values, dtype))
            return None
        if isinstance(image, tfds.features.Image):
            # Compressed images have no batched decoder; map_fn at least runs
            # the per-image decodes of a batch in one parallel map call. The
            # map already keeps every core busy with whole batches; parallel
            # iterations inside one batch only add overhead (about 25%).
            signature = tf.TensorSpec(shape, dtype)
            return cls(image_key, label_key, tf.io.FixedLenFeature([], tf.string),
                       lambda values: tf.map_fn(image.decode_example, values,
                                                fn_output_signature=signature,
                                                parallel_iterations=1))
        return None


# --- examples one at a time (TFDS's reader) ----------------------------------------

def _examples_one_by_one(builder, split, shuffle, seed):
    """Examples through TFDS's own reader, for features without a batch decoder."""

    if _is_random_access(builder.info):
        raise ValueError(
            f"{builder.info.full_name} is stored as {builder.info.file_format.value}, which "
            "TFDS reads only through tfds.data_source, and its features have no batch "
            "decoder in pipeline(); build it as tfrecord to read it here")
    read_config = tfds.ReadConfig(shuffle_seed=seed, try_autocache=False)
    return builder.as_dataset(split=split, shuffle_files=shuffle, as_supervised=True,
                              read_config=read_config)


def _cached(dataset, cache):
    return dataset.cache(os.fspath(cache) if isinstance(cache, (str, os.PathLike)) else "")


def _cache_shuffle_batch(examples, count, batch_size, seed, cache, shuffle_buffer,
                         drop_remainder):
    if cache:
        examples = _cached(examples, cache)
    buffer = shuffle_buffer or _buffer_for(count, _image_bytes(examples))
    return (examples.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
            .batch(batch_size, drop_remainder=drop_remainder))
