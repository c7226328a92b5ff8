"""CSV files of pixel rows: `label,pixel1,...,pixelN`, one image per line.

The file is streamed in chunks of lines. A chunk is parsed in one call to
pandas' C parser; only a chunk that the fast parse rejects is re-read line by
line, so that each bad row can be named and dropped under its own reason.
`read_chunk` is a pure function of (file name, numbered lines): a Beam
pipeline can hand it any slice of the file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import os
import threading
from typing import IO, Iterator, Sequence

import numpy as np
import pandas as pd

from sign_datasets.core.cleaning import Dropped, DuplicateFilter, SourceError, screen
from sign_datasets.core.plans import SplitPlan, source_position
from sign_datasets.io import archives, guards, settings

# A 784-pixel row is under 3.2 KB; a line this long is garbage, and reading it
# whole would let one bad file exhaust memory.
MAX_LINE_BYTES = 1 << 20
CHUNK_ROWS = 2048
# A chunk of 2048 rows of 784 pixels is about 5 MB; long (bad) lines close a
# chunk early, so one chunk never holds 2048 lines of a megabyte each.
MAX_CHUNK_BYTES = 16 << 20
# pandas' integer parser also takes quoted cells, "7.0", "7e0" and splits
# lines at a lone CR, none of which the line-by-line rules accept. A row's
# fate must not depend on its neighbours in the chunk (nor on the chunk
# size), so only chunks of these bytes are trusted to the fast parse.
_PLAIN_INTEGER_BYTES = b"0123456789,+- \t\n"
UTF8_BOM = b"\xef\xbb\xbf"


@dataclasses.dataclass
class PixelRow:
    """One data line. `values` holds label and pixels once the line parsed;
    `cells` holds the raw fields when it had to be examined one by one."""

    source: str
    line: int
    values: np.ndarray | None = None
    cells: list[bytes] | None = None
    # The line's field count, when it is not the expected one (cells unsplit).
    fields: int = 0

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"

    @property
    def label(self) -> int:
        return int(self.values[0])

    @property
    def pixels(self) -> np.ndarray:
        return self.values[1:]


@dataclasses.dataclass
class CheckedRow:
    """A row that passed the per-row rules, its pixels as the uint8 image.

    Small on purpose: it is what worker processes send back (784 bytes of
    pixels rather than 785 int64 values)."""

    source: str
    line: int
    label: int
    pixels: np.ndarray

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"


def parse_header(line: bytes, source: str, num_pixels: int) -> None:
    """Checks the header; a file without one is an error, not a guess.

    The columns are counted before the line is split: a header of millions of
    empty columns costs no list of millions of strings."""
    line = line.removeprefix(UTF8_BOM).rstrip(b"\r\n")
    columns = line.count(b",") + 1
    if columns != num_pixels + 1:
        first = line.split(b",", 1)[0].strip()
        if first.lstrip(b"-").isdigit():
            raise _not_a_header(source, num_pixels)
        # 480 bytes hold at least 120 characters: the same text as a whole decode shows.
        text = line[:480].decode("utf-8", "replace")
        shown = text if len(text) < 120 else text[:117] + "..."
        raise SourceError(
            f"{source}: line 1 should be the header 'label,pixel1,...,pixel{num_pixels}' "
            f"({num_pixels + 1} columns); found {columns} columns: {shown!r}")
    text = line.decode("utf-8", "replace")
    names = [name.strip().lower() for name in text.split(",")]
    expected = ["label"] + [f"pixel{i}" for i in range(1, num_pixels + 1)]
    if names == expected:
        return
    if names and names[0].lstrip("-").isdigit():
        raise _not_a_header(source, num_pixels)
    shown = text if len(text) < 120 else text[:117] + "..."
    raise SourceError(
        f"{source}: line 1 should be the header 'label,pixel1,...,pixel{num_pixels}' "
        f"({num_pixels + 1} columns); found {len(names)} columns: {shown!r}")


def _not_a_header(source: str, num_pixels: int) -> SourceError:
    return SourceError(
        f"{source}: line 1 is a data row, not the header "
        f"'label,pixel1,...,pixel{num_pixels}'. Add the header line to the file.")


def iter_chunks(stream: IO[bytes], source: str, num_pixels: int = 784,
                chunk_rows: int = CHUNK_ROWS) -> Iterator[list[tuple[int, bytes]] | Dropped]:
    """Streams numbered data lines in chunks after checking the header.

    Overlong lines are skipped without being held in memory and reported as
    `Dropped` items between chunks.
    """
    read_header(stream, source, num_pixels)
    yield from _chunked_lines(stream, source, 1, chunk_rows)


def read_header(stream: IO[bytes], source: str, num_pixels: int = 784) -> int:
    """Checks the header line; returns its length in bytes (where data starts)."""
    header = stream.readline(MAX_LINE_BYTES + 1)
    if not header.strip(UTF8_BOM + b"\r\n \t"):
        raise SourceError(f"{source}: the file is empty (no header, no rows).")
    if len(header) > MAX_LINE_BYTES:
        raise SourceError(f"{source}: line 1 is longer than {MAX_LINE_BYTES} bytes; "
                          "this is not a CSV of pixel rows.")
    parse_header(header, source, num_pixels)
    return len(header)


def _chunked_lines(stream: IO[bytes], source: str, line_no: int, chunk_rows: int,
                   stop_at: int | None = None, cursor: "LineCursor | None" = None,
                   ) -> Iterator[list[tuple[int, bytes]] | Dropped]:
    """Numbered lines from the stream's position on; `line_no` is the number
    of the line before it. With `stop_at`, no line starting that many bytes
    or more after the position is read (it belongs to the next byte range).
    A `cursor` learns how many line ends were read once the lines end."""
    chunk: list[tuple[int, bytes]] = []
    offset = chunk_bytes = 0
    while stop_at is None or offset < stop_at:
        line = stream.readline(MAX_LINE_BYTES + 1)
        if not line:
            break
        offset += len(line)
        line_no += 1
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while True:  # skip the rest of the line in bounded pieces
                rest = stream.readline(MAX_LINE_BYTES)
                offset += len(rest)
                if not rest or rest.endswith(b"\n"):
                    break
            yield Dropped("line_too_long", f"{source}:{line_no}",
                          f"over {MAX_LINE_BYTES} bytes")
            continue
        line = line.rstrip(b"\r\n")
        if not line.strip():
            continue  # blank lines hold no record; a trailing one is normal
        chunk.append((line_no, line))
        chunk_bytes += len(line)
        if len(chunk) >= chunk_rows or chunk_bytes >= MAX_CHUNK_BYTES:
            yield chunk
            chunk, chunk_bytes = [], 0
    if cursor is not None:
        cursor.line_ends, cursor.consumed = line_no, offset
    if chunk:
        yield chunk


def count_line_ends(stream: IO[bytes], size: int) -> tuple[int, bool]:
    """Reads `size` bytes: (line ends among them, whether the last one is a line end)."""
    newlines, remaining, last = 0, size, b"\n"
    while remaining:
        block = stream.read(min(remaining, 1 << 20))
        if not block:
            break
        newlines += block.count(b"\n")
        remaining -= len(block)
        last = block[-1:]
    return newlines, last == b"\n"


def iter_range_chunks(stream: IO[bytes], source: str, start: int, end: int,
                      chunk_rows: int = CHUNK_ROWS,
                      known: tuple[int, bool] | None = None,
                      cursor: "LineCursor | None" = None,
                      ) -> Iterator[list[tuple[int, bytes]] | Dropped]:
    """The chunks of the data lines that start at byte `start` up to `end`
    (exclusive) of the file, numbered as `iter_chunks` numbers them.

    `start` must lie past the header. Without `known` (a compressed zip
    member cannot seek) the bytes before `start` are read only to count line
    ends; a seekable file's counts can be given as `known` ((line ends before
    `start`, whether byte start-1 is one)). Ranges that cover the file give
    exactly the lines of `iter_chunks`, each once.
    """
    if known is None:
        newlines, at_line_start = count_line_ends(stream, start)
    else:
        if stream.seekable():  # else the caller's stream already stands at start
            stream.seek(start)
        newlines, at_line_start = known
    line_no, skipped = newlines, 0
    if not at_line_start:
        # The line under `start` began in the previous range, which reads it.
        line_no += 1
        while True:
            rest = stream.readline(MAX_LINE_BYTES)
            skipped += len(rest)
            if not rest or rest.endswith(b"\n"):
                break
    yield from _chunked_lines(stream, source, line_no, chunk_rows, stop_at=end - start - skipped,
                              cursor=cursor)
    if cursor is not None:
        cursor.pos = start + skipped + cursor.consumed


def read_chunk(source: str, lines: Sequence[tuple[int, bytes]],
               num_pixels: int = 784) -> list[PixelRow]:
    """Parses numbered lines into rows; never raises on bad content."""
    width = num_pixels + 1
    text = b"\n".join(line for _, line in lines)
    try:
        if text.translate(None, _PLAIN_INTEGER_BYTES):
            raise ValueError("not plain integers")
        # pandas reads a first line with one field too many as an index column
        # plus a good row (its label silently lost), and then every line must
        # have that many; so the chunk's comma count tells such chunks apart.
        # (numpy counts a 6 MB chunk's commas ten times faster than bytes.count.)
        commas = np.count_nonzero(np.frombuffer(text, np.uint8) == ord(","))
        if commas != len(lines) * num_pixels:
            raise ValueError("a line with the wrong number of fields")
        values = pd.read_csv(
            io.BytesIO(text),
            header=None, names=range(width), dtype=np.int64,
            na_filter=False, engine="c",
        ).to_numpy()
        if values.shape == (len(lines), width):
            return [PixelRow(source, line_no, row) for (line_no, _), row in zip(lines, values)]
    except (ValueError, pd.errors.ParserError, OverflowError):
        pass
    # Some line is irregular: let the rules see each line's raw cells.
    return [_irregular_row(source, line_no, line, width) for line_no, line in lines]


def _irregular_row(source: str, line_no: int, line: bytes, width: int) -> PixelRow:
    """A row for the rules to judge. A line of the wrong width is never split:
    its field count is enough, and a megabyte of commas would otherwise be a
    million bytes objects."""
    fields = line.count(b",") + 1
    if fields != width:
        return PixelRow(source, line_no, fields=fields)
    return PixelRow(source, line_no, cells=line.split(b","))


def iter_rows(stream: IO[bytes], source: str, num_pixels: int = 784,
              chunk_rows: int = CHUNK_ROWS) -> Iterator[PixelRow | Dropped]:
    for chunk in iter_chunks(stream, source, num_pixels, chunk_rows):
        if isinstance(chunk, Dropped):
            yield chunk
        else:
            yield from read_chunk(source, chunk, num_pixels)


# --- cleaning rules: plain functions of a PixelRow ---------------------------
# Factories return functools.partial objects so rules can be sent to worker
# processes (closures cannot be pickled).

_INT64_MIN, _INT64_MAX = int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max)


def _is_int(cell: bytes) -> bool:
    cell = cell.strip()
    if cell[:1] in (b"-", b"+"):
        cell = cell[1:]
    return cell.isdigit()


def _saturated(cell: bytes) -> int:
    """A plain integer cell, saturated to int64: a number beyond it is out of
    every pixel range and label map anyway, so the later rules name its drop.
    Past 19 digits it is never handed to int(), which refuses strings of over
    4,300 digits and is quadratic below that."""
    cell = cell.strip()
    if len(cell.lstrip(b"+-").lstrip(b"0")) > 19:
        return _INT64_MIN if cell.startswith(b"-") else _INT64_MAX
    return min(max(int(cell), _INT64_MIN), _INT64_MAX)


def check_cells(row: PixelRow, num_pixels: int = 784) -> PixelRow:
    """Turns raw cells into values, dropping malformed lines.

    A line is judged by its first fault, in the order field count, empty
    cell, non-numeric label, non-numeric pixel, so each line has one reason.
    """
    if row.values is not None:
        return row
    cells = row.cells
    width = num_pixels + 1
    if cells is None or len(cells) != width:
        fields = row.fields if cells is None else len(cells)
        raise Dropped("wrong_field_count", row.where, f"{fields} fields, expected {width}")
    if any(not cell.strip() for cell in cells):
        raise Dropped("empty_cell", row.where)
    if not _is_int(cells[0]):
        raise Dropped("non_numeric_label", row.where, repr(cells[0][:20]))
    bad = next((c for c in cells[1:] if not _is_int(c)), None)
    if bad is not None:
        raise Dropped("non_numeric_cell", row.where, repr(bad[:20]))
    row.values = np.array([_saturated(c) for c in cells], dtype=np.int64)
    row.cells = None
    return row


def pixel_range(row: PixelRow) -> PixelRow:
    pixels = row.pixels
    if pixels.min() < 0 or pixels.max() > 255:
        raise Dropped("pixel_out_of_range", row.where,
                      f"min {pixels.min()}, max {pixels.max()}")
    return row


def check_label(row: PixelRow, label_map: dict[int, int]) -> PixelRow:
    if row.label not in label_map:
        raise Dropped("unknown_label", row.where, f"label {row.label}")
    return row


def row_rules(label_map: dict[int, int], num_pixels: int = 784) -> list:
    """The per-row rules; each looks at one row only, so workers can run them."""
    return [functools.partial(check_cells, num_pixels=num_pixels), pixel_range,
            functools.partial(check_label, label_map=label_map)]


def no_repeats() -> DuplicateFilter:
    """Rule: an exact repeat of an earlier row of the same split is dropped.

    It needs to see the whole split in order, so it runs in the main process.
    """
    # Hashing the uint8 pixels rather than the parsed int64 values reads an
    # eighth of the bytes; the range rule already ran, so nothing is lost.
    return DuplicateFilter(content=repeat_content, where=lambda row: row.where)


# --- chunk -> screened rows with their images --------------------------------

def prepare_chunk(chunk: list[tuple[int, bytes]] | Dropped, source: str, rules: list,
                  shape: tuple[int, int, int]) -> list[CheckedRow | Dropped]:
    """Parses one chunk, applies the per-row rules and shapes the survivors' images."""
    if isinstance(chunk, Dropped):
        return [chunk]
    out = []
    for row in read_chunk(source, chunk, shape[0] * shape[1] * shape[2]):
        row = screen(row, rules)
        if not isinstance(row, Dropped):
            row = CheckedRow(source, row.line, row.label,
                             row.pixels.astype(np.uint8).reshape(shape))
        out.append(row)
    return out


