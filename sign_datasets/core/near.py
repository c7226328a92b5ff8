"""Near copies and image quality: the perceptual hash, the index that finds
near pairs without comparing all pairs, and the facts a report needs.

Every kept image gets `ImageFacts` where it is decoded (a worker): a 64-bit
DCT hash of its grey levels, its range, mean and entropy, and integer sums
of its channels. The whole-split steps (`generate.local`, and Beam grouping
by hash bands) turn them into a report with `quality.py`. Pairs are found by
multi-index hashing: the hash is cut into `BANDS` bands; two hashes at most
`r` bits apart agree within floor(r / BANDS) bits on some band, so only
records whose band values are that close are ever compared.
"""

from __future__ import annotations

import functools
from typing import Iterator, NamedTuple

import cv2
import numpy as np

HASH_NAME = "dct64"
HASH_BITS = 64
# Chosen on planted near copies and real Sign Language MNIST rows
# (docs/DESIGN.md, "Near copies"): at 4 bits no pair of real rows with
# different letters, every shifted and recompressed copy, 97% of brightened ones.
DEFAULT_DISTANCE = 4
MAX_DISTANCE = 10
# Three bands of 22, 21 and 21 bits: within distance 4 some band differs in
# at most 1 bit, so a query probes 1 + 22 band values per band.
BANDS = 3

# Quality flags: reported, never dropped. Levels of 0..255 grey.
CONSTANT_RANGE = 8          # max - min at most this: blank or constant
DARK_MEAN = 20.0
BRIGHT_MEAN = 235.0
# Bits of a 256-level histogram: below this an image has a handful of levels.
LOW_ENTROPY_BITS = 2.0
FLAGS = ("blank_or_constant", "very_dark", "very_bright", "low_information")


class ImageFacts(NamedTuple):
    """What the quality report needs of one image (small: it travels back
    from the worker with the record)."""

    # The image's hash, then those of its copies shifted by a pixel (right,
    # left, down, up; edges repeated): a shifted near copy matches one of
    # them, while its own hash is 8 to 12 bits away on 28x28 images.
    hashes: tuple[int, ...]
    low: int
    high: int
    mean: float
    entropy: float
    sums: tuple[int, ...]      # per channel, over its pixels
    squares: tuple[int, ...]   # per channel, sums of squares
    pixels: int                # pixels per channel

    def flags(self) -> list[str]:
        found = []
        if self.high - self.low <= CONSTANT_RANGE:
            found.append("blank_or_constant")
        if self.mean < DARK_MEAN:
            found.append("very_dark")
        if self.mean > BRIGHT_MEAN:
            found.append("very_bright")
        if self.entropy < LOW_ENTROPY_BITS:
            found.append("low_information")
        return found


@functools.lru_cache(maxsize=None)
def _dct_rows(size: int = 32, keep: int = 8) -> np.ndarray:
    """The first `keep` rows of the orthonormal DCT-II matrix of `size`."""
    n = np.arange(size)
    rows = np.cos(np.pi * (2 * n[None, :] + 1) * np.arange(keep)[:, None] / (2 * size))
    rows[0] *= np.sqrt(1 / size)
    rows[1:] *= np.sqrt(2 / size)
    return rows


def grey(pixels: np.ndarray) -> np.ndarray:
    """(H, W) grey levels of an (H, W, C) uint8 image (ITU-R 601 luma, as
    Pillow's convert("L"))."""
    if pixels.ndim == 2:
        return pixels
    if pixels.shape[-1] == 1:
        return pixels[..., 0]
    return cv2.cvtColor(np.ascontiguousarray(pixels[..., :3]), cv2.COLOR_RGB2GRAY)


def dct_hashes(greys: np.ndarray) -> np.ndarray:
    """uint64 hashes of (N, 32, 32) float grey images: the sign of each of the
    8x8 lowest DCT frequencies against their median (pHash's definition)."""
    rows = _dct_rows()
    low = (rows @ greys @ rows.T).reshape(len(greys), 64)
    bits = low > np.median(low, axis=1, keepdims=True)
    return np.packbits(bits, axis=1).view(">u8").ravel().astype(np.uint64)


