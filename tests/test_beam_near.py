"""The near-pair search on Beam (generate/beam_near.py), grouped by hash
bands, against the one-process index (core/near_index.py): the same pairs
with the same distances, and each test image's same nearest train image."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("apache_beam")

import apache_beam as beam  # noqa: E402

from sign_datasets.core import near_index  # noqa: E402
from sign_datasets.generate import beam_near  # noqa: E402


def hashes(seed: int, count: int) -> np.ndarray:
    """Random (count, 5) hashes, a fifth of them a few bits from another, and
    some above 2**63 (which Beam's int coder cannot hold)."""
    rng = np.random.default_rng(seed)
    found = rng.integers(0, 2**63, (count, 5), dtype=np.uint64)
    found[::3] |= np.uint64(1) << np.uint64(63)
    for row in range(0, count, 5):
        copy = int(found[rng.integers(0, count), 0])
        for bit in rng.choice(64, rng.integers(0, 6), replace=False):
            copy ^= 1 << int(bit)
        found[row, rng.integers(0, 5)] = copy
    return found


def rows_of(found: np.ndarray, first: int) -> list:
    """Facts rows as the pipeline makes them: position, where, label, facts."""
    return [[first + 7 * k, f"x:{k}", 0, [[int(v) for v in row]], "0"] for k, row in enumerate(found)]


@pytest.mark.parametrize("distance", [2, 4, 6])
def test_band_grouped_search_equals_the_index(tmp_path, distance):
    train, test = hashes(distance, 400), hashes(distance + 10, 150)
    test[:40, 0] = train[:40, 0] ^ np.uint64(1)  # near copies of train
    summary = str(tmp_path / "test.json")
    with beam.Pipeline() as pipeline:
        train_rows = pipeline | "Train" >> beam.Create(rows_of(train, 0))
        test_rows = pipeline | "Test" >> beam.Create(rows_of(test, 0))
        beam_near.search(test_rows, distance, summary, train_rows)
    i, j, bits = near_index.pairs_within(test, distance)
    expected = sorted([7 * a, 7 * b, d] for a, b, d in zip(i.tolist(), j.tolist(), bits.tolist()))
    assert json.loads((tmp_path / "test.pairs.json").read_text()) == expected
    nearest, apart = near_index.Nearest(train[:, 0], distance).find(test)
    expected = sorted([7 * k, int(apart[k]), 7 * int(nearest[k])]
                      for k in range(len(test)) if nearest[k] >= 0)
    assert len(expected) >= 40
    assert json.loads((tmp_path / "test.nearest.json").read_text()) == expected
