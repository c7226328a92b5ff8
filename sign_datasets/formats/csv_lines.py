"""The lines of a CSV, streamed in bounded chunks or cut into byte ranges.

Nothing here parses a cell: `csv_pixels` turns the numbered lines into rows.
A range holds the lines that start inside it, numbered as one pass over the
file numbers them, so ranges read on any worker give every line once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
from typing import IO, Iterator

from sign_datasets.core.cleaning import Dropped
from sign_datasets.io import archives, guards, settings


# A 784-pixel row is under 3.2 KB; a line this long is garbage, and reading it
# whole would let one bad file exhaust memory.
MAX_LINE_BYTES = 1 << 20


CHUNK_ROWS = 2048


# A chunk of 2048 rows of 784 pixels is about 5 MB; long (bad) lines close a
# chunk early, so one chunk never holds 2048 lines of a megabyte each.
MAX_CHUNK_BYTES = 16 << 20


def chunked_lines(stream: IO[bytes], source: str, line_no: int, chunk_rows: int,
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
    yield from chunked_lines(stream, source, line_no, chunk_rows, stop_at=end - start - skipped,
                              cursor=cursor)
    if cursor is not None:
        cursor.pos = start + skipped + cursor.consumed


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
    range_end: int = -1  # where the last range read ended


# Each thread's open zip member, if any (one at a time: a split's ranges come
# in file order). Per thread: Beam runners read ranges on threads of one process.
_MEMBER_CURSOR: dict[tuple[int, int], LineCursor] = {}


def _member_at(file: CsvFile, start: int) -> tuple[LineCursor, int, tuple[int, bool]]:
    """This thread's stream of a zip member, moved on to the range that
    starts at byte `start`: (cursor, where its lines start, (line ends
    before that, whether it follows one)). A range reads the line that
    crosses its end, so the next range's lines start where the stream stands."""
    here = (os.getpid(), threading.get_ident())
    cursor = _MEMBER_CURSOR.get(here)
    if cursor is not None and cursor.file == file and cursor.range_end == start <= cursor.pos:
        return cursor, cursor.pos, (cursor.line_ends, True)
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
    return cursor, start, (cursor.line_ends, at_line_start)


def release_streams() -> None:
    """Closes this thread's open zip member, if any."""
    cursor = _MEMBER_CURSOR.pop((os.getpid(), threading.get_ident()), None)
    if cursor is not None:
        cursor.closer.close()


def range_chunks(work: CsvRange, chunk_rows: int) -> Iterator[list[tuple[int, bytes]] | Dropped]:
    source = work.file.source
    if work.file.member is None:
        with open_file(work.file) as stream:
            yield from iter_range_chunks(stream, source, work.start, work.end,
                                         chunk_rows=chunk_rows, known=work.known)
        return
    cursor, start, known = _member_at(work.file, work.start)
    try:
        yield from iter_range_chunks(cursor.stream, source, start, work.end,
                                     chunk_rows=chunk_rows, known=known, cursor=cursor)
        cursor.range_end = work.end
    except BaseException:
        release_streams()
        raise
