"""Caps of the CSV pixel reader (formats/csv_pixels.py): a line too long is
one clear error, a header or row far too wide is counted without splitting
it (within a small memory peak), and a chunk keeps to its byte cap.
"""

from __future__ import annotations

import io

import pytest

from sign_datasets.core.cleaning import SourceError, SplitReport, clean
from sign_datasets.core.labels import CSV_LABEL_TO_INDEX
from sign_datasets.formats import csv_lines, csv_pixels


HEADER = "label," + ",".join(f"pixel{i}" for i in range(1, 785))


def read_csv(data: bytes) -> tuple[list, SplitReport]:
    report = SplitReport()
    rows = csv_pixels.read(io.BytesIO(data), "big.csv", csv_pixels.row_rules(CSV_LABEL_TO_INDEX))
    kept = list(clean(rows, [csv_pixels.no_repeats()], report))
    report.check_balance()
    return kept, report


def test_a_header_of_ten_million_columns_is_one_clear_error():
    data = b"label" + b",p" * 10_000_000 + b"\n" + b"0" + b",7" * 784 + b"\n"
    with pytest.raises(SourceError) as caught:
        read_csv(data)
    message = str(caught.value)
    assert message.startswith("big.csv: line 1 is longer than 1048576 bytes")
    assert "\n" not in message and len(message) < 300


def test_a_wide_header_under_the_line_cap_is_counted_not_split(tracemalloc_peak):
    data = b"label" + b",px" * 300_000 + b"\n"
    with tracemalloc_peak() as peak, pytest.raises(SourceError) as caught:
        read_csv(data)
    assert peak() < 8 << 20  # splitting into 300,001 names (and lowering them) is about 25 MB
    assert "found 300001 columns" in str(caught.value)


def test_rows_of_too_many_columns_are_counted_drops_without_splitting(tracemalloc_peak):
    good = b"0" + b",7" * 784
    wide = b"1" + b",77" * 330_000   # 990 KB: under the line cap, far too many columns
    empty = b"2" + b"," * 900_000
    data = b"\n".join([HEADER.encode(), good, wide, empty, b"3" + b",8" * 784]) + b"\n"
    with tracemalloc_peak() as peak:
        kept, report = read_csv(data)
    assert [row.line for row in kept] == [2, 5]
    assert report.records == 4 and dict(report.drops) == {"wrong_field_count": 2}
    assert report.examples["wrong_field_count"] == ["big.csv:3", "big.csv:4"]
    assert peak() < 8 << 20  # splitting line 3 into cells alone is about 15 MB


def test_a_chunk_never_holds_more_than_its_byte_cap():
    line = b"1" + b",7" * 300_000
    stream = io.BytesIO(b"\n".join([HEADER.encode()] + [line] * 60) + b"\n")
    chunks = list(csv_pixels.iter_chunks(stream, "big.csv", chunk_rows=2048))
    assert sum(len(chunk) for chunk in chunks) == 60
    assert len(chunks) > 1
    assert all(sum(len(l) for _, l in chunk) < csv_lines.MAX_CHUNK_BYTES + len(line)
               for chunk in chunks)


@pytest.fixture
def tracemalloc_peak():
    """A context manager: its value, called after the block, is the block's
    peak of Python allocations in bytes."""
    import contextlib
    import tracemalloc

    @contextlib.contextmanager
    def measure():
        peak = [0]
        tracemalloc.start()
        try:
            yield lambda: peak[0]
        finally:
            peak[0] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    return measure
