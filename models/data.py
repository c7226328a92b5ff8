"""Prepared TFDS datasets as batches for the model scripts.

With TensorFlow installed they are tf.data pipelines (read/pipeline.py);
without it, the NumPy batches of `sign_datasets.batches()` (read/batches.py)
as a keras PyDataset, so Keras 3 on JAX trains with no TensorFlow in the
process. The models are the same either way.

Images stay uint8 all the way into the model (each model rescales them
itself), so what the pipeline feeds during training is exactly what a saved
model receives when it serves.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from typing import Iterable

from sign_datasets.catalog import registry
from sign_datasets.read.batches import batches
from sign_datasets.read.pipeline import pipeline

TENSORFLOW_EXTRA = "pip install 'sign-datasets[tensorflow]'"
JAX_EXTRA = "pip install 'sign-datasets[jax]'"
DEFAULT_VALIDATION_SHARE = 0.1
DEFAULT_BATCH_SIZE = 64
# Beyond this the decoded split is not kept in memory: tom_and_jerry at
# 640x480 RGB would need gigabytes. Such splits are read again each epoch.
MAX_CACHED_BYTES = 2 * 1024 ** 3
# The shuffle buffer holds decoded images; bound it by bytes, not by count.
SHUFFLE_BUFFER_BYTES = 256 * 1024 ** 2


class DataSetupError(ValueError):
    """A dataset that cannot be read the way it was asked for; the message says what to do."""


def tensorflow_installed() -> bool:
    """Whether the tf.data path can run; without TensorFlow the scripts read NumPy batches."""
    return importlib.util.find_spec("tensorflow") is not None


def require_keras():
    """keras; without TensorFlow, a one-line error when keras is missing or
    would run on TensorFlow (its default backend)."""
    try:
        import keras
    except ModuleNotFoundError as error:
        module = (error.name or "").split(".")[0]
        if module not in ("keras", "tensorflow") or tensorflow_installed():
            raise
        raise DataSetupError(
            f"{'keras is not installed' if module == 'keras' else 'keras runs on TensorFlow'}"
            f" and TensorFlow is not installed: {TENSORFLOW_EXTRA}, or train on JAX with "
            f"{JAX_EXTRA} and KERAS_BACKEND=jax") from None
    return keras


@dataclasses.dataclass
class Splits:
    name: str
    full_name: str
    train: object
    validation: object
    test: object | None
    class_names: list[str]
    input_shape: tuple[int, int, int]
    split_specs: dict[str, str | None]
    num_examples: dict[str, int]

    @property
    def evaluation_role(self) -> str:
        """'test', or 'validation' for the datasets the course gives no test split."""
        return "test" if self.test is not None else "validation"

    @property
    def evaluation(self):
        return self.test if self.test is not None else self.validation


def split_specs(available: Iterable[str],
                validation_share: float = DEFAULT_VALIDATION_SHARE) -> dict[str, str | None]:
    """TFDS split strings for training, validation and test.

    Without a validation split the last share of train validates, as the
    course does with validation_split; TFDS already shuffled the examples when
    it wrote them, so the slice is not one class's block.
    """
    available = set(available)
    if "train" not in available:
        raise DataSetupError(f"the dataset has no train split (it has {sorted(available)})")
    if "validation" in available:
        train, validation = "train", "validation"
    else:
        if not 0 < validation_share < 1:
            raise DataSetupError(f"validation share must be between 0 and 1, got {validation_share}")
        kept = round(100 * (1 - validation_share))
        train, validation = f"train[:{kept}%]", f"train[{kept}%:]"
    return {"train": train, "validation": validation,
            "test": "test" if "test" in available else None}


def parse_image_size(text: str | int | tuple | None) -> tuple[int, int] | None:
    """'124' -> (124, 124); '480x640' -> (480, 640) as height x width."""
    if text is None or text == "":
        return None
    if isinstance(text, int):
        return text, text
    if isinstance(text, (tuple, list)):
        height, width = (int(v) for v in text)
        return height, width
    parts = str(text).lower().split("x")
    try:
        sizes = [int(p) for p in parts]
    except ValueError:
        raise DataSetupError(f"image size {text!r}: use N or HEIGHTxWIDTH, e.g. 124 or 480x640") from None
    if len(sizes) == 1:
        sizes *= 2
    if len(sizes) != 2 or min(sizes) < 1:
        raise DataSetupError(f"image size {text!r}: use N or HEIGHTxWIDTH, e.g. 124 or 480x640")
    return sizes[0], sizes[1]


def model_input_shape(feature_shape, image_size=None, channels: int | None = None) -> tuple[int, int, int]:
    height, width, stored_channels = feature_shape
    if image_size is not None:
        height, width = parse_image_size(image_size)
    if height is None or width is None:
        raise DataSetupError(
            "this dataset's images have different sizes; name the size the model should "
            "take (e.g. --image-size 124, or build a config of fixed size)")
    if channels not in (None, 1, 3):
        raise DataSetupError(f"channels must be 1 or 3, got {channels}")
    return int(height), int(width), int(channels or stored_channels)


def conform_image(image, shape: tuple[int, int, int]):
    """Brings one uint8 (H, W, C) image to the model's input shape, as uint8.

    Used by the training pipeline and by predict alike, so a picture is
    prepared the same way whichever path it takes. Grey turns to RGB by
    copying the channel; colour turns grey with TensorFlow's luma weights.
    """
    import tensorflow as tf

    height, width, channels = shape
    image = tf.convert_to_tensor(image)
    if image.dtype != tf.uint8:
        raise DataSetupError(f"images must be uint8, got {image.dtype.name}")
    if image.shape[-1] == 3 and channels == 1:
        image = tf.image.rgb_to_grayscale(image)
    if tuple(image.shape[:2]) != (height, width):
        resized = tf.image.resize(image, (height, width), method="bilinear", antialias=True)
        image = tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)
    if image.shape[-1] == 1 and channels == 3:
        image = tf.image.grayscale_to_rgb(image)
    return tf.ensure_shape(image, shape)


def prepared_builder(name: str, data_dir: str | None = None, build: bool = True):
    """The TFDS builder of a built dataset. One not built yet is built first,
    as tfds.load does, saying so; with `build=False` that is a DataSetupError
    saying how to build it. Without TensorFlow it is not built here (TFDS's
    TFRecord writer is TensorFlow's); the error says how to build it."""
    can_build = tensorflow_installed()
    try:
        return registry.prepared_builder(name, data_dir, build and can_build)
    except registry.NotBuiltError as error:
        if build and not can_build:
            where = registry.find_builder(name, data_dir=data_dir).data_dir
            raise DataSetupError(
                f"{name} is not built in {where}; building it here needs TensorFlow: "
                f"{TENSORFLOW_EXTRA}, or build it as ArrayRecord, which needs none: "
                f"sign-datasets build {name} --file-format array_record"
                f"{f' --data-dir {data_dir}' if data_dir else ''} (or pass --data-dir where it "
                "was built)") from None
        raise DataSetupError(str(error)) from None
    except registry.UnknownDatasetError as error:
        raise DataSetupError(str(error)) from None


def read_split(builder, spec: str, shape: tuple[int, int, int], batch_size: int,
               shuffle: bool = False, seed: int = 0, cache: bool = False):
    """Batches of (uint8 images, labels) of one split, conformed to the model's
    input shape, through the project's tuned read path (without TensorFlow,
    batches() as a keras PyDataset)."""
    shape = tuple(shape)
    if not tensorflow_installed():
        return numpy_split(builder, spec, shape, batch_size, shuffle, seed)
    count = builder.info.splits[spec].num_examples
    image_bytes = shape[0] * shape[1] * shape[2]
    # Conforming is per image; a dataset already in the model's shape skips
    # it and is decoded a whole batch at a time.
    conform = None
    if tuple(builder.info.features["image"].shape) != shape:
        def conform(image, label):
            return conform_image(image, shape), label
    return pipeline(builder, spec, batch_size=batch_size, shuffle=shuffle, seed=seed,
                    cache=cache, preprocess=conform,
                    shuffle_buffer=max(1, min(count, SHUFFLE_BUFFER_BYTES // image_bytes)))


def numpy_split(builder, spec: str, shape: tuple[int, int, int], batch_size: int,
                shuffle: bool = False, seed: int = 0):
    """One split as a keras PyDataset of (uint8 images, int64 labels), read by
    batches() with no TensorFlow. It reads every epoch anew from the shards:
    raw pixels decode a whole batch with one np.frombuffer."""
    stored = tuple(builder.info.features["image"].shape)
    if stored != shape:
        raise DataSetupError(
            f"{builder.info.full_name} holds {stored} images and the model takes {shape}; "
            f"resizing and changing channels need TensorFlow: {TENSORFLOW_EXTRA}")
    return keras_batches(batches(builder, spec, batch_size=batch_size, shuffle=shuffle,
                                 seed=seed))


def keras_batches(epochs):
    """`epochs` (an iterable that gives one epoch per iteration, as batches()
    does) as the keras.utils.PyDataset that fit, evaluate and predict take."""
    keras = require_keras()

    class EpochBatches(keras.utils.PyDataset):
        # keras asks for batch 0, 1, 2, ... of an epoch in order (one worker,
        # no shuffling by keras): batch 0 starts a new epoch of `epochs`.
        def __init__(self):
            super().__init__(workers=1, use_multiprocessing=False)
            self.epochs, self.current, self.next_index = epochs, None, 0

        def __len__(self):
            return len(self.epochs)

        def __getitem__(self, index):
            if index == 0:
                self.current = iter(self.epochs)
            elif self.current is None or index != self.next_index:
                raise IndexError(f"batch {index} out of order: these batches are read in "
                                 f"order, next is {self.next_index}")
            batch = next(self.current)
            self.next_index = index + 1
            return batch["image"], batch["label"]

    return EpochBatches()


def images_only(dataset):
    """The images of (images, labels) batches, for predict. keras' predict
    takes a PyDataset's (images, labels) as they are."""
    if tensorflow_installed():
        return dataset.map(lambda images, _: images)
    return dataset


def load_splits(name: str, data_dir: str | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                image_size=None, channels: int | None = None,
                validation_share: float = DEFAULT_VALIDATION_SHARE, seed: int = 0,
                build: bool = True) -> Splits:
    """Train, validation and test pipelines: cache, shuffle (train), batch, prefetch."""
    builder = prepared_builder(name, data_dir, build)
    info = builder.info
    if "image" not in info.features or "label" not in info.features:
        raise DataSetupError(f"{name} has no image and label features; the model scripts need both")
    shape = model_input_shape(info.features["image"].shape, image_size, channels)
    specs = split_specs(info.splits.keys(), validation_share)
    counts = {role: info.splits[spec].num_examples for role, spec in specs.items() if spec}
    if counts["train"] == 0 or counts["validation"] == 0:
        raise DataSetupError(f"{name}: the {'train' if counts['train'] == 0 else 'validation'} "
                             f"slice is empty ({specs}); the split is too small to hold one out")

    def fits_in_memory(role):
        return counts[role] * shape[0] * shape[1] * shape[2] <= MAX_CACHED_BYTES

    def evaluation_pipeline(role):
        return read_split(builder, specs[role], shape, batch_size, cache=fits_in_memory(role))

    return Splits(
        name=name, full_name=info.full_name,
        train=read_split(builder, specs["train"], shape, batch_size, shuffle=True, seed=seed,
                         cache=fits_in_memory("train")),
        validation=evaluation_pipeline("validation"),
        test=evaluation_pipeline("test") if specs["test"] else None,
        class_names=list(info.features["label"].names), input_shape=shape,
        split_specs=specs, num_examples=counts)


def load_evaluation_split(name: str, split: str, shape: tuple[int, int, int],
                          data_dir: str | None = None, batch_size: int = 256,
                          build: bool = True):
    """(batched dataset, class names, example count) of one split, for evaluating a saved model."""
    builder = prepared_builder(name, data_dir, build)
    try:
        count = builder.info.splits[split].num_examples
    except (KeyError, ValueError) as error:
        raise DataSetupError(f"{name} has no split {split!r} (it has "
                             f"{sorted(builder.info.splits.keys())}): {error}") from None
    dataset = read_split(builder, split, tuple(shape), batch_size)
    return dataset, list(builder.info.features["label"].names), count
