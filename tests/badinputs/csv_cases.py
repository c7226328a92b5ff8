"""Bad-input cases of the CSV pixels reader (sign_mnist_csv/original: the train
member is the bad one, test is clean)."""

from __future__ import annotations

import zipfile

import numpy as np

from badinputs.sources import (
    CSV_HEADER, CSV_SOURCE, CSV_TEST, CSV_TRAIN, DATABASES_ZIP, GOOD_TEST_CSV, csv_file, csv_row,
    csv_source, databases_zip)
from badinputs.table import CaseList, counts, fails
from badinputs.zips import central_at, member_data_span, patch, write_zip

CASES = CaseList()
case = CASES.case


@case("csv_clean_control", "csv", "a clean CSV (the control every CSV case differs from)",
      counts(train=(3, {}), test=(2, {})))
def _(folder):
    csv_source(folder, csv_file([csv_row(0, 1), csv_row(1, 2), csv_row(2, 3)]))


@case("csv_empty_member", "csv", "the train CSV is 0 bytes",
      fails("SourceError", rf"{CSV_SOURCE}: the file is empty"))
def _(folder):
    csv_source(folder, b"")


@case("csv_100mb_line", "csv",
      "a 100 MB line between two good rows (streamed into the zip; deflates to 100 KB)",
      counts(train=(2, {"line_too_long": 1}), test=(2, {}), max_rss_growth_mb=64),
      isolated=True)
def _(folder):
    def write(stream):
        stream.write(CSV_HEADER + b"\n" + csv_row(0, 10) + b"\n")
        block = b"1234567," * (1 << 17)  # 1 MiB
        for _ in range(100):
            stream.write(block)
        stream.write(b"\n" + csv_row(1, 11) + b"\n")
    csv_source(folder, write)


@case("csv_nul_bytes", "csv", "NUL bytes: inside a pixel, a line of NULs, a NUL-only cell",
      counts(train=(1, {"non_numeric_cell": 2, "wrong_field_count": 1}), test=(2, {})))
def _(folder):
    cells = csv_row(2, 21).split(b",")
    cells[5] += b"\x001"
    inside = b",".join(cells)
    nul_cell = csv_row(3, 22).rsplit(b",", 1)[0] + b",\x00"
    csv_source(folder, csv_file([csv_row(0, 20), inside, b"\x00" * 50, nul_cell]))


@case("csv_nul_in_header", "csv", "a NUL byte inside the header line",
      fails("SourceError", rf"{CSV_SOURCE}: line 1 should be the header"))
def _(folder):
    csv_source(folder, csv_file([csv_row(0, 1)], header=CSV_HEADER.replace(b"pixel5", b"pix\x00el5")))


@case("csv_mixed_encodings", "csv",
      "one row with a Latin-1 byte and one with UTF-8 text in a pixel, one with a UTF-8 BOM mid-file",
      counts(train=(1, {"non_numeric_cell": 2, "non_numeric_label": 1}), test=(2, {})))
def _(folder):
    latin1 = csv_row(1, 31).rsplit(b",", 1)[0] + b",7\xe9"
    utf8 = csv_row(2, 32).rsplit(b",", 1)[0] + ",7é".encode()
    bom = b"\xef\xbb\xbf" + csv_row(3, 33)
    csv_source(folder, csv_file([csv_row(0, 30), latin1, utf8, bom]))


@case("csv_utf16", "csv", "the whole CSV saved as UTF-16 (with its BOM)",
      fails("SourceError", rf"{CSV_SOURCE}: line 1 should be the header"))
def _(folder):
    csv_source(folder, csv_file([csv_row(0, 1)]).decode().encode("utf-16"))


@case("csv_quoted_and_decimal_cells", "csv",
      'cells pandas would accept but the rules do not ("7", 7.0, 7e0), in an otherwise clean chunk',
      counts(train=(1, {"non_numeric_cell": 3}), test=(2, {})))
def _(folder):
    def with_last(seed: int, label: int, cell: bytes) -> bytes:
        return csv_row(label, seed).rsplit(b",", 1)[0] + b"," + cell
    csv_source(folder, csv_file([csv_row(0, 40), with_last(41, 1, b'"7"'), with_last(42, 2, b"7.0"),
                                 with_last(43, 3, b"7e0")]))


@case("csv_huge_integers", "csv", "a pixel and a label of 10**30 (beyond int64)",
      counts(train=(1, {"pixel_out_of_range": 1, "unknown_label": 1}), test=(2, {})))
def _(folder):
    huge = b"1" + b"0" * 30
    pixel = csv_row(1, 51).rsplit(b",", 1)[0] + b"," + huge
    label = huge + b"," + csv_row(2, 52).split(b",", 1)[1]
    csv_source(folder, csv_file([csv_row(0, 50), pixel, label]))


@case("csv_lone_cr_inside_row", "csv", "two rows joined by a lone CR (an old Mac line end)",
      counts(train=(1, {"wrong_field_count": 1}), test=(2, {})))
def _(folder):
    csv_source(folder, csv_file([csv_row(0, 60), csv_row(1, 61) + b"\r" + csv_row(2, 62)]))


@case("csv_cr_only_line_ends", "csv", "a file whose lines all end in CR only",
      fails("SourceError", rf"{CSV_SOURCE}: line 1 should be the header .* found \d+ columns"))
def _(folder):
    csv_source(folder, csv_file([csv_row(0, 1), csv_row(1, 2)], end=b"\r"))


