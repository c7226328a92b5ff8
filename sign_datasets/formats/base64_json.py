"""data.json of base64 images keyed by label: `{"b": "/9j/4AAQ..."}`.

The course's file is one pretty-printed object with one entry. Since only
that one file was ever seen, the plausible variants are accepted too: several
labels in one object, a list of such objects, JSON Lines of them, records
`{"label": "b", "image": "..."}`, `data:image/...;base64,` prefixes, line
breaks inside the base64 and missing padding. An entry that still cannot be
used (bad base64, not an image, unknown label) is a counted drop that names
it; only a file whose structure is not one of these is a `SourceError`.

Which reading: every key of an object is one entry (label -> image), so an
object of several images gives as many entries, repeated keys included.
The one exception is a record: an object with both an "image" and a "label"
key whose "label" value is not itself an image (not base64 of JPEG, PNG,
GIF or BMP bytes, nor a data: URI). Its two fields make one entry; any
other key in it is read as label -> image like any key. So
`{"image": "<base64>", "label": "<base64>"}` is two images, of classes
"image" and "label", and `{"label": "<base64>"}` or `{"image": "<base64>"}`
is one image of the class named by its key (an unknown_label drop unless
the dataset has such a class). Nothing in the file is skipped unseen:
records = kept + drops.

Also here: the rule that turns image bytes into the shared 28x28 grayscale
picture, and the example maker that counts resized images; the image-URL
reader (json_urls) uses both.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import json
from typing import IO, Any, Iterable, Iterator

import numpy as np

from sign_datasets.core import images, near
from sign_datasets.core.cleaning import Dropped, SourceError, screen
from sign_datasets.core.labels import letter_to_index
from sign_datasets.core.plans import SplitPlan, batched

# The real file is 677 bytes. The whole file is parsed at once (a pretty-
# printed object has no record boundaries to stream on), so it is bounded.
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_IMAGE_BYTES = 20 * 1024 * 1024
SIGN_SHAPE = (28, 28, 1)
UTF8_BOM = "\ufeff"
RECORD_IMAGE_KEY = "image"
RECORD_LABEL_KEY = "label"
_WHERE_TEXT = 40


_JSON_KINDS = {dict: "object", list: "list", str: "text", int: "number", float: "number",
               bool: "boolean", type(None): "null"}


def json_kind(value: Any) -> str:
    """The JSON name of a parsed value's type, for messages."""
    return _JSON_KINDS.get(type(value), type(value).__name__)


def unparsable_json(error: BaseException) -> str:
    """What the json module refused that is not a syntax error: nesting
    deeper than its recursion limit, or an integer of over 4,300 digits
    (Python's guard against quadratic conversions)."""
    if isinstance(error, RecursionError):
        return "JSON nested too deeply to parse"
    return f"a JSON value that cannot be parsed ({str(error).split(';')[0]})"


def _shown(value: Any) -> str:
    """A short, bounded rendering of untrusted JSON for messages and reports."""
    text = value if isinstance(value, str) else json.dumps(value)
    if len(text) > _WHERE_TEXT:
        text = text[: _WHERE_TEXT - 3] + "..."
    return repr(text) if isinstance(value, str) else text


@dataclasses.dataclass
class Base64Entry:
    """One label/image pair of the file, numbered from 1 in file order."""

    source: str
    number: int
    line: int
    label: Any
    payload: Any
    label_index: int | None = None
    data: bytes | None = None
    pixels: np.ndarray | None = None
    facts: near.ImageFacts | None = None
    resized: bool = False

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line} entry {self.number} label {_shown(self.label)}"

    @property
    def key(self) -> int:
        return self.number


def read(stream: IO[bytes], source: str, max_bytes: int = MAX_FILE_BYTES) -> Iterator[Base64Entry]:
    """Entries of the file in order, each with the line its label starts on.

    Raises SourceError for a file that is not JSON, or whose values are not
    objects of label -> base64 (or lists of them).
    """
    raw = stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise SourceError(f"{source}: larger than {max_bytes} bytes; refusing to parse it")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise SourceError(f"{source}:{line}: not UTF-8 text (byte {error.start})") from None
    walker = _Walker(text.removeprefix(UTF8_BOM), source)
    number = 0
    for line, label, payload in walker.entries():
        number += 1
        yield Base64Entry(source, number, line, label, payload)
    if number == 0:
        raise SourceError(f"{source}: holds no label/image entries; expected an object such as "
                          '{"b": "<base64 JPEG>"}')


