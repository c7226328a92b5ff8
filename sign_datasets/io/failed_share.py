"""When too many records of a split fail: the share of drops a build allows
(SIGN_DATASETS_MAX_FAILED_SHARE) and the error that stops it.

A cleaning rule about records, kept in io because what it tells the user
is about fetching: its setting is read as the fetch settings are, and its
message names refused URLs and SIGN_DATASETS_ALLOWED_HOSTS.
"""

from __future__ import annotations

import os
from typing import Mapping

from sign_datasets.core.cleaning import SourceError
from sign_datasets.core.quality import NEAR_LEAK_REASON
from sign_datasets.io.fetcher import REFUSED
from sign_datasets.io.settings import FetchConfigError, fetch_number
from sign_datasets.io.url_policy import ALLOWED_HOSTS_ENV

MAX_FAILED_SHARE_ENV = "SIGN_DATASETS_MAX_FAILED_SHARE"
DEFAULT_MAX_FAILED_SHARE = 0.10
# Drops a catalog asks for: cleaning, not failures.
ASKED_FOR = (NEAR_LEAK_REASON,)


class TooManyFailures(SourceError):
    """More records of a split failed than the allowed share."""


def max_failed_share(configured: float = DEFAULT_MAX_FAILED_SHARE,
                     environ: Mapping[str, str] | None = None) -> float:
    """The builder's configured share, unless SIGN_DATASETS_MAX_FAILED_SHARE overrides it."""
    env = os.environ if environ is None else environ
    raw = env.get(MAX_FAILED_SHARE_ENV, "").strip()
    share = fetch_number(MAX_FAILED_SHARE_ENV, raw, float) if raw else float(configured)
    if not 0.0 <= share <= 1.0:
        raise FetchConfigError(f"the share of failed records allowed must be within 0..1, got {share}")
    return share


def check_failed_share(report: Mapping, limit: float, what: str) -> None:
    """Raises `TooManyFailures` when more than `limit` of the records were dropped.

    `report` is a SplitReport.to_dict(). Raised at the end of a split's
    generator, it stops TFDS before anything is published, instead of
    shipping a dataset with a hole nobody asked for.
    """
    failed = {reason: count for reason, count in report["drops"].items()
              if reason not in ASKED_FOR}
    records, dropped = int(report["records"]), sum(failed.values())
    if records == 0 or dropped / records <= limit:
        return
    # One line, as every error of a build: the failures by reason, then what to do.
    failures = []
    for reason, count in sorted(failed.items(), key=lambda kv: (-kv[1], kv[0])):
        first = report.get("examples", {}).get(reason, [])[:3]
        failures.append(f"{reason}: {count}" + (f" (first: {'; '.join(first)})" if first else ""))
    parts = [f"{what}: {dropped} of {records} records failed ({dropped / records:.1%}), more than "
             f"the {limit:.0%} allowed, so the build stopped and nothing was written: "
             + ", ".join(failures) + "."]
    if REFUSED in report["drops"]:
        parts.append(f"URLs outside the source are refused on purpose; list hosts you trust in "
                     f"{ALLOWED_HOSTS_ENV} (comma-separated HOST or HOST:PORT) to fetch them.")
    parts.append(f"Fetched files are cached, so a rerun retries only the failures; if a partial "
                 f"dataset is acceptable, raise the limit, e.g. {MAX_FAILED_SHARE_ENV}=0.5.")
    raise TooManyFailures(" ".join(parts))
