"""sign_mnist_csv end to end: the replica served on 127.0.0.1, real TFDS builds.

Counts, labels and pixels are checked against what the replica wrote; the
dataset is then read by processes that never import sign_datasets.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tensorflow_datasets as tfds

import sign_datasets  # noqa: F401
from sign_datasets.core.labels import CSV_LABEL_TO_INDEX, SIGN_LETTERS

from conftest import REPO, quiet_env

TFDS_CLI = str(Path(sys.executable).parent / "tfds")
SIGN_CLI = str(Path(sys.executable).parent / "sign-datasets")


@pytest.fixture(scope="module")
def built(replica_server, tmp_path_factory):
    """Both configs built once through the served replica."""
    data_dir = tmp_path_factory.mktemp("tfds")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SIGN_DATASETS_SOURCE", replica_server.base_url)
        for config in ("original", "dirty"):
            tfds.builder(f"sign_mnist_csv/{config}", data_dir=str(data_dir)).download_and_prepare()
    return data_dir


def replica_csv(replica_dir: Path, member: str) -> pd.DataFrame:
    with zipfile.ZipFile(replica_dir / "databasesLoadData.zip") as zf:
        return pd.read_csv(io.BytesIO(zf.read(member)), dtype=str)


def loaded(data_dir, name, split):
    dataset = tfds.load(name, split=split, data_dir=str(data_dir), shuffle_files=False)
    return [(int(ex["label"]), ex["image"]) for ex in tfds.as_numpy(dataset)]


def shard_digests(data_dir: Path, name: str) -> dict[str, str]:
    folder = next((data_dir / name).glob("*"))  # the version folder
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.glob("*.tfrecord*"))}


def test_counts_and_drops_are_exact(built, replica_manifest):
    counts = replica_manifest["databasesLoadData.zip"]
    train_rows = counts["sign_mnist_train.csv"]["rows"]
    test_rows = counts["sign_mnist_test.csv"]["rows"]

    original = tfds.builder("sign_mnist_csv/original", data_dir=str(built))
    assert original.info.splits["train"].num_examples == train_rows
    assert original.info.splits["test"].num_examples == test_rows
    cleaning = original.info.metadata["cleaning"]
    assert cleaning["train"] == {"records": train_rows, "kept": train_rows, "dropped": 0,
                                 "drops": {}, "examples": {}}

    dirty = tfds.builder("sign_mnist_csv/dirty", data_dir=str(built))
    report = dirty.info.metadata["cleaning"]["train"]
    assert dirty.info.splits["train"].num_examples == train_rows - 7
    assert report["records"] == train_rows
    assert report["drops"] == {"non_numeric_cell": 3, "duplicate_row": 4}
    member = "databasesLoadData.zip/sign_mnist_train/sign_mnist_train_clean.csv"
    # pandas' row index i is file line i + 2 (line 1 is the header)
    assert report["examples"]["non_numeric_cell"] == [f"{member}:{i + 2}" for i in (727, 802, 861)]
    assert report["examples"]["duplicate_row"] == [f"{member}:{i + 2}" for i in (317, 487, 595, 689)]
    assert dirty.info.metadata["cleaning"]["test"]["kept"] == test_rows


def test_labels_and_pixels_match_the_csv(built, replica_dir):
    frame = replica_csv(replica_dir, "sign_mnist_train/sign_mnist_train.csv").astype(int)
    expected = Counter(
        (CSV_LABEL_TO_INDEX[label], pixels.astype(np.uint8).tobytes())
        for label, pixels in zip(frame["label"], frame.drop(columns="label").to_numpy()))
    examples = loaded(built, "sign_mnist_csv/original", "train")
    assert all(image.shape == (28, 28, 1) and image.dtype == np.uint8 for _, image in examples)
    got = Counter((label, image.tobytes()) for label, image in examples)
    assert got == expected


def test_label_numbering_skips_j(built, replica_manifest):
    builder = tfds.builder("sign_mnist_csv", data_dir=str(built))
    assert builder.info.features["label"].names == list(SIGN_LETTERS)
    counts = Counter(label for label, _ in loaded(built, "sign_mnist_csv/original", "test"))
    manifest = replica_manifest["databasesLoadData.zip"]["sign_mnist_test.csv"]["label_counts"]
    assert counts == Counter({CSV_LABEL_TO_INDEX[int(k)]: v for k, v in manifest.items()})
    assert SIGN_LETTERS[CSV_LABEL_TO_INDEX[10]] == "K" and CSV_LABEL_TO_INDEX[10] == 9


def test_dirty_config_drops_only_the_junk(built, replica_dir):
    frame = replica_csv(replica_dir, "sign_mnist_train/sign_mnist_train_clean.csv")
    junk = {727, 802, 861, 317, 487, 595, 689}
    keep = frame.drop(index=sorted(junk)).astype(int)
    expected = Counter(
        (CSV_LABEL_TO_INDEX[label], pixels.astype(np.uint8).tobytes())
        for label, pixels in zip(keep["label"], keep.drop(columns="label").to_numpy()))
    got = Counter((label, image.tobytes()) for label, image in loaded(built, "sign_mnist_csv/dirty", "train"))
    assert got == expected


def test_second_build_downloads_nothing(built, replica_server, monkeypatch):
    monkeypatch.setenv("SIGN_DATASETS_SOURCE", replica_server.base_url)
    before = replica_server.count_for("databasesLoadData.zip")
    assert before >= 1
    builder = tfds.builder("sign_mnist_csv/original", data_dir=str(built))
    version_dir = Path(builder.data_dir)
    digests = shard_digests(built, "sign_mnist_csv/original")
    shutil.rmtree(version_dir)
    tfds.builder("sign_mnist_csv/original", data_dir=str(built)).download_and_prepare()
    assert replica_server.count_for("databasesLoadData.zip") == before
    assert shard_digests(built, "sign_mnist_csv/original") == digests


def test_report_command_prints_the_stored_counts(built):
    result = subprocess.run([SIGN_CLI, "report", "sign_mnist_csv/dirty", "--data-dir", str(built)],
                            capture_output=True, text=True, env=quiet_env(), timeout=300)
    assert result.returncode == 0, result.stderr
    assert "duplicate_row=4, non_numeric_cell=3" in result.stdout
    line = next(l for l in result.stdout.splitlines() if " train " in l)
    assert line.split()[2:5] == ["900", "893", "7"]


def test_report_of_unbuilt_dataset_is_a_clear_error(tmp_path):
    result = subprocess.run([SIGN_CLI, "report", "sign_mnist_csv/dirty", "--data-dir", str(tmp_path)],
                            capture_output=True, text=True, env=quiet_env(), timeout=300)
    assert result.returncode == 2
    assert "is not built" in result.stderr and "sign-datasets build" in result.stderr
    assert "Traceback" not in result.stderr


READ_WITHOUT_OUR_CODE = """
import json, sys
import tensorflow_datasets as tfds
name, data_dir = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else None)
dataset = tfds.load(name, split="train", data_dir=data_dir)
count = sum(1 for _ in dataset)
builder = tfds.builder(name, data_dir=data_dir)
assert "sign_datasets" not in sys.modules, "sign_datasets was imported"
print(json.dumps({"count": count, "cleaning": builder.info.metadata["cleaning"]["train"]["drops"],
                  "names": builder.info.features["label"].names}))
