"""Builds one bad-input case through the real TFDS builder and checks the outcome.

The source folder of the case is the active SIGN_DATASETS_SOURCE, so the
build takes the same path a user's does: TFDS's download manager copies the
objects, the builder's reader streams them, the cleaning rules count every
record, TFDS writes the shards. The outcome is the error the build stopped
with, or the cleaning counts stored with the dataset.

Run alone, it builds one case in this fresh process and also reports how far
the build raised peak memory above a warmed-up process:

    .venv/bin/python tests/badinputs/run_case.py CORPUS_DIR WORK_DIR CASE_ID
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from badinputs.make_corpus import cases_by_id, make_case  # noqa: E402
from badinputs.table import Case, Expect  # noqa: E402

# Small inputs: worker processes and many fetch threads would only add start-up time.
BASE_ENV = {
    "SIGN_DATASETS_WORKERS": "1",
    "SIGN_DATASETS_FETCH_WORKERS": "4",
    "SIGN_DATASETS_FETCH_RETRIES": "0",
    "TF_CPP_MIN_LOG_LEVEL": "2",
}


@contextlib.contextmanager
def environment(values: dict[str, str]):
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# TFDS names a download after its URL and a hash: different in every run.
_DOWNLOADED = re.compile(r"<work>/downloads/[^\s)]*")


def normalised(message: str, folder: Path, work: Path) -> str:
    """The message without this run's temporary paths, so reports compare across runs."""
    message = message.replace(str(work), "<work>").replace(str(folder.resolve()), "<source>")
    message = message.replace(str(folder), "<source>")
    return _DOWNLOADED.sub("<download>", message)


def build_case(case: Case, folder: Path, work: Path) -> dict:
    """Builds the case's dataset from `folder` into `work`; the outcome as plain data."""
    import tensorflow_datasets as tfds

    import sign_datasets  # noqa: F401  (registers the builders)

    tfds.disable_progress_bar()
    env = {**BASE_ENV, "SIGN_DATASETS_SOURCE": str(folder), **dict(case.env)}
    with environment(env):
        if case.fmt == "catalog":
            refusal = read_catalog(folder, work, register=bool(case.dataset))
            if "error" in refusal or not case.dataset:
                return refusal
        return _build(case.dataset, folder, work)


def _error_outcome(error: BaseException, folder: Path, work: Path) -> dict:
    return {"error": type(error).__name__,
            "bases": [cls.__name__ for cls in type(error).__mro__],
            "message": normalised(str(error), folder, work)}


def _build(name: str, folder: Path, work: Path) -> dict:
    """Builds dataset `name` into `work`; its counts, or the error it stopped with."""
    import tensorflow_datasets as tfds

    with contextlib.redirect_stderr(_Discard()), contextlib.redirect_stdout(_Discard()):
        builder = tfds.builder(name, data_dir=str(work / "data"))
        try:
            builder.download_and_prepare(download_dir=str(work / "downloads"))
        except Exception as error:  # noqa: BLE001 - the error is the outcome
            return _error_outcome(error, folder, work)
    metadata = dict(builder.info.metadata or {})
    splits = {}
    for split, report in metadata.get("cleaning", {}).items():
        splits[split] = {key: report[key] for key in ("records", "kept", "drops")}
        splits[split]["examples"] = builder.info.splits[split].num_examples
        splits[split]["first"] = {reason: where[:2] for reason, where in report["examples"].items()}
    return {"splits": splits, "junk": metadata.get("junk") or {}}


def read_catalog(folder: Path, work: Path, register: bool = False) -> dict:
    """A catalog case: the team catalog read as `import sign_datasets` reads
    SIGN_DATASETS_CATALOG; the outcome is the refusal. Only a case that goes
    on to build registers its datasets (registration lasts for the process)."""
    from sign_datasets.catalog import loader, teams
    try:
        if register:
            entries = teams.register_file(folder / "catalog.toml")
        else:
            entries = loader.load_catalog(folder / "catalog.toml")
            teams.check_names(entries)
    except Exception as error:  # noqa: BLE001 - the error is the outcome
        return _error_outcome(error, folder, work)
    return {"splits": {}, "junk": {}, "registered": [e.name for e in entries]}


