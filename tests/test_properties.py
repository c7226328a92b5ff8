"""Properties of the readers on generated input (hypothesis).

For any input: the reader either yields records or stops with a
SourceError, never another exception; every record it yields ends up kept
or dropped under a named reason (records == kept + drops); and how a CSV
file is cut into chunks never changes what becomes of a row.
"""

from __future__ import annotations

import io
import json
import posixpath
import re
import warnings
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from sign_datasets.core.cleaning import Dropped, SourceError, SplitReport, clean
from sign_datasets.formats import base64_json, csv_pixels, json_urls

FAST = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# --- CSV rows ---------------------------------------------------------------------------

# 2x2 images keep rows short: 1 label + 4 pixels.
SHAPE = (2, 2, 1)
PIXELS = 4
HEADER = b"label," + b",".join(b"pixel%d" % i for i in range(1, PIXELS + 1))
LABELS = {0: 0, 1: 1, 2: 2, 10: 9}

# Cells as real files hold them, plus every byte pandas and the rules might
# read differently: quotes, decimals, exponents, signs, blanks, CR, NUL, Latin-1.
cell = st.one_of(
    st.integers(-3, 300).map(lambda n: str(n).encode()),
    st.sampled_from([b"", b" ", b"7 ", b" 7", b"+7", b"-0", b"--7", b"7.0", b"7e0", b'"7"', b"0x7",
                     b"fwefew", b"\x00", b"7\x00", b"\r", b"7\r8", b"\xe9", b"\t7", b"1" * 25,
                     b"\xef\xbb\xbf7", b"\x0b7", b"\xd9\xa3"]),
    st.binary(max_size=4).filter(lambda b: b"\n" not in b),
)
row = st.lists(cell, min_size=3, max_size=7).map(lambda cells: b",".join(cells))
plain_row = st.tuples(st.sampled_from(sorted(LABELS)), st.lists(st.integers(0, 255), min_size=4,
                                                                   max_size=4)) \
    .map(lambda r: b",".join(str(v).encode() for v in (r[0], *r[1])))
# At most 10 lines: the report lists up to 10 places per reason, so every drop is seen.
csv_lines = st.lists(st.one_of(row, plain_row, plain_row), max_size=10)


def csv_outcomes(lines: list[bytes], chunk_rows: int) -> tuple[list, SplitReport]:
    """What became of each row: (line, 'kept', label, pixels) or (line, reason)."""
    data = HEADER + b"\n" + b"\n".join(lines) + b"\n"
    report = SplitReport()
    rows = csv_pixels.read(io.BytesIO(data), "p.csv", csv_pixels.row_rules(LABELS, PIXELS),
                           shape=SHAPE, chunk_rows=chunk_rows)
    kept = [(r.line, "kept", r.label, r.pixels.tobytes())
            for r in clean(rows, [csv_pixels.no_repeats()], report)]
    dropped = [(int(where.rsplit(":", 1)[1]), reason)
               for reason, wheres in report.examples.items() for where in wheres]
    return sorted(kept + dropped), report


@FAST
@given(lines=csv_lines, chunk_rows=st.integers(1, 5))
@example(lines=[b'1,"7",7,7,7', b"2,7.0,7,7,7", b"x"], chunk_rows=3)
@example(lines=[b"1,7,7,7,7\r2,7,7,7,7", b"1,2,3,4,5"], chunk_rows=2)
@example(lines=[b"1,99999999999999999999999,7,7,7"], chunk_rows=1)
def test_csv_rows_are_all_accounted_for_whatever_the_chunking(lines, chunk_rows):
    one_by_one, report = csv_outcomes(lines, chunk_rows=1)
    chunked, chunked_report = csv_outcomes(lines, chunk_rows=chunk_rows)
    whole, _ = csv_outcomes(lines, chunk_rows=max(1, len(lines)))
    # Lines of only blanks hold no record; every other line is one record.
    assert report.records == sum(1 for line in lines if line.strip())
    assert report.records == report.kept + report.dropped
    # Fewer than 10 drops per reason here, so every dropped line is listed.
    assert len(one_by_one) == report.records
    assert one_by_one == chunked == whole
    assert report.to_dict() == chunked_report.to_dict()


@FAST
@given(data=st.binary(max_size=300))
def test_csv_reader_on_any_bytes_raises_nothing_but_source_errors(data):
    report = SplitReport()
    try:
        rows = csv_pixels.read(io.BytesIO(data), "p.csv", csv_pixels.row_rules(LABELS, PIXELS),
                               shape=SHAPE, chunk_rows=3)
        list(clean(rows, [csv_pixels.no_repeats()], report))
    except SourceError as error:
        assert str(error).startswith("p.csv")
    assert report.records == report.kept + report.dropped


