"""The quality report of a build: near copies within each split, test images
with a near copy in train, images that look wrong, and train's channel
statistics. Stored in info.metadata["quality"].

The report is a pure function of each split's kept images in position order
(position, where, label, ImageFacts) and of the pairs the index finds, so a
runner that meets records in any order (Beam) gives the same bytes once it
sorts them by position (see DESIGN.md, "Near copies").
"""

from __future__ import annotations

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
    flagged: dict = dataclasses.field(default_factory=dict)
    flag_counts: dict = dataclasses.field(default_factory=dict)
    sums: list | None = None
    squares: list | None = None
    pixels: int = 0

    def add(self, position: int, where: str, label: int, facts: near.ImageFacts) -> None:
        self.positions.append(position)
        self.wheres.append(where)
        self.labels.append(int(label))
        self.hashes.append(facts.hashes)
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

    def channels(self) -> dict:
        """Per-channel mean and standard deviation over every pixel (0..255)."""
        if not self.pixels:
            return {"mean": [], "std": []}
        means = [s / self.pixels for s in self.sums]
        stds = [math.sqrt(max(q / self.pixels - m * m, 0.0)) for q, m in zip(self.squares, means)]
        return {"mean": [round(m, 4) for m in means], "std": [round(s, 4) for s in stds]}


def _pair(images: SplitImages, i: int, j: int, bits: int, other: SplitImages | None = None) -> list:
    other = other or images
    return [images.wheres[i], other.wheres[j], int(bits)]


def _groups(count: int, i: np.ndarray, j: np.ndarray) -> tuple[int, int, list[list[int]]]:
    """(groups, images in them, the first groups listed) of the connected
    groups of the pairs: groups by least member, members in order."""
    paired = np.zeros(count, dtype=bool)
    paired[i] = paired[j] = True
    nodes = np.flatnonzero(paired)
    roots = near_index.components(count, i, j)[nodes]
    firsts = np.unique(roots)
    listed = [nodes[roots == first][:MAX_LISTED].tolist() for first in firsts[:MAX_LISTED]]
    return len(firsts), len(nodes), listed


def split_report(images: SplitImages, distance: int) -> dict:
    """Near copies within the split and its flagged images."""
    # Pairs come in reading order: by the later image, then the earlier.
    i, j, bits = near_index.pairs_within(images.hash_matrix(), distance)
    labels = np.array(images.labels, dtype=np.int64)
    differ = labels[i] != labels[j] if len(i) else np.zeros(0, dtype=bool)
    groups, grouped, listed = _groups(len(images.wheres), i, j)
    return {
        "images": len(images.wheres),
        "near_pairs": int(len(i)),
        "near_groups": groups,
        "in_near_groups": grouped,
        "first_groups": [[images.wheres[x] for x in group] for group in listed],
        "first_pairs": [_pair(images, a, b, d) for a, b, d
                        in zip(i[~differ][:MAX_LISTED], j[~differ][:MAX_LISTED],
                               bits[~differ][:MAX_LISTED])],
        "different_labels": int(differ.sum()),
        "first_different_labels": [_pair(images, a, b, d) for a, b, d
                                   in zip(i[differ][:MAX_LISTED], j[differ][:MAX_LISTED],
                                          bits[differ][:MAX_LISTED])],
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
