"""Writes the bad-input corpus: one source folder per case, in the bucket's layout.

Each case is a maker function that writes the objects one dataset reads
(databasesLoadData.zip, img_mnist/ images, or an image-folder zip), and the
`@case` line above it states what the real build must do with them: stop
with an error whose message names the file and the place, or finish with
exact counts of kept records and drops by reason. The cases live in one
module per format (csv_cases.py, json_cases.py, base64_cases.py,
zip_cases.py, catalog_cases.py, then trust_cases.py); the inputs they share
are made by images.py, zips.py and sources.py; table.py says what a case is.

Nothing here is committed as binary: every input is generated, big ones
streamed straight to disk, so the same command makes the same corpus.

    .venv/bin/python tests/badinputs/make_corpus.py DIR [CASE_ID ...]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterable

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from badinputs import (  # noqa: E402
    base64_cases, catalog_cases, csv_cases, json_cases, trust_cases, zip_cases)
from badinputs.table import Case  # noqa: E402


def _without_duplicates(cases: list[Case]) -> list[Case]:
    seen = set()
    for case in cases:
        if case.id in seen:
            raise ValueError(f"duplicate case id {case.id}")
        seen.add(case.id)
    return cases


# In the order the readers are listed, then the trust-boundary cases.
CASES: list[Case] = _without_duplicates([
    *csv_cases.CASES, *json_cases.CASES, *base64_cases.CASES, *zip_cases.CASES,
    *catalog_cases.CASES, *trust_cases.CASES])


def cases_by_id() -> dict[str, Case]:
    return {c.id: c for c in CASES}


def make_case(case: Case, root: Path) -> Path:
    folder = root / case.id
    folder.mkdir(parents=True, exist_ok=True)
    case.make(folder)
    return folder


def make_corpus(root: Path, ids: Iterable[str] | None = None) -> dict[str, Path]:
    """Writes the chosen cases (all by default) under `root`; {id: folder}."""
    wanted = set(ids) if ids else None
    return {c.id: make_case(c, root) for c in CASES if wanted is None or c.id in wanted}


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    folders = make_corpus(Path(argv[0]), argv[1:])
    for case_id, folder in folders.items():
        print(f"{case_id}\t{folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
