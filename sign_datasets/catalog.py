"""The project's datasets as a catalog: build several, read what was built."""

from __future__ import annotations

import dataclasses
import time
import traceback

import sign_datasets  # noqa: F401  (registers the builders)
from sign_datasets.builders.registered import BUILDERS


class NotBuiltError(LookupError):
    pass


@dataclasses.dataclass
class BuildResult:
    name: str
    seconds: float = 0.0
    examples: dict = dataclasses.field(default_factory=dict)
    cleaning: dict = dataclasses.field(default_factory=dict)
    data_dir: str = ""
    error: str = ""


def all_dataset_names() -> list[str]:
    """Every dataset/config the project has, e.g. 'sign_mnist_csv/dirty'."""
    import tensorflow_datasets as tfds
    names = []
    for name in BUILDERS:
        configs = tfds.builder_cls(name).BUILDER_CONFIGS
        names += [f"{name}/{c.name}" for c in configs] if configs else [name]
    return names


def build_one(name: str, data_dir: str | None = None) -> BuildResult:
    import tensorflow_datasets as tfds
    result = BuildResult(name)
    start = time.perf_counter()
    try:
        builder = tfds.builder(name, data_dir=data_dir)
        builder.download_and_prepare()
        result.examples = {split: info.num_examples for split, info in builder.info.splits.items()}
        result.cleaning = dict(builder.info.metadata or {}).get("cleaning", {})
        result.data_dir = str(builder.data_dir)
    except Exception as error:  # noqa: BLE001 - one failure must not hide the others
        result.error = f"{type(error).__name__}: {error}"
        if not _is_users_mistake(error):
            traceback.print_exc()
    result.seconds = time.perf_counter() - start
    return result


def _is_users_mistake(error: Exception) -> bool:
    """Errors whose message says it all; anything else keeps its traceback."""
    from tensorflow_datasets.core.registered import DatasetNotFoundError

    from sign_datasets.cleaning import SourceError
    from sign_datasets.sources import SourceConfigError
    return isinstance(error, (DatasetNotFoundError, SourceError, SourceConfigError,
                              FileNotFoundError))


def build_many(names: list[str], data_dir: str | None = None) -> list[BuildResult]:
    return [build_one(name, data_dir) for name in names]


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


def stored_report(name: str, data_dir: str | None = None) -> dict:
    """The cleaning report stored with a built dataset: {full_name: {split: counts}}."""
    import tensorflow_datasets as tfds
    builder = tfds.builder(name, data_dir=data_dir)
    if not builder.is_prepared():
        raise NotBuiltError(
            f"{name} is not built in {builder.data_dir}; run `sign-datasets build {name}` "
            "(or pass --data-dir where it was built)")
    cleaning = dict(builder.info.metadata or {}).get("cleaning")
    if not cleaning:
        raise NotBuiltError(f"{name} in {builder.data_dir} has no cleaning report "
                            "(built by another tool?)")
    return {builder.info.full_name: cleaning}
