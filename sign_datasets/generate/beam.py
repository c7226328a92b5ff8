"""Generation on Apache Beam: a `SplitPlan` as a PTransform, and its accounting.

Only a build given Beam options imports this module, so the library imports,
builds locally and reads without apache-beam.

The plan uses only what every runner executes (Create, ParDo, Flatten,
GroupByKey and the combines built on them): no tagged outputs, no side
inputs, no metrics read back, which Beam's DaskRunner, for one, lacks or
gets wrong. Every record becomes one outcome, (position, record) with
`Dropped` or `Leak` in place of the record where a rule said so; filters
split them. Repeats are grouped on their content digest and the record met
first by the local path (smallest position) is kept; a test image leaks when
a join on its digest finds a train image. One combine of all outcomes makes
the split's summary (report, noted count, leakage), written to a file that
the launcher reads once the pipeline is done; it stores the same
`info.metadata["cleaning"]` the local path does, and names the reasons of a
split that came out empty (the examples wait for the summary, so it is there
when TFDS's writer stops on the empty split).
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import json
from collections import Counter
from typing import Any

import tensorflow_datasets as tfds
from etils import epath

from sign_datasets.core import near
from sign_datasets.core.cleaning import MAX_EXAMPLES_PER_REASON, Dropped, SplitReport
from sign_datasets.core.plans import MAX_LEAKAGE_EXAMPLES, NearShare, SplitPlan
from sign_datasets.generate import beam_near, local

INSTALL_HINT = "pip install 'sign-datasets[beam]'"


def _import_beam():
    try:
        return tfds.core.lazy_imports.apache_beam
    except ImportError as error:
        raise ImportError(f"generating on Apache Beam needs apache-beam ({INSTALL_HINT}); "
                          "building locally and reading do not.") from error


beam = _import_beam()

KEPT, DROPPED, LEAKED = "kept", "dropped", "leaked"


def pipeline_options(text: str):
    """`runner=DirectRunner,direct_num_workers=2` as PipelineOptions.

    The same reading as `tfds build --beam_pipeline_options`: each
    comma-separated item becomes one `--flag`, passed to Beam unchanged.
    """
    flags = [f"--{item.strip().removeprefix('--')}" for item in text.split(",") if item.strip()]
    if not flags:
        raise ValueError("empty Beam options; expected e.g. 'runner=DirectRunner,direct_num_workers=2'")
    return beam.options.pipeline_options.PipelineOptions(flags=flags)


# --- element functions (run in workers) ---------------------------------------

@dataclasses.dataclass(frozen=True)
class Leak:
    """A test image with a copy in train: counted beside the test record,
    which is kept or dropped as well."""

    text: str


def _kind(positioned: tuple[int, Any]) -> str:
    record = positioned[1]
    if isinstance(record, Dropped):
        return DROPPED
    return LEAKED if isinstance(record, Leak) else KEPT


def _is(positioned: tuple[int, Any], kind: str) -> bool:
    return _kind(positioned) == kind


def _is_not(positioned: tuple[int, Any], kind: str) -> bool:
    return _kind(positioned) != kind


def _by_content(positioned: tuple[int, Any], content) -> tuple[bytes, tuple[int, Any]]:
    digest = hashlib.blake2b(content(positioned[1]), digest_size=16).digest()
    return digest, positioned


def _first_of_repeats(grouped, reason: str):
    """Keeps the record the local path meets first; the rest are its repeats."""
    _, records = grouped
    first, *repeats = sorted(records, key=lambda positioned: positioned[0])
    yield first
    for position, record in repeats:
        yield position, Dropped(reason, record.where, "repeats an earlier record")


def _digest_and_where(positioned: tuple[int, Any]) -> tuple[bytes, tuple[int, str]]:
    position, image = positioned
    return image.digest, (position, image.where)


def _by_digest(positioned: tuple[int, Any]) -> tuple[bytes, tuple[int, Any]]:
    return positioned[1].digest, positioned


def _check_leaks(joined, drop: bool):
    """The test images of one digest, joined with train's first image of it
    (if any): each is kept or dropped, and each copy of train is a Leak."""
    _, sides = joined
    train = list(sides["train"])
    for positioned in sides["test"]:
        if not train:
            yield positioned
            continue
        position, image = positioned
        first_where = train[0][1]
        yield position, Leak(f"{image.where} = {first_where}")
        yield ((position, Dropped("leaked_from_train", image.where, f"same pixels as {first_where}"))
               if drop else positioned)


def _account(positioned: tuple[int, Any], note) -> tuple:
    """(kind, position, detail) of one outcome, as the summary counts it:
    `noted` for a kept record, (reason, where) for a drop, the text of a leak."""
    position, record = positioned
    kind = _kind(positioned)
    if kind == DROPPED:
        return kind, position, (record.reason, record.where)
    if kind == LEAKED:
        return kind, position, record.text
    return kind, position, bool(note(record)) if note is not None else False


def _to_example(positioned: tuple[int, Any], to_example):
    return to_example(positioned[1])


def _by_bucket(positioned: tuple[int, Any], buckets: int) -> tuple[int, tuple[int, Any]]:
    return positioned[0] % buckets, positioned


def _every_bucket(summary_path: str, buckets: int):
    for bucket in range(buckets):
        yield bucket, summary_path


def _released(joined):
    """The kept records of one bucket, once the summary is written (it is
    joined in: an empty split has a summary and no records)."""
    _, sides = joined
    yield from sides["kept"]


def _keep_first(kept: list, item: tuple[int, str], limit: int) -> None:
    bisect.insort(kept, item)
    del kept[limit:]


class _SummaryFn(beam.CombineFn):
    """The split's report, noted count and leakage. The examples of each
    reason and of leaks are the first by position, which is the order the
    local path records them in.

    `drop_leaks` is None for a split that is not checked for leakage (its
    summary then says leakage None). `None` inputs are ignored: one is always
    fed, so that the combine has an output without a default (which Beam
    injects through a side input).
    """

    def __init__(self, drop_leaks: bool | None):
        self.drop_leaks = drop_leaks

    def create_accumulator(self):
        return {"records": 0, "kept": 0, "drops": Counter(), "examples": {}, "noted": 0,
                "leaks": 0, "leak_examples": []}

    def add_input(self, acc, outcome):
        if outcome is None:
            return acc
        kind, position, detail = outcome
        if kind == LEAKED:
            acc["leaks"] += 1
            _keep_first(acc["leak_examples"], (position, detail), MAX_LEAKAGE_EXAMPLES)
            return acc
        acc["records"] += 1
        if kind == KEPT:
            acc["kept"] += 1
            acc["noted"] += int(detail)
            return acc
        reason, where = detail
        acc["drops"][reason] += 1
        if where:  # as SplitReport.drop: a drop without a place is only counted
            _keep_first(acc["examples"].setdefault(reason, []), (position, where),
                        MAX_EXAMPLES_PER_REASON)
        return acc

    def merge_accumulators(self, accumulators):
        merged = self.create_accumulator()
        for acc in accumulators:
            for name in ("records", "kept", "noted", "leaks"):
                merged[name] += acc[name]
            merged["drops"].update(acc["drops"])
            for reason, items in acc["examples"].items():
                for item in items:
                    _keep_first(merged["examples"].setdefault(reason, []), item,
                                MAX_EXAMPLES_PER_REASON)
            for item in acc["leak_examples"]:
                _keep_first(merged["leak_examples"], item, MAX_LEAKAGE_EXAMPLES)
        return merged

    def extract_output(self, acc):
        report = SplitReport(records=acc["records"], kept=acc["kept"], drops=Counter(acc["drops"]),
                             examples={reason: [where for _, where in items]
                                       for reason, items in acc["examples"].items()})
        leakage = None
        if self.drop_leaks is not None:
            leakage = {"count": acc["leaks"], "examples": [text for _, text in acc["leak_examples"]],
                       "dropped_from_test": self.drop_leaks}
        return {"report": report.to_dict(), "noted": acc["noted"], "leakage": leakage}


def _facts_row(positioned: tuple[int, Any], facts, split: str) -> list:
    """(position, where, label, ImageFacts, stored order) of a kept record, as JSON."""
    position, record = positioned
    found, label, key = facts(record)
    return [position, record.where, int(label), list(found), str(local.stored_order(split, key))]


def _write_facts(rows: list, path: str) -> str:
    epath.Path(path).write_text(json.dumps(sorted(rows)))
    return path


def facts_path(summary_path: str) -> str:
    return summary_path.removesuffix(".json") + ".facts.json"


def read_facts(summary_path: str) -> list | None:
    """The kept images' (position, where, label, ImageFacts, stored order) of
    a finished split in position order, or None when the plan has no facts."""
    path = epath.Path(facts_path(summary_path))
    if not path.exists():
        return None
    return [(position, where, label, near.ImageFacts(tuple(found[0]), *found[1:5],
                                                      tuple(found[5]), tuple(found[6]), found[7]),
             int(order))
            for position, where, label, found, order in json.loads(path.read_text())]


def _write_summary(summary: dict, path: str) -> str:
    epath.Path(path).write_text(json.dumps(summary, sort_keys=True))
    return path


# --- the transform ----------------------------------------------------------------

def _split(outcomes, label: str):
    """(kept, not kept) of a PCollection of outcomes, by two filters."""
    return (outcomes | f"{label}Kept" >> beam.Filter(_is, KEPT),
            outcomes | f"{label}Rest" >> beam.Filter(_is_not, KEPT))


def _records(root, plan: SplitPlan, label: str, work: list | None = None):
    """(kept, dropped) positioned records of a plan, per-record rules applied."""
    read = (root
            | f"{label}Work" >> beam.Create(list(plan.work) if work is None else work)
            | f"{label}Read" >> beam.FlatMap(plan.read))
    return _split(read, f"{label}Read")


def _train_digests(root, plan: SplitPlan):
    share = plan.leakage
    digests = share.train_digests
    if digests is not None and digests.pipeline is root.pipeline:
        return digests
    # Test is built without train in this pipeline: read train's pixels
    # (no encoding), as the local runner does.
    kept, _ = _records(root, share.train_plan, "Train")
    return (kept
            | "TrainDigests" >> beam.Map(_digest_and_where)
            | "FirstTrainImage" >> beam.CombinePerKey(min))


@beam.ptransform_fn
def CleanedSplit(root, plan: SplitPlan, summary_path: str, near: NearShare | None = None):  # noqa: N802
    """(key, example) of the kept records; the split's summary is written to
    `summary_path` (a file the launcher reads once the pipeline is done), and
    with `near` the quality report's facts and near pairs beside it."""
    work = list(plan.work)
    kept, rest = _records(root, plan, "", work)
    others = [rest]
    if plan.duplicate_content is not None:
        kept, repeats = _split(kept
                               | "ByContent" >> beam.Map(_by_content, plan.duplicate_content)
                               | "GroupRepeats" >> beam.GroupByKey()
                               | "FirstOfRepeats" >> beam.FlatMap(_first_of_repeats,
                                                                  plan.duplicate_reason),
                               "Repeats")
        others.append(repeats)
    share = plan.leakage
    drop_leaks = None
    if share is not None and plan.split == "train":
        share.train_digests = (kept
                               | "Digests" >> beam.Map(_digest_and_where)
                               | "FirstImage" >> beam.CombinePerKey(min))
    elif share is not None:
        drop_leaks = share.drop_from_test
        joined = {"test": kept | "ByDigest" >> beam.Map(_by_digest),
                  "train": _train_digests(root, plan)}
        kept, leaks = _split(joined
                             | "JoinTrain" >> beam.CoGroupByKey()
                             | "CheckLeakage" >> beam.FlatMap(_check_leaks, drop_leaks),
                             "Leakage")
        others.append(leaks)
    if plan.facts is not None:
        # The quality report is a pure function of these in position order
        # (core/quality.py): collected here, computed by the launcher with
        # the local runner's code, so both give the same bytes.
        rows = kept | "Facts" >> beam.Map(_facts_row, plan.facts, plan.split)
        _ = (rows
             | "AllFacts" >> beam.combiners.ToList()
             | "WriteFacts" >> beam.Map(_write_facts, facts_path(summary_path)))
        if near is not None:
            train = near.beam_train
            if train is None or train.pipeline is not root.pipeline or plan.split != "test":
                train = None
            beam_near.search(rows, near.distance, summary_path, train)
            if plan.split == "train":
                near.beam_train = rows
    accounted = ((*others, kept)
                 | "Outcomes" >> beam.Flatten()
                 | "Account" >> beam.Map(_account, plan.note))
    written = ((accounted, root | "OneInput" >> beam.Create([None]))
               | "AllAccounted" >> beam.Flatten()
               | "Summary" >> beam.CombineGlobally(_SummaryFn(drop_leaks)).without_defaults()
               | "WriteSummary" >> beam.Map(_write_summary, summary_path))
    # Examples wait for the summary (a join, in buckets of records), so that
    # the launcher finds it when TFDS's writer stops on an empty split.
    buckets = max(1, len(work))
    released = ({"kept": kept | "ByBucket" >> beam.Map(_by_bucket, buckets),
                 "summary": written | "EveryBucket" >> beam.FlatMap(_every_bucket, buckets)}
                | "AfterSummary" >> beam.CoGroupByKey()
                | "Released" >> beam.FlatMap(_released))
    return released | "ToExample" >> beam.Map(_to_example, plan.to_example)


# --- after the pipeline (launcher) -------------------------------------------------

def read_summary(summary_path: str) -> dict | None:
    path = epath.Path(summary_path)
    return json.loads(path.read_text()) if path.exists() else None


def split_outcome(plan: SplitPlan, summary_path: str) -> tuple[SplitReport, int, dict | None]:
    """(report, noted count, leakage) of a finished split, from its summary:
    every outcome was counted once, or records were lost."""
    summary = read_summary(summary_path)
    if summary is None:
        raise AssertionError(f"{plan.dataset}: the {plan.split} split's cleaning summary "
                             f"{summary_path} was not written by the pipeline")
    report = SplitReport.from_dict(summary["report"])
    report.check_balance()
    return report, int(summary["noted"]), summary["leakage"]
