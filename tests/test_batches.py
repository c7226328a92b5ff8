"""sign_datasets.batches(): NumPy batches without TensorFlow (issue 20).

Datasets are built from the session's replica through the real download
path; every check compares against what tfds.load reads from the same build.
The last test runs tests/notf/ in .venv-notf, a venv without TensorFlow
(`make test` creates it).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

import sign_datasets

from conftest import REPO, quiet_env

NAME = "sign_mnist_csv"
ENCODED = "tumor_classification/124x124"
NOTF = REPO / ".venv-notf"
NOTF_PYTHON = NOTF / "bin" / "python"


@pytest.fixture(scope="module")
def data_dirs(replica_server, tmp_path_factory):
    """sign_mnist_csv built as TFRecord and as ArrayRecord, and
    tumor_classification/124x124 (PNG images) as TFRecord."""
    dirs = {"tfrecord": tmp_path_factory.mktemp("tfrecord"),
            "array_record": tmp_path_factory.mktemp("array_record")}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SIGN_DATASETS_SOURCE", replica_server.base_url)
        for file_format, data_dir in dirs.items():
            tfds.builder(NAME, data_dir=str(data_dir), file_format=file_format).download_and_prepare()
        tfds.builder(ENCODED, data_dir=str(dirs["tfrecord"])).download_and_prepare()
    return dirs


def tfds_examples(name, data_dir, split="train") -> list[tuple[int, bytes]]:
    """(label, pixels) in TFDS's stored order, as tfds.load reads them."""
    dataset = tfds.load(name, split=split, data_dir=str(data_dir), shuffle_files=False)
    return [(int(ex["label"]), ex["image"].tobytes()) for ex in tfds.as_numpy(dataset)]


def examples(batches) -> list[tuple[int, bytes]]:
    return [(int(label), image.tobytes()) for batch in batches
            for image, label in zip(batch["image"], batch["label"])]


@pytest.mark.parametrize("file_format", ["tfrecord", "array_record"])
def test_batches_hold_tfds_examples_in_order_and_shuffled(data_dirs, file_format):
    expected = tfds_examples(NAME, data_dirs["tfrecord"])
    data_dir = str(data_dirs[file_format])
    in_order = sign_datasets.batches(NAME, shuffle=False, data_dir=data_dir)
    assert examples(in_order) == expected
    shuffled = examples(sign_datasets.batches(NAME, seed=1, data_dir=data_dir, batch_size=100))
    assert Counter(shuffled) == Counter(expected) and shuffled != expected


def test_batches_are_numpy_arrays_of_the_stored_shape(data_dirs):
    batches = sign_datasets.batches(NAME, "test", batch_size=50, data_dir=str(data_dirs["tfrecord"]))
    batch = next(iter(batches))
    assert set(batch) == {"image", "label"}
    assert batch["image"].dtype == np.uint8 and batch["image"].shape == (50, 28, 28, 1)
    assert batch["label"].dtype == np.int64 and batch["label"].shape == (50,)


def test_a_seed_gives_the_same_epochs_and_each_epoch_a_new_order(data_dirs):
    def epochs(seed):
        batches = sign_datasets.batches(NAME, seed=seed, data_dir=str(data_dirs["array_record"]))
        return [examples(batches) for _ in range(2)]

    first, second = epochs(7)
    assert (first, second) == tuple(epochs(7))
    assert first != second and Counter(first) == Counter(second)
    assert epochs(8)[0] != first