# --- base64 ---------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children,
                                                                     max_size=4),
    max_leaves=12)
base64_text = st.one_of(
    st.text(max_size=60),
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ \n\r\t",
            max_size=80),
    st.binary(max_size=60).map(lambda b: __import__("base64").b64encode(b).decode()),
    st.sampled_from(["data:image/png;base64,", "data:,", "====", "A", "AB==", "\u0000", "\ud800"]),
)


@FAST
@given(value=st.one_of(base64_text, json_values))
def test_base64_decoder_returns_bytes_or_a_named_drop(value):
    try:
        decoded = base64_json.decode_base64_text(value, "b.json:1")
    except Dropped as drop:
        assert drop.reason in ("bad_base64", "payload_too_large") and drop.where == "b.json:1"
    else:
        assert isinstance(decoded, bytes)


base64_documents = st.one_of(
    st.dictionaries(st.text(max_size=3), st.one_of(base64_text, json_values), max_size=5)
    .map(lambda d: json.dumps(d).encode()),
    st.lists(st.dictionaries(st.sampled_from(["label", "image", "b", "c"]), base64_text, max_size=3),
             max_size=4).map(lambda items: json.dumps(items).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=120),
)


@FAST
@given(document=base64_documents)
def test_base64_entries_are_all_accounted_for(document):
    report = SplitReport()
    try:
        entries = base64_json.read(io.BytesIO(document), "b.json")
        kept = list(clean(entries, base64_json.entry_rules(), report))
    except SourceError as error:
        assert str(error).startswith("b.json")
        return
    assert report.records == report.kept + report.dropped == len(kept) + report.dropped
    assert all(entry.pixels.shape == (28, 28, 1) for entry in kept)


# --- JSON lines of URLs ---------------------------------------------------------------------

def url_record(url: str, label: str) -> bytes:
    return json.dumps({"content": url, "label": label}).encode()


url = st.one_of(st.text(max_size=40),
                st.sampled_from(["file:///etc/passwd", "http://169.254.169.254/", "ftp://x/a.jpg",
                                 "https://storage.googleapis.com/platzi-tf2/img_mnist/1_A.jpg",
                                 "https://storage.googleapis.com/platzi-tf2/../x.jpg"]))
json_line = st.one_of(
    st.builds(url_record, url, st.one_of(st.sampled_from(["a", "B", "j", "z", ""]), st.text(max_size=3))),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=30).filter(lambda b: b"\n" not in b),
    st.just(b""), st.just(b"   "),
)


@FAST
@given(lines=st.lists(json_line, max_size=8), crlf=st.booleans())
def test_json_lines_reader_and_fetch_account_for_every_record(lines, crlf, tmp_path_factory):
    from sign_datasets.io.fetch_settings import FetchSettings
    from sign_datasets.io.fetcher import Fetcher

    data = (b"\r\n" if crlf else b"\n").join(lines)
    source = tmp_path_factory.getbasetemp() / "json-source"
    source.mkdir(exist_ok=True)
    report = SplitReport()
    settings_ = FetchSettings(workers=2, retries=0, progress=False)
    try:
        with Fetcher(source / "cache", settings_, source=str(source)) as fetcher:
            records = json_urls.fetch_records(json_urls.read(io.BytesIO(data), "d.json"), fetcher,
                                              base=source.resolve().as_uri() + "/")
            list(clean(records, json_urls.image_rules(), report))
    except SourceError as error:
        assert str(error).startswith("d.json")
        return
    # The reader skips lines that are only whitespace in Python's sense (str.strip).
    blank = sum(1 for line in lines if not line.decode("utf-8").strip())
    if not data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"["):
        assert report.records == len(lines) - blank
    assert report.records == report.kept + report.dropped


# --- member names of image-folder zips ---------------------------------------------------

zip_layout = pytest.importorskip("sign_datasets.formats.zip_layout")

name_part = st.one_of(st.sampled_from(["Train", "Test", "train", "A", "B", "..", ".", "", "C:", "c:",
                                       "__MACOSX", ".hidden", "x.png", "y.jpg", "a.txt", "b.zip",
                                       "Thumbs.db", " ", "A\\..", "..\\.."]),
                      st.text(alphabet=st.characters(blacklist_categories=("Cs",),
                                                    blacklist_characters="\x00/"), max_size=6))
member_name = st.lists(name_part, min_size=1, max_size=5).flatmap(
    lambda parts: st.sampled_from(["/", "\\"]).map(lambda sep: sep.join(parts)))


