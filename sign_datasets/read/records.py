"""Serialized records of a split by index, from TFRecord or ArrayRecord shards.

Both readers take a split's TFDS file instructions (shard, skip, take) and
return the records at any list of indices of the split, so a shuffle permutes
indices rather than holding examples. Neither imports TensorFlow.

TFRecord shards are memory-mapped and indexed once: one scan of the record
headers (u64 length, u32 masked CRC, data, u32 CRC) gives every record's
offset. The CRCs are not checked, as a record's protobuf parse fails on most
damage anyway and checking them in Python would cost more than the parse.
"""

from __future__ import annotations

import mmap
import os
import struct

import numpy as np

_HEADER = struct.Struct("<Q")
# Length (8 bytes) and its CRC (4) before the data; the data's CRC (4) after.
_BEFORE, _AFTER = 12, 4


class ShardError(ValueError):
    """A shard that does not hold the records its instructions promise."""


def _split_positions(ends: np.ndarray, skips: np.ndarray, indices) -> tuple[np.ndarray, np.ndarray]:
    """(shard, position in the shard) of each index of the split."""
    indices = np.asarray(indices, np.int64)
    shard_of = np.searchsorted(ends, indices, side="right")
    firsts = ends - np.diff(ends, prepend=0)
    return shard_of, indices - firsts[shard_of] + skips[shard_of]


class ArrayRecordShards:
    """Records of a split from ArrayRecord readers, by index.

    array_record's own data source starts a thread pool on every call, which
    costs more than reading 128 small records; its readers do not."""

    def __init__(self, instructions):
        from array_record.python import array_record_module  # only ArrayRecord builds need it

        self.readers = [array_record_module.ArrayRecordReader(
            os.fspath(i.filename), options="readahead_buffer_size:0") for i in instructions]
        self.skips = np.array([i.skip for i in instructions], np.int64)
        self.ends = np.cumsum([i.take for i in instructions], dtype=np.int64)

    def __len__(self) -> int:
        return int(self.ends[-1]) if len(self.ends) else 0

    def read(self, indices) -> list[bytes]:
        shard_of, positions = _split_positions(self.ends, self.skips, indices)
        if len(self.readers) == 1:
            return self.readers[0].read(positions.tolist())
        records: list[bytes] = [b""] * len(positions)
        for shard in np.unique(shard_of):
            where = np.flatnonzero(shard_of == shard)
            for slot, record in zip(where, self.readers[shard].read(positions[where].tolist())):
                records[slot] = record
        return records


class TFRecordShards:
    """Records of a split from memory-mapped TFRecord shards, by index."""

    def __init__(self, instructions):
        self.maps: list[mmap.mmap | bytes] = []
        starts, lengths = [], []
        for instruction in instructions:
            mapped = _map(os.fspath(instruction.filename))
            self.maps.append(mapped)
            offsets, sizes = _index(mapped, os.fspath(instruction.filename))
            stop = instruction.skip + instruction.take
            if stop > len(offsets):
                raise ShardError(f"{instruction.filename} holds {len(offsets)} records; the "
                                 f"dataset's info expects at least {stop}")
            starts.append(offsets[instruction.skip:stop])
            lengths.append(sizes[instruction.skip:stop])
        self.shard_of = np.concatenate(
            [np.full(len(s), n, np.int64) for n, s in enumerate(starts)] or [np.zeros(0, np.int64)])
        self.starts = np.concatenate(starts or [np.zeros(0, np.int64)])
        self.stops = self.starts + np.concatenate(lengths or [np.zeros(0, np.int64)])

    def __len__(self) -> int:
        return len(self.starts)

    def read(self, indices) -> list[bytes]:
        indices = np.asarray(indices, np.int64)
        starts, stops = self.starts[indices].tolist(), self.stops[indices].tolist()
        if len(self.maps) == 1:
            mapped = self.maps[0]
            return [mapped[a:b] for a, b in zip(starts, stops)]
        maps = self.maps
        return [maps[s][a:b] for s, a, b in zip(self.shard_of[indices].tolist(), starts, stops)]

    def close(self) -> None:
        for mapped in self.maps:
            if isinstance(mapped, mmap.mmap) and not mapped.closed:
                mapped.close()


def _map(path: str) -> mmap.mmap | bytes:
    with open(path, "rb") as file:
        if os.fstat(file.fileno()).st_size == 0:
            return b""  # mmap refuses empty files
        return mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)


def _index(data, path: str) -> tuple[np.ndarray, np.ndarray]:
    """Offsets and lengths of every record's data in one TFRecord file."""
    offsets, lengths = [], []
    position, size, unpack = 0, len(data), _HEADER.unpack_from
    while position < size:
        if position + _BEFORE > size:
            raise ShardError(f"{path} ends inside a record header at byte {position}")
        (length,) = unpack(data, position)
        offsets.append(position + _BEFORE)
        lengths.append(length)
        position += _BEFORE + length + _AFTER
    if position != size:
        raise ShardError(f"{path} ends inside a record (byte {size} of {position})")
    return np.array(offsets, np.int64), np.array(lengths, np.int64)