def test_drop_remainder_and_len(data_dirs):
    count = len(tfds_examples(NAME, data_dirs["tfrecord"], "test"))
    kept = sign_datasets.batches(NAME, "test", batch_size=64, drop_remainder=True,
                                 data_dir=str(data_dirs["tfrecord"]))
    sizes = [len(batch["label"]) for batch in kept]
    assert sizes == [64] * (count // 64) and len(kept) == count // 64
    every = sign_datasets.batches(NAME, "test", batch_size=64, data_dir=str(data_dirs["tfrecord"]))
    assert sum(len(batch["label"]) for batch in every) == count and len(every) == -(-count // 64)


def test_split_slices(data_dirs):
    expected = tfds_examples(NAME, data_dirs["tfrecord"], "train[10:30]")
    got = sign_datasets.batches(NAME, "train[10:30]", shuffle=False,
                                data_dir=str(data_dirs["array_record"]))
    assert examples(got) == expected


def test_png_images_decode_as_tfds_decodes_them(data_dirs):
    expected = tfds_examples(ENCODED, data_dirs["tfrecord"], "test")
    got = sign_datasets.batches(ENCODED, "test", batch_size=16, shuffle=False,
                                data_dir=str(data_dirs["tfrecord"]))
    assert examples(got) == expected


def test_refusals_are_one_line(data_dirs, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"is not built in .*; run `sign-datasets build "):
        sign_datasets.batches(NAME, data_dir=str(tmp_path))
    with pytest.raises(ValueError, match=r"split 'validation': Unknown split") as refused:
        sign_datasets.batches(NAME, "validation", data_dir=str(data_dirs["tfrecord"]))
    assert "\n" not in str(refused.value)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        sign_datasets.batches(NAME, batch_size=0, data_dir=str(data_dirs["tfrecord"]))


def test_batches_import_no_tensorflow(data_dirs):
    script = (f"import sys, sign_datasets\n"
              f"for data_dir in {[str(d) for d in data_dirs.values()]!r}:\n"
              f"    assert sum(len(b['label']) for b in sign_datasets.batches({NAME!r}, "
              f"data_dir=data_dir)) > 0\n"
              "assert 'tensorflow' not in sys.modules, 'batches() imported TensorFlow'\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=quiet_env(), cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]


def test_tf_free_venv_reads_the_builds(data_dirs, tmp_path):
    """tests/notf/ in .venv-notf, against the examples tfds.load reads here."""
    if not (NOTF / ".installed").exists():  # the Makefile marks a finished install
        if os.environ.get("CI") == "true":
            pytest.fail(f"{NOTF} is missing; `make test` creates it")
        pytest.skip(f"{NOTF} is missing; `make install-notf` creates it")
    expected = tmp_path / "expected.npz"
    arrays = {}
    for split in ("train", "test"):
        pairs = tfds_examples(NAME, data_dirs["tfrecord"], split)
        arrays[f"{split}_labels"] = np.array([label for label, _ in pairs], np.int64)
        arrays[f"{split}_images"] = np.stack([np.frombuffer(image, np.uint8) for _, image in pairs])
    np.savez(expected, **arrays)
    env = quiet_env(SIGN_DATASETS_NOTF_EXPECTED=str(expected),
                    SIGN_DATASETS_NOTF_TFRECORD=str(data_dirs["tfrecord"]),
                    SIGN_DATASETS_NOTF_ARRAY_RECORD=str(data_dirs["array_record"]))
    env.pop("PYTHONPATH", None)
    done = subprocess.run([str(NOTF_PYTHON), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/notf"], capture_output=True, text=True, env=env, cwd=REPO)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "skipped" not in done.stdout, done.stdout[-3000:]


def test_array_record_source_by_index(data_dirs):
    import pickle

    expected = tfds_examples(NAME, data_dirs["tfrecord"], "test")
    source = sign_datasets.ArrayRecordSource(NAME, "test", data_dir=str(data_dirs["array_record"]))
    assert len(source) == len(expected)
    for index in (0, 17, len(expected) - 1, -1):
        example = source[index]
        assert (int(example["label"]), example["image"].tobytes()) == expected[index]
    again = pickle.loads(pickle.dumps(source))
    assert [(int(e["label"]), e["image"].tobytes()) for e in again.__getitems__([5, 2])] == \
        [expected[5], expected[2]]
    with pytest.raises(IndexError):
        source[len(expected)]
    with pytest.raises(ValueError, match="random access needs an ArrayRecord build"):
        sign_datasets.ArrayRecordSource(NAME, "test", data_dir=str(data_dirs["tfrecord"]))