class _Discard:
    """Swallows the cleaning report and TFDS's chatter."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def check(expect: Expect, outcome: dict) -> list[str]:
    """What differs between the expected and the observed outcome (empty if nothing)."""
    if expect.error:
        if "error" not in outcome:
            return [f"expected {expect.error}, but the build finished: {summary(outcome)}"]
        problems = []
        if expect.error not in outcome["bases"]:
            problems.append(f"expected {expect.error}, got {outcome['error']}")
        if not re.search(expect.message, outcome["message"], re.DOTALL):
            problems.append(f"message {outcome['message']!r} does not match /{expect.message}/")
        return problems
    if "error" in outcome:
        return [f"expected counts, but the build stopped: {outcome['error']}: {outcome['message']}"]
    problems = []
    splits = outcome["splits"]
    if set(splits) != set(expect.kept):
        problems.append(f"splits {sorted(splits)}, expected {sorted(expect.kept)}")
    for split, kept in expect.kept.items():
        got = splits.get(split)
        if got is None:
            continue
        drops = expect.drops.get(split, {})
        if got["kept"] != kept or got["drops"] != drops:
            problems.append(f"{split}: kept {got['kept']}, drops {got['drops']}; "
                            f"expected kept {kept}, drops {drops}")
        if got["records"] != got["kept"] + sum(got["drops"].values()):
            problems.append(f"{split}: records {got['records']} != kept + drops")
        if got["examples"] != got["kept"]:
            problems.append(f"{split}: {got['examples']} examples written, {got['kept']} kept")
    if (outcome.get("junk") or {}) != (expect.junk or {}):
        problems.append(f"junk {outcome.get('junk')}, expected {expect.junk}")
    if expect.max_rss_growth_mb is not None:
        growth = outcome.get("rss_growth_mb")
        if growth is None or growth > expect.max_rss_growth_mb:
            problems.append(f"peak memory grew {growth} MB, limit {expect.max_rss_growth_mb} MB")
    return problems


def summary(outcome: dict) -> str:
    """One line for the reliability table."""
    if "error" in outcome:
        return f"{outcome['error']}: {outcome['message']}"
    parts = []
    for split, got in outcome["splits"].items():
        drops = ", ".join(f"{r}={n}" for r, n in sorted(got["drops"].items())) or "no drops"
        parts.append(f"{split}: {got['records']} records, kept {got['kept']}, {drops}")
    for where, kinds in sorted((outcome.get("junk") or {}).items()):
        parts.append(f"junk in {where}: " + ", ".join(f"{k}={v}" for k, v in sorted(kinds.items())))
    if outcome.get("rss_growth_mb") is not None:
        parts.append(f"peak memory +{outcome['rss_growth_mb']:.0f} MB")
    return "; ".join(parts)


# --- one case in a fresh process, with its memory measured --------------------------

def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def build_measured(case: Case, corpus: Path, work: Path) -> dict:
    """Warms the process up on the format's clean control case, then builds
    `case` and reports the peak resident memory it added."""
    control = cases_by_id()[f"{case.fmt}_clean_control"]
    control_folder = corpus / control.id
    if not control_folder.is_dir():
        make_case(control, corpus)
    build_case(control, control_folder, work / "warm-up")
    # Writing 5 to clear_refs resets the peak (VmHWM) to the current size.
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    before = _status_kb("VmRSS")
    outcome = build_case(case, corpus / case.id, work / "case")
    outcome["rss_growth_mb"] = round((_status_kb("VmHWM") - before) / 1024, 1)
    return outcome


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    corpus, work, case_id = Path(argv[0]), Path(argv[1]), argv[2]
    case = cases_by_id()[case_id]
    if not (corpus / case.id).is_dir():
        make_case(case, corpus)
    print(json.dumps(build_measured(case, corpus, work)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
