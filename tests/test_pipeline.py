"""sign_datasets.pipeline(), raw-pixel storage and random access (issue 7).

Datasets are built from the session's replica through the real download
path; every check compares against what tfds.load reads from the same
build. Speed is measured by scripts/bench_read.py, not here.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

import sign_datasets
from sign_datasets.generate.builder import ENCODED_IMAGE, RAW_PIXELS, sign_features

from conftest import quiet_env

TFDS_CLI = str(Path(sys.executable).parent / "tfds")
SIGN_CLI = str(Path(sys.executable).parent / "sign-datasets")
NAME = "sign_mnist_csv"
ENCODED = "tumor_classification/124x124"


@pytest.fixture(scope="module")
def data_dirs(replica_server, tmp_path_factory):
    """sign_mnist_csv built once as TFRecord and once as ArrayRecord, and
    tumor_classification/124x124 (encoded images), all through the served replica."""
    dirs = {"tfrecord": tmp_path_factory.mktemp("tfrecord"),
            "array_record": tmp_path_factory.mktemp("array_record")}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SIGN_DATASETS_SOURCE", replica_server.base_url)
        for file_format, data_dir in dirs.items():
            tfds.builder(NAME, data_dir=str(data_dir),
                         file_format=file_format).download_and_prepare()
        tfds.builder(ENCODED, data_dir=str(dirs["tfrecord"])).download_and_prepare()
    return dirs


@pytest.fixture(scope="module")
def builder(data_dirs):
    return tfds.builder(NAME, data_dir=str(data_dirs["tfrecord"]))


def tfds_examples(builder, split="train") -> list[tuple[int, bytes]]:
    """(label, pixels) in TFDS's stored order, as tfds.load reads them."""
    # builder.data_dir is <data dir>/<name>/<config>/<version>
    data_dir = Path(builder.data_dir).parents[2]
    name = builder.info.full_name.rsplit("/", 1)[0]  # without the version
    dataset = tfds.load(name, split=split, data_dir=str(data_dir),
                        shuffle_files=False)
    return [(int(ex["label"]), ex["image"].tobytes()) for ex in tfds.as_numpy(dataset)]


def pipeline_examples(dataset) -> list[tuple[int, bytes]]:
    return [(int(label), image.tobytes())
            for images, labels in dataset.as_numpy_iterator()
            for image, label in zip(images, labels)]


def labels_of(dataset) -> list[int]:
    return [int(label) for _, labels in dataset.as_numpy_iterator() for label in labels]


# --- storage ---------------------------------------------------------------------

def test_sign_mnist_datasets_store_raw_pixels_at_version_2(builder):
    image = builder.info.features["image"]
    assert isinstance(image, tfds.features.Tensor)
    assert image.shape == (28, 28, 1) and image.np_dtype == np.uint8
    assert str(builder.info.version) == "2.0.0"
    for name in ("sign_mnist_json", "sign_mnist_base64"):
        assert str(tfds.builder(name).info.version) == "2.0.0"
        assert isinstance(tfds.builder(name).info.features["image"], tfds.features.Tensor)


def test_sign_features_storages():
    assert isinstance(sign_features()["image"], tfds.features.Tensor)
    assert isinstance(sign_features(storage=RAW_PIXELS)["image"], tfds.features.Tensor)
    assert isinstance(sign_features(storage=ENCODED_IMAGE)["image"], tfds.features.Image)
    with pytest.raises(ValueError, match="fixed image shape"):
        sign_features((None, None, 1))
    with pytest.raises(ValueError, match="storage must be"):
        sign_features(storage="jpeg")


# --- pipeline() ------------------------------------------------------------------

