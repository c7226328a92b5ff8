"""The local runner: a `SplitPlan` executed by this process and its forked
workers, in the plan's order, with the whole-split rules and the accounting.

Work items are read on every core (`parallel.ordered_map`, the caller
helping); records come back in work order, so "the first" of repeats, the
first examples of each drop reason and the keys of the shards are those a
one-process read gives. The Beam runner (`generate.beam`) executes the same
plans and stores the same outcome.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import itertools
import multiprocessing
import os
from typing import Any, Iterator

import numpy as np
from tensorflow_datasets.core import hashing

from sign_datasets.core import quality
from sign_datasets.core.cleaning import Dropped, DuplicateFilter, SourceError, SplitReport
from sign_datasets.core.plans import MAX_LEAKAGE_EXAMPLES, LeakageShare, NearShare, SplitPlan, batched
from sign_datasets.io.parallel import (default_workers, end_with_parent,
                                        long_lived_objects_frozen, ordered_map)

# Test images are searched in train's index this many at a time (a search
# per image would cost a numpy call per band value probed).
NEAR_BATCH = 2048

# Forked workers find the plan here by token instead of receiving it with
# every work item: its functions may carry a whole archive's member list.
# Beside it, the build process's pid: only other processes pack their records.
_PLANS: dict[int, tuple[SplitPlan, int]] = {}
_TOKENS = itertools.count()


def _read(task: tuple[int, Any]) -> tuple[bool, Any]:
    """(packed, records or what the plan packed them into) of one item."""
    token, item = task
    plan, builder_pid = _PLANS[token]
    records = list(plan.read(item))
    if plan.pack is not None and os.getpid() != builder_pid:
        return True, plan.pack(records)
    return False, records


def positioned_records(plan: SplitPlan, workers: int | None = None) -> Iterator[tuple[int, Any]]:
    """(position, record or Dropped) of the plan's work, in work order."""
    if not plan.in_processes:
        workers = 1
    token = next(_TOKENS)
    _PLANS[token] = plan, os.getpid()  # before the pool forks
    # Items in flight, in order: results come back in the same order.
    items: collections.deque = collections.deque()

    def tasks():
        for item in plan.work:
            items.append(item)
            yield token, item

    try:
        with long_lived_objects_frozen():
            for packed, records in ordered_map(_read, tasks(), workers, caller_helps=True):
                item = items.popleft()
                yield from plan.unpack(item, records) if packed else records
    finally:
        _PLANS.pop(token, None)
        if plan.release is not None:
            plan.release()


@dataclasses.dataclass
class Outcome:
    """What a finished split stores beside its examples."""

    report: SplitReport
    noted: int = 0
    leakage: dict | None = None


def _train_digests(share: LeakageShare) -> dict:
    """{digest: where} of train's first images, read now when train was not
    built before test in this process (test built first, or alone)."""
    if share.train_digests is None:
        digests: dict = {}
        plan = share.train_plan
        for _, record in positioned_records(plan):
            if not isinstance(record, Dropped):
                digests.setdefault(plan.duplicate_content(record), record.where)
        share.train_digests = digests
    return share.train_digests


def _screened(plan: SplitPlan, report: SplitReport, leakage: dict,
              workers: int | None) -> Iterator[tuple[int, Any]]:
    """(position, record) of the records that pass the exact whole-split
    rules (repeats, pixels equal to a train image's); drops are counted."""
    repeats = (DuplicateFilter(plan.duplicate_content, lambda record: record.where,
                               plan.duplicate_reason)
               if plan.duplicate_content is not None else None)
    share = plan.leakage
    learn = check = None
    if share is not None and plan.split == "train":
        learn = share.train_digests = {} if share.train_digests is None else share.train_digests
    elif share is not None:
        check = _train_digests(share)
        leakage.update(count=0, examples=[], dropped_from_test=share.drop_from_test)
    for position, record in positioned_records(plan, workers):
        if isinstance(record, Dropped):
            report.drop(record.reason, record.where)
            continue
        try:
            if repeats is not None:
                repeats(record)
            if learn is not None:
                learn.setdefault(plan.duplicate_content(record), record.where)
            elif check is not None:
                first = check.get(plan.duplicate_content(record))
                if first is not None:
                    leakage["count"] += 1
                    if len(leakage["examples"]) < MAX_LEAKAGE_EXAMPLES:
                        leakage["examples"].append(f"{record.where} = {first}")
                    if share.drop_from_test:
                        raise Dropped("leaked_from_train", record.where, f"same pixels as {first}")
        except Dropped as drop:
            report.drop(drop.reason, drop.where)
            continue
        yield position, record


def _near_screened(plan: SplitPlan, records: Iterator[tuple[int, Any]], report: SplitReport,
                   near: NearShare) -> Iterator[tuple[int, Any]]:
    """Test records with their nearest train image looked up in batches; those
    with a near copy are tallied, and dropped when the build asks."""
    if near.train is None:
        if near.drop_from_test:
            raise SourceError(f"{plan.dataset}: dropping test images with a near copy in "
                              "train needs the train split read first in the same build.")
        yield from records
        return
    index = quality.TrainIndex(near.train, near.distance)
    tally = quality.LeakTally()
    for batch in batched(records, NEAR_BATCH):
        probes = [plan.facts(record) for _, record in batch]
        found = index.nearest(np.array([facts.hashes for facts, *_ in probes], dtype=np.uint64))
        for (position, record), (_, label, _), nearest in zip(batch, probes, found):
            if nearest is not None:
                tally.add(record.where, label, near.train, *nearest)
                if near.drop_from_test:
                    report.drop(quality.NEAR_LEAK_REASON, record.where)
                    continue
            yield position, record
    near.leak = tally.to_dict(near.drop_from_test)
    near.tally = tally


