"""The quality report of a build: near copies within each split, test images
with a near copy in train, images that look wrong, and train's channel
statistics. Stored in info.metadata["quality"].

The report is a pure function of each split's kept images in position order
(position, where, label, ImageFacts) and of the pairs the index finds, so a
runner that meets records in any order (Beam) gives the same bytes once it
sorts them by position (see DESIGN.md, "Near copies").
"""

from __future__ import annotations

import bisect
import dataclasses
import math

import numpy as np

from sign_datasets.core import near, near_index

# Listed per kind: enough to look at, bounded so the metadata stays small.
MAX_LISTED = 10
NEAR_LEAK_REASON = "near_leaked_from_train"


@dataclasses.dataclass
class SplitImages:
    """The kept images of one split, in the order a one-process read meets them."""

    positions: list = dataclasses.field(default_factory=list)
    wheres: list = dataclasses.field(default_factory=list)
    labels: list = dataclasses.field(default_factory=list)
    hashes: list = dataclasses.field(default_factory=list)
    # Each example's place in TFDS's stored order (its key's salted hash).
    orders: list = dataclasses.field(default_factory=list)
    flagged: dict = dataclasses.field(default_factory=dict)
    flag_counts: dict = dataclasses.field(default_factory=dict)
    sums: list | None = None
    squares: list | None = None
    pixels: int = 0

    def add(self, position: int, where: str, label: int, facts: near.ImageFacts,
            order: int = 0) -> None:
        self.positions.append(position)
        self.wheres.append(where)
        self.labels.append(int(label))
        self.hashes.append(facts.hashes)
        self.orders.append(order)
        for flag in facts.flags():
            self.flag_counts[flag] = self.flag_counts.get(flag, 0) + 1
            listed = self.flagged.setdefault(flag, [])
            if len(listed) < MAX_LISTED:
                listed.append(where)
        if self.sums is None:
            self.sums, self.squares = [0] * len(facts.sums), [0] * len(facts.sums)
        self.sums = [a + b for a, b in zip(self.sums, facts.sums)]
        self.squares = [a + b for a, b in zip(self.squares, facts.squares)]
        self.pixels += facts.pixels

    def hash_matrix(self) -> np.ndarray:
        if not self.hashes:
            return np.zeros((0, 1 + len(near.SHIFTS)), dtype=np.uint64)
        return np.array(self.hashes, dtype=np.uint64)

    def stored_indices(self, wheres) -> dict[str, int]:
        """{where: index of its example in the stored split} of these images:
        TFDS writes a split's examples sorted by their keys' hashes."""
        needed = set(wheres)
        if not needed:
            return {}
        ranked = sorted(self.orders)
        return {where: bisect.bisect_left(ranked, order)
                for where, order in zip(self.wheres, self.orders) if where in needed}

    def channels(self) -> dict:
        """Per-channel mean and standard deviation over every pixel (0..255)."""
        if not self.pixels:
            return {"mean": [], "std": []}
        means = [s / self.pixels for s in self.sums]
        stds = [math.sqrt(max(q / self.pixels - m * m, 0.0)) for q, m in zip(self.squares, means)]
        return {"mean": [round(m, 4) for m in means], "std": [round(s, 4) for s in stds]}


def _groups(groups: near_index.Components) -> tuple[int, int, list[list[int]]]:
    """(groups, images in them, the first groups listed) of the joined
    pairs: groups by least member, members in order."""
    nodes = np.flatnonzero(groups.paired)
    roots = groups.parent[nodes]
    firsts = np.unique(roots)
    listed = [nodes[roots == first][:MAX_LISTED].tolist() for first in firsts[:MAX_LISTED]]
    return len(firsts), len(nodes), listed


