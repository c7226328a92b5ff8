"""Finding near pairs of 64-bit hashes without comparing all pairs, and
grouping them: multi-index hashing by bands, vectorized end to end.

The hash is cut into bands; two hashes at most `r` bits apart differ in at
most floor(r / bands) bits on some band (pigeonhole), so only hashes whose
band values are that close are ever compared. Images are searched by
distinct hash value (near copies share values), each value pair is found
once (in the first band that brings it close), then spread over the images
holding the values; `pairs_within` and `Nearest` return what the quality
report needs (core/quality.py, docs/DESIGN.md "Near copies").
"""

from __future__ import annotations

import functools
from typing import Iterator, NamedTuple

import numpy as np

HASH_BITS = 64
# Three bands of 22, 21 and 21 bits: within distance 4 some band differs in
# at most 1 bit, so a query probes 1 + 22 band values per band.
BANDS = 3
# Bands this narrow get a table of bucket starts (32 MB at 22 bits): a probe
# is then a gather, not a binary search.
TABLE_BITS = 24
# Distinct query values searched at once, and hashes compared at most at
# once: together they bound a search's memory whatever the data.
CHUNK = 1 << 16
CANDIDATES = 1 << 22


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


_BYTE_BITS = np.array([bin(value).count("1") for value in range(256)], dtype=np.uint8)


def popcount(values: np.ndarray) -> np.ndarray:
    """Set bits of each uint64, as uint8 (numpy 2's bitwise_count, or a byte table)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(values)
    octets = np.ascontiguousarray(values, dtype=np.uint64).view(np.uint8).reshape(-1, 8)
    return _BYTE_BITS[octets].sum(axis=1).astype(np.uint8)


def _expand(starts: np.ndarray, stops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(range index, position) of every position of ranges [start, stop)."""
    counts = stops - starts
    total = int(counts.sum())
    if total == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    # int32 while they fit: these arrays are the largest of a search.
    small = np.int32 if total < 2**31 else np.int64
    ranges = np.repeat(np.arange(len(starts), dtype=small), counts)
    # Position k of the output is start + (k - the range's first output).
    first = (starts - np.cumsum(counts) + counts).astype(small)
    return ranges, np.arange(total, dtype=small) + first[ranges]