def test_batches_hold_every_example_with_its_label_and_pixels(builder):
    dataset = sign_datasets.pipeline(NAME, "train", batch_size=64, shuffle=False,
                                     data_dir=str(Path(builder.data_dir).parents[2]))
    count = builder.info.splits["train"].num_examples
    assert len(dataset) == -(-count // 64)
    shapes = []
    for images, labels in dataset:
        assert images.dtype == tf.uint8 and labels.dtype == tf.int64
        assert images.shape[1:] == (28, 28, 1) and labels.shape == images.shape[:1]
        shapes.append(int(images.shape[0]))
    assert shapes == [64] * (count // 64) + ([count % 64] if count % 64 else [])
    assert Counter(pipeline_examples(dataset)) == Counter(tfds_examples(builder))


def test_unshuffled_order_is_the_stored_order(builder):
    dataset = sign_datasets.pipeline(builder, "test", batch_size=100, shuffle=False)
    assert pipeline_examples(dataset) == tfds_examples(builder, "test")


def test_split_slices_partition_the_split(builder):
    parts = [sign_datasets.pipeline(builder, spec, batch_size=50, shuffle=False)
             for spec in ("train[:90%]", "train[90%:]")]
    got = pipeline_examples(parts[0]) + pipeline_examples(parts[1])
    assert got == tfds_examples(builder)
    assert len(pipeline_examples(parts[1])) == builder.info.splits["train[90%:]"].num_examples


def test_shuffle_is_reproducible_with_a_seed_and_new_each_epoch(builder):
    def epochs(seed, count=2):
        dataset = sign_datasets.pipeline(builder, "train", batch_size=32, seed=seed)
        return [labels_of(dataset) for _ in range(count)]

    first, second = epochs(seed=7), epochs(seed=7)
    assert first == second
    assert first[0] != first[1]
    assert epochs(seed=8, count=1)[0] != first[0]
    stored = [label for label, _ in tfds_examples(builder)]
    assert first[0] != stored and sorted(first[0]) == sorted(stored)


def test_autotuning_is_off_so_dropping_an_iterator_does_not_wait(builder):
    # Measured, not timed here (docs/BENCHMARKS.md, "Image folders"): with
    # tf.data's autotuning on, half the epochs waited 0.15-0.28 s for its
    # thread when the iterator was dropped. Every kind of pipeline keeps it off.
    for options in ({}, {"cache": True}, {"preprocess": lambda image, label: (image, label)},
                    {"shuffle": False}):
        dataset = sign_datasets.pipeline(builder, "test", batch_size=64, **options)
        assert dataset.options().autotune.enabled is False, options
        assert sum(int(images.shape[0]) for images, _ in dataset) == \
            builder.info.splits["test"].num_examples


def test_drop_remainder_gives_only_full_batches(builder):
    count = builder.info.splits["train"].num_examples
    for cache in (False, True):
        dataset = sign_datasets.pipeline(builder, "train", batch_size=64, shuffle=False,
                                         cache=cache, drop_remainder=True)
        sizes = [int(images.shape[0]) for images, _ in dataset]
        assert sizes == [64] * (count // 64) and len(dataset) == count // 64


@pytest.mark.parametrize("shuffle", [False, True])
def test_cache_in_memory_serves_the_same_examples_every_epoch(builder, shuffle):
    dataset = sign_datasets.pipeline(builder, "train", batch_size=64, shuffle=shuffle, seed=1,
                                     cache=True)
    reference = Counter(tfds_examples(builder))
    first, second = pipeline_examples(dataset), pipeline_examples(dataset)
    assert Counter(first) == Counter(second) == reference
    assert (first != second) == shuffle


def test_cache_to_files_is_written_and_read_back(builder, tmp_path):
    prefix = tmp_path / "cache" / "train"
    prefix.parent.mkdir()
    dataset = sign_datasets.pipeline(builder, "train", batch_size=64, shuffle=False,
                                     cache=str(prefix))
    first = pipeline_examples(dataset)
    assert list(prefix.parent.glob("train*.index"))
    assert pipeline_examples(dataset) == first == tfds_examples(builder)


def test_augment_receives_batches_after_the_cache(builder):
    seen_shapes = []

    def invert(images, labels):
        seen_shapes.append(tuple(images.shape))
        return 255 - images, labels

    dataset = sign_datasets.pipeline(builder, "test", batch_size=50, shuffle=False, cache=True,
                                     augment=invert)
    got = pipeline_examples(dataset)
    expected = [(label, (255 - np.frombuffer(pixels, np.uint8)).tobytes())
                for label, pixels in tfds_examples(builder, "test")]
    assert got == expected
    assert seen_shapes and all(len(shape) == 4 and shape[1:] == (28, 28, 1) for shape in seen_shapes)


def test_preprocess_runs_per_example_before_batching(builder):
    def to_rgb_32(image, label):
        return tf.image.grayscale_to_rgb(tf.image.resize_with_pad(image, 32, 32)), label

    dataset = sign_datasets.pipeline(builder, "test", batch_size=40, shuffle=False,
                                     preprocess=to_rgb_32)
    images, labels = next(iter(dataset))
    assert images.shape == (40, 32, 32, 3)
    assert [int(l) for l in labels] == [label for label, _ in tfds_examples(builder, "test")[:40]]


def test_encoded_images_decode_as_tfds_decodes_them(data_dirs):
    """tumor_classification stores PNGs; the pipeline decodes them in batches."""
    jpegs = tfds.builder(ENCODED, data_dir=str(data_dirs["tfrecord"]))
    assert isinstance(jpegs.info.features["image"], tfds.features.Image)
    for cache in (False, True):
        dataset = sign_datasets.pipeline(jpegs, "test", batch_size=32, shuffle=False, cache=cache)
        assert pipeline_examples(dataset) == tfds_examples(jpegs, "test")


def test_unbuilt_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not built"):
        sign_datasets.pipeline(NAME, data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="batch_size"):
        sign_datasets.pipeline(NAME, batch_size=0, data_dir=str(tmp_path))


# --- random access -----------------------------------------------------------------

def test_array_record_build_gives_random_access_in_the_stored_order(data_dirs, builder):
    source = tfds.data_source(NAME, split="train", data_dir=str(data_dirs["array_record"]))
    stored = list(tfds.as_numpy(builder.as_dataset(split="train", shuffle_files=False)))
    assert len(source) == len(stored) == builder.info.splits["train"].num_examples
    for index in [0, len(stored) - 1, *np.random.default_rng(0).integers(0, len(stored), 50)]:
        example = source[int(index)]
        assert example["image"].dtype == np.uint8 and example["image"].shape == (28, 28, 1)
        assert example["label"] == stored[index]["label"]
        assert (example["image"] == stored[index]["image"]).all()


def test_pipeline_reads_array_record_builds_in_the_same_orders(data_dirs, builder):
    array_record = tfds.builder(NAME, data_dir=str(data_dirs["array_record"]))
    unshuffled = sign_datasets.pipeline(array_record, "train", batch_size=64, shuffle=False)
    assert pipeline_examples(unshuffled) == tfds_examples(builder)
    # A full-buffer shuffle of records and a shuffle of indices draw the same
    # permutation from the same seed.
    assert (labels_of(sign_datasets.pipeline(array_record, "train", batch_size=64, seed=5))
            == labels_of(sign_datasets.pipeline(builder, "train", batch_size=64, seed=5)))
    cached = sign_datasets.pipeline(array_record, "test", batch_size=64, shuffle=False, cache=True)
    assert pipeline_examples(cached) == pipeline_examples(cached) == tfds_examples(builder, "test")
    preprocessed = sign_datasets.pipeline(array_record, "test", batch_size=64, shuffle=False,
                                          preprocess=lambda image, label: (image // 2, label))
    assert pipeline_examples(preprocessed) == [
        (label, (np.frombuffer(pixels, np.uint8) // 2).tobytes())
        for label, pixels in tfds_examples(builder, "test")]


def test_build_commands_accept_array_record(replica_server, tmp_path):
    env = quiet_env(SIGN_DATASETS_SOURCE=replica_server.base_url)
    ours, theirs = tmp_path / "ours", tmp_path / "tfds_cli"
    commands = [
        ([SIGN_CLI, "build", "sign_mnist_csv/dirty", "--file-format", "array_record",
          "--data-dir", str(ours)], ours),
        ([TFDS_CLI, "build", "--imports", "sign_datasets", "sign_mnist_csv/dirty",
          "--file_format", "array_record", "--data_dir", str(theirs)], theirs),
    ]
    for command, data_dir in commands:
        result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env,
                                cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        assert list(data_dir.glob("sign_mnist_csv/dirty/2.0.0/*.array_record-*"))
        assert not list(data_dir.glob("sign_mnist_csv/dirty/2.0.0/*.tfrecord-*"))
        source = tfds.data_source("sign_mnist_csv/dirty", split="train", data_dir=str(data_dir))
        assert len(source) == 893
    ours_source = tfds.data_source("sign_mnist_csv/dirty", split="train", data_dir=str(ours))
    theirs_source = tfds.data_source("sign_mnist_csv/dirty", split="train", data_dir=str(theirs))
    for index in (0, 400, 892):
        assert (ours_source[index]["image"] == theirs_source[index]["image"]).all()


# --- pictures --------------------------------------------------------------------

def test_show_examples_and_example_grid_draw_raw_pixels(builder, tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sign_datasets.read.visualize import example_grid

    dataset = builder.as_dataset(split="test")
    figure = tfds.show_examples(dataset, builder.info, rows=2, cols=3)
    assert len(figure.axes) == 6
    plt.close(figure)

    out = example_grid(NAME, data_dir=str(Path(builder.data_dir).parents[2]), out=tmp_path / "grid.png",
                       rows=2, cols=4)
    from PIL import Image
    with Image.open(out) as picture:
        assert picture.format == "PNG" and picture.size[0] > 100
