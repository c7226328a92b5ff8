"""The quality report's near-pair search on Beam, grouped by hash bands.

Multi-index hashing as `core.near_index` does it in one process, spread over
workers: each image is stored under (band, its hash's value in that band),
and asked for under (band, each probe's band value XOR every mask of at most
floor(distance / bands) bits). Two hashes within the distance share a key on
some band (pigeonhole), so comparing within each group finds every near pair;
a pair found several times keeps its least distance. Within a split every
image both asks and is stored (pairs either way round); for test's near
copies in train, test asks and train is stored, and each test image keeps
its nearest (least bits, then earliest) train image. The launcher turns the
pairs into the same report as a local build (`local.quality_of_rows`).
"""

from __future__ import annotations

import json

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from sign_datasets.core import near_index


ASKS, STORED = 0, 1
BANDS = 5


def _entries(row: list, distance: int, asks: bool, stored: bool):
    """((band, band value), (kind, position, hashes as bytes)) of one image's
    facts row. Bytes, since hashes above 2**63 do not fit Beam's int coder."""
    position, hashes = int(row[0]), [int(value) for value in row[3][0]]  # facts' first field
    packed = np.array(hashes, dtype=np.uint64).tobytes()
    # Up to BANDS bands of about 13 bits: at the default distance 4 a near pair
    # then matches exactly on some band, so an image asks under 5 keys per
    # band, not 5 x 23 (3 bands at radius 1 made Beam builds 40x slower).
    layout = near_index.band_layout(min(distance + 1, BANDS))
    radius = distance // len(layout)
    for number, (shift, width) in enumerate(layout):
        full = (1 << width) - 1
        if stored:
            yield (number, (hashes[0] >> shift) & full), (STORED, position, packed)
        if asks:
            keys = {value ^ mask for value in {(h >> shift) & full for h in hashes}
                    for mask in near_index.flip_masks(width, radius).tolist()}
            for key in sorted(keys):
                yield (number, key), (ASKS, position, packed)


def _compare(group, distance: int, within: bool):
    """Near (asking, stored) images of one group: ((earlier, later), bits)
    within a split, (test position, (bits, train position)) across."""
    _, entries = group
    asking = [(position, packed) for kind, position, packed in entries if kind == ASKS]
    stored = [(position, packed) for kind, position, packed in entries if kind == STORED]
    if not asking or not stored:
        return
    probes = np.frombuffer(b"".join(packed for _, packed in asking), dtype=np.uint64)
    probes = probes.reshape(len(asking), -1)
    mains = np.frombuffer(b"".join(packed for _, packed in stored), dtype=np.uint64)
    mains = mains.reshape(len(stored), -1)[:, 0]
    # Asking images a block at a time: a group of near copies is compared
    # all with all, at most CANDIDATES hashes at once.
    step = max(1, near_index.CANDIDATES // (len(mains) * probes.shape[1]))
    for start in range(0, len(asking), step):
        bits = near_index.popcount(probes[start:start + step, None, :]
                                   ^ mains[None, :, None]).min(axis=2)
        for a, s in zip(*np.nonzero(bits <= distance)):
            mine, other, apart = asking[start + a][0], stored[s][0], int(bits[a, s])
            if within and mine != other:
                yield (min(mine, other), max(mine, other)), apart
            elif not within:
                yield mine, (apart, other)


def _write(rows: list, path: str) -> str:
    epath.Path(path).write_text(json.dumps(sorted(rows)))
    return path


def pairs_path(summary_path: str, kind: str) -> str:
    return summary_path.removesuffix(".json") + f".{kind}.json"


def read_found(summary_path: str, kind: str) -> list | None:
    path = epath.Path(pairs_path(summary_path, kind))
    return json.loads(path.read_text()) if path.exists() else None


def search(rows, distance: int, summary_path: str, train_rows=None) -> None:
    """Writes the split's near pairs ([earlier, later, bits] by position)
    and, given train's rows, each test image's nearest train image
    ([test position, bits, train position]) beside its summary."""
    beam = tfds.core.lazy_imports.apache_beam  # generate.beam checked it is installed
    within = (rows
              | "NearKeys" >> beam.FlatMap(_entries, distance, True, True)
              | "NearGroups" >> beam.GroupByKey()
              | "NearCompare" >> beam.FlatMap(_compare, distance, True)
              | "NearPair" >> beam.CombinePerKey(min)
              | "NearRow" >> beam.MapTuple(lambda pair, bits: [pair[0], pair[1], bits]))
    _ = (within
         | "AllNearPairs" >> beam.combiners.ToList()
         | "WriteNearPairs" >> beam.Map(_write, pairs_path(summary_path, "pairs")))
    if train_rows is None:
        return
    asking = rows | "LeakKeys" >> beam.FlatMap(_entries, distance, True, False)
    stored = train_rows | "TrainKeys" >> beam.FlatMap(_entries, distance, False, True)
    nearest = ((asking, stored)
               | "LeakEntries" >> beam.Flatten()
               | "LeakGroups" >> beam.GroupByKey()
               | "LeakCompare" >> beam.FlatMap(_compare, distance, False)
               | "Nearest" >> beam.CombinePerKey(min)
               | "LeakRow" >> beam.MapTuple(lambda test, found: [test, found[0], found[1]]))
    _ = (nearest
         | "AllNearest" >> beam.combiners.ToList()
         | "WriteNearest" >> beam.Map(_write, pairs_path(summary_path, "nearest")))
