"""Near copies in the replica's sign images: none by chance, a known set on
purpose, so that the quality report (core/quality.py) can be tested with
exact counts and its threshold measured for precision and recall.

`near_free` draws sign samples and draws again any sample that is within
REJECT_DISTANCE of another, as a builder will see it (`seen`: identity for CSV
pixels, a JPEG round trip for JPEG files). `plant` then replaces chosen
images with near copies of others (shifted by a pixel, brighter, recompressed
as JPEG): within train, and test images copied from train (near leakage),
a few of them under another label. A plant is kept only if its copy has no
near image but its source, so the planted pairs are the only near pairs.
"""

from __future__ import annotations

import io
from typing import Callable, NamedTuple

import numpy as np
from PIL import Image

from sign_datasets.core import near, near_index
from sign_datasets.core.images import decode_image
from sign_datasets.replica import synthetic

# The report's default distance, on what a builder decodes (`seen` uses the
# builders' decoder). Wider would not converge: at 6 bits a quarter of the
# scale-1 samples had a chance near copy (at 4, one in 30).
REJECT_DISTANCE = near.DEFAULT_DISTANCE
# Redrawing rounds at most: each redraws the later image of every near pair;
# at scale 1 a few suffice, at 4x the rows the last ones may stay (counted).
MAX_ROUNDS = 30
KINDS = ("shifted", "brighter", "recompressed")
_RECOMPRESS_QUALITY = 50
_BRIGHTER = 1.1

Seen = Callable[[np.ndarray], np.ndarray]


def as_pixels(images: np.ndarray) -> np.ndarray:
    return images


def jpeg_round_trip(quality: int) -> Seen:
    """What a builder decodes from these images written as JPEG of `quality`."""
    def seen(images: np.ndarray) -> np.ndarray:
        return np.stack([decode_image(synthetic.jpeg_bytes(image, quality), "L")[..., 0]
                         for image in images]) if len(images) else images
    return seen


def hashes_of(images: np.ndarray) -> np.ndarray:
    """(n, 5) uint64: each image's perceptual hash and its shifted probes."""
    if not len(images):
        return np.zeros((0, 1 + len(near.SHIFTS)), dtype=np.uint64)
    return np.array([facts.hashes for facts in near.facts_of_batch(list(images))], dtype=np.uint64)


def near_free(classes: np.ndarray, rng: np.random.Generator, seen: Seen) -> tuple[np.ndarray, int]:
    """uint8 (n, 28, 28) sign samples of `classes`, no two within
    REJECT_DISTANCE once seen (the later of each near pair is drawn again,
    MAX_ROUNDS at most), and the near pairs left (0 but at many times the
    real row counts)."""
    classes = np.asarray(classes, dtype=np.int64)
    images = synthetic.sign_images(classes, rng)
    hashes = hashes_of(seen(images))
    for _ in range(MAX_ROUNDS):
        _, later, _ = near_index.pairs_within(hashes, REJECT_DISTANCE)
        redo = np.unique(later)
        if not len(redo):
            return images, 0
        images[redo] = synthetic.sign_images(classes[redo], rng)
        hashes[redo] = hashes_of(seen(images[redo]))
    return images, len(near_index.pairs_within(hashes, REJECT_DISTANCE)[0])


def near_copy(image: np.ndarray, kind: str) -> np.ndarray:
    """A near copy of a uint8 (28, 28) image."""
    if kind == "shifted":
        return near.shifted(image, 0, 1).copy()
    if kind == "brighter":
        return np.clip(np.rint(image.astype(np.float32) * _BRIGHTER), 0, 255).astype(np.uint8)
    if kind == "recompressed":
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=_RECOMPRESS_QUALITY)
        return np.asarray(Image.open(buffer).convert("L"))
    raise ValueError(kind)


class Plant(NamedTuple):
    """Image `index` of `split` became a `kind` copy of train image `source`."""

    split: str
    index: int
    source: int
    kind: str
    same_label: bool

    def to_dict(self) -> dict:
        return self._asdict()


def plant_counts(train: int, test: int) -> tuple[int, int]:
    """(copies within train, test copies of train images): at least a few
    of each kind, and about 1% of test and 0.5% of train at scale 1, enough
    to measure the threshold's recall."""
    return max(2 * len(KINDS), train // 200), max(3 * len(KINDS), test // 100)


def plant(images: dict[str, np.ndarray], labels: dict[str, np.ndarray], rng: np.random.Generator,
          seen: Seen, protected: set[int] = frozenset(), different_labels: int = 2) -> list[Plant]:
    """Replaces images of "train" and "test" (in place) with near copies of
    train images and returns the plants, in split and index order. Labels
    stay: a copy's source has its target's label, except for the last
    `different_labels` test copies, whose source has another (possible label
    noise, which the report lists apart). `protected` train rows are never
    touched or copied."""
    train, test = images["train"], images["test"]
    within, leaks = plant_counts(len(train), len(test))
    order = [row for row in rng.permutation(len(train)).tolist() if row not in protected]
    if len(order) < 2 * within + leaks:
        raise ValueError(f"too few train images ({len(train)}) to plant {within + leaks} near copies")
    targets = {"train": order[:within],
               "test": rng.choice(len(test), size=leaks, replace=False).tolist()}
    used = set(order[:within])
    stored = {split: hashes_of(seen(images[split])) for split in ("train", "test")}
    plants = []
    for split in ("train", "test"):
        for number, index in enumerate(targets[split]):
            kind = KINDS[number % len(KINDS)]
            same = split == "train" or number < leaks - different_labels
            label = labels[split][index]
            candidates = (row for row in order if row not in used
                          and (labels["train"][row] == label) == same)
            found = _plant_one(images, stored, seen, split, index, kind, candidates)
            used.add(found)
            plants.append(Plant(split, int(index), int(found), kind, same))
    return sorted(plants, key=lambda p: (p.split != "train", p.index))


def _plant_one(images, stored, seen, split, index, kind, candidates) -> int:
    """Copies the first candidate whose copy is near no image but itself;
    returns that source."""
    for source in candidates:
        copy = near_copy(images["train"][source], kind)
        probes = hashes_of(seen(copy[None]))[0]
        if _alone(probes, stored, split, index, source):
            images[split][index] = copy
            stored[split][index] = probes
            return source
    raise ValueError(f"no train image left to copy into {split} image {index}")


def _alone(probes: np.ndarray, stored: dict, split: str, index: int, source: int) -> bool:
    """Whether an image with these probes, put at (split, index), is within
    REJECT_DISTANCE of no image of either split but train image `source`."""
    for name, hashes in stored.items():
        there = np.minimum(near_index.popcount(hashes[:, :1] ^ probes[None]).min(axis=1),
                           near_index.popcount(hashes ^ probes[0]).min(axis=1))
        close = set(np.flatnonzero(there <= REJECT_DISTANCE).tolist())
        close.discard(index if name == split else -1)
        if close - ({source} if name == "train" else set()):
            return False
    return True