class _Walker:
    """Walks the top level of the text by hand, so that each entry knows the
    line it starts on; values themselves are parsed by the json module.

    Accepted: a sequence of top-level values (one value, or JSON Lines), each
    an object or a list of objects.
    """

    def __init__(self, text: str, source: str):
        self.text, self.source = text, source
        self.pos = 0
        self._decoder = json.JSONDecoder()
        self._counted_to, self._lines_before = 0, 0

    def line(self, pos: int | None = None) -> int:
        # Positions only grow, so counting from the last one keeps this linear.
        pos = self.pos if pos is None else pos
        self._lines_before += self.text.count("\n", self._counted_to, pos)
        self._counted_to = pos
        return self._lines_before + 1

    def peek(self) -> str:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
            self.pos += 1
        return self.text[self.pos: self.pos + 1]

    def fail(self, message: str) -> SourceError:
        return SourceError(f"{self.source}:{self.line()}: {message}")

    def value(self) -> Any:
        try:
            value, self.pos = self._decoder.raw_decode(self.text, self.pos)
        except json.JSONDecodeError as error:
            raise SourceError(f"{self.source}:{error.lineno}: not valid JSON at column "
                              f"{error.colno} ({error.msg})") from None
        except (ValueError, RecursionError) as error:
            raise self.fail(unparsable_json(error)) from None
        return value

    def entries(self) -> Iterator[tuple[int, Any, Any]]:
        while (char := self.peek()) != "":
            if char == "{":
                yield from self._object()
            elif char == "[":
                yield from self._list()
            else:
                value = self.value()
                raise self.fail(f"found {json_kind(value)} {_shown(value)}; expected an object "
                                'such as {"b": "<base64 JPEG>"} or a list of them')

    def _list(self) -> Iterator[tuple[int, Any, Any]]:
        self.pos += 1
        if self.peek() == "]":
            self.pos += 1
            return
        position = 0
        while True:
            position += 1
            if self.peek() != "{":
                if self.peek() == "":
                    raise self.fail("the list is not closed with ']'")
                value = self.value()
                raise self.fail(f"element {position} of the list is {json_kind(value)} "
                                f"{_shown(value)}, not an object of label -> base64")
            yield from self._object()
            separator = self.peek()
            self.pos += 1
            if separator == "]":
                return
            if separator != ",":
                raise self.fail(f"expected ',' or ']' in the list, found {_found(separator)}")

    def _object(self) -> Iterator[tuple[int, Any, Any]]:
        # Pairs are collected by hand rather than with json.loads, which
        # would keep only the last of two equal keys and lose an image silently.
        self.pos += 1
        pairs: list[tuple[int, str, Any]] = []
        if self.peek() == "}":
            self.pos += 1
            return
        while True:
            if self.peek() != '"':
                raise self.fail("expected a quoted label (or field name) in the object")
            line = self.line()
            key = self.value()
            if self.peek() != ":":
                raise self.fail(f"expected ':' after {_shown(key)}")
            self.pos += 1
            self.peek()
            pairs.append((line, key, self.value()))
            separator = self.peek()
            self.pos += 1
            if separator == "}":
                break
            if separator != ",":
                raise self.fail(f"expected ',' or '}}' in the object, found {_found(separator)}")
        yield from _object_entries(pairs, self)


# The first bytes of the accepted image formats (images.ACCEPTED_FORMATS).
_IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM")


