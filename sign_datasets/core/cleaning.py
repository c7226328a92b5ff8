"""Cleaning rules and the accounting that proves nothing was lost silently.

A rule is a plain function of a record: it returns the record (possibly
changed) or raises `Dropped` with a named reason. Keeping rules as plain
functions lets the same code run in a local generator and inside a Beam
`Map`. Every record that enters a split is counted once, either as kept or
under exactly one drop reason, so `records == kept + sum(drops)` always holds.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter
from typing import Any, Callable, Iterable, Iterator, Mapping

# How many example locations to remember per reason: enough to find the bad
# rows by hand, bounded so a file of garbage cannot grow the metadata.
MAX_EXAMPLES_PER_REASON = 10


class Dropped(Exception):
    """A record is dropped under `reason`; `where` names the row/entry/member."""

    def __init__(self, reason: str, where: str = "", detail: str = ""):
        super().__init__(f"{reason}: {where} {detail}".strip())
        self.reason = reason
        self.where = where
        self.detail = detail


class SourceError(Exception):
    """Input so broken that no record can be read (not a per-record drop).

    The message names the file and the place and says what to do.
    """


class MissingSource(SourceError, FileNotFoundError):
    """A source file, zip member or object that is not there. Still a
    FileNotFoundError for callers that catch that."""


Rule = Callable[[Any], Any]


@dataclasses.dataclass
class SplitReport:
    """Counts for one split: records seen, kept, and drops by reason."""

    records: int = 0
    kept: int = 0
    drops: Counter = dataclasses.field(default_factory=Counter)
    examples: dict = dataclasses.field(default_factory=dict)

    def keep(self) -> None:
        self.records += 1
        self.kept += 1

    def drop(self, reason: str, where: str = "") -> None:
        self.records += 1
        self.drops[reason] += 1
        seen = self.examples.setdefault(reason, [])
        if where and len(seen) < MAX_EXAMPLES_PER_REASON:
            seen.append(where)

    def merge(self, other: "SplitReport") -> "SplitReport":
        self.records += other.records
        self.kept += other.kept
        self.drops.update(other.drops)
        for reason, where in other.examples.items():
            seen = self.examples.setdefault(reason, [])
            seen.extend(where[: MAX_EXAMPLES_PER_REASON - len(seen)])
        return self

    @property
    def dropped(self) -> int:
        return sum(self.drops.values())

    def check_balance(self) -> None:
        if self.records != self.kept + self.dropped:
            raise AssertionError(f"cleaning accounting broken: {self.to_dict()}")

    def to_dict(self) -> dict:
        return {
            "records": self.records,
            "kept": self.kept,
            "dropped": self.dropped,
            "drops": dict(sorted(self.drops.items())),
            "examples": {k: list(v) for k, v in sorted(self.examples.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> "SplitReport":
        return cls(
            records=int(data["records"]),
            kept=int(data["kept"]),
            drops=Counter({k: int(v) for k, v in data.get("drops", {}).items()}),
            examples={k: list(v) for k, v in data.get("examples", {}).items()},
        )


def apply_rules(record: Any, rules: Iterable[Rule]) -> Any:
    """Runs `record` through `rules` in order; the first drop wins."""
    for rule in rules:
        record = rule(record)
    return record


def screen(record: Any, rules: Iterable[Rule]) -> Any:
    """Applies rules without counting: the record, or the `Dropped` that
    stopped it. Workers screen records; the main process counts them."""
    try:
        return apply_rules(record, rules)
    except Dropped as drop:
        return drop


def clean(
    records: Iterable[Any],
    rules: Iterable[Rule],
    report: SplitReport,
    where: Callable[[Any], str] = str,
) -> Iterator[Any]:
    """Yields the records that pass every rule and counts every outcome.

    Readers may also yield `Dropped` instances for records they could not
    even parse; those are counted like rule drops.
    """
    rules = tuple(rules)
    for record in records:
        if isinstance(record, Dropped):
            report.drop(record.reason, record.where)
            continue
        try:
            kept = apply_rules(record, rules)
        except Dropped as drop:
            report.drop(drop.reason, drop.where or where(record))
            continue
        report.keep()
        yield kept


class DuplicateFilter:
    """Rule: drops exact repeats of an earlier record of the same split.

    Only a 16-byte digest per distinct record is kept (about 70 bytes a
    record with the set's overhead); the records themselves are never held.
    """

    def __init__(self, content: Callable[[Any], bytes], where: Callable[[Any], str] = str,
                 reason: str = "duplicate_row"):
        self._content = content
        self._where = where
        self.reason = reason
        self._seen: set[bytes] = set()

    def __call__(self, record: Any) -> Any:
        digest = hashlib.blake2b(self._content(record), digest_size=16).digest()
        if digest in self._seen:
            raise Dropped(self.reason, self._where(record), "repeats an earlier record")
        self._seen.add(digest)
        return record


def format_report(reports: Mapping[str, Mapping[str, Mapping]], title: str = "") -> str:
    """A plain-text table: dataset/config, split, records, kept, drops by reason.

    `reports` maps dataset name -> split -> SplitReport.to_dict().
    """
    header = ("dataset", "split", "records", "kept", "dropped", "drops by reason")
    rows = []
    for dataset, splits in reports.items():
        for split, data in splits.items():
            drops = data.get("drops", {})
            reasons = ", ".join(f"{k}={v}" for k, v in sorted(drops.items())) or "-"
            rows.append((dataset, split, str(data["records"]), str(data["kept"]),
                         str(data.get("dropped", sum(drops.values()))), reasons))
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    lines = []
    if title:
        lines.append(title)
    lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    return "\n".join(lines)


def format_quality(reports: Mapping[str, Mapping]) -> str:
    """Plain text of the quality reports (info.metadata["quality"]) of
    datasets: near copies per split, near leakage, flagged images."""
    lines = []
    for dataset, quality in reports.items():
        lines.append(f"Quality report: {dataset} (hash {quality.get('hash')}, "
                     f"near = at most {quality.get('distance')} bits apart)")
        for split, data in quality.get("splits", {}).items():
            flags = ", ".join(f"{k}={v}" for k, v in data.get("flags", {}).items()) or "none"
            lines.append(f"  {split}: {data['images']} images, {data['near_groups']} groups of "
                         f"near copies ({data['in_near_groups']} images, {data['near_pairs']} "
                         f"pairs, {data['different_labels']} with different labels); "
                         f"flagged: {flags}")
            for a, b, bits in data.get("first_different_labels", [])[:3]:
                lines.append(f"    different labels: {a} ~ {b} ({bits} bits)")
        leak = quality.get("near_leaked_from_train")
        if leak is not None:
            action = "dropped" if leak.get("dropped_from_test") else "kept"
            lines.append(f"  test images with a near copy in train: {leak['count']} ({action}), "
                         f"{leak['different_labels']} of them with a different label")
            listed = leak.get("first_pairs", []) + leak.get("first_different_labels", [])
            for a, b, bits in listed[:3]:
                lines.append(f"    {a} ~ {b} ({bits} bits)")
        channels = quality.get("train_channels")
        if channels:
            lines.append(f"  train pixels: mean {channels['mean']}, std {channels['std']}")
    return "\n".join(lines)
