"""data.json of image URLs: `{"content": URL, "label": letter}` per record.

The course's file is JSON Lines. A JSON array of the same objects is read
too, as are blank lines and a UTF-8 BOM; anything else is a `SourceError`
naming the line. The file is streamed: JSON Lines line by line, an array
element by element, each bounded, so a huge or hostile file cannot exhaust
memory. The URLs are untrusted: the fetcher's policy decides which are
fetched.
"""

from __future__ import annotations

import codecs
import dataclasses
import functools
import io
import json
import os
from typing import IO, Any, Callable, Iterable, Iterator

import numpy as np

from sign_datasets.io import sources
from sign_datasets.core import near
from sign_datasets.core.cleaning import Dropped, SourceError, screen
from sign_datasets.io.fetcher import Fetcher, FetchResult
from sign_datasets.core.plans import SplitPlan, batched
from sign_datasets.formats.base64_json import (RESIZED_KEY, json_kind, record_facts, sign_example,
                                              to_sign_pixels, unparsable_json, was_resized)
from sign_datasets.core.labels import letter_to_index

# A real record is about 90 bytes; the fetcher refuses URLs over 4 KB anyway.
MAX_RECORD_BYTES = 64 * 1024
UTF8_BOM = b"\xef\xbb\xbf"
_READ_CHUNK = 64 * 1024
_SHOWN_URL = 200
_EXPECTED = '{"content": "<image URL>", "label": "<letter>"}'
_DECODER = json.JSONDecoder()


@dataclasses.dataclass
class UrlRecord:
    """One record of the file, then what became of it on the way to an example."""

    source: str
    line: int
    url: str
    label: str
    label_index: int | None = None
    fetch_url: str = ""
    fetched: FetchResult | None = None
    data: bytes | None = None
    pixels: np.ndarray | None = None
    facts: near.ImageFacts | None = None
    resized: bool = False

    @property
    def where(self) -> str:
        url = self.url if len(self.url) <= _SHOWN_URL else self.url[: _SHOWN_URL - 3] + "..."
        return f"{self.source}:{self.line} {url}"

    @property
    def key(self) -> int:
        return self.line


def _record(value: Any, source: str, line: int) -> UrlRecord:
    if not isinstance(value, dict):
        raise SourceError(f"{source}:{line}: found a JSON {json_kind(value)}; each record "
                          f"must be an object {_EXPECTED}")
    missing = [k for k in ("content", "label") if not isinstance(value.get(k), str)]
    if missing:
        raise SourceError(f"{source}:{line}: {' and '.join(map(repr, missing))} missing or not "
                          f"text; each record must be {_EXPECTED}")
    return UrlRecord(source, line, value["content"], value["label"])


def read(stream: IO[bytes], source: str) -> Iterator[UrlRecord]:
    """Records in file order, each with the line it starts on."""
    if not hasattr(stream, "peek"):
        stream = io.BufferedReader(stream)  # type: ignore[arg-type]
    line_no = _skip_blanks(stream)
    if not line_no:
        raise SourceError(f"{source}: holds no records; expected JSON Lines of {_EXPECTED}")
    # The layout is told by the first character alone: a compact JSON array
    # is one line of any length, so no line is read before knowing.
    if stream.peek(1)[:1] == b"[":
        stream.read(1)
        yield from _read_array(stream, source, line_no)
    else:
        yield from _read_lines(stream, source, line_no)


def _skip_blanks(stream: io.BufferedReader) -> int:
    """Consumes a BOM and blanks; the line of the first other byte, 0 at the end."""
    if stream.peek(3)[:3] == UTF8_BOM:
        stream.read(3)
    line_no = 1
    while True:
        ahead = stream.peek(1)
        if not ahead:
            return 0
        blanks = len(ahead) - len(ahead.lstrip(b" \t\r\n"))
        if blanks == 0:
            return line_no
        line_no += ahead.count(b"\n", 0, blanks)
        stream.read(blanks)


def _check_length(raw: bytes, source: str, line_no: int) -> None:
    if len(raw) > MAX_RECORD_BYTES:
        raise SourceError(f"{source}:{line_no}: line longer than {MAX_RECORD_BYTES} bytes; "
                          f"expected one short record {_EXPECTED} per line")