class _Band(NamedTuple):
    shift: int
    width: int
    order: np.ndarray      # stored indices sorted by band value
    keys: np.ndarray       # their band values, sorted
    values: np.ndarray     # their hashes, in that order
    starts: np.ndarray | None  # bucket starts by band value (narrow bands)

    def value(self, hashes: np.ndarray) -> np.ndarray:
        return (hashes >> np.uint64(self.shift)) & np.uint64((1 << self.width) - 1)

    def ranges(self, probe: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.starts is not None:
            index = probe.astype(np.int64)
            return self.starts[index], self.starts[index + 1]
        return (np.searchsorted(self.keys, probe, "left"),
                np.searchsorted(self.keys, probe, "right"))


class ValueIndex:
    """Distinct stored hash values with a table per band, built once and
    searched for many queries."""

    def __init__(self, stored: np.ndarray, distance: int):
        self.stored = np.asarray(stored, dtype=np.uint64)
        self.distance = distance
        bands = bands_for(distance)
        self.radius = distance // bands
        self.bands = []
        for shift, width in band_layout(bands):
            keys = (self.stored >> np.uint64(shift)) & np.uint64((1 << width) - 1)
            order = np.argsort(keys, kind="stable")
            starts = None
            if width <= TABLE_BITS:
                # int32 halves the table (fresh memory costs page faults).
                starts = np.zeros((1 << width) + 1, dtype=np.int32)
                np.cumsum(np.bincount(keys.astype(np.intp), minlength=1 << width),
                          out=starts[1:])
            self.bands.append(_Band(shift, width, order, keys[order], self.stored[order],
                                    starts))

    def search(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(query index, stored index, bits apart) of every pair at most
        `distance` apart, each pair once."""
        found = list(self.search_pieces(queries))
        if not found:
            return _empty(3)
        return tuple(np.concatenate(part) for part in zip(*found))

    def search_pieces(self, queries: np.ndarray) -> Iterator[tuple]:
        """The pairs of `search` in pieces of at most CANDIDATES compared
        pairs each, so memory stays bounded on data made of near copies
        (where a band's buckets hold thousands of values)."""
        queries = np.asarray(queries, dtype=np.uint64)
        for start in range(0, len(queries), CHUNK):
            part = queries[start:start + CHUNK]
            for number, band in enumerate(self.bands):
                mine = band.value(part)
                for mask in flip_masks(band.width, self.radius):
                    starts, stops = band.ranges(mine ^ mask)
                    for low, high in _spans(stops - starts):
                        found = self._compare(part, number, starts, stops, low, high)
                        if len(found[0]):
                            yield found[0] + start, found[1], found[2]

    def _compare(self, part: np.ndarray, number: int, starts: np.ndarray, stops: np.ndarray,
                 low: int, high: int) -> tuple:
        band = self.bands[number]
        q, at = _expand(starts[low:high], stops[low:high])
        q = q + low
        apart = part[q] ^ band.values[at]
        bits = popcount(apart)
        close = bits <= self.distance
        q, s, bits, apart = q[close], band.order[at[close]], bits[close], apart[close]
        # Found once: in the first band that brings the pair close.
        first = np.ones(len(q), dtype=bool)
        for earlier in self.bands[:number]:
            first &= popcount(earlier.value(apart)) > self.radius
        return q[first], s[first], bits[first]


def _spans(counts: np.ndarray) -> Iterator[tuple[int, int]]:
    """[low, high) ranges of queries whose candidates add up to at most
    CANDIDATES (a query with more stands alone)."""
    total = np.cumsum(counts)
    low = 0
    while low < len(counts):
        before = total[low - 1] if low else 0
        high = int(np.searchsorted(total, before + CANDIDATES, "right"))
        high = max(high, low + 1)
        yield low, high
        low = high


def _empty(count: int) -> tuple:
    return tuple(np.empty(0, dtype=np.int64) for _ in range(count))


class _Holders(NamedTuple):
    """Items by hash value: `values` distinct and sorted; the items holding
    values[k] are items[starts[k]:starts[k + 1]], increasing."""

    values: np.ndarray
    items: np.ndarray
    starts: np.ndarray

    @classmethod
    def of(cls, hashes: np.ndarray, items: np.ndarray) -> "_Holders":
        values, inverse = np.unique(np.asarray(hashes, dtype=np.uint64), return_inverse=True)
        span = int(items.max()) + 1 if len(items) else 1
        # One entry per (value, item): an image may hold a value in several probes.
        pairs = np.unique(inverse.ravel().astype(np.int64) * span + items)
        owners = pairs // span
        return cls(values, (pairs % span).astype(np.int32),
                   np.searchsorted(owners, np.arange(len(values) + 1)))

    def spread(self, value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row of `value`, item) for every item holding each value."""
        rows, positions = _expand(self.starts[value], self.starts[value + 1])
        return rows, self.items[positions]


def _probe_holders(probes: np.ndarray) -> _Holders:
    probes = np.asarray(probes, dtype=np.uint64)
    return _Holders.of(probes.ravel(), np.repeat(np.arange(len(probes)), probes.shape[1]))


def pair_pieces(hashes: np.ndarray, distance: int) -> Iterator[tuple]:
    """(i, j, bits) with i < j of the images of one split at most `distance`
    apart, in pieces of about PIECE pairs: every pair in exactly one piece,
    so a caller can count and group them with bounded memory. `hashes` is
    (n, P): each image's hash, then its shifted hashes. A pair's distance is
    the least between one image's probes and the other's hash."""
    hashes = np.asarray(hashes, dtype=np.uint64)
    if len(hashes) == 0:
        return
    probes = _probe_holders(hashes)
    mains = _Holders.of(hashes[:, 0], np.arange(len(hashes)))
    # Fewer distinct hashes than probe values: they are the queries.
    index = ValueIndex(probes.values, distance)
    held, size = [], 0
    for mv, pv, _ in index.search_pieces(mains.values):
        for start in range(0, len(mv), SPREAD):
            found = _owned_pairs(hashes, probes, mains, mv[start:start + SPREAD],
                                 pv[start:start + SPREAD])
            held.append(found)
            size += len(found[0])
            if size >= PIECE:
                yield tuple(np.concatenate(part) for part in zip(*held))
                held, size = [], 0
    if size:
        yield tuple(np.concatenate(part) for part in zip(*held))


def pairs_within(hashes: np.ndarray, distance: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of `pair_pieces` at once, ordered by j then i."""
    found = list(pair_pieces(hashes, distance))
    if not found:
        return _empty(3)
    i, j, bits = (np.concatenate(part) for part in zip(*found))
    order = np.lexsort((i, j))
    return i[order], j[order], bits[order]


# Value hits spread over images this many at a time, and pairs handed on
# about this many at a time: the arrays stay small enough to be reused.
SPREAD = 1 << 17
PIECE = 1 << 20


def _owned_pairs(hashes: np.ndarray, probes: _Holders, mains: _Holders, mv: np.ndarray,
                 pv: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, bits) of the image pairs that value hits (main value index,
    probe value index) stand for, each kept only by the one hit that owns it."""
    rows, b = mains.spread(mv)
    pv = pv[rows]
    rows, a = probes.spread(pv)
    b, pv = b[rows], pv[rows]
    other = a != b  # an image with itself
    a, b, pv = a[other], b[other], pv[other]
    # A pair is found from both images' hashes and through several probes;
    # it is kept through the first of the other's probes nearest the hash,
    to_b = popcount(hashes[a] ^ hashes[b, :1])  # b's hash against a's probes
    nearest = to_b.argmin(axis=1)
    via = hashes[a, nearest] == probes.values[pv]
    a, b, bits = a[via], b[via], to_b[via, nearest[via]]
    # from the image whose hash is nearer the other's probes (the later on a tie).
    back = popcount(hashes[b] ^ hashes[a, :1]).min(axis=1)
    keep = (bits < back) | ((bits == back) & (b > a))
    a, b, bits = a[keep], b[keep], bits[keep]
    return np.minimum(a, b).astype(np.int64), np.maximum(a, b).astype(np.int64), bits.astype(np.int64)


class Nearest:
    """Stored hashes (train's), searched for each query image's nearest."""

    def __init__(self, stored: np.ndarray, distance: int):
        self.count = len(stored)
        self.holders = _Holders.of(stored, np.arange(self.count))
        # Of equally near stored images, the earliest is named.
        self.earliest = self.holders.items[self.holders.starts[:-1]].astype(np.int64)
        self.index = ValueIndex(self.holders.values, distance)

    def find(self, probes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(stored index, bits) of each row of `probes` (n, P), -1 where none is near."""
        probes = np.asarray(probes, dtype=np.uint64)
        nearest = np.full(len(probes), -1, dtype=np.int64)
        bits_of = np.full(len(probes), -1, dtype=np.int64)
        if len(probes) == 0 or self.count == 0:
            return nearest, bits_of
        queries = _probe_holders(probes)
        # The least (bits, stored index) per query image, kept as one number
        # so that pieces of hits fold in with one minimum.
        none = np.iinfo(np.int64).max
        best = np.full(len(probes), none, dtype=np.int64)
        for qv, sv, bits in self.index.search_pieces(queries.values):
            for start in range(0, len(qv), SPREAD):
                rows, image = queries.spread(qv[start:start + SPREAD])
                key = bits[start:start + SPREAD][rows].astype(np.int64) * self.count
                key += self.earliest[sv[start:start + SPREAD][rows]]
                np.minimum.at(best, image, key)
        found = best != none
        nearest[found], bits_of[found] = best[found] % self.count, best[found] // self.count
        return nearest, bits_of


class Components:
    """Connected groups of a graph whose edges come in pieces; each node's
    group is named by its least node."""

    def __init__(self, count: int):
        self.parent = np.arange(count)
        self.paired = np.zeros(count, dtype=bool)

    def join(self, i: np.ndarray, j: np.ndarray) -> None:
        """Adds edges (i, j): roots hooked under the lesser root, then
        pointers jumped until every node points at its root, until no edge
        joins two roots."""
        i, j = np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64)
        self.paired[i] = self.paired[j] = True
        parent = self.parent
        while len(i):
            root_i, root_j = parent[i], parent[j]
            apart = root_i != root_j
            i, j, root_i, root_j = i[apart], j[apart], root_i[apart], root_j[apart]
            if not len(i):
                break
            np.minimum.at(parent, np.maximum(root_i, root_j), np.minimum(root_i, root_j))
            while True:
                grand = parent[parent]
                if np.array_equal(grand, parent):
                    break
                parent = grand
        self.parent = parent