SHIFTS = ((0, 1), (0, -1), (1, 0), (-1, 0))


def shifted(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """`image` moved by (dy, dx) pixels, the uncovered edge repeated."""
    height, width = image.shape
    top, left = max(-dy, 0), max(-dx, 0)
    padded = cv2.copyMakeBorder(image, max(dy, 0), max(-dy, 0), max(dx, 0), max(-dx, 0),
                                cv2.BORDER_REPLICATE)
    return padded[top:top + height, left:left + width]


def _small(image: np.ndarray) -> np.ndarray:
    return cv2.resize(image, (32, 32), interpolation=cv2.INTER_AREA)


def _entropy(image: np.ndarray) -> float:
    counts = np.bincount(image.ravel(), minlength=256)
    p = counts[counts > 0] / image.size
    return round(float(-(p * np.log2(p)).sum()), 4)


def facts_of_batch(images: np.ndarray | list[np.ndarray]) -> list[ImageFacts]:
    """ImageFacts of (H, W, C) uint8 images (one array of equal shapes, or a list)."""
    if len(images) == 0:
        return []
    smalls = []
    for image in images:
        levels = grey(image).astype(np.float32)
        smalls.append(_small(levels))
        smalls.extend(_small(shifted(levels, dy, dx)) for dy, dx in SHIFTS)
    hashes = dct_hashes(np.stack(smalls).astype(np.float64)).reshape(len(images), 1 + len(SHIFTS))
    out = []
    for image, values in zip(images, hashes):
        flat = image.reshape(-1, image.shape[-1] if image.ndim == 3 else 1).astype(np.int64)
        sums = flat.sum(axis=0)
        out.append(ImageFacts(
            hashes=tuple(int(v) for v in values), low=int(flat.min()), high=int(flat.max()),
            mean=round(float(sums.sum()) / flat.size, 4),
            entropy=_entropy(grey(image)),
            sums=tuple(int(s) for s in sums),
            squares=tuple(int(s) for s in (flat * flat).sum(axis=0)),
            pixels=int(flat.shape[0])))
    return out


def facts_of(pixels: np.ndarray) -> ImageFacts:
    return facts_of_batch([pixels])[0]


# --- the index: multi-index hashing by bands ---------------------------------

def band_layout(bands: int = BANDS) -> list[tuple[int, int]]:
    """(shift, width) of each band of the 64-bit hash, widest first."""
    widths = [HASH_BITS // bands + (1 if i < HASH_BITS % bands else 0) for i in range(bands)]
    layout, shift = [], HASH_BITS
    for width in widths:
        shift -= width
        layout.append((shift, width))
    return layout


def bands_for(distance: int) -> int:
    """Bands for a distance: one per bit of distance + 1 up to BANDS (exact
    band matches then suffice), BANDS beyond."""
    return min(distance + 1, BANDS)


@functools.lru_cache(maxsize=None)
def flip_masks(width: int, radius: int) -> np.ndarray:
    """Every value of at most `radius` set bits among `width`: the XOR masks
    that reach the band values a query must probe."""
    masks = [0]
    frontier = {0}
    for _ in range(radius):
        frontier = {mask | (1 << bit) for mask in frontier for bit in range(width)
                    if not mask >> bit & 1}
        masks.extend(sorted(frontier))
    return np.array(masks, dtype=np.uint64)


def popcount(values: np.ndarray) -> np.ndarray:
    return np.bitwise_count(values).astype(np.int64)


def _expand(starts: np.ndarray, stops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(query index, sorted index) of every hit of ranges [start, stop)."""
    counts = stops - starts
    total = int(counts.sum())
    if total == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    queries = np.repeat(np.arange(len(starts)), counts)
    offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    return queries, np.repeat(starts, counts) + offsets


# Bands this narrow get a table of bucket starts (32 MB at 22 bits): a probe
# is then a gather, not a binary search.
TABLE_BITS = 24


class _Band(NamedTuple):
    shift: int
    width: int
    order: np.ndarray      # stored indices sorted by band value
    keys: np.ndarray       # their band values, sorted
    starts: np.ndarray | None  # bucket starts by band value (narrow bands)

    def value(self, hashes: np.ndarray) -> np.ndarray:
        return (hashes >> np.uint64(self.shift)) & np.uint64((1 << self.width) - 1)

    def ranges(self, probe: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.starts is not None:
            index = probe.astype(np.int64)
            return self.starts[index], self.starts[index + 1]
        return (np.searchsorted(self.keys, probe, "left"),
                np.searchsorted(self.keys, probe, "right"))


def _bands(stored: np.ndarray, bands: int) -> list[_Band]:
    out = []
    for shift, width in band_layout(bands):
        keys = (stored >> np.uint64(shift)) & np.uint64((1 << width) - 1)
        order = np.argsort(keys, kind="stable")
        starts = None
        if width <= TABLE_BITS:
            counts = np.bincount(keys.astype(np.int64), minlength=1 << width)
            starts = np.concatenate([[0], np.cumsum(counts)])
        out.append(_Band(shift, width, order, keys[order], starts))
    return out


def near_pairs(queries: np.ndarray, stored: np.ndarray, distance: int, same: bool = False,
               chunk: int = 1 << 18) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(query index, stored index, bits apart) of every pair at most
    `distance` apart, each pair once, in chunks of queries (no order). With
    `same` (queries is stored), only pairs with query index < stored index."""
    queries = np.asarray(queries, dtype=np.uint64)
    stored = np.asarray(stored, dtype=np.uint64)
    bands = bands_for(distance)
    radius = distance // bands
    table = _bands(stored, bands)
    for start in range(0, len(queries), chunk):
        part = queries[start:start + chunk]
        found_q, found_s, found_bits = [], [], []
        for band in table:
            mine = band.value(part)
            for mask in flip_masks(band.width, radius):
                q, s = _expand(*band.ranges(mine ^ mask))
                s = band.order[s]
                q += start
                if same:
                    q, s = q[q < s], s[q < s]
                bits = popcount(queries[q] ^ stored[s])
                close = bits <= distance
                found_q.append(q[close])
                found_s.append(s[close])
                found_bits.append(bits[close])
        q, s, bits = (np.concatenate(found) for found in (found_q, found_s, found_bits))
        # A pair close on several bands is found once per band.
        unique = np.unique(q.astype(np.int64) * len(stored) + s, return_index=True)[1]
        yield q[unique], s[unique], bits[unique]


def pairs_within(hashes: np.ndarray, distance: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, bits) with i < j of the images of one split at most `distance`
    apart; `hashes` is (n, 5): each image's hash and its shifted hashes. A
    pair's distance is the least over either image's probes."""
    return pairs_across(hashes, hashes[:, 0], distance, same=True)


def pairs_across(probes: np.ndarray, stored: np.ndarray, distance: int, same: bool = False
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query image, stored image, bits) of each query image (rows of
    `probes`, (n, 5)) with a stored hash at most `distance` from one of its
    probes, each pair once with its least distance. With `same`, the pair
    is (lower, higher) index and never an image with itself."""
    probes = np.asarray(probes, dtype=np.uint64)
    width = probes.shape[1]
    found = [(q // width, s, bits) for q, s, bits in near_pairs(probes.ravel(), stored, distance)]
    if not found:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, empty
    q, s, bits = (np.concatenate(part) for part in zip(*found))
    if same:
        keep = q != s
        q, s, bits = np.minimum(q, s)[keep], np.maximum(q, s)[keep], bits[keep]
    # The least distance of each pair first, then one row per pair.
    order = np.lexsort((bits, s, q))
    q, s, bits = q[order], s[order], bits[order]
    first = np.ones(len(q), dtype=bool)
    first[1:] = (q[1:] != q[:-1]) | (s[1:] != s[:-1])
    return q[first], s[first], bits[first]