def looks_like_image_payload(value: Any) -> bool:
    """True when `value` is image data as base64 text or a data: URI; only
    its first characters are decoded."""
    if not isinstance(value, str):
        return False
    text = value.lstrip()
    if text[:5].lower() == "data:":
        return True
    head = "".join(text[:64].split())
    head = head[: len(head) // 4 * 4].translate(str.maketrans("-_", "+/"))
    try:
        start = base64.b64decode(head, validate=True)
    except (binascii.Error, ValueError):
        return False
    return start.startswith(_IMAGE_SIGNATURES)


def _found(char: str) -> str:
    return repr(char) if char else "the end of the file"


def _object_entries(pairs: list[tuple[int, str, Any]], walker: _Walker) -> Iterator[tuple[int, Any, Any]]:
    """(line, label, payload) of every entry of one object, in file order."""
    keys = [key for _, key, _ in pairs]
    if RECORD_IMAGE_KEY not in keys or RECORD_LABEL_KEY not in keys:
        yield from pairs
        return
    # A record {"label": ..., "image": ...}: those two keys are field names,
    # one entry at the first of them; any other key is label -> image as in
    # any object, so an image beside the record is never lost.
    for key in (RECORD_LABEL_KEY, RECORD_IMAGE_KEY):
        if keys.count(key) > 1:
            raise SourceError(f"{walker.source}:{pairs[0][0]}: a record with "
                              f"{keys.count(key)} {key!r} fields")
    fields = {key: value for _, key, value in pairs}
    if looks_like_image_payload(fields[RECORD_LABEL_KEY]):
        yield from pairs  # "label" holds an image: the keys are class names
        return
    record_yielded = False
    for line, key, value in pairs:
        if key not in (RECORD_LABEL_KEY, RECORD_IMAGE_KEY):
            yield line, key, value
        elif not record_yielded:
            record_yielded = True
            yield line, fields.get(RECORD_LABEL_KEY), fields[RECORD_IMAGE_KEY]


# --- rules: plain functions of an entry ----------------------------------------

def check_label(entry):
    """Maps the letter (any case) to its class; J, Z and non-letters are unknown."""
    label = entry.label
    try:
        if not isinstance(label, str):
            raise KeyError(label)
        entry.label_index = letter_to_index(label)
    except KeyError:
        raise Dropped("unknown_label", entry.where,
                      f"{_shown(label)} is not one of the 24 letters A-I, K-Y") from None
    return entry


def decode_base64_text(text: Any, where: str = "", max_bytes: int = MAX_IMAGE_BYTES) -> bytes:
    """The bytes behind base64 text as people paste it: with or without a
    data: URI prefix, line breaks, padding, or the URL-safe alphabet."""
    if not isinstance(text, str):
        raise Dropped("bad_base64", where, f"a JSON {json_kind(text)}, not base64 text")
    if text[:5].lower() == "data:":
        header, comma, text = text.partition(",")
        if not comma or ";base64" not in header.lower():
            raise Dropped("bad_base64", where, "a data: URI without ;base64")
    compact = "".join(text.split())
    if len(compact) > (max_bytes // 3 + 1) * 4:
        raise Dropped("payload_too_large", where, f"decodes to more than {max_bytes} bytes")
    compact = compact.rstrip("=").translate(str.maketrans("-_", "+/"))
    if not compact:
        raise Dropped("bad_base64", where, "empty")
    if len(compact) % 4 == 1:
        raise Dropped("bad_base64", where, f"{len(compact)} characters cannot be base64")
    try:
        return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError) as error:
        raise Dropped("bad_base64", where, str(error)) from None


def decode_payload(entry):
    entry.data = decode_base64_text(entry.payload, entry.where)
    entry.payload = None
    return entry


def to_pixels(record, shape: tuple[int, int, int], mode: str):
    """Rule: `record.data` (image bytes) -> `record.pixels`, (H, W, C) in `mode`.

    Another size is resized rather than dropped; `record.resized` tells, so
    the kept resized records can be counted. Meant as the last rule, so that
    a resized record is never dropped afterwards.
    """
    pixels = images.decode_image(record.data, mode, record.where)
    if pixels.shape[:2] != tuple(shape[:2]):
        pixels = images.resize(pixels, shape[0], shape[1])
        record.resized = True
    record.pixels = pixels
    record.facts = near.facts_of(pixels)
    record.data = None
    return record


def to_sign_pixels(record, shape: tuple[int, int, int] = SIGN_SHAPE):
    """Rule: image bytes -> the sign datasets' grayscale pixels (`to_pixels`)."""
    return to_pixels(record, shape, "L")


def entry_rules() -> list:
    return [check_label, decode_payload, to_sign_pixels]


def sign_example(record) -> tuple[int, dict]:
    """(key, example) of a kept record; the sign datasets store raw uint8
    pixels (builder.sign_features)."""
    return record.key, {"image": record.pixels, "label": record.label_index}


def record_facts(record, to_example) -> tuple:
    """(facts, label index, key) of a kept record, as the example stores them."""
    key, example = to_example(record)
    return record.facts, example["label"], key


def was_resized(record) -> bool:
    return record.resized


def screen_batch(batch: list[tuple[int, Any]], rules: list) -> list[tuple[int, Any]]:
    """(position, screened record) of a batch: a worker's step."""
    return [(position, screen(record, rules)) for position, record in batch]


# Resizes keep the record, so they are no drops; they are still changes the
# user should see, counted beside the cleaning report under this key.
RESIZED_KEY = "resized"


def plan(dataset: str, split: str, records: Iterable[tuple[int, Any]], rules: list | None = None,
         to_example=sign_example, batch: int = 64) -> SplitPlan:
    """The entries of `records` ((position, entry) as the files are read, see
    `plans.positioned`) decoded on the workers in batches; `rules` default
    to the sign datasets' own."""
    return SplitPlan(dataset=dataset, split=split, work=batched(records, batch),
                     read=functools.partial(screen_batch, rules=rules or entry_rules()),
                     to_example=to_example, note=was_resized, note_key=RESIZED_KEY,
                     facts=functools.partial(record_facts, to_example=to_example))