"""


def test_fresh_process_loads_by_name_without_sign_datasets(built, tmp_path):
    for args, env in (
        ([str(built)], quiet_env()),
        ([], quiet_env(TFDS_DATA_DIR=str(built))),
    ):
        result = subprocess.run([sys.executable, "-c", READ_WITHOUT_OUR_CODE, "sign_mnist_csv/dirty", *args],
                                capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        out = json.loads(result.stdout.strip().splitlines()[-1])
        assert out["count"] == 893
        assert out["cleaning"] == {"duplicate_row": 4, "non_numeric_cell": 3}
        assert out["names"] == list(SIGN_LETTERS)


def test_tfds_cli_builds_are_byte_identical_to_in_process_build(built, replica_server, tmp_path):
    """`tfds build` by registered name and by folder, each in its own process
    with its own hash seed, gives the same shards as the build of this process."""
    env = quiet_env(SIGN_DATASETS_SOURCE=replica_server.base_url)
    by_name = tmp_path / "by_name"
    by_folder = tmp_path / "by_folder"
    commands = [
        ([TFDS_CLI, "build", "--imports", "sign_datasets", "sign_mnist_csv/dirty",
          "--data_dir", str(by_name)], "1"),
        ([TFDS_CLI, "build", str(REPO / "builders" / "sign_mnist_csv"), "--config", "dirty",
          "--data_dir", str(by_folder)], "2"),
    ]
    for command, hash_seed in commands:
        result = subprocess.run(command, capture_output=True, text=True, timeout=600,
                                env={**env, "PYTHONHASHSEED": hash_seed}, cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
    reference = shard_digests(built, "sign_mnist_csv/dirty")
    assert reference
    assert shard_digests(by_name, "sign_mnist_csv/dirty") == reference
    assert shard_digests(by_folder, "sign_mnist_csv/dirty") == reference


def test_spilling_shuffler_gives_the_same_shards(built, replica_server, tmp_path, monkeypatch):
    """With a tiny shuffle memory TFDS spills to disk buckets: same bytes."""
    monkeypatch.setenv("SIGN_DATASETS_SOURCE", replica_server.base_url)
    monkeypatch.setenv("SIGN_DATASETS_SHUFFLE_MEMORY_MB", "0.05")
    monkeypatch.setenv("SIGN_DATASETS_WORKERS", "1")
    tfds.builder("sign_mnist_csv/dirty", data_dir=str(tmp_path)).download_and_prepare()
    assert shard_digests(tmp_path, "sign_mnist_csv/dirty") == shard_digests(built, "sign_mnist_csv/dirty")