def _decode(raw: bytes, source: str, line_no: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SourceError(f"{source}:{line_no}: not UTF-8 text (byte {error.start} of the line)") from None


def _read_lines(stream: IO[bytes], source: str, line_no: int) -> Iterator[UrlRecord]:
    while raw := stream.readline(MAX_RECORD_BYTES + 1):
        _check_length(raw, source, line_no)
        text = _decode(raw, source, line_no).strip()
        if text:
            try:
                value = json.loads(text)
            except json.JSONDecodeError as error:
                raise SourceError(f"{source}:{line_no}: not a JSON record ({error.msg} at column "
                                  f"{error.colno}); each line must be {_EXPECTED}") from None
            except (ValueError, RecursionError) as error:
                raise SourceError(f"{source}:{line_no}: {unparsable_json(error)}; each line "
                                  f"must be {_EXPECTED}") from None
            yield _record(value, source, line_no)
        line_no += 1


class _ArrayText:
    """The text after a '[', read in chunks, tracking line numbers.

    Only the unparsed tail is kept, so memory stays bounded by the longest
    element however long the array is.
    """

    def __init__(self, stream: IO[bytes], source: str, line_no: int):
        self.stream, self.source = stream, source
        self.text, self.pos = "", 0
        self.line_at_start = line_no  # line of text[0]
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.eof = False

    def line(self, pos: int | None = None) -> int:
        return self.line_at_start + self.text.count("\n", 0, self.pos if pos is None else pos)

    def more(self) -> bool:
        if self.eof:
            return False
        chunk = self.stream.read(_READ_CHUNK)
        try:
            self.text += self.decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError:
            raise SourceError(f"{self.source}:{self.line(len(self.text))}: not UTF-8 text") from None
        self.eof = not chunk
        return True

    def peek(self) -> str:
        """The next non-blank character ('' at the end of the file)."""
        while True:
            while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < len(self.text):
                return self.text[self.pos]
            # Consumed blanks are let go before reading on, so a file of
            # endless whitespace cannot grow the buffer.
            self.drop_parsed()
            if not self.more():
                return ""

    def value(self) -> tuple[Any, int]:
        """The JSON value at the cursor and the line it starts on."""
        line = self.line()
        while True:
            try:
                value, end = _DECODER.raw_decode(self.text, self.pos)
            except json.JSONDecodeError as error:
                if len(self.text) - self.pos > MAX_RECORD_BYTES:
                    raise SourceError(f"{self.source}:{line}: array element longer than "
                                      f"{MAX_RECORD_BYTES} bytes") from None
                if self.more():
                    continue
                raise SourceError(f"{self.source}:{self.line_at_start + error.lineno - 1}: not valid JSON "
                                  f"({error.msg}); the array must hold objects {_EXPECTED}") from None
            except (ValueError, RecursionError) as error:
                raise SourceError(f"{self.source}:{line}: {unparsable_json(error)}; the array "
                                  f"must hold objects {_EXPECTED}") from None
            self.pos = end
            self.drop_parsed()
            return value, line

    def drop_parsed(self) -> None:
        self.line_at_start = self.line()
        self.text, self.pos = self.text[self.pos:], 0


def _read_array(stream: IO[bytes], source: str, line_no: int) -> Iterator[UrlRecord]:
    """The elements after an opening '[' already read from `stream`."""
    array = _ArrayText(stream, source, line_no)
    if array.peek() == "]":
        array.pos += 1
    else:
        while True:
            if array.peek() == "":
                raise SourceError(f"{source}:{array.line()}: the JSON array is not closed with ']'")
            value, line = array.value()
            yield _record(value, source, line)
            separator = array.peek()
            if separator == "]":
                array.pos += 1
                break
            if separator != ",":
                found = repr(separator) if separator else "the end of the file"
                raise SourceError(f"{source}:{array.line()}: expected ',' or ']' after the "
                                  f"array element of line {line}, found {found}")
            array.pos += 1
    if array.peek() != "":
        raise SourceError(f"{source}:{array.line()}: text after the closing ']' of the array")


# --- rules and the fetch step ----------------------------------------------------

def check_label(record: UrlRecord) -> UrlRecord:
    try:
        record.label_index = letter_to_index(record.label)
    except KeyError:
        raise Dropped("unknown_label", record.where,
                      f"{record.label[:20]!r} is not one of the 24 letters A-I, K-Y") from None
    return record


def rebase(record: UrlRecord, base: str) -> UrlRecord:
    """Points bucket URLs at the active source (replica, mirror, folder)."""
    record.fetch_url = sources.rebase_url(record.url, base)
    return record


def fetched_bytes(record: UrlRecord) -> UrlRecord:
    """Rule: a failed fetch becomes a drop under the fetcher's reason."""
    result = record.fetched
    if result is None or not result.ok:
        reason = result.reason if result is not None else "not_fetched"
        raise Dropped(reason, record.where, result.detail if result is not None else "")
    record.data = result.read_bytes()
    return record


def fetch_records(records: Iterable[UrlRecord], fetcher: Fetcher,
                  base: str | None = None,
                  label_rule: Callable[[UrlRecord], UrlRecord] = check_label,
                  ) -> Iterator[UrlRecord | Dropped]:
    """Records with their fetch results attached, in file order.

    Labels are checked (by `label_rule`, the sign letters by default) before
    fetching, so an unknown label costs no request; those records come
    through as `Dropped` in their place.
    """
    prepare = [label_rule, functools.partial(rebase, base=base or sources.source_base())]
    screened = (screen(record, prepare) for record in records)
    for record, result in fetcher.fetch_all(
            screened, url_of=lambda r: None if isinstance(r, Dropped) else r.fetch_url,
            desc="fetching images"):
        if not isinstance(record, Dropped):
            record.fetched = result
        yield record


def image_rules() -> list:
    """The rules after fetching: failed fetches are dropped, bytes become pixels."""
    return [fetched_bytes, to_sign_pixels]


# --- the plan: the URL list fetched in batches across workers ----------------------

# This process's fetchers, one per (cache, base): a split's batches share
# its connections; `release_fetchers` closes them.
_FETCHERS: dict[tuple[int, str, str], Fetcher] = {}


def _fetcher(cache_dir: str, base: str) -> Fetcher:
    key = (os.getpid(), cache_dir, base)
    fetcher = _FETCHERS.get(key)
    if fetcher is None:
        fetcher = _FETCHERS[key] = Fetcher(cache_dir, source=base)
    return fetcher


def release_fetchers() -> None:
    """Closes this process's fetchers."""
    for key in [key for key in _FETCHERS if key[0] == os.getpid()]:
        _FETCHERS.pop(key).close()


def fetch_batch(batch: list[tuple[int, UrlRecord]], cache_dir: str, base: str,
                label_rule: Callable[[UrlRecord], UrlRecord] = check_label,
                rules: list | None = None) -> list[tuple[int, UrlRecord | Dropped]]:
    """(position, screened record) of a batch, fetched through this process's
    own session and the shared URL cache, so a rebuild fetches nothing again."""
    positions = [position for position, _ in batch]
    rules = rules or image_rules()
    fetched = fetch_records((record for _, record in batch), _fetcher(cache_dir, base), base,
                            label_rule)
    return [(position, record if isinstance(record, Dropped) else screen(record, rules))
            for position, record in zip(positions, fetched)]


def plan(dataset: str, split: str, records: Iterable[tuple[int, UrlRecord]], cache_dir, check,
         label_rule: Callable[[UrlRecord], UrlRecord] = check_label,
         rules: list | None = None, to_example=None, batch: int = 256) -> SplitPlan:
    """The URLs of `records` ((position, record) as the files are read, see
    `plans.positioned`) fetched in batches on the workers. The label rule,
    the rules after fetching and the examples default to the sign datasets'
    own; `check` sees the split's report (the failed share)."""
    base = sources.source_base()
    return SplitPlan(dataset=dataset, split=split, work=batched(records, batch),
                     read=functools.partial(fetch_batch, cache_dir=str(cache_dir), base=base,
                                            label_rule=label_rule, rules=rules),
                     to_example=to_example or sign_example, note=was_resized,
                     note_key=RESIZED_KEY, check=check, release=release_fetchers,
                     in_processes=False,
                     facts=functools.partial(record_facts, to_example=to_example or sign_example))