def stored_order(split: str, key) -> int:
    """The hash by which TFDS's writer orders a split's examples (salted
    with the split's name, ascending)."""
    return _hasher(split).hash_key(key)


@functools.lru_cache(maxsize=None)
def _hasher(split: str) -> hashing.Hasher:
    return hashing.Hasher(split)


def quality_of_rows(near: NearShare, split: str, rows: list, pairs: list | None = None,
                    nearest: list | None = None) -> None:
    """A split's part of the quality report from its kept images' (position,
    where, label, ImageFacts, stored order) in position order, as `examples`
    makes it while reading. A Beam build collects the rows and finds the
    near pairs ([earlier, later, bits] by position) and each test image's
    nearest train image ([test position, bits, train position]) itself."""
    if split == "test" and near.train is not None:
        near.tally = tally = quality.LeakTally()
        if nearest is not None:
            index_of = {position: k for k, position in enumerate(near.train.positions)}
            found = {test: (bits, train) for test, bits, train in nearest}
            for position, where, label, _, _ in rows:
                if position in found:
                    bits, train = found[position]
                    tally.add(where, label, near.train, index_of[train], bits)
        else:
            index = quality.TrainIndex(near.train, near.distance)
            for batch in batched(rows, NEAR_BATCH):
                hashes = np.array([row[3].hashes for row in batch], dtype=np.uint64)
                for (_, where, label, _, _), hit in zip(batch, index.nearest(hashes)):
                    if hit is not None:
                        tally.add(where, label, near.train, *hit)
        near.leak = tally.to_dict(near.drop_from_test)
    images = quality.SplitImages()
    for position, where, label, facts, order in rows:
        images.add(position, where, label, facts, order)
    pieces = None
    if pairs is not None:
        index_of = {position: k for k, position in enumerate(images.positions)}
        found = np.array([[index_of[a], index_of[b], bits] for a, b, bits in pairs],
                         dtype=np.int64).reshape(-1, 3)
        pieces = [(found[:, 0], found[:, 1], found[:, 2])] if len(found) else []
    _split_done(near, split, images, pieces)


class _PendingReport:
    """A split's near-pair report computed by a forked process while this one
    goes on (TFDS writes the split's shards, the next split is read): the
    search is the longest step that otherwise leaves every worker idle."""

    def __init__(self, images: quality.SplitImages, distance: int):
        self.images, self.distance = images, distance
        context = multiprocessing.get_context("fork")  # the images are inherited, not pickled
        self.receiver, sender = context.Pipe(duplex=False)
        self.process = context.Process(target=_send_report, daemon=True,
                                       args=(sender, images, distance, os.getpid()))
        self.process.start()
        sender.close()

    def result(self) -> dict:
        try:
            return self.receiver.recv()
        except EOFError:  # the process died before it answered: search here instead
            return quality.split_report(self.images, self.distance)
        finally:
            self.close()

    def close(self) -> None:
        self.receiver.close()
        if self.process.is_alive():
            self.process.terminate()
        self.process.join()


def _send_report(sender, images: quality.SplitImages, distance: int, parent: int) -> None:
    end_with_parent(parent)
    sender.send(quality.split_report(images, distance))
    sender.close()


def finished_reports(near: NearShare) -> dict:
    """{split: report} of the build's splits, waiting for those still searched."""
    for split, report in list(near.splits.items()):
        if isinstance(report, _PendingReport):
            near.splits[split] = report.result()
    return near.splits


def abandon_reports(near: NearShare) -> None:
    """Stops the searches of a build that failed."""
    for report in near.splits.values():
        if isinstance(report, _PendingReport):
            report.close()


def _split_done(near: NearShare, split: str, images: quality.SplitImages,
                pieces: list | None = None, background: bool = False) -> None:
    if background:
        near.splits[split] = _PendingReport(images, near.distance)
    else:
        near.splits[split] = quality.split_report(images, near.distance, pieces)
    if split == "test" and near.leak is not None and near.train is not None:
        near.leak["stored_index"] = near.tally.stored_index(images, near.train)
    if split == "train":
        near.train = images
        near.train_channels = images.channels()


def examples(plan: SplitPlan, outcome: Outcome, workers: int | None = None,
             near: NearShare | None = None) -> Iterator[tuple[Any, dict]]:
    """(key, example) of the kept records; `outcome` is filled in as they go
    and complete once the generator is exhausted. With `near` (and a plan
    that has image facts) the split's quality report goes into it."""
    report = outcome.report
    leakage: dict = {}
    records = _screened(plan, report, leakage, workers)
    judged = near is not None and plan.facts is not None
    if judged and plan.split == "test":
        records = _near_screened(plan, records, report, near)
    images = quality.SplitImages() if judged else None
    for position, record in records:
        report.keep()
        if plan.note is not None and plan.note(record):
            outcome.noted += 1
        if images is not None:
            facts, label, key = plan.facts(record)
            images.add(position, record.where, label, facts, stored_order(plan.split, key))
        yield plan.to_example(record)
    report.check_balance()
    if leakage:
        outcome.leakage = leakage
    if images is not None:
        workers = default_workers() if workers is None else workers
        _split_done(near, plan.split, images, background=workers > 1)
