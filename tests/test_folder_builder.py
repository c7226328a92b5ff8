"""The TFDS builder of zipped image folders (generate/folder_builder.py) end
to end: the four course datasets built from the replica served on 127.0.0.1
and counted against its manifest, a one-worker CLI build equal byte for
byte, and a zip holding one of every kind of junk, bad image, duplicate,
leak and unsafe name, each counted, named or reported.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

import sign_datasets  # noqa: F401  (registers the builders)
from sign_datasets.core.labels import SIGN_LETTERS

from conftest import quiet_env
from zip_helpers import SIGN_PREFIX, SIGN_ZIP, build, examples

pytest_plugins = ("zip_helpers",)

TFDS_CLI = str(Path(sys.executable).parent / "tfds")

DATASETS = {
    # name: (bucket object, class names in label order, default config shape)
    "sign_language_img": (SIGN_ZIP, list(SIGN_LETTERS), (28, 28, 1)),
    "malaria_cells": ("MalariaCells.zip", ["Parasitized", "Uninfected"], (None, None, 3)),
    "tom_and_jerry": ("TomAndJerry.zip", ["Jerry", "Tom"], (None, None, 3)),
    "tumor_classification": ("TumorClassification.zip", ["BENIGN", "MALIGNANT", "NORMAL"],
                             (None, None, 1)),
}
SIZED_CONFIGS = {
    "malaria_cells/124x124": (124, 124, 3),
    "tom_and_jerry/640x480": (480, 640, 3),
    "tumor_classification/124x124": (124, 124, 1),
}


def shard_digests(builder) -> dict[str, str]:
    folder = Path(builder.data_dir)
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.glob("*.tfrecord*"))}


# --- the four datasets from the served replica ------------------------------------

@pytest.fixture(scope="module")
def replica_builds(replica_server, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds_folders")
    builders = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SIGN_DATASETS_SOURCE", replica_server.base_url)
        for name in [*DATASETS, *SIZED_CONFIGS]:
            builders[name] = tfds.builder(name, data_dir=str(data_dir))
            builders[name].download_and_prepare()
    return builders


@pytest.mark.parametrize("name", DATASETS)
def test_replica_counts_are_exact_per_split_and_class(replica_builds, replica_manifest, name):
    object_name, class_names, shape = DATASETS[name]
    builder = replica_builds[name]
    assert builder.info.features["label"].names == class_names
    assert builder.info.features["image"].shape == shape
    manifest = replica_manifest[object_name]
    for split, folder in (("train", "Train"), ("test", "Test")):
        got = Counter(class_names[label] for label, _ in examples(builder, split))
        assert got == Counter(manifest[folder]), split
        report = builder.info.metadata["cleaning"][split]
        assert report["records"] == report["kept"] == sum(manifest[folder].values())
        assert report["drops"] == {}
    assert builder.info.metadata["junk"] == {}
    assert builder.info.metadata["leakage"] == {"count": 0, "examples": [],
                                                "dropped_from_test": False}
    assert builder.info.metadata["layout"] == {
        "wrapper": None, "split_folders": {"train": "Train", "test": "Test"}}


@pytest.mark.parametrize("name", SIZED_CONFIGS)
def test_sized_configs_store_the_course_sizes(replica_builds, replica_manifest, name):
    builder = replica_builds[name]
    shape = SIZED_CONFIGS[name]
    assert builder.info.features["image"].shape == shape
    stored = examples(builder, "test")
    assert all(image.shape == shape for _, image in stored)
    assert len(stored) == sum(replica_manifest[DATASETS[name.split("/")[0]][0]]["Test"].values())


def test_native_configs_keep_each_image_size_and_mode(replica_builds, replica_dir):
    with zipfile.ZipFile(replica_dir / "TumorClassification.zip") as zf:
        sizes = Counter(Image.open(io.BytesIO(zf.read(n))).size[::-1]
                        for n in zf.namelist() if n.startswith("Train/") and n.endswith(".jpg"))
    stored = examples(replica_builds["tumor_classification"], "train")
    assert Counter(image.shape[:2] for _, image in stored) == sizes
    assert {image.shape[2] for _, image in stored} == {1}
    malaria = examples(replica_builds["malaria_cells"], "test")
    assert {image.shape[2] for _, image in malaria} == {3}
    assert len({image.shape for _, image in malaria}) > 1


def test_sign_images_are_the_originals_decoded_once(replica_builds, replica_dir):
    """sign_language_img stores raw pixels (2.0.0): exactly Pillow's decode of
    each original JPEG, as a (28, 28, 1) uint8 tensor, which is TensorFlow's
    decode with the accurate IDCT, and within a few levels of its default
    (fast IDCT) decode that keras uses."""
    expected, by_tensorflow = Counter(), {}
    with zipfile.ZipFile(replica_dir / SIGN_ZIP) as zf:
        for name in zf.namelist():
            if name.startswith("Test/") and name.endswith(".jpg"):
                label = SIGN_LETTERS.index(name.split("/")[1])
                data = zf.read(name)
                pixels = np.asarray(Image.open(io.BytesIO(data)).convert("L"))[..., None]
                expected[(label, pixels.tobytes())] += 1
                accurate = tf.io.decode_jpeg(data, channels=1, dct_method="INTEGER_ACCURATE")
                assert accurate.numpy().tobytes() == pixels.tobytes(), name
                by_tensorflow[(label, pixels.tobytes())] = tf.io.decode_jpeg(data, channels=1)
    builder = replica_builds["sign_language_img"]
    assert isinstance(builder.info.features["image"], tfds.features.Tensor)
    got = examples(builder, "test")
    assert all(image.shape == (28, 28, 1) and image.dtype == np.uint8 for _, image in got)
    assert Counter((label, image.tobytes()) for label, image in got) == expected
    gaps = [np.abs(tensorflow.numpy().astype(int) - np.frombuffer(stored, np.uint8).reshape(28, 28, 1))
            for (_, stored), tensorflow in by_tensorflow.items()]
    assert max(int(gap.max()) for gap in gaps) <= 3
    assert np.mean([gap.mean() for gap in gaps]) < 1.0


def test_parallel_build_is_byte_identical_to_a_one_worker_cli_build(replica_builds,
                                                                    replica_server, tmp_path):
    """`tfds build` in another process with one worker writes the same shards
    as this process's build with a worker pool."""
    data_dir = tmp_path / "cli"
    result = subprocess.run(
        [TFDS_CLI, "build", "--imports", "sign_datasets", "sign_language_img",
         "--data_dir", str(data_dir)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env=quiet_env(SIGN_DATASETS_SOURCE=replica_server.base_url, SIGN_DATASETS_WORKERS="1",
                      PYTHONHASHSEED="3"))
    assert result.returncode == 0, result.stderr[-3000:]
    reference = shard_digests(replica_builds["sign_language_img"])
    assert reference
    assert shard_digests(tfds.builder("sign_language_img", data_dir=str(data_dir))) == reference


# --- junk, bad images, duplicates, leakage, unsafe names ---------------------------

@pytest.fixture(scope="module")
def messy_builds(messy, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("messy_tfds")
    builders = {}
    with pytest.MonkeyPatch.context() as patch:
        for config in ("28x28", "28x28_no_leakage"):
            builders[config] = build(f"sign_language_img/{config}", messy, data_dir, patch)
    return builders


def test_every_bad_image_is_a_named_drop(messy_builds):
    builder = messy_builds["28x28"]
    report = builder.info.metadata["cleaning"]["train"]
    assert report["drops"] == {"corrupt_image": 2, "not_an_image": 1, "image_too_large": 1,
                               "duplicate_image": 1, "duplicate_member_name": 1}
    assert report["examples"] == {
        "corrupt_image": [SIGN_PREFIX + "Train/A/corrupt.jpg", SIGN_PREFIX + "Train/A/truncated.jpg"],
        "not_an_image": [SIGN_PREFIX + "Train/B/hello.jpg"],
        "image_too_large": [SIGN_PREFIX + "Train/C/bomb.png"],
        "duplicate_image": [SIGN_PREFIX + "Train/B/dup.jpg"],
        "duplicate_member_name": [SIGN_PREFIX + "Train/C/0001.jpg"],
    }
    assert report["records"] == 15 and report["kept"] == 9
    assert builder.info.splits["train"].num_examples == 9
    assert Counter(label for label, _ in examples(builder, "train")) == {0: 3, 1: 3, 2: 3}


def test_junk_is_counted_apart_from_records(messy_builds):
    assert messy_builds["28x28"].info.metadata["junk"] == {
        "archive": {"outside_split_folders": 1, "text_file": 1, "unsafe_path": 3},
        "train": {"desktop_ini": 1, "hidden_file": 1, "macos_metadata": 1,
                  "outside_class_folders": 1, "text_file": 1, "thumbs_db": 1},
        "test": {"nested_archive": 1},
    }


def test_a_build_says_which_archive_members_it_skipped(messy, tmp_path, monkeypatch, capfd):
    """Junk is no record, so no drop; the printed report still tells of it."""
    build("sign_language_img/28x28", messy, tmp_path / "tfds", monkeypatch)
    printed = capfd.readouterr().err
    assert "Skipped archive members (not records): archive: " in printed
    assert "outside_split_folders=1, text_file=1, unsafe_path=3" in printed


def test_nested_zip_and_unsafe_names_are_never_expanded_or_written(messy_builds, messy):
    # The nested zip's image did not become a record, and nothing landed
    # beside or above the source folder.
    assert messy_builds["28x28"].info.metadata["cleaning"]["test"]["records"] == 7
    for place in (messy.parent, messy.parent.parent, Path("/tmp")):
        assert not (place / "evil.jpg").exists()
        assert not (place / "escaped.jpg").exists()
    assert not Path("/tmp/Train/A/absolute.jpg").exists()


def test_leakage_is_reported_not_dropped_by_default(messy_builds):
    builder = messy_builds["28x28"]
    expected_example = SIGN_PREFIX + "Test/C/leak.png = " + SIGN_PREFIX + "Train/A/0002.jpg"
    assert builder.info.metadata["leakage"] == {
        "count": 1, "examples": [expected_example], "dropped_from_test": False}
    assert builder.info.splits["test"].num_examples == 7

    strict = messy_builds["28x28_no_leakage"]
    assert strict.info.metadata["leakage"]["dropped_from_test"] is True
    report = strict.info.metadata["cleaning"]["test"]
    assert report["drops"] == {"leaked_from_train": 1}
    assert report["examples"] == {"leaked_from_train": [SIGN_PREFIX + "Test/C/leak.png"]}
    assert strict.info.splits["test"].num_examples == 6
    # The filter touches test only.
    assert strict.info.metadata["cleaning"]["train"] == builder.info.metadata["cleaning"]["train"]