@FAST
@given(name=st.one_of(member_name, st.text(max_size=30)))
@example(name="Train/A/../../../etc/x.png")
@example(name="C:\\Windows\\x.png")
@example(name="./C:/x.png")
@example(name="Train/A/x.png\x00.txt")
def test_member_names_never_reach_outside_the_archive(name):
    parts = zip_layout.normalised_parts(name)
    if parts is None:
        return
    assert parts and all(part not in ("", ".", "..") for part in parts)
    assert all("/" not in part and "\\" not in part and "\x00" not in part for part in parts)
    joined = posixpath.normpath(posixpath.join("/root", *parts))
    assert joined.startswith("/root/") and not re.match(r"[A-Za-z]:", parts[0])  # no drive


def _plain_normalised_parts(raw_name):
    """The obvious version of zip_layout.normalised_parts, as the oracle."""
    name = raw_name.replace("\\", "/")
    if "\x00" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return None
    parts = tuple(part for part in name.split("/") if part not in ("", "."))
    if not parts or ".." in parts or re.match(r"^[A-Za-z]:", parts[0]):
        return None
    return parts


def _plain_junk_kind(parts):
    if any(part.lower() == "__macosx" for part in parts):
        return "macos_metadata"
    if any(part.startswith(".") for part in parts):
        return "hidden_file"
    file_name = parts[-1].lower()
    if file_name in ("thumbs.db", "ehthumbs.db"):
        return "thumbs_db"
    if file_name == "desktop.ini":
        return "desktop_ini"
    suffix = posixpath.splitext(file_name)[1]
    if suffix in zip_layout.TEXT_SUFFIXES:
        return "text_file"
    if suffix in zip_layout.ARCHIVE_SUFFIXES:
        return "nested_archive"
    return None


@settings(max_examples=400, deadline=None)
@given(name=st.one_of(member_name, st.text(max_size=30),
                      st.lists(st.sampled_from(["a", ".b", "c.TXT", "d.tar.gz", "e.", "f..zip",
                                                "__MacOSX", "Desktop.ini", "x.Jpg", "..", "."]),
                               min_size=1, max_size=4).map("/".join)))
def test_the_fast_name_rules_agree_with_the_plain_ones(name):
    parts = zip_layout.normalised_parts(name)
    assert parts == _plain_normalised_parts(name)
    if parts is not None:
        assert zip_layout.junk_kind(parts) == _plain_junk_kind(parts)


folder_name = st.lists(name_part, min_size=0, max_size=4).flatmap(
    lambda parts: st.sampled_from(["/", "\\"]).map(lambda sep: "".join(p + sep for p in parts)))
file_name = st.one_of(name_part, st.sampled_from(["C:x.png", "c:", "..", ".", "", ".x", "y\x00.png",
                                                  "__macosx", "THUMBS.DB", "z.ZIP"]))


@settings(max_examples=300, deadline=None)
@given(folders=st.lists(folder_name, min_size=1, max_size=4),
       files=st.lists(st.tuples(st.integers(0, 3), file_name), min_size=1, max_size=12))
@example(folders=["./", "Train/"], files=[(0, "C:x.png"), (1, "a.png"), (0, "a.png")])
@example(folders=["/", "a/../"], files=[(0, "x.png"), (1, "x.png")])
def test_names_judged_per_folder_agree_with_the_plain_rules(folders, files):
    """classify_names judges a folder once for all its members: it must give,
    member by member, what the plain functions give for the whole name."""
    names = [folders[which % len(folders)] + name for which, name in files]
    expected = []
    for name in names:
        parts = _plain_normalised_parts(name)
        expected.append((parts, None if parts is None else _plain_junk_kind(parts)))
    assert list(zip_layout.classify_names(names)) == expected


@FAST
@given(extra=st.lists(member_name, max_size=8))
def test_every_zip_member_is_a_record_junk_or_stops_the_scan(extra, tmp_path_factory):
    from sign_datasets.core.labels import SIGN_LETTERS

    path = tmp_path_factory.getbasetemp() / "names.zip"
    base = ["Train/A/1.png", "Test/A/1.png"]
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w") as zf:
        warnings.simplefilter("ignore", UserWarning)
        for name in base + extra:
            zf.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), b"x")
    with zipfile.ZipFile(path) as zf:
        files = [info for info in zf.infolist() if not info.filename.endswith("/")]
    try:
        archive = zip_layout.scan_archive(Path(path), SIGN_LETTERS)
    except SourceError as error:
        assert str(error).startswith("names.zip")
        return
    records = sum(len(members) for members in archive.records.values())
    junk = sum(sum(kinds.values()) for kinds in archive.junk.values())
    assert records + junk == len(files)
