"""A split described as independent pieces of work: what every format
module produces and both runners execute.

A `SplitPlan` says what a split is in a form any worker can run: small
picklable work items, a pure function that turns one item into positioned
records, and the whole-split rules stated as groupings (repeats share a
content digest, leaked test images share a digest with a train image). The
local runner (`generate.local`) reads the items on every core and meets the
records in work order; Beam (`generate.beam`) meets them in any order and
sorts by position where order matters. The position of a record is where a
one-process read meets it (source, line, entry, member number), so "the
first" of a group and the first examples of each drop reason come out the
same on both.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable, Iterator

PositionedRecord = tuple[int, Any]


@dataclasses.dataclass
class LeakageShare:
    """What the train and test plans of one build share for the leakage rule.

    `train_plan` reads train for digests only; the test split uses it when
    the train split's digests are not in the same pipeline (test built alone).
    """

    drop_from_test: bool
    train_plan: "SplitPlan | None" = None
    # The runner's record of train's images: a dict {digest: where} locally,
    # a PCollection under Beam while the train split's transform expands.
    train_digests: Any = None


@dataclasses.dataclass
class SplitPlan:
    """One split of one dataset, as work that workers can do in any order.

    read(item) -> [(position, record or Dropped)]: records already screened
    by the per-record rules. to_example(record) -> (key, example) for kept
    records. duplicate_content(record) -> bytes: later records with the same
    content are dropped under `duplicate_reason`. note(record) -> bool: kept
    records it is true for are counted under info.metadata[note_key][split]
    (as "resized").
    """

    dataset: str
    split: str
    # Any iterable: the local runner streams it (memory stays flat), Beam
    # makes a list of it in the launcher.
    work: Iterable
    read: Callable[[Any], Iterable[PositionedRecord]]
    to_example: Callable[[Any], tuple[Any, dict]]
    duplicate_content: Callable[[Any], bytes] | None = None
    duplicate_reason: str = "duplicate_row"
    note: Callable[[Any], bool] | None = None
    note_key: str = ""
    # Train remembers its digests, test is checked against them.
    leakage: LeakageShare | None = None
    # Run in the launcher on the split's report dict once the pipeline is
    # done, before anything is published (as the local path's end-of-split checks).
    check: Callable[[dict], None] | None = None
    # Called by the local runner once the split is read: closes what `read`
    # kept open in this process (a zip, an HTTP session).
    release: Callable[[], None] | None = None
    # Optional, for the local runner's forked workers: pack(records) is what
    # a worker sends back (smaller to pickle than the records), and
    # unpack(item, packed) turns it into the records again in the build process.
    pack: Callable[[list], Any] | None = None
    unpack: Callable[[Any, Any], list] | None = None
    # False when `read` mostly waits (HTTP) and overlaps its waits on threads
    # of its own: the local runner then reads in this process, since forked
    # workers would add nothing and would inherit every open socket.
    in_processes: bool = True
    # (ImageFacts, label index, example key) of a kept record, the facts
    # computed where it was decoded (a worker); None for plans without images
    # to judge. The key places the example in the stored split (the report
    # names where its listed images are stored).
    facts: Callable[[Any], tuple] | None = None


@dataclasses.dataclass
class NearShare:
    """What the splits of one build share for the quality report: the
    options, train's images once read, and each split's part of the report."""

    distance: int
    drop_from_test: bool = False
    train: Any = None          # quality.SplitImages of train, once read
    splits: dict = dataclasses.field(default_factory=dict)
    leak: dict | None = None
    tally: Any = None          # quality.LeakTally of test, once read
    beam_train: Any = None     # train's facts rows in a Beam pipeline (generate.beam)
    train_channels: dict | None = None


# The first test images with a copy in train that the report names.
MAX_LEAKAGE_EXAMPLES = 10


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Work items of at most `size` elements, in order, as they are read."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# A split may read several sources (a team catalog entry's files); records
# are met source after source, so the source's index leads the position.
SOURCE_SHIFT = 40


def source_position(source_index: int, position: int) -> int:
    """The position of record `position` (line, entry number) of a split's
    `source_index`-th source: ordered as the local path reads them."""
    if not 0 <= position < 1 << SOURCE_SHIFT:
        raise ValueError(f"position {position} out of range")
    return (source_index << SOURCE_SHIFT) | position


def positioned(sources: Iterable[Iterable[Any]]) -> Iterator[PositionedRecord]:
    """(position, record) of every record of a split's sources in order, as
    they are read; a record's own position is its `key` (line or entry number)."""
    for index, records in enumerate(sources):
        for record in records:
            yield source_position(index, record.key), record
