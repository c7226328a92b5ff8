"""Byte-identical shards across processes, for our builders only.

TFDS serializes each tf.train.Example with the protobuf default, which writes
the map of features in an order that changes from process to process (upb
seeds its map hash with a memory address, so the order follows the address
space layout); two builds of the same input then differ byte-wise.
Deterministic serialization sorts map keys and changes nothing else: readers,
with or without our code, parse the same proto.

TFDS builds its ExampleSerializer inline (split_builder.py) and takes no other.
The hook it does offer is a builder's `_example_writer()`: every serialized
example of a split passes through that writer on its way to a shard, in local
builds (Writer, ShardWriter) and in Beam builds (BeamWriter pickles it to the
workers). `SortedMapsWriter` wraps it and re-encodes each record with sorted
keys, about a microsecond per example. Nothing of TFDS is replaced: any other
dataset in the same process is written exactly as TFDS writes it.
"""

from __future__ import annotations

from typing import Iterable

from tensorflow_datasets.core import writer as writer_lib
from tensorflow_datasets.proto import tf_example_pb2


def sorted_maps(serialized: bytes) -> bytes:
    """The same tf.train.Example, its feature map written in sorted key order."""
    return tf_example_pb2.Example.FromString(serialized).SerializeToString(deterministic=True)


class SortedMapsWriter(writer_lib.ExampleWriter):
    """An ExampleWriter that hands `inner` each example with sorted map keys."""

    def __init__(self, inner: writer_lib.ExampleWriter):  # pylint: disable=super-init-not-called
        # No super().__init__: the file format is the inner writer's.
        self.inner = inner

    @property
    def file_format(self):
        return self.inner.file_format

    def write(self, path, examples: Iterable[tuple]):
        return self.inner.write(path, ((key, sorted_maps(data)) for key, data in examples))