@case("csv_truncated_mid_row", "csv", "the file ends in the middle of a row (no newline)",
      counts(train=(1, {"wrong_field_count": 1}), test=(2, {})))
def _(folder):
    csv_source(folder, csv_file([csv_row(0, 70)]) + csv_row(1, 71)[:900])


@case("csv_repeated_header", "csv", "two CSVs concatenated: a second header mid-file",
      counts(train=(2, {"non_numeric_label": 1}), test=(2, {})))
def _(folder):
    csv_source(folder, csv_file([csv_row(0, 80), CSV_HEADER, csv_row(1, 81)]))


@case("csv_binary_garbage", "csv", "4 KB of random bytes instead of a CSV",
      fails("SourceError", rf"{CSV_SOURCE}: line 1 "))
def _(folder):
    csv_source(folder, bytes(np.random.default_rng(90).integers(1, 256, 4096, dtype=np.uint8)))


@case("csv_gzip_inside_zip", "csv", "a gzip of the CSV stored under the .csv name",
      fails("SourceError", rf"{CSV_SOURCE}: line 1 "))
def _(folder):
    import gzip
    csv_source(folder, gzip.compress(csv_file([csv_row(0, 1)]), mtime=0))


@case("csv_whitespace_lines", "csv",
      "lines of spaces, tabs and form feeds between rows (no record, not counted)",
      counts(train=(2, {}), test=(2, {})))
def _(folder):
    csv_source(folder, csv_file([csv_row(0, 100), b"   ", b"\t", b"\x0c", b"", csv_row(1, 101)]))


@case("csv_archive_empty_file", "csv", "databasesLoadData.zip is 0 bytes",
      fails("DamagedArchiveError", r"<source>/databasesLoadData\.zip: not a readable zip archive .*Replace it and build again"))
def _(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / DATABASES_ZIP).write_bytes(b"")


@case("csv_archive_truncated", "csv", "databasesLoadData.zip cut at 60% (an interrupted download)",
      fails("DamagedArchiveError", r"<source>/databasesLoadData\.zip: not a readable zip archive .*Replace it and build again"))
def _(folder):
    path = csv_source(folder, csv_file([csv_row(i % 3, 110 + i) for i in range(40)]))
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * 0.6)])


@case("csv_archive_is_html", "csv", "an HTML error page saved as databasesLoadData.zip",
      fails("DamagedArchiveError", r"<source>/databasesLoadData\.zip: not a readable zip archive .*Replace it and build again"))
def _(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / DATABASES_ZIP).write_bytes(b"<html><body>503 Service Unavailable</body></html>")


@case("csv_archive_crc_lies", "csv", "the central directory's CRC of the train CSV is wrong",
      fails("DamagedArchiveError",
            rf"<source>/databasesLoadData\.zip: member '{CSV_TRAIN}': damaged between bytes [\d,]+ and [\d,]+ .*Bad CRC-32"))
def _(folder):
    path = csv_source(folder, csv_file([csv_row(i % 3, 120 + i) for i in range(20)]))
    patch(path, lambda d: d.__setitem__(slice(central_at(d, CSV_TRAIN) + 16,
                                              central_at(d, CSV_TRAIN) + 20), b"\0\0\0\0"))


@case("csv_archive_member_damaged", "csv",
      "a hole of zeros in the middle of the train CSV's deflated bytes",
      fails("DamagedArchiveError",
            rf"<source>/databasesLoadData\.zip: member '{CSV_TRAIN}': damaged between bytes [\d,]+ and [\d,]+"))
def _(folder):
    path = csv_source(folder, csv_file([csv_row(i % 3, 130 + i) for i in range(200)]))

    def hole(data):
        start, end = member_data_span(bytes(data), CSV_TRAIN)
        middle = (start + end) // 2
        data[middle:middle + 64] = bytes(64)
    patch(path, hole)


@case("csv_archive_lzma_damaged", "csv", "the train CSV is LZMA-compressed and its stream is corrupt",
      fails("DamagedArchiveError",
            rf"<source>/databasesLoadData\.zip: member '{CSV_TRAIN}': damaged between bytes [\d,]+ and [\d,]+ .*LZMAError"))
def _(folder):
    path = write_zip(folder / DATABASES_ZIP,
                     [(CSV_TRAIN, csv_file([csv_row(i % 3, 140 + i) for i in range(50)])),
                      (CSV_TEST, GOOD_TEST_CSV)], zipfile.ZIP_LZMA)

    def corrupt(data):
        start, end = member_data_span(bytes(data), CSV_TRAIN)
        data[start + 40:start + 80] = b"\xff" * 40
    patch(path, corrupt)


@case("csv_archive_missing_member", "csv", "the zip lacks the train CSV",
      fails("FileNotFoundError", rf"<source>/databasesLoadData\.zip: no member '{CSV_TRAIN}'; it holds \['{CSV_TEST}'\]"))
def _(folder):
    databases_zip(folder, {CSV_TEST: GOOD_TEST_CSV})


@case("csv_all_rows_dropped", "csv", "every train row is bad (fwefew cells)",
      fails("SourceError", r"all 3 records of the train split were dropped.*non_numeric_cell=3 "
                           rf"\(first: {CSV_SOURCE}:2; {CSV_SOURCE}:3; {CSV_SOURCE}:4\)"))
def _(folder):
    bad = b",".join([b"1"] + [b"fwefew"] * 784)
    csv_source(folder, csv_file([bad, bad.replace(b"1,", b"2,", 1), bad.replace(b"1,", b"3,", 1)]))