def to_example(row: CheckedRow, label_map: dict[int, int]) -> tuple[int, dict]:
    """(key, example) of a kept row: its line number is the key."""
    return row.line, {"image": row.pixels, "label": label_map[row.label]}


def source_keyed_example(row: CheckedRow, label_map: dict[int, int]) -> tuple[str, dict]:
    """(key, example) of a kept row of a split read from several files:
    `file:line` is the key."""
    return f"{row.source}:{row.line}", {"image": row.pixels, "label": label_map[row.label]}


def repeat_content(row: CheckedRow) -> bytes:
    """What `no_repeats` compares, as bytes."""
    return row.label.to_bytes(8, "little", signed=True) + row.pixels.tobytes()


# --- the plan: the files as byte ranges --------------------------------------------

BEAM_RANGE_ENV = "SIGN_DATASETS_BEAM_RANGE_BYTES"
# Each range of a zip member is met by inflating the member up to its start;
# a process goes on from where its previous range ended (`_MemberCursor`),
# so locally each process inflates the member about once. On Beam ranges
# land anywhere, so they are not tiny: a 80 MB CSV gives 10 ranges and about
# 400 MB inflated in all (about a second). Plain files seek.
DEFAULT_RANGE_BYTES = 8 << 20
MAX_RANGES = 256


