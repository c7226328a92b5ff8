"""`sign-datasets build`: several datasets built one after the other, one
failure not hiding the others, and the summary table of what each holds."""

from __future__ import annotations

import dataclasses
import time
import traceback

import tensorflow_datasets as tfds

from sign_datasets.catalog.registry import find_builder
from sign_datasets.cli import errors


@dataclasses.dataclass
class BuildResult:
    name: str
    seconds: float = 0.0
    examples: dict = dataclasses.field(default_factory=dict)
    cleaning: dict = dataclasses.field(default_factory=dict)
    data_dir: str = ""
    error: str = ""


def build_one(name: str, data_dir: str | None = None, file_format: str | None = None,
              beam_options: str | None = None) -> BuildResult:
    """file_format: "tfrecord" (TFDS's default) or "array_record" (random access
    through tfds.data_source); None lets TFDS choose. beam_options: generate
    on Apache Beam with these pipeline options ("runner=DirectRunner,...", as
    `tfds build --beam_pipeline_options` takes them)."""
    result = BuildResult(name)
    start = time.perf_counter()
    try:
        dataset = find_builder(name, data_dir=data_dir, file_format=file_format)
        download_config = None
        if beam_options:
            from sign_datasets.generate import beam  # imports Apache Beam, an optional extra
            download_config = tfds.download.DownloadConfig(
                beam_options=beam.pipeline_options(beam_options))
        dataset.download_and_prepare(download_config=download_config)
        result.examples = {split: info.num_examples for split, info in dataset.info.splits.items()}
        result.cleaning = dict(dataset.info.metadata or {}).get("cleaning", {})
        result.data_dir = str(dataset.data_dir)
    except Exception as error:  # noqa: BLE001 - one failure must not hide the others
        # The user's input or settings: its message says it all. Anything
        # else is a bug of ours and keeps its traceback.
        result.error = errors.users_message(error) or ""
        if not result.error:
            traceback.print_exc()
            result.error = errors.printable(f"{type(error).__name__}: {error}".splitlines()[0])
    result.seconds = time.perf_counter() - start
    return result


def build_many(names: list[str], data_dir: str | None = None,
               file_format: str | None = None, beam_options: str | None = None) -> list[BuildResult]:
    return [build_one(name, data_dir, file_format, beam_options) for name in names]


def format_summary(results: list[BuildResult]) -> str:
    header = ("dataset/config", "split", "examples", "drops by reason", "seconds")
    rows = []
    for result in results:
        if result.error:
            rows.append((result.name, "-", "-", "FAILED: " + result.error[:80], f"{result.seconds:.1f}"))
            continue
        for i, (split, count) in enumerate(sorted(result.examples.items(), reverse=True)):
            drops = result.cleaning.get(split, {}).get("drops", {})
            reasons = ", ".join(f"{k}={v}" for k, v in sorted(drops.items())) or "-"
            rows.append((result.name if i == 0 else "", split, str(count), reasons,
                         f"{result.seconds:.1f}" if i == 0 else ""))
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)

