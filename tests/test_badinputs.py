"""Every case of the bad-input corpus (tests/badinputs/make_corpus.py), built
through the real TFDS builder: each ends in its expected error, naming file
and place, or in its exact counts of kept records and drops by reason.

SIGN_DATASETS_RELIABILITY_REPORT=1 also rewrites the table in
docs/RELIABILITY.md from this run's outcomes.
"""

from __future__ import annotations

import os

import pytest

from badinputs import report
from badinputs.make_corpus import CASES, cases_by_id, make_case
from badinputs.run_case import build_case, check, summary

REPORT_ENV = "SIGN_DATASETS_RELIABILITY_REPORT"
_OUTCOMES: dict[str, dict] = {}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The corpus root; each case is written the first time a test asks for it."""
    root = tmp_path_factory.mktemp("badinputs")
    yield root
    if os.environ.get(REPORT_ENV) and len(_OUTCOMES) == len(CASES):
        report.write(report.render(_OUTCOMES))


def test_the_corpus_is_large_and_covers_every_format():
    formats = {case.fmt for case in CASES}
    assert len(CASES) >= 40 and formats == {"csv", "json", "base64", "zip", "catalog"}
    for case in CASES:
        assert (case.expect.error is None) != (case.expect.kept is None), case.id
        if case.expect.error:
            assert case.expect.message, case.id


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(case, corpus, tmp_path):
    if case.fmt == "zip":
        pytest.importorskip("sign_datasets.formats.zip_folders")
    if case.isolated:
        make_case(cases_by_id()[f"{case.fmt}_clean_control"], corpus)
        make_case(case, corpus)
        outcome = report.run_isolated(case, corpus, tmp_path)
    else:
        outcome = build_case(case, make_case(case, corpus), tmp_path)
    _OUTCOMES[case.id] = outcome
    problems = check(case.expect, outcome)
    assert not problems, f"{case.id}: {summary(outcome)}\n" + "\n".join(problems)
