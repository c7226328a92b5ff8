"""Near copies and image quality: the perceptual hash and the facts of an
image that the quality report needs.

Every kept image gets `ImageFacts` where it is decoded (a worker), computed
for a chunk of images at once: a 64-bit DCT hash of its grey levels and of
its copies shifted by a pixel, its range, mean and entropy, and integer sums
of its channels. The whole-split steps (`generate.local`, and Beam grouping
by hash bands) find near pairs with `near_index` and turn them into a report
with `quality.py`.
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


SHIFTS = ((0, 1), (0, -1), (1, 0), (-1, 0))


def shifted(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """`image` moved by (dy, dx) pixels, the uncovered edge repeated."""
    height, width = image.shape
    top, left = max(-dy, 0), max(-dx, 0)
    padded = cv2.copyMakeBorder(image, max(dy, 0), max(-dy, 0), max(dx, 0), max(-dx, 0),
                                cv2.BORDER_REPLICATE)
    return padded[top:top + height, left:left + width]


@functools.lru_cache(maxsize=None)
def _resize_rows(size: int) -> np.ndarray:
    """(32, size): cv2's INTER_AREA resize of one axis as a matrix (resizing
    is linear and separable), so shifted copies resize in one product."""
    eye = np.eye(size, dtype=np.float32)
    return cv2.resize(eye, (size, 32), interpolation=cv2.INTER_AREA).astype(np.float64)


def _shift_rows(size: int, step: int) -> np.ndarray:
    """(size, size): moves an axis by `step` pixels, the edge repeated (as `shifted`)."""
    matrix = np.zeros((size, size))
    matrix[np.arange(size), np.clip(np.arange(size) - step, 0, size - 1)] = 1
    return matrix


@functools.lru_cache(maxsize=None)
def _probe_products(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows (P, 8, H), columns (W, P * 8)) with P = 1 + len(SHIFTS): the
    8x8 low DCT frequencies of each probe of a grey (H, W) image are
    rows[p] @ image @ columns[:, 8p:8p + 8]."""
    dct = _dct_rows()
    steps = ((0, 0),) + SHIFTS
    rows = np.stack([dct @ _resize_rows(height) @ _shift_rows(height, dy) for dy, _ in steps])
    columns = np.concatenate([(dct @ _resize_rows(width) @ _shift_rows(width, dx)).T
                              for _, dx in steps], axis=1)
    return rows, columns


def _greys(stack: np.ndarray) -> np.ndarray:
    """(N, H, W) grey levels of (N, H, W, C) uint8 images (as `grey`)."""
    if stack.shape[-1] == 1:
        return stack[..., 0]
    count, height, width = stack.shape[:3]
    flat = np.ascontiguousarray(stack[..., :3]).reshape(count * height, width, 3)
    return cv2.cvtColor(flat, cv2.COLOR_RGB2GRAY).reshape(count, height, width)


def _probe_hashes(greys: np.ndarray) -> np.ndarray:
    """(N, P) uint64: each image's hash, then those of its shifted copies."""
    rows, columns = _probe_products(*greys.shape[1:])
    probes = len(rows)
    right = (greys.astype(np.float64) @ columns).reshape(len(greys), greys.shape[1], probes, 8)
    # (P, 1, 8, H) @ (P, N, H, 8): one batched product for every probe
    # (faster here than one large product, which BLAS spreads over threads).
    low = rows[:, None] @ right.transpose(2, 0, 1, 3)
    low = low.transpose(1, 0, 2, 3).reshape(len(greys) * probes, 64)
    # The median of 64 values, as np.median takes it; a sort of such short
    # rows is several times faster than np.partition.
    middle = np.sort(low, axis=1)[:, 31:33]
    bits = low > (middle[:, :1] + middle[:, 1:]) / 2
    return np.packbits(bits, axis=1).view(">u8").ravel().astype(np.uint64).reshape(-1, probes)


def _histograms(levels: np.ndarray) -> np.ndarray:
    """(N, C, 256) counts of each level per image and channel of (N, P, C) uint8."""
    count, _, channels = levels.shape
    offsets = 256 * np.arange(count * channels, dtype=np.int64).reshape(count, 1, channels)
    counts = np.bincount((levels + offsets).ravel(), minlength=256 * count * channels)
    return counts.reshape(count, channels, 256)


@functools.lru_cache(maxsize=8)
def _count_log_counts(pixels: int) -> np.ndarray:
    """c * log2(c) for every count c of a level among `pixels`."""
    counts = np.arange(pixels + 1, dtype=np.float64)
    return counts * np.log2(np.maximum(counts, 1))


