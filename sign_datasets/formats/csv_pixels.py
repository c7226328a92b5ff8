"""CSV files of pixel rows: `label,pixel1,...,pixelN`, one image per line.

The file is streamed in chunks of lines (`csv_lines`). A chunk is parsed in one call to
pandas' C parser; only a chunk that the fast parse rejects is re-read line by
line, so that each bad row can be named and dropped under its own reason.
`read_chunk` is a pure function of (file name, numbered lines): a Beam
pipeline can hand it any slice of the file.
"""

from __future__ import annotations

import dataclasses
import functools
import io
from typing import IO, Iterator, Sequence

import numpy as np
import pandas as pd

from sign_datasets.core import near
from sign_datasets.core.cleaning import Dropped, DuplicateFilter, SourceError, screen
from sign_datasets.core.plans import SplitPlan, source_position
from sign_datasets.formats import csv_lines
from sign_datasets.formats.csv_lines import (CHUNK_ROWS, CsvFile, CsvRange,
                                             beam_range_bytes, byte_ranges, chunked_lines,
                                             count_line_ends, open_file, range_chunks,
                                             release_streams)
from sign_datasets.io import guards, remote_files

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
    facts: near.ImageFacts | None = None

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
    yield from chunked_lines(stream, source, 1, chunk_rows)


def read_header(stream: IO[bytes], source: str, num_pixels: int = 784) -> int:
    """Checks the header line; returns its length in bytes (where data starts)."""
    header = stream.readline(csv_lines.MAX_LINE_BYTES + 1)
    if not header.strip(UTF8_BOM + b"\r\n \t"):
        raise SourceError(f"{source}: the file is empty (no header, no rows).")
    if len(header) > csv_lines.MAX_LINE_BYTES:
        raise SourceError(f"{source}: line 1 is longer than {csv_lines.MAX_LINE_BYTES} bytes; "
                          "this is not a CSV of pixel rows.")
    parse_header(header, source, num_pixels)
    return len(header)


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
    kept = [row for row in out if not isinstance(row, Dropped)]
    # One batch of hashes per chunk: the DCTs run as a few matrix products.
    for row, facts in zip(kept, near.facts_of_batch([row.pixels for row in kept])):
        row.facts = facts
    return out


def to_example(row: CheckedRow, label_map: dict[int, int]) -> tuple[int, dict]:
    """(key, example) of a kept row: its line number is the key."""
    return row.line, {"image": row.pixels, "label": label_map[row.label]}


def source_keyed_example(row: CheckedRow, label_map: dict[int, int]) -> tuple[str, dict]:
    """(key, example) of a kept row of a split read from several files:
    `file:line` is the key."""
    return f"{row.source}:{row.line}", {"image": row.pixels, "label": label_map[row.label]}


def row_facts(row: CheckedRow, to_example) -> tuple:
    """(facts, label index, key) of a kept row, as the example stores them."""
    key, example = to_example(row)
    return row.facts, example["label"], key


def repeat_content(row: CheckedRow) -> bytes:
    """What `no_repeats` compares, as bytes."""
    return row.label.to_bytes(8, "little", signed=True) + row.pixels.tobytes()


# --- the plan: the files as byte ranges --------------------------------------------


def read_range(work: CsvRange, rules: list, shape: tuple[int, int, int] = (28, 28, 1),
               chunk_rows: int = CHUNK_ROWS) -> Iterator[tuple[int, CheckedRow | Dropped]]:
    """(position, screened row) of the lines starting in a work item's range."""
    source = work.file.source
    for chunk in range_chunks(work, chunk_rows):
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
    size = remote_files.size(file.path)
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
        to_example=to_example, facts=functools.partial(row_facts, to_example=to_example),
        duplicate_content=repeat_content if drop_repeats else None,
        duplicate_reason="duplicate_row", release=release_streams)


def read(stream: IO[bytes], source: str, rules: list, shape=(28, 28, 1),
         chunk_rows: int = CHUNK_ROWS) -> Iterator[CheckedRow | Dropped]:
    """Rows of one CSV stream in file order, screened by `rules`, as uint8
    images; whole-split rules (repeats) are the caller's."""
    num_pixels = shape[0] * shape[1] * shape[2]
    for chunk in iter_chunks(stream, source, num_pixels, chunk_rows):
        yield from prepare_chunk(chunk, source, rules, shape)
