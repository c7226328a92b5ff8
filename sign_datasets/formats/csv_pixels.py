"""CSV files of pixel rows: `label,pixel1,...,pixelN`, one image per line.

The file is streamed in chunks of lines. A chunk is parsed in one call to
pandas' C parser; only a chunk that the fast parse rejects is re-read line by
line, so that each bad row can be named and dropped under its own reason.
`read_chunk` is a pure function of (file name, numbered lines): a Beam
pipeline can hand it any slice of the file.
"""

from __future__ import annotations

import dataclasses
import functools
import io
from typing import IO, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd

from sign_datasets.cleaning import Dropped, DuplicateFilter, SourceError, screen
from sign_datasets.images import encode_png
from sign_datasets.parallel import ordered_map

# A 784-pixel row is under 3.2 KB; a line this long is garbage, and reading it
# whole would let one bad file exhaust memory.
MAX_LINE_BYTES = 1 << 20
CHUNK_ROWS = 2048
UTF8_BOM = b"\xef\xbb\xbf"


@dataclasses.dataclass
class PixelRow:
    """One data line. `values` holds label and pixels once the line parsed;
    `cells` holds the raw fields when it had to be examined one by one."""

    source: str
    line: int
    values: np.ndarray | None = None
    cells: list[bytes] | None = None

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
class EncodedRow:
    """A row that passed the per-row rules, its image already PNG-encoded.

    Small on purpose: it is what worker processes send back."""

    source: str
    line: int
    label: int
    png: bytes

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"


def parse_header(line: bytes, source: str, num_pixels: int) -> None:
    """Checks the header; a file without one is an error, not a guess."""
    text = line.removeprefix(UTF8_BOM).rstrip(b"\r\n").decode("utf-8", "replace")
    names = [name.strip().lower() for name in text.split(",")]
    expected = ["label"] + [f"pixel{i}" for i in range(1, num_pixels + 1)]
    if names == expected:
        return
    if names and names[0].lstrip("-").isdigit():
        raise SourceError(
            f"{source}: line 1 is a data row, not the header "
            f"'label,pixel1,...,pixel{num_pixels}'. Add the header line to the file.")
    shown = text if len(text) < 120 else text[:117] + "..."
    raise SourceError(
        f"{source}: line 1 should be the header 'label,pixel1,...,pixel{num_pixels}' "
        f"({num_pixels + 1} columns); found {len(names)} columns: {shown!r}")


def iter_chunks(stream: IO[bytes], source: str, num_pixels: int = 784,
                chunk_rows: int = CHUNK_ROWS) -> Iterator[list[tuple[int, bytes]] | Dropped]:
    """Streams numbered data lines in chunks after checking the header.

    Overlong lines are skipped without being held in memory and reported as
    `Dropped` items between chunks.
    """
    header = stream.readline(MAX_LINE_BYTES + 1)
    if not header.strip(UTF8_BOM + b"\r\n \t"):
        raise SourceError(f"{source}: the file is empty (no header, no rows).")
    if len(header) > MAX_LINE_BYTES:
        raise SourceError(f"{source}: line 1 is longer than {MAX_LINE_BYTES} bytes; "
                          "this is not a CSV of pixel rows.")
    parse_header(header, source, num_pixels)
    chunk: list[tuple[int, bytes]] = []
    line_no = 1
    while True:
        line = stream.readline(MAX_LINE_BYTES + 1)
        if not line:
            break
        line_no += 1
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while True:  # skip the rest of the line in bounded pieces
                rest = stream.readline(MAX_LINE_BYTES)
                if not rest or rest.endswith(b"\n"):
                    break
            yield Dropped("line_too_long", f"{source}:{line_no}",
                          f"over {MAX_LINE_BYTES} bytes")
            continue
        line = line.rstrip(b"\r\n")
        if not line.strip():
            continue  # blank lines hold no record; a trailing one is normal
        chunk.append((line_no, line))
        if len(chunk) >= chunk_rows:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def read_chunk(source: str, lines: Sequence[tuple[int, bytes]],
               num_pixels: int = 784) -> list[PixelRow]:
    """Parses numbered lines into rows; never raises on bad content."""
    width = num_pixels + 1
    try:
        values = pd.read_csv(
            io.BytesIO(b"\n".join(line for _, line in lines)),
            header=None, names=range(width), dtype=np.int64,
            na_filter=False, engine="c",
        ).to_numpy()
        if values.shape == (len(lines), width):
            return [PixelRow(source, line_no, row) for (line_no, _), row in zip(lines, values)]
    except (ValueError, pd.errors.ParserError, OverflowError):
        pass
    # Some line is irregular: let the rules see each line's raw cells.
    return [PixelRow(source, line_no, cells=line.split(b",")) for line_no, line in lines]


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

def _is_int(cell: bytes) -> bool:
    cell = cell.strip()
    if cell[:1] in (b"-", b"+"):
        cell = cell[1:]
    return cell.isdigit()


def check_cells(row: PixelRow, num_pixels: int = 784) -> PixelRow:
    """Turns raw cells into values, dropping malformed lines.

    A line is judged by its first fault, in the order field count, empty
    cell, non-numeric label, non-numeric pixel, so each line has one reason.
    """
    if row.values is not None:
        return row
    cells = row.cells
    width = num_pixels + 1
    if len(cells) != width:
        raise Dropped("wrong_field_count", row.where, f"{len(cells)} fields, expected {width}")
    if any(not cell.strip() for cell in cells):
        raise Dropped("empty_cell", row.where)
    if not _is_int(cells[0]):
        raise Dropped("non_numeric_label", row.where, repr(cells[0][:20]))
    bad = next((c for c in cells[1:] if not _is_int(c)), None)
    if bad is not None:
        raise Dropped("non_numeric_cell", row.where, repr(bad[:20]))
    row.values = np.array([int(c) for c in cells], dtype=np.int64)
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
    # The PNG is lossless and deterministic, so equal (label, PNG) means equal
    # rows, at a tenth of the bytes to hash.
    return DuplicateFilter(content=lambda row: row.label.to_bytes(8, "little", signed=True) + row.png,
                           where=lambda row: row.where)


# --- chunk -> screened rows with encoded images ------------------------------

def prepare_chunk(chunk: list[tuple[int, bytes]] | Dropped, source: str, rules: list,
                  shape: tuple[int, int, int]) -> list[EncodedRow | Dropped]:
    """Parses one chunk, applies the per-row rules and PNG-encodes the survivors."""
    if isinstance(chunk, Dropped):
        return [chunk]
    out = []
    for row in read_chunk(source, chunk, shape[0] * shape[1] * shape[2]):
        row = screen(row, rules)
        if not isinstance(row, Dropped):
            row = EncodedRow(source, row.line, row.label,
                             encode_png(row.pixels.astype(np.uint8).reshape(shape)))
        out.append(row)
    return out


def read(stream: IO[bytes], source: str, rules: list, shape=(28, 28, 1),
         workers: int | None = None, chunk_rows: int = CHUNK_ROWS) -> Iterator[EncodedRow | Dropped]:
    """Rows of one CSV in file order, screened by `rules`, images encoded.

    Chunks are parsed in parallel; the caller applies whole-split rules
    (repeats) and does the accounting.
    """
    num_pixels = shape[0] * shape[1] * shape[2]
    chunks = iter_chunks(stream, source, num_pixels, chunk_rows)
    work = functools.partial(prepare_chunk, source=source, rules=rules, shape=shape)
    for rows in ordered_map(work, chunks, workers):
        yield from rows
