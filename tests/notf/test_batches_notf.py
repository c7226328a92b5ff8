"""batches() in a venv without TensorFlow (.venv-notf, made by `make test`).

tests/test_batches.py builds the datasets and writes the examples tfds.load
reads with TensorFlow, then runs this folder in .venv-notf with their paths in
SIGN_DATASETS_NOTF_*; run on their own, these tests skip.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections import Counter

import numpy as np
import pytest

NAME = "sign_mnist_csv"
EXPECTED = os.environ.get("SIGN_DATASETS_NOTF_EXPECTED")
DATA_DIRS = {"tfrecord": os.environ.get("SIGN_DATASETS_NOTF_TFRECORD"),
             "array_record": os.environ.get("SIGN_DATASETS_NOTF_ARRAY_RECORD")}

pytestmark = pytest.mark.skipif(not EXPECTED, reason="run by tests/test_batches.py in .venv-notf")


@pytest.fixture(scope="module")
def expected():
    with np.load(EXPECTED) as arrays:
        return {split: [(int(label), image.tobytes()) for label, image in
                        zip(arrays[f"{split}_labels"], arrays[f"{split}_images"])]
                for split in ("train", "test")}


def examples(batches) -> list[tuple[int, bytes]]:
    return [(int(label), image.tobytes()) for batch in batches
            for image, label in zip(batch["image"], batch["label"])]


def test_this_venv_has_no_tensorflow():
    assert importlib.util.find_spec("tensorflow") is None


@pytest.mark.parametrize("file_format", ["tfrecord", "array_record"])
@pytest.mark.parametrize("split", ["train", "test"])
def test_batches_equal_what_tfds_load_reads(expected, file_format, split):
    import sign_datasets

    data_dir = DATA_DIRS[file_format]
    in_order = sign_datasets.batches(NAME, split, shuffle=False, data_dir=data_dir)
    assert examples(in_order) == expected[split]
    shuffled = examples(sign_datasets.batches(NAME, split, seed=0, data_dir=data_dir))
    assert Counter(shuffled) == Counter(expected[split])
    assert shuffled == examples(sign_datasets.batches(NAME, split, seed=0, data_dir=data_dir))
    assert "tensorflow" not in sys.modules


def test_refusals(tmp_path):
    import sign_datasets

    with pytest.raises(FileNotFoundError, match="is not built in"):
        sign_datasets.batches(NAME, data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="split 'nope'"):
        sign_datasets.batches(NAME, "nope", data_dir=DATA_DIRS["tfrecord"])


def test_grain_reads_the_array_record_source(expected):
    """The README's Grain recipe (one worker process: the source pickles)."""
    import grain.python as grain
    from absl import flags

    import sign_datasets

    # Grain 0.2.18 reads an absl flag that only absl.app parses once JAX is
    # installed (google/grain#1355, fixed after that release).
    flags.FLAGS.mark_as_parsed()

    source = sign_datasets.ArrayRecordSource(NAME, "test", data_dir=DATA_DIRS["array_record"])
    loader = grain.DataLoader(
        data_source=source,
        sampler=grain.IndexSampler(num_records=len(source), shuffle=True, seed=0, num_epochs=1,
                                   shard_options=grain.NoSharding()),
        operations=[grain.Batch(batch_size=128)],
        worker_count=1)
    got = examples(loader)
    assert Counter(got) == Counter(expected["test"]) and got != expected["test"]
    assert "tensorflow" not in sys.modules