class _FirstPairs:
    """The first MAX_LISTED pairs in reading order (by the later image, then
    the earlier) of pairs that come in pieces in any order."""

    def __init__(self, count: int):
        self.count = count
        self.keys = np.empty(0, dtype=np.int64)
        self.bits = np.empty(0, dtype=np.int64)

    def add(self, i: np.ndarray, j: np.ndarray, bits: np.ndarray) -> None:
        keys = np.concatenate([self.keys, j * self.count + i])
        bits = np.concatenate([self.bits, bits])
        order = np.argsort(keys, kind="stable")[:MAX_LISTED]
        self.keys, self.bits = keys[order], bits[order]

    def listed(self, images: SplitImages) -> list:
        return [[images.wheres[int(key % self.count)], images.wheres[int(key // self.count)],
                 int(bits)] for key, bits in zip(self.keys, self.bits)]


def split_report(images: SplitImages, distance: int, pieces=None) -> dict:
    """Near copies within the split and its flagged images. Pairs are
    counted and grouped as the index hands them on, never all held;
    `pieces` are pairs found elsewhere (a Beam search), in the same form."""
    count = len(images.wheres)
    labels = np.array(images.labels, dtype=np.int64)
    groups = near_index.Components(count)
    same, different = _FirstPairs(count), _FirstPairs(count)
    pairs = differing = 0
    if pieces is None:
        pieces = near_index.pair_pieces(images.hash_matrix(), distance)
    for i, j, bits in pieces:
        groups.join(i, j)
        differ = labels[i] != labels[j]
        pairs += len(i)
        differing += int(differ.sum())
        same.add(i[~differ], j[~differ], bits[~differ])
        different.add(i[differ], j[differ], bits[differ])
    found, grouped, listed = _groups(groups)
    first_groups = [[images.wheres[x] for x in group] for group in listed]
    first_pairs, first_different = same.listed(images), different.listed(images)
    shown = [where for group in first_groups for where in group]
    shown += [where for pair in first_pairs + first_different for where in pair[:2]]
    return {
        "images": count,
        "near_pairs": pairs,
        "near_groups": found,
        "in_near_groups": grouped,
        "first_groups": first_groups,
        "first_pairs": first_pairs,
        "different_labels": differing,
        "first_different_labels": first_different,
        "stored_index": images.stored_indices(shown),
        "flags": dict(sorted(images.flag_counts.items())),
        "flag_examples": {flag: list(where) for flag, where in sorted(images.flagged.items())},
    }


class TrainIndex:
    """Train's kept images, searched for each test image's nearest near copy."""

    def __init__(self, train: SplitImages, distance: int):
        self.train = train
        self.distance = distance
        self.index = near_index.Nearest(train.hash_matrix()[:, 0], distance)

    def nearest(self, probes: np.ndarray) -> list[tuple[int, int] | None]:
        """For each row of probes, (train index, bits) of its nearest train
        image (the earliest of equally near ones), or None."""
        found, bits = self.index.find(probes)
        return [(index, apart) if index >= 0 else None
                for index, apart in zip(found.tolist(), bits.tolist())]


@dataclasses.dataclass
class LeakTally:
    """Test images with a near copy in train, as the test split is read."""

    count: int = 0
    different_labels: int = 0
    first_pairs: list = dataclasses.field(default_factory=list)
    first_different_labels: list = dataclasses.field(default_factory=list)

    def add(self, where: str, label: int, train: SplitImages, index: int, bits: int) -> None:
        self.count += 1
        pair = [where, train.wheres[index], int(bits)]
        if label != train.labels[index]:
            self.different_labels += 1
            if len(self.first_different_labels) < MAX_LISTED:
                self.first_different_labels.append(pair)
        elif len(self.first_pairs) < MAX_LISTED:
            self.first_pairs.append(pair)

    def stored_index(self, test: SplitImages, train: SplitImages) -> dict:
        """Where the listed pairs' examples are stored: test's only if kept."""
        pairs = self.first_pairs + self.first_different_labels
        return {"test": test.stored_indices(pair[0] for pair in pairs),
                "train": train.stored_indices(pair[1] for pair in pairs)}

    def to_dict(self, dropped: bool) -> dict:
        return {"count": self.count, "dropped_from_test": dropped,
                "first_pairs": self.first_pairs, "different_labels": self.different_labels,
                "first_different_labels": self.first_different_labels}


def build_report(splits: dict[str, dict], distance: int, leak: dict | None,
                 train_channels: dict | None) -> dict:
    report = {"hash": near.HASH_NAME, "distance": distance, "splits": splits}
    if leak is not None:
        report[NEAR_LEAK_REASON] = leak
    if train_channels is not None:
        report["train_channels"] = train_channels
    return report
