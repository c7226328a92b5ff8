"""The CSV pixel reader and its rules, on small hand-made files.

Every bad input is either a clear SourceError naming file and line, or a
counted drop under a named reason, with records == kept + drops.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from sign_datasets.core.cleaning import SourceError, SplitReport, clean
from sign_datasets.formats import csv_lines, csv_pixels
from sign_datasets.generate import local
from sign_datasets.core.labels import CSV_LABEL_TO_INDEX

HEADER = "label," + ",".join(f"pixel{i}" for i in range(1, 785))
SOURCE = "test.csv"


def row(label, value=7, count=784):
    return ",".join([str(label)] + [str(value)] * count)


def read_all(text: str | bytes, chunk_rows: int = 4):
    data = text.encode() if isinstance(text, str) else text
    report = SplitReport()
    rows = csv_pixels.read(io.BytesIO(data), SOURCE, csv_pixels.row_rules(CSV_LABEL_TO_INDEX),
                           chunk_rows=chunk_rows)
    kept = list(clean(rows, [csv_pixels.no_repeats()], report))
    report.check_balance()
    return kept, report


def test_clean_file_keeps_every_row_with_exact_pixels():
    lines = [HEADER] + [row(label, value=label * 10) for label in (0, 1, 10, 24)]
    kept, report = read_all("\n".join(lines) + "\n")
    assert report.records == 4 and report.kept == 4 and not report.drops
    assert [r.label for r in kept] == [0, 1, 10, 24]
    assert [r.line for r in kept] == [2, 3, 4, 5]
    pixels = kept[2].pixels
    assert pixels.shape == (28, 28, 1) and pixels.dtype == np.uint8 and (pixels == 100).all()


def test_each_bad_row_is_a_named_drop():
    lines = [
        HEADER,
        row(0),                                   # line 2 kept
        ",".join(["1"] + ["5"] * 700),            # 3 short row
        row(2).replace(",7,", ",,", 1),           # 4 empty cell
        ",".join(["x"] + ["5"] * 784),            # 5 non-numeric label
        ",".join(["3"] + ["fwefew"] * 784),       # 6 non-numeric cell
        row(4, value=256),                        # 7 value 256
        row(5, value=-1),                         # 8 value -1
        row(9),                                   # 9 J: unknown label
        row(25),                                  # 10 Z: unknown label
        row(0),                                   # 11 repeat of line 2
        row(6),                                   # 12 kept
    ]
    kept, report = read_all("\n".join(lines) + "\n")
    assert report.records == 11
    assert report.kept == 2
    assert dict(report.drops) == {
        "wrong_field_count": 1, "empty_cell": 1, "non_numeric_label": 1,
        "non_numeric_cell": 1, "pixel_out_of_range": 2, "unknown_label": 2,
        "duplicate_row": 1,
    }
    assert report.examples["pixel_out_of_range"] == ["test.csv:7", "test.csv:8"]
    assert report.examples["duplicate_row"] == ["test.csv:11"]
    assert [r.line for r in kept] == [2, 12]


def test_bom_and_crlf_are_accepted():
    text = "\ufeff" + "\r\n".join([HEADER, row(1), row(2)]) + "\r\n"
    kept, report = read_all(text)
    assert report.kept == 2 and not report.drops
    assert [r.label for r in kept] == [1, 2]


def test_missing_header_is_a_clear_error_naming_file_and_line():
    with pytest.raises(SourceError, match=r"test.csv: line 1 is a data row.*Add the header"):
        read_all(row(1) + "\n")


def test_wrong_header_lists_what_was_found():
    with pytest.raises(SourceError, match=r"test.csv: line 1 should be the header.*3 columns"):
        read_all("a,b,c\n1,2,3\n")


@pytest.mark.parametrize("content", ["", "\n\n", "\ufeff"])
def test_empty_file_is_a_clear_error(content):
    with pytest.raises(SourceError, match="test.csv: the file is empty"):
        read_all(content)


def test_header_only_gives_zero_records():
    kept, report = read_all(HEADER + "\n")
    assert kept == [] and report.records == 0


def test_overlong_line_is_dropped_without_reading_it_whole(monkeypatch):
    monkeypatch.setattr(csv_lines, "MAX_LINE_BYTES", 20000)
    long_line = "1," + "9" * 70000
    kept, report = read_all("\n".join([HEADER, row(1), long_line, row(2)]) + "\n")
    assert dict(report.drops) == {"line_too_long": 1}
    assert report.examples["line_too_long"] == ["test.csv:3"]
    assert [r.label for r in kept] == [1, 2]


@pytest.mark.parametrize("in_zip", [False, True])
@pytest.mark.parametrize("workers", [1, 2])
def test_plan_on_the_local_runner_reads_as_one_serial_pass(tmp_path, in_zip, workers):
    """The plan's byte ranges, read on several processes (each continuing its
    own stream of a zip member), give the rows, drops and order of one serial
    read: ranges of 5 KB cut through lines."""
    rng = np.random.default_rng(3)
    lines = [HEADER]
    for i in range(60):
        label = [0, 1, 2, 3, 4, 5, 6, 7, 8, 10][i % 10]
        lines.append(",".join([str(label)] + [str(v) for v in rng.integers(0, 256, 784)]))
    lines[17] = ",".join(["3"] + ["fwefew"] * 784)
    lines[30] = lines[29]
    text = "\n".join(lines) + "\n"
    serial, serial_report = read_all(text, chunk_rows=7)
    if in_zip:
        path = tmp_path / "rows.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("data/rows.csv", text)
        file = csv_lines.CsvFile(str(path), "data/rows.csv", SOURCE)
    else:
        path = tmp_path / "rows.csv"
        path.write_text(text)
        file = csv_lines.CsvFile(str(path), None, SOURCE)
    plan = csv_pixels.plan("d", "train", [file], csv_pixels.row_rules(CSV_LABEL_TO_INDEX),
                           lambda row: (row.line, row), range_bytes=5000)
    assert len(plan.work) > 20
    outcome = local.Outcome(SplitReport())
    kept = [row for _, row in local.examples(plan, outcome, workers=workers)]
    assert outcome.report.to_dict() == serial_report.to_dict()
    assert serial_report.drops == {"non_numeric_cell": 1, "duplicate_row": 1}
    assert ([(r.line, r.label, r.pixels.tobytes()) for r in serial]
            == [(r.line, r.label, r.pixels.tobytes()) for r in kept])


def test_one_process_inflates_a_zipped_csv_once(tmp_path, monkeypatch):
    """Ranges of a zip member read in order by one process go on from where
    the last one stopped: the member is opened (and inflated) once, not once
    per range."""
    lines = [HEADER] + [row(label, value=label) for label in [0, 1, 2, 3, 4, 5, 6, 7, 8, 10] * 6]
    path = tmp_path / "rows.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("rows.csv", "\n".join(lines) + "\n")
    file = csv_lines.CsvFile(str(path), "rows.csv", SOURCE)
    plan = csv_pixels.plan("d", "train", [file], csv_pixels.row_rules(CSV_LABEL_TO_INDEX),
                           lambda row: (row.line, row), range_bytes=3000, drop_repeats=False)
    opened = []
    original = csv_lines.open_file
    monkeypatch.setattr(csv_lines, "open_file", lambda f: opened.append(f) or original(f))
    outcome = local.Outcome(SplitReport())
    kept = [line for line, _ in local.examples(plan, outcome, workers=1)]
    assert len(plan.work) > 20 and len(opened) == 1
    assert kept == list(range(2, 62)) and outcome.report.kept == 60
