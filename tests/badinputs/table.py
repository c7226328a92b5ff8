"""The table of bad-input cases: what each case writes and what its build must end in.

A case module makes its own CaseList and puts a `@case(...)` line above each
maker function; make_corpus.py joins the lists into the whole table.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

FORMATS = {
    "csv": "CSV pixels",
    "json": "JSON-lines URLs",
    "base64": "base64 JSON",
    "zip": "zip of image folders",
    "catalog": "team catalog",
}
DATASET_OF_FORMAT = {
    "csv": "sign_mnist_csv/original",
    "json": "sign_mnist_json/default",
    "base64": "sign_mnist_base64",
    "zip": "sign_language_img/28x28",
    # A catalog case is refused when the catalog is read; nothing is built.
    "catalog": "",
}


@dataclasses.dataclass(frozen=True)
class Expect:
    """What a build of the case must end in.

    Either `error` (the name of the exception class or of one of its bases)
    with `message`, a regex searched in its text; or per-split counts:
    `kept` {split: n} and `drops` {split: {reason: n}}, optionally the junk
    the archive reader counted apart from records. `max_rss_growth_mb`
    bounds the build's peak memory above a warmed-up process.
    """

    error: str | None = None
    message: str | None = None
    kept: dict | None = None
    drops: dict | None = None
    junk: dict | None = None
    max_rss_growth_mb: float | None = None

    def describe(self) -> str:
        if self.error:
            return f"{self.error} /{self.message}/"
        parts = []
        for split, kept in self.kept.items():
            drops = self.drops.get(split, {})
            text = ", ".join(f"{reason}={n}" for reason, n in sorted(drops.items())) or "no drops"
            parts.append(f"{split}: kept {kept}, {text}")
        if self.junk:
            parts.append("junk " + ", ".join(f"{k}={v}" for where in sorted(self.junk)
                                             for k, v in sorted(self.junk[where].items())))
        if self.max_rss_growth_mb:
            parts.append(f"memory growth under {self.max_rss_growth_mb:.0f} MB")
        return "; ".join(parts)


def fails(error: str, message: str) -> Expect:
    return Expect(error=error, message=message)


def counts(train: tuple[int, dict], test: tuple[int, dict] | None = None, junk: dict | None = None,
           max_rss_growth_mb: float | None = None) -> Expect:
    splits = {"train": train} if test is None else {"train": train, "test": test}
    return Expect(kept={s: kept for s, (kept, _) in splits.items()},
                  drops={s: dict(drops) for s, (_, drops) in splits.items()},
                  junk=junk, max_rss_growth_mb=max_rss_growth_mb)


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    fmt: str
    what: str
    make: Callable[[Path], None]
    expect: Expect
    dataset: str
    env: tuple[tuple[str, str], ...] = ()
    # Run alone in a fresh process, which measures its memory.
    isolated: bool = False


class CaseList(list):
    """The cases of one module, in the order they are written."""

    def case(self, case_id: str, fmt: str, what: str, expect: Expect, dataset: str | None = None,
             env: dict | None = None, isolated: bool = False):
        def register(make: Callable[[Path], None]) -> Callable[[Path], None]:
            if any(c.id == case_id for c in self):
                raise ValueError(f"duplicate case id {case_id}")
            self.append(Case(case_id, fmt, what, make, expect, dataset or DATASET_OF_FORMAT[fmt],
                             tuple(sorted((env or {}).items())), isolated))
            return make
        return register
