"""Near copies (core.near, core.quality) and the local runner's quality
report: the index finds exactly the pairs all-pairs comparison finds, planted
copies are found with exact counts, and the drop option drops them counted."""

from __future__ import annotations

import dataclasses
import os
import signal

import cv2
import numpy as np
import pytest

from sign_datasets.core import near, near_index, quality
from sign_datasets.core.cleaning import SplitReport
from sign_datasets.core.plans import NearShare, SplitPlan
from sign_datasets.generate import local


def brute_pairs(hashes: np.ndarray, distance: int) -> set:
    stored = hashes[:, 0]
    bits = np.bitwise_count(hashes[:, :, None] ^ stored[None, None, :]).min(axis=1)
    bits = np.minimum(bits, bits.T)
    i, j = np.nonzero((bits <= distance) & np.triu(np.ones_like(bits, dtype=bool), 1))
    return {(a, b, int(bits[a, b])) for a, b in zip(i.tolist(), j.tolist())}


@pytest.mark.parametrize("distance", [0, 1, 2, 4, 6, 8])
def test_index_finds_what_all_pairs_finds(distance):
    rng = np.random.default_rng(distance)
    hashes = rng.integers(0, 2**63, (1500, 5), dtype=np.uint64)
    for row in range(0, 300):  # planted: a few bits flipped, some in the probes
        flipped = int(hashes[row, 0])
        for bit in rng.choice(64, rng.integers(0, 10), replace=False):
            flipped ^= 1 << int(bit)
        hashes[1499 - row, rng.integers(0, 5)] = flipped
    i, j, bits = near_index.pairs_within(hashes, distance)
    assert set(zip(i.tolist(), j.tolist(), bits.tolist())) == brute_pairs(hashes, distance)


def sign_like(seed: int) -> np.ndarray:
    """A 28x28 grey picture with shapes (a hand stands in as blobs)."""
    rng = np.random.default_rng(seed)
    image = np.full((28, 28), rng.integers(90, 160), dtype=np.uint8)
    for _ in range(4):
        centre = tuple(int(v) for v in rng.integers(4, 24, 2))
        cv2.circle(image, centre, int(rng.integers(3, 8)), int(rng.integers(0, 255)), -1)
    return cv2.GaussianBlur(image, (3, 3), 0)[..., None]


def near_copies(image: np.ndarray) -> list[np.ndarray]:
    shifted = near.shifted(image[..., 0], 0, 1)[..., None]
    brighter = np.clip(image.astype(np.float32) * 1.1, 0, 255).astype(np.uint8)
    ok, jpeg = cv2.imencode(".jpg", image[..., 0], [cv2.IMWRITE_JPEG_QUALITY, 75])
    return [shifted, brighter, cv2.imdecode(jpeg, 0)[..., None]]


def test_planted_copies_are_near_and_others_are_not():
    """Recall of the default distance on 40 pictures' shifted, brightened and
    recompressed copies: exact counts (one shifted copy is 6 bits away)."""
    originals = [sign_like(seed) for seed in range(40)]
    facts = near.facts_of_batch(originals)
    found = [0, 0, 0]
    for image, own in zip(originals, facts):
        index = quality.TrainIndex(_images([own]), near.DEFAULT_DISTANCE)
        for kind, copy in enumerate(near_copies(image)):
            probes = np.array([near.facts_of(copy).hashes], dtype=np.uint64)
            found[kind] += index.nearest(probes)[0] is not None
    assert found == [39, 40, 40]
    hashes = np.array([f.hashes for f in facts], dtype=np.uint64)
    assert len(near_index.pairs_within(hashes, near.DEFAULT_DISTANCE)[0]) == 0


def _images(facts: list, labels: list | None = None) -> quality.SplitImages:
    images = quality.SplitImages()
    for n, one in enumerate(facts):
        images.add(n, f"train:{n}", (labels or [0] * len(facts))[n], one)
    return images


def test_flags_and_channels():
    blank = np.zeros((28, 28, 1), np.uint8)
    bright = np.full((28, 28, 1), 250, np.uint8)
    two_levels = np.zeros((28, 28, 1), np.uint8)
    two_levels[:, 14:] = 120
    assert near.facts_of(blank).flags() == ["blank_or_constant", "very_dark", "low_information"]
    assert near.facts_of(bright).flags() == ["blank_or_constant", "very_bright", "low_information"]
    assert near.facts_of(two_levels).flags() == ["low_information"]
    assert near.facts_of(sign_like(1)).flags() == []
    images = _images(near.facts_of_batch([blank, bright]))
    assert images.channels() == {"mean": [125.0], "std": [125.0]}


@dataclasses.dataclass
class Record:
    where: str
    label: int
    facts: near.ImageFacts


def plan_of(split: str, pictures: list, labels: list) -> SplitPlan:
    facts = near.facts_of_batch(pictures)
    records = [(n, Record(f"{split}:{n}", label, one))
               for n, (label, one) in enumerate(zip(labels, facts))]
    return SplitPlan(dataset="toy", split=split, work=[records], read=lambda item: item,
                     to_example=lambda r: (r.where, {"label": r.label}),
                     facts=lambda r: (r.facts, r.label, r.where), in_processes=False)