def beam_range_bytes() -> int:
    return settings.number(BEAM_RANGE_ENV, DEFAULT_RANGE_BYTES, int, minimum=1)


@dataclasses.dataclass(frozen=True)
class CsvFile:
    """One CSV of a split: a plain file, or a member of the zip at `path`."""

    path: str
    member: str | None
    source: str  # its name in errors, drops and keys


@dataclasses.dataclass(frozen=True)
class CsvRange:
    """A work item: the lines starting in [start, end) of the `index`-th
    file of the split."""

    index: int
    file: CsvFile
    start: int
    end: int
    # For a plain file: (line ends before start, whether start follows one),
    # counted once when the plan is made so that workers seek instead of reading.
    known: tuple[int, bool] | None = None


def byte_ranges(start: int, size: int, range_bytes: int) -> list[tuple[int, int]]:
    """[start, size) cut into consecutive ranges of about `range_bytes`."""
    if size <= start:
        return []
    count = min(MAX_RANGES, max(1, -(-(size - start) // max(1, range_bytes))))
    step = -(-(size - start) // count)
    return [(at, min(at + step, size)) for at in range(start, size, step)]


def open_file(file: CsvFile):
    if file.member is not None:
        return archives.open_member(file.path, file.member)
    return guards.open_source(file.path)


@dataclasses.dataclass
class LineCursor:
    """Where a process's open stream of a zip member stands: its byte
    position and the line ends before it."""

    file: CsvFile
    stream: IO[bytes]
    closer: contextlib.ExitStack
    pos: int = 0
    line_ends: int = 0
    consumed: int = 0  # bytes the last run of lines read


# Each thread's open zip member, if any (one at a time: a split's ranges come
# in file order). Per thread: Beam runners read ranges on threads of one process.
_MEMBER_CURSOR: dict[tuple[int, int], LineCursor] = {}


def _member_at(file: CsvFile, start: int) -> tuple[LineCursor, tuple[int, bool]]:
    """This process's stream of a zip member, moved on to byte `start`, and
    (line ends before start, whether start follows one)."""
    here = (os.getpid(), threading.get_ident())
    cursor = _MEMBER_CURSOR.get(here)
    if cursor is None or cursor.file != file or cursor.pos > start:
        release_streams()
        closer = contextlib.ExitStack()
        stream = closer.enter_context(open_file(file))
        cursor = _MEMBER_CURSOR[here] = LineCursor(file, stream, closer)
    newlines, at_line_start = count_line_ends(cursor.stream, start - cursor.pos)
    if start == cursor.pos:
        at_line_start = True  # lines are read to their end, and 0 starts one
    cursor.pos = start
    cursor.line_ends += newlines
    return cursor, (cursor.line_ends, at_line_start)


def release_streams() -> None:
    """Closes this thread's open zip member, if any."""
    cursor = _MEMBER_CURSOR.pop((os.getpid(), threading.get_ident()), None)
    if cursor is not None:
        cursor.closer.close()


def _range_chunks(work: CsvRange, chunk_rows: int) -> Iterator[list[tuple[int, bytes]] | Dropped]:
    source = work.file.source
    if work.file.member is None:
        with open_file(work.file) as stream:
            yield from iter_range_chunks(stream, source, work.start, work.end,
                                         chunk_rows=chunk_rows, known=work.known)
        return
    cursor, known = _member_at(work.file, work.start)
    try:
        yield from iter_range_chunks(cursor.stream, source, work.start, work.end,
                                     chunk_rows=chunk_rows, known=known, cursor=cursor)
    except BaseException:
        release_streams()
        raise


def read_range(work: CsvRange, rules: list, shape: tuple[int, int, int] = (28, 28, 1),
               chunk_rows: int = CHUNK_ROWS) -> Iterator[tuple[int, CheckedRow | Dropped]]:
    """(position, screened row) of the lines starting in a work item's range."""
    source = work.file.source
    for chunk in _range_chunks(work, chunk_rows):
        if isinstance(chunk, Dropped):
            yield source_position(work.index, int(chunk.where.rsplit(":", 1)[1])), chunk
            continue
        rows = prepare_chunk(chunk, source, rules, shape)
        yield from zip((source_position(work.index, line_no) for line_no, _ in chunk), rows)


def file_ranges(index: int, file: CsvFile, num_pixels: int, range_bytes: int) -> list[CsvRange]:
    """A file's work items; its header is checked here, before any worker
    starts, as a one-process read checks it before any row."""
    if file.member is not None:
        with open_file(file) as stream:
            data_start = read_header(stream, file.source, num_pixels)
        with guards.open_zip(file.path) as zf:
            size = zf.getinfo(file.member).file_size
        return [CsvRange(index, file, *r) for r in byte_ranges(data_start, size, range_bytes)]
    size = os.path.getsize(file.path)
    ranges = []
    with guards.open_source(file.path) as stream:
        data_start = read_header(stream, file.source, num_pixels)
        # From the header's line end on, counted range start by range start.
        lines, at_line_start, at = 1, True, data_start
        for start, end in byte_ranges(data_start, size, range_bytes):
            if start > at:
                newlines, at_line_start = count_line_ends(stream, start - at)
                lines, at = lines + newlines, start
            ranges.append(CsvRange(index, file, start, end, (lines, at_line_start)))
    return ranges


def plan(dataset: str, split: str, files: Sequence[CsvFile], rules: list, to_example,
         shape=(28, 28, 1), drop_repeats: bool = True, range_bytes: int | None = None) -> SplitPlan:
    """The split's files as byte ranges, in order; each file's header is
    checked before any worker starts. Exact repeats of a row are dropped
    unless `drop_repeats` is false."""
    num_pixels = shape[0] * shape[1] * shape[2]
    if range_bytes is None:
        range_bytes = beam_range_bytes()
    work = [item for index, file in enumerate(files)
            for item in file_ranges(index, file, num_pixels, range_bytes)]
    return SplitPlan(
        dataset=dataset, split=split, work=work,
        read=functools.partial(read_range, rules=rules, shape=tuple(shape)),
        to_example=to_example,
        duplicate_content=repeat_content if drop_repeats else None,
        duplicate_reason="duplicate_row", release=release_streams)


def read(stream: IO[bytes], source: str, rules: list, shape=(28, 28, 1),
         chunk_rows: int = CHUNK_ROWS) -> Iterator[CheckedRow | Dropped]:
    """Rows of one CSV stream in file order, screened by `rules`, as uint8
    images; whole-split rules (repeats) are the caller's."""
    num_pixels = shape[0] * shape[1] * shape[2]
    for chunk in iter_chunks(stream, source, num_pixels, chunk_rows):
        yield from prepare_chunk(chunk, source, rules, shape)