def _entropies(counts: np.ndarray, pixels: int) -> np.ndarray:
    """Bits of each image's 256-level histogram (N, 256) over `pixels`:
    -sum p log2 p = log2(pixels) - sum c log2 c / pixels."""
    return np.log2(pixels) - _count_log_counts(pixels)[counts].sum(axis=1) / pixels


_LEVELS = np.arange(256, dtype=np.int64)


# Above this many pixels an image is first resized to the hash's 32x32 (one
# cv2 call), and its sums and extremes come from reductions, not histograms
# of every channel: per-image facts of a 124x124 RGB picture went from about
# 0.49 ms to 0.17 ms (docs/BENCHMARKS.md, "Quality checks").
SMALL_PIXELS = 64 * 64


def _facts_of_stack(stack: np.ndarray) -> list[ImageFacts]:
    """ImageFacts of (N, H, W, C) uint8 images of one shape, computed
    together; for small images sums and extremes come from per-channel
    histograms."""
    greys = _greys(stack)
    flat = stack.reshape(len(stack), -1, stack.shape[-1])
    pixels = flat.shape[1]
    if pixels > SMALL_PIXELS:
        return _facts_of_large(stack, greys, flat)
    hashes = _probe_hashes(greys)
    counts = _histograms(flat)
    sums, squares = counts @ _LEVELS, counts @ (_LEVELS * _LEVELS)
    means = sums.sum(axis=1) / (pixels * flat.shape[2])
    present = counts.sum(axis=1) > 0
    lows, highs = present.argmax(axis=1), 255 - present[:, ::-1].argmax(axis=1)
    grey_counts = (counts[:, 0] if stack.shape[-1] == 1
                   else _histograms(greys.reshape(len(stack), -1, 1))[:, 0])
    return _facts_list(hashes, lows, highs, means, _entropies(grey_counts, pixels), sums, squares,
                       pixels=pixels)


def _facts_of_large(stack: np.ndarray, greys: np.ndarray, flat: np.ndarray) -> list[ImageFacts]:
    """ImageFacts of large images: the hash and its shifted probes of the grey
    image resized to 32x32, integer sums by reductions, entropy from the grey
    histogram alone."""
    small = np.stack([cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA) for grey in greys])
    hashes = _probe_hashes(small)
    count, pixels = len(stack), flat.shape[1]
    # Channels first and contiguous: numpy reduces a trailing axis of 3 slowly.
    channels = np.ascontiguousarray(flat.transpose(0, 2, 1))
    sums = channels.sum(axis=2, dtype=np.int64)
    levels = channels.astype(np.float64)  # exact: sums of squares stay below 2**53
    squares = np.rint(np.einsum("ncp,ncp->nc", levels, levels)).astype(np.int64)
    means = sums.sum(axis=1) / (pixels * flat.shape[2])
    lows, highs = flat.min(axis=(1, 2)), flat.max(axis=(1, 2))
    grey_counts = _histograms(greys.reshape(count, -1, 1))[:, 0]
    return _facts_list(hashes, lows, highs, means, _entropies(grey_counts, pixels), sums, squares,
                       pixels=pixels)


def _facts_list(*columns: np.ndarray, pixels: int) -> list[ImageFacts]:
    """One ImageFacts an image from per-image arrays: hashes, lows, highs,
    means, entropies, sums, squares."""
    hashes, lows, highs, means, entropies, sums, squares = (column.tolist() for column in columns)
    return [ImageFacts(hashes=tuple(hashes[k]), low=lows[k], high=highs[k],
                       mean=round(means[k], 4), entropy=round(entropies[k], 4),
                       sums=tuple(sums[k]), squares=tuple(squares[k]), pixels=pixels)
            for k in range(len(hashes))]


def facts_of_batch(images: np.ndarray | list[np.ndarray]) -> list[ImageFacts]:
    """ImageFacts of (H, W, C) or (H, W) uint8 images (one array of equal
    shapes, or a list), computed together per shape."""
    shaped = [image if image.ndim == 3 else image[..., None] for image in images]
    by_shape: dict[tuple, list[int]] = {}
    for position, image in enumerate(shaped):
        by_shape.setdefault(image.shape, []).append(position)
    out: list = [None] * len(shaped)
    for positions in by_shape.values():
        stack = np.stack([shaped[position] for position in positions])
        for position, facts in zip(positions, _facts_of_stack(stack)):
            out[position] = facts
    return out


def facts_of(pixels: np.ndarray) -> ImageFacts:
    return facts_of_batch([pixels])[0]