def build(drop: bool) -> tuple[NearShare, dict]:
    """Train: 20 pictures and a shifted copy of picture 0 (a pair within
    train). Test: copies of train pictures 1..6 (6 near leaks, picture 6's
    copy labelled differently), 5 new pictures, one blank picture."""
    train = [sign_like(seed) for seed in range(20)] + [near_copies(sign_like(0))[0]]
    test = ([near_copies(sign_like(seed))[seed % 3] for seed in range(1, 7)]
            + [sign_like(seed) for seed in range(100, 105)] + [np.zeros((28, 28, 1), np.uint8)])
    share = NearShare(distance=near.DEFAULT_DISTANCE, drop_from_test=drop)
    reports = {}
    for split, pictures, labels in (("train", train, list(range(20)) + [0]),
                                    ("test", test, [1, 2, 3, 4, 5, 99] + [0] * 6)):
        outcome = local.Outcome(SplitReport())
        kept = list(local.examples(plan_of(split, pictures, labels), outcome, near=share))
        reports[split] = (outcome.report.to_dict(), len(kept))
    local.finished_reports(share)  # each split's pairs are searched in the background
    return share, reports


def test_report_counts_exactly_and_drop_option_drops():
    share, reports = build(drop=False)
    train = share.splits["train"]
    assert (train["near_pairs"], train["near_groups"], train["in_near_groups"]) == (1, 1, 2)
    assert train["first_pairs"][0][:2] == ["train:0", "train:20"]
    leak = share.leak
    assert (leak["count"], leak["different_labels"], leak["dropped_from_test"]) == (6, 1, False)
    assert [pair[:2] for pair in leak["first_pairs"]] == [[f"test:{n}", f"train:{n + 1}"]
                                                          for n in range(5)]
    assert leak["first_different_labels"][0][:2] == ["test:5", "train:6"]
    assert share.splits["test"]["flags"] == {"blank_or_constant": 1, "low_information": 1,
                                             "very_dark": 1}
    assert reports["test"][1] == 12

    # Where the listed examples are stored (TFDS orders them by key hash).
    assert set(leak["stored_index"]["test"]) == {f"test:{n}" for n in range(6)}
    assert sorted(leak["stored_index"]["test"].values()) == sorted(
        set(leak["stored_index"]["test"].values()))
    assert all(0 <= index < 12 for index in leak["stored_index"]["test"].values())
    assert all(0 <= index < 21 for index in leak["stored_index"]["train"].values())
    assert set(train["stored_index"]) == {"train:0", "train:20"}

    dropped, reports = build(drop=True)
    assert dropped.leak["stored_index"]["test"] == {}  # dropped: not stored
    assert dropped.leak == {**leak, "dropped_from_test": True,
                            "stored_index": {"test": {}, "train": leak["stored_index"]["train"]}}
    report, kept = reports["test"]
    assert (report["records"], kept, report["drops"]) == (12, 6, {"near_leaked_from_train": 6})
    assert report["examples"]["near_leaked_from_train"][0] == "test:0"


def test_pairs_in_small_pieces_are_each_found_once(monkeypatch):
    """With pieces of a few hundred compared hashes and pairs, the pieces
    together hold exactly the pairs all-pairs comparison finds, each once
    (the bound that keeps memory flat on data made of near copies)."""
    rng = np.random.default_rng(7)
    base = rng.integers(0, 2**63, (30, 5), dtype=np.uint64)
    hashes = np.repeat(base, 40, axis=0)  # 30 groups of 40 alike images
    for row in range(len(hashes)):
        for bit in rng.choice(64, 2, replace=False):
            hashes[row, rng.integers(0, 5)] ^= np.uint64(1) << np.uint64(bit)
    monkeypatch.setattr(near_index, "CANDIDATES", 300)
    monkeypatch.setattr(near_index, "SPREAD", 200)
    monkeypatch.setattr(near_index, "PIECE", 500)
    pieces = list(near_index.pair_pieces(hashes, 4))
    assert len(pieces) > 10
    found = [(a, b, d) for i, j, bits in pieces for a, b, d in zip(i.tolist(), j.tolist(), bits.tolist())]
    assert len(found) == len(set(found))
    assert set(found) == brute_pairs(hashes, 4)


def test_the_background_search_gives_the_report_one_process_gives(monkeypatch):
    """With several workers each split's pairs are searched by a forked
    process while the build goes on; with one, in the build process."""
    background, _ = build(drop=False)
    monkeypatch.setenv("SIGN_DATASETS_WORKERS", "1")
    inline, _ = build(drop=False)
    assert not any(isinstance(report, local._PendingReport) for report in inline.splits.values())
    assert background.splits == inline.splits and background.leak == inline.leak


def test_a_killed_search_process_is_searched_again_here():
    # Enough images that the search is still running when its process is killed.
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 2**63, (40_000, 5), dtype=np.uint64).tolist()
    hashes[-1][0] = hashes[0][0] ^ 0b101  # one near pair: 2 bits apart
    images = quality.SplitImages()
    for n, row in enumerate(hashes):
        images.add(n, f"train:{n}", 0, near.ImageFacts(tuple(row), 0, 255, 128.0, 7.0,
                                                       (100,), (10_000,), 784))
    pending = local._PendingReport(images, near.DEFAULT_DISTANCE)
    os.kill(pending.process.pid, signal.SIGKILL)
    report = pending.result()
    assert pending.process.exitcode == -signal.SIGKILL
    assert report == quality.split_report(images, near.DEFAULT_DISTANCE)
    assert report["near_pairs"] == 1 and report["first_pairs"][0][:2] == ["train:0", "train:39999"]


def test_an_abandoned_search_process_is_ended():
    images = quality.SplitImages()
    for n, facts in enumerate(near.facts_of_batch([sign_like(seed) for seed in range(4)])):
        images.add(n, f"train:{n}", 0, facts)
    pending = local._PendingReport(images, near.DEFAULT_DISTANCE)
    pending.close()
    assert not pending.process.is_alive() and pending.process.exitcode is not None
