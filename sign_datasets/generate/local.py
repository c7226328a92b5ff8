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
import itertools
import os
from typing import Any, Iterator

from sign_datasets.core.cleaning import Dropped, DuplicateFilter, SplitReport
from sign_datasets.core.plans import MAX_LEAKAGE_EXAMPLES, LeakageShare, SplitPlan
from sign_datasets.io.parallel import long_lived_objects_frozen, ordered_map

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


def examples(plan: SplitPlan, outcome: Outcome, workers: int | None = None
             ) -> Iterator[tuple[Any, dict]]:
    """(key, example) of the kept records; `outcome` is filled in as they go
    and complete once the generator is exhausted."""
    report = outcome.report
    repeats = (DuplicateFilter(plan.duplicate_content, lambda record: record.where,
                               plan.duplicate_reason)
               if plan.duplicate_content is not None else None)
    share = plan.leakage
    learn = check = None
    if share is not None and plan.split == "train":
        learn = share.train_digests = {} if share.train_digests is None else share.train_digests
    elif share is not None:
        check = _train_digests(share)
        leaked: list[str] = []
        leaked_count = 0
    for _, record in positioned_records(plan, workers):
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
                    leaked_count += 1
                    if len(leaked) < MAX_LEAKAGE_EXAMPLES:
                        leaked.append(f"{record.where} = {first}")
                    if share.drop_from_test:
                        raise Dropped("leaked_from_train", record.where, f"same pixels as {first}")
        except Dropped as drop:
            report.drop(drop.reason, drop.where)
            continue
        report.keep()
        if plan.note is not None and plan.note(record):
            outcome.noted += 1
        yield plan.to_example(record)
    report.check_balance()
    if check is not None:
        outcome.leakage = {"count": leaked_count, "examples": leaked,
                           "dropped_from_test": share.drop_from_test}
