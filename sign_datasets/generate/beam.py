"""Generation on Apache Beam: a `SplitPlan` as a PTransform, and its accounting.

Only a build given Beam options imports this module, so the library imports,
builds locally and reads without apache-beam.

Under Beam the whole-split rules become groupings: repeats are grouped on
their content digest and the record met first by the local path (smallest
position) is kept; a test image leaks when its digest is among train's.
Every outcome is counted with Beam counters (namespace
`sign_datasets/<dataset>/<split>`), and a small combine keeps the first
examples of each drop reason by position; the launcher reads both after the
pipeline and stores the same `info.metadata["cleaning"]` the local path does.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections import Counter
from typing import Any

import tensorflow_datasets as tfds
from etils import epath

from sign_datasets.generate import safety
from sign_datasets.core.cleaning import MAX_EXAMPLES_PER_REASON, Dropped, SplitReport
from sign_datasets.core.plans import MAX_LEAKAGE_EXAMPLES, SplitPlan

INSTALL_HINT = "pip install 'sign-datasets[beam]'"


def _import_beam():
    try:
        return tfds.core.lazy_imports.apache_beam
    except ImportError as error:
        raise ImportError(f"generating on Apache Beam needs apache-beam ({INSTALL_HINT}); "
                          "building locally and reading do not.") from error


beam = _import_beam()

KEPT, DROPPED, LEAKED = "kept", "dropped", "leaked"
COUNTER_PREFIX = "sign_datasets"
DROP_COUNTER = "drop:"
NOTE_COUNTER = "note"


def pipeline_options(text: str):
    """`runner=DirectRunner,direct_num_workers=2` as PipelineOptions.

    The same reading as `tfds build --beam_pipeline_options`: each
    comma-separated item becomes one `--flag`, passed to Beam unchanged.
    """
    flags = [f"--{item.strip().removeprefix('--')}" for item in text.split(",") if item.strip()]
    if not flags:
        raise ValueError("empty Beam options; expected e.g. 'runner=DirectRunner,direct_num_workers=2'")
    return beam.options.pipeline_options.PipelineOptions(flags=flags)


def counter_namespace(dataset: str, split: str) -> str:
    return f"{COUNTER_PREFIX}/{dataset}/{split}"


# --- element functions (run in workers) ---------------------------------------

def _route(positioned: tuple[int, Any]):
    if isinstance(positioned[1], Dropped):
        yield beam.pvalue.TaggedOutput(DROPPED, positioned)
    else:
        yield positioned


def _by_content(positioned: tuple[int, Any], content) -> tuple[bytes, tuple[int, Any]]:
    digest = hashlib.blake2b(content(positioned[1]), digest_size=16).digest()
    return digest, positioned


def _first_of_repeats(grouped, reason: str):
    """Keeps the record the local path meets first; the rest are its repeats."""
    _, records = grouped
    first, *repeats = sorted(records, key=lambda positioned: positioned[0])
    yield first
    for position, record in repeats:
        yield beam.pvalue.TaggedOutput(
            DROPPED, (position, Dropped(reason, record.where, "repeats an earlier record")))


def _digest_and_where(positioned: tuple[int, Any]) -> tuple[bytes, tuple[int, str]]:
    position, image = positioned
    return image.digest, (position, image.where)


def _check_leak(positioned: tuple[int, Any], train: dict, drop: bool):
    position, image = positioned
    first = train.get(image.digest)
    if first is None:
        yield positioned
        return
    first_where = first[1]
    yield beam.pvalue.TaggedOutput(LEAKED, (position, f"{image.where} = {first_where}"))
    if drop:
        yield beam.pvalue.TaggedOutput(DROPPED, (position, Dropped(
            "leaked_from_train", image.where, f"same pixels as {first_where}")))
    else:
        yield positioned


def _leakage_report(found: dict, drop: bool) -> dict:
    return {**found, "dropped_from_test": drop}


def _account(positioned: tuple[int, Any], namespace: str, note) -> tuple:
    """(position, reason or None, where, noted) for one outcome, counted."""
    position, record = positioned
    beam.metrics.Metrics.counter(namespace, "records").inc()
    if isinstance(record, Dropped):
        beam.metrics.Metrics.counter(namespace, DROP_COUNTER + record.reason).inc()
        return position, record.reason, record.where, False
    beam.metrics.Metrics.counter(namespace, "kept").inc()
    noted = bool(note(record)) if note is not None else False
    if noted:
        beam.metrics.Metrics.counter(namespace, NOTE_COUNTER).inc()
    return position, None, "", noted


def _to_example(positioned: tuple[int, Any], to_example, _summary_written=None):
    return to_example(positioned[1])


def _keep_first(kept: list, item: tuple[int, str], limit: int) -> None:
    bisect.insort(kept, item)
    del kept[limit:]


class _ReportFn(beam.CombineFn):
    """The split's report; examples of each reason are the first by position,
    which is the order the local path records them in."""

    def create_accumulator(self):
        return {"records": 0, "kept": 0, "drops": Counter(), "examples": {}, "noted": 0}

    def add_input(self, acc, outcome):
        position, reason, where, noted = outcome
        acc["records"] += 1
        if reason is None:
            acc["kept"] += 1
            acc["noted"] += int(noted)
        else:
            acc["drops"][reason] += 1
            if where:  # as SplitReport.drop: a drop without a place is only counted
                _keep_first(acc["examples"].setdefault(reason, []), (position, where),
                            MAX_EXAMPLES_PER_REASON)
        return acc

    def merge_accumulators(self, accumulators):
        merged = self.create_accumulator()
        for acc in accumulators:
            merged["records"] += acc["records"]
            merged["kept"] += acc["kept"]
            merged["noted"] += acc["noted"]
            merged["drops"].update(acc["drops"])
            for reason, items in acc["examples"].items():
                for item in items:
                    _keep_first(merged["examples"].setdefault(reason, []), item,
                                MAX_EXAMPLES_PER_REASON)
        return merged

    def extract_output(self, acc):
        report = SplitReport(records=acc["records"], kept=acc["kept"], drops=Counter(acc["drops"]),
                             examples={reason: [where for _, where in items]
                                       for reason, items in acc["examples"].items()})
        return {"report": report.to_dict(), "noted": acc["noted"]}


class _FirstFn(beam.CombineFn):
    """Count of (position, text) items and the texts of the first `limit`."""

    def __init__(self, limit: int):
        self.limit = limit

    def create_accumulator(self):
        return 0, []

    def add_input(self, acc, item):
        count, first = acc
        _keep_first(first, item, self.limit)
        return count + 1, first

    def merge_accumulators(self, accumulators):
        count, first = 0, []
        for other_count, other_first in accumulators:
            count += other_count
            for item in other_first:
                _keep_first(first, item, self.limit)
        return count, first

    def extract_output(self, acc):
        return {"count": acc[0], "examples": [text for _, text in acc[1]]}


def _write_summary(summary: dict, leakage, path: str, dataset: str, split: str) -> None:
    summary = {**summary, "leakage": leakage}
    epath.Path(path).write_text(json.dumps(summary, sort_keys=True))
    # An empty split would otherwise stop the pipeline with TFDS's count
    # check, which names neither the file nor the reasons.
    empty = safety.no_records_error(dataset, split, SplitReport.from_dict(summary["report"]))
    if empty is not None:
        raise empty


# --- the transform ----------------------------------------------------------------

def _records(root, plan: SplitPlan, label: str):
    """(kept, dropped) positioned records of a plan, per-record rules applied."""
    routed = (root
              | f"{label}Work" >> beam.Create(list(plan.work))
              | f"{label}Read" >> beam.FlatMap(plan.read)
              | f"{label}Route" >> beam.FlatMap(_route).with_outputs(DROPPED, main=KEPT))
    return routed[KEPT], routed[DROPPED]


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
def CleanedSplit(root, plan: SplitPlan, summary_path: str):  # noqa: N802 - a PTransform
    """(key, example) of the kept records; the split's summary is written to
    `summary_path` (a file the launcher reads once the pipeline is done)."""
    kept, dropped = _records(root, plan, "")
    drops = [dropped]
    if plan.duplicate_content is not None:
        deduped = (kept
                   | "ByContent" >> beam.Map(_by_content, plan.duplicate_content)
                   | "GroupRepeats" >> beam.GroupByKey()
                   | "FirstOfRepeats" >> beam.FlatMap(_first_of_repeats, plan.duplicate_reason)
                   .with_outputs(DROPPED, main=KEPT))
        kept = deduped[KEPT]
        drops.append(deduped[DROPPED])
    leakage = beam.pvalue.AsSingleton(root | "NoLeakage" >> beam.Create([None]))
    share = plan.leakage
    if share is not None and plan.split == "train":
        share.train_digests = (kept
                               | "Digests" >> beam.Map(_digest_and_where)
                               | "FirstImage" >> beam.CombinePerKey(min))
    elif share is not None:
        checked = (kept
                   | "CheckLeakage" >> beam.FlatMap(
                       _check_leak, beam.pvalue.AsDict(_train_digests(root, plan)),
                       share.drop_from_test).with_outputs(LEAKED, DROPPED, main=KEPT))
        kept = checked[KEPT]
        drops.append(checked[DROPPED])
        leakage = beam.pvalue.AsSingleton(
            checked[LEAKED]
            | "FirstLeaks" >> beam.CombineGlobally(_FirstFn(MAX_LEAKAGE_EXAMPLES))
            | "LeakageReport" >> beam.Map(_leakage_report, share.drop_from_test))
    namespace = counter_namespace(plan.dataset, plan.split)
    written = ((tuple(drops) + (kept,))
               | "Outcomes" >> beam.Flatten()
               | "Account" >> beam.Map(_account, namespace, plan.note)
               | "Report" >> beam.CombineGlobally(_ReportFn())
               | "WriteSummary" >> beam.Map(_write_summary, leakage, summary_path,
                                            plan.dataset, plan.split))
    # Examples wait for the summary (a side input), so that an empty split
    # fails with its reasons before TFDS's writer fails without them.
    return kept | "ToExample" >> beam.Map(_to_example, plan.to_example,
                                          beam.pvalue.AsSingleton(written))


# --- after the pipeline (launcher) -------------------------------------------------

def read_summary(summary_path: str) -> dict | None:
    path = epath.Path(summary_path)
    return json.loads(path.read_text()) if path.exists() else None


def split_outcome(result, plan: SplitPlan, summary_path: str) -> tuple[SplitReport, int, dict | None]:
    """(report, noted count, leakage) of a finished split.

    Counts come from the Beam counters, the first examples of each reason
    from the combine; both must agree, or records were lost.
    """
    from apache_beam.metrics.metric import MetricsFilter

    summary = read_summary(summary_path)
    if summary is None:
        raise AssertionError(f"{plan.dataset}: the {plan.split} split's cleaning summary "
                             f"{summary_path} was not written by the pipeline")
    combined = SplitReport.from_dict(summary["report"])
    namespace = counter_namespace(plan.dataset, plan.split)
    counts: Counter = Counter()
    committed = True
    for counter in result.metrics().query(MetricsFilter().with_namespace(namespace))["counters"]:
        if counter.committed is None:
            committed = False
        counts[counter.key.metric.name] += counter.committed or 0
    if not committed:
        # Runners without committed metrics only have attempts, which retries
        # inflate; the combine's counts are exact.
        report, noted = combined, int(summary["noted"])
    else:
        report = SplitReport(
            records=counts["records"], kept=counts["kept"],
            drops=Counter({name.removeprefix(DROP_COUNTER): value for name, value in counts.items()
                           if name.startswith(DROP_COUNTER) and value}),
            examples=combined.examples)
        noted = counts[NOTE_COUNTER]
        if report.to_dict() != combined.to_dict() or noted != summary["noted"]:
            raise AssertionError(
                f"{plan.dataset} {plan.split}: cleaning accounting broken under Beam: the counters "
                f"say {report.to_dict()} (noted {noted}), the pipeline's report says "
                f"{combined.to_dict()} (noted {summary['noted']})")
    report.check_balance()
    return report, noted, summary.get("leakage")
