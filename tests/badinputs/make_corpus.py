"""Writes the bad-input corpus: one source folder per case, in the bucket's layout.

Each case is a maker function that writes the objects one dataset reads
(databasesLoadData.zip, img_mnist/ images, or an image-folder zip), and the
`@case` line above it states what the real build must do with them: stop
with an error whose message names the file and the place, or finish with
exact counts of kept records and drops by reason.

Nothing here is committed as binary: every input is generated, big ones
streamed straight to disk, so the same command makes the same corpus.

    .venv/bin/python tests/badinputs/make_corpus.py DIR [CASE_ID ...]
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import stat
import struct
import sys
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from PIL import Image

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SIGN_LETTERS = tuple("ABCDEFGHIKLMNOPQRSTUVWXY")
BUCKET = "https://storage.googleapis.com/platzi-tf2/"
DATABASES_ZIP = "databasesLoadData.zip"
CSV_TRAIN = "sign_mnist_train/sign_mnist_train.csv"
CSV_TEST = "sign_mnist_test/sign_mnist_test.csv"
JSON_MEMBER = "sign_mnist_json/data.json"
BASE64_MEMBER = "sign_mnist_base64/data.json"
SIGN_ZIP = "sign-language-img.zip"
MALARIA_ZIP = "MalariaCells.zip"
FIXED_TIME = (1980, 1, 1, 0, 0, 0)

# What the CSV, JSON and base64 readers name as their source in messages.
CSV_SOURCE = f"{DATABASES_ZIP}/{CSV_TRAIN}"
JSON_SOURCE = f"{DATABASES_ZIP}/{JSON_MEMBER}"
BASE64_SOURCE = f"{DATABASES_ZIP}/{BASE64_MEMBER}"

FORMATS = {
    "csv": "CSV pixels",
    "json": "JSON-lines URLs",
    "base64": "base64 JSON",
    "zip": "zip of image folders",
    "catalog": "team catalog",
}
DATASET_OF_FORMAT = {
    "csv": "sign_mnist_csv/original",
    "json": "sign_mnist_json/default",
    "base64": "sign_mnist_base64",
    "zip": "sign_language_img/28x28",
    # A catalog case is refused when the catalog is read; nothing is built.
    "catalog": "",
}


# --- the cases table ---------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Expect:
    """What a build of the case must end in.

    Either `error` (the name of the exception class or of one of its bases)
    with `message`, a regex searched in its text; or per-split counts:
    `kept` {split: n} and `drops` {split: {reason: n}}, optionally the junk
    the archive reader counted apart from records. `max_rss_growth_mb`
    bounds the build's peak memory above a warmed-up process.
    """

    error: str | None = None
    message: str | None = None
    kept: dict | None = None
    drops: dict | None = None
    junk: dict | None = None
    max_rss_growth_mb: float | None = None

    def describe(self) -> str:
        if self.error:
            return f"{self.error} /{self.message}/"
        parts = []
        for split, kept in self.kept.items():
            drops = self.drops.get(split, {})
            text = ", ".join(f"{reason}={n}" for reason, n in sorted(drops.items())) or "no drops"
            parts.append(f"{split}: kept {kept}, {text}")
        if self.junk:
            parts.append("junk " + ", ".join(f"{k}={v}" for where in sorted(self.junk)
                                             for k, v in sorted(self.junk[where].items())))
        if self.max_rss_growth_mb:
            parts.append(f"memory growth under {self.max_rss_growth_mb:.0f} MB")
        return "; ".join(parts)


def fails(error: str, message: str) -> Expect:
    return Expect(error=error, message=message)


def counts(train: tuple[int, dict], test: tuple[int, dict] | None = None, junk: dict | None = None,
           max_rss_growth_mb: float | None = None) -> Expect:
    splits = {"train": train} if test is None else {"train": train, "test": test}
    return Expect(kept={s: kept for s, (kept, _) in splits.items()},
                  drops={s: dict(drops) for s, (_, drops) in splits.items()},
                  junk=junk, max_rss_growth_mb=max_rss_growth_mb)


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    fmt: str
    what: str
    make: Callable[[Path], None]
    expect: Expect
    dataset: str
    env: tuple[tuple[str, str], ...] = ()
    # Run alone in a fresh process, which measures its memory.
    isolated: bool = False


CASES: list[Case] = []


def case(case_id: str, fmt: str, what: str, expect: Expect, dataset: str | None = None,
         env: dict | None = None, isolated: bool = False):
    def register(make: Callable[[Path], None]) -> Callable[[Path], None]:
        if any(c.id == case_id for c in CASES):
            raise ValueError(f"duplicate case id {case_id}")
        CASES.append(Case(case_id, fmt, what, make, expect, dataset or DATASET_OF_FORMAT[fmt],
                          tuple(sorted((env or {}).items())), isolated))
        return make
    return register


def cases_by_id() -> dict[str, Case]:
    return {c.id: c for c in CASES}


# --- images --------------------------------------------------------------------------

def noise(seed: int, shape=(28, 28)) -> np.ndarray:
    """Distinct pixels per seed, so no two corpus images are duplicates."""
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def encode(image: Image.Image | np.ndarray, fmt: str, **options) -> bytes:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png(seed: int, shape=(28, 28)) -> bytes:
    return encode(noise(seed, shape), "PNG")


def jpeg(seed: int, shape=(28, 28)) -> bytes:
    return encode(noise(seed, shape), "JPEG", quality=95)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_claiming(width: int, height: int) -> bytes:
    """A 1x1 PNG whose header (with a valid CRC) declares width x height."""
    data = bytearray(encode(np.zeros((1, 1), np.uint8), "PNG"))
    at = data.index(b"IHDR")
    data[at + 4:at + 12] = struct.pack(">II", width, height)
    data[at + 17:at + 21] = struct.pack(">I", zlib.crc32(bytes(data[at:at + 17])))
    return bytes(data)


def jpeg_claiming(width: int, height: int) -> bytes:
    """An 8x8 JPEG whose frame header declares width x height."""
    data = bytearray(encode(np.zeros((8, 8), np.uint8), "JPEG"))
    at = data.index(b"\xff\xc0")
    data[at + 5:at + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def decompression_bomb_png() -> bytes:
    """A real, valid 8000x6000 PNG of zeros: 46 KB that decodes to 48 M pixels."""
    return encode(np.zeros((6000, 8000), np.uint8), "PNG", compress_level=9)


def text_bomb_png(seed: int) -> bytes:
    """A valid PNG with a zTXt chunk that inflates to 100 MB."""
    data = png(seed)
    body = b"Comment\x00\x00" + zlib.compress(b"a" * (100 << 20), 9)
    at = data.index(b"IDAT") - 4
    return data[:at] + _png_chunk(b"zTXt", body) + data[at:]


def image_modes(seed: int) -> dict[str, bytes]:
    """One image per unusual mode, each with its own content."""
    rng = np.random.default_rng(seed)
    cmyk = Image.fromarray(rng.integers(0, 256, (30, 30, 4), dtype=np.uint8), "CMYK")
    sixteen = rng.integers(0, 65536, (31, 31), dtype=np.uint16)
    palette = Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8), "P")
    palette.putpalette(list(rng.integers(0, 256, 768, dtype=np.uint8)))
    see_through = palette.copy()
    grey_alpha = Image.fromarray(rng.integers(0, 256, (33, 33, 2), dtype=np.uint8), "LA")
    bilevel = Image.fromarray(rng.integers(0, 2, (34, 34), dtype=np.uint8) * 255).convert("1")
    return {
        "cmyk.jpg": encode(cmyk, "JPEG", quality=95),
        "sixteen_bit.png": encode(Image.fromarray(sixteen), "PNG"),
        "palette.png": encode(palette, "PNG"),
        "palette_transparent.png": encode(see_through, "PNG", transparency=0),
        "grey_alpha.png": encode(grey_alpha, "PNG"),
        "one_bit.bmp": encode(bilevel, "BMP"),
    }


# --- zips --------------------------------------------------------------------------------

def write_zip(path: Path, members: Iterable[tuple[str | zipfile.ZipInfo, bytes]],
              compression: int = zipfile.ZIP_DEFLATED) -> Path:
    """A zip with exactly these entries, in this order, with a fixed date."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # duplicate names are sometimes the point
        with zipfile.ZipFile(path, "w", compression) as zf:
            for name, data in members:
                info = name if isinstance(name, zipfile.ZipInfo) else zipfile.ZipInfo(name, FIXED_TIME)
                info.compress_type = compression
                zf.writestr(info, data)
    return path


def central_entries(data: bytes) -> list[tuple[int, str]]:
    """(offset of the central directory entry, name) for each member, from the end record."""
    eocd = data.rindex(b"PK\x05\x06")
    count, size, offset = struct.unpack("<HII", data[eocd + 10:eocd + 20])
    entries, at = [], offset
    for _ in range(count):
        name_len, extra_len, comment_len = struct.unpack("<HHH", data[at + 28:at + 34])
        entries.append((at, data[at + 46:at + 46 + name_len].decode("cp437")))
        at += 46 + name_len + extra_len + comment_len
    return entries


def local_header_offset(data: bytes, central_at: int) -> int:
    return struct.unpack("<I", data[central_at + 42:central_at + 46])[0]


def member_data_span(data: bytes, name: str) -> tuple[int, int]:
    """(start, end) of the stored bytes of `name`."""
    for at, found in central_entries(data):
        if found == name:
            local = local_header_offset(data, at)
            name_len, extra_len = struct.unpack("<HH", data[local + 26:local + 30])
            size = struct.unpack("<I", data[at + 20:at + 24])[0]
            start = local + 30 + name_len + extra_len
            return start, start + size
    raise KeyError(name)


def patch(path: Path, edit: Callable[[bytearray], None]) -> None:
    data = bytearray(path.read_bytes())
    edit(data)
    path.write_bytes(bytes(data))


def central_at(data: bytes, name: str) -> int:
    return next(at for at, found in central_entries(bytes(data)) if found == name)


def folder_zip(path: Path, extra: list[tuple[str | zipfile.ZipInfo, bytes]] = (),
               classes: tuple[str, ...] = ("A", "B"), seed: int = 0,
               compression: int = zipfile.ZIP_DEFLATED, maker=png) -> Path:
    """Train/<class>/ and Test/<class>/ with one good image each, then `extra`."""
    members = []
    for split_index, split in enumerate(("Train", "Test")):
        for class_index, name in enumerate(classes):
            members.append((f"{split}/{name}/good.png",
                            maker(seed * 1000 + split_index * 100 + class_index)))
    return write_zip(path, members + list(extra), compression)


# --- the databases zip and its members ------------------------------------------------

CSV_HEADER = b"label," + b",".join(b"pixel%d" % i for i in range(1, 785))


def csv_row(label: int, seed: int) -> bytes:
    return b",".join([str(label).encode()] + [str(v).encode() for v in noise(seed).ravel()])


def csv_file(rows: Iterable[bytes], header: bytes = CSV_HEADER, end: bytes = b"\n") -> bytes:
    return end.join([header, *rows]) + end


GOOD_TEST_CSV = csv_file([csv_row(0, 9001), csv_row(1, 9002)])


def databases_zip(folder: Path, members: dict[str, bytes | Callable[[object], None]]) -> Path:
    """databasesLoadData.zip holding `members`; a callable value streams its member."""
    path = folder / DATABASES_ZIP
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in members.items():
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            if callable(content):
                with zf.open(info, "w", force_zip64=True) as stream:
                    content(stream)
            else:
                zf.writestr(info, content)
    return path


def csv_source(folder: Path, train: bytes | Callable[[object], None]) -> Path:
    return databases_zip(folder, {CSV_TRAIN: train, CSV_TEST: GOOD_TEST_CSV})


def image_url(name: str) -> str:
    return f"{BUCKET}img_mnist/{name}"


def url_line(name: str, label: str) -> bytes:
    return json.dumps({"content": image_url(name), "label": label}).encode() + b"\n"


def json_source(folder: Path, data: bytes | Callable[[object], None],
                files: dict[str, bytes] | None = None) -> None:
    databases_zip(folder, {JSON_MEMBER: data})
    (folder / "img_mnist").mkdir(parents=True, exist_ok=True)
    for name, content in (files or {}).items():
        (folder / "img_mnist" / name).write_bytes(content)


def good_json_images(count: int = 3) -> tuple[bytes, dict[str, bytes]]:
    """`count` valid lines and the images they name (letters A, B, C, ...)."""
    lines, files = b"", {}
    for i in range(count):
        name = f"{i + 1}_{SIGN_LETTERS[i]}.jpg"
        files[name] = jpeg(5000 + i)
        lines += url_line(name, SIGN_LETTERS[i].lower())
    return lines, files


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def base64_source(folder: Path, text: bytes) -> None:
    databases_zip(folder, {BASE64_MEMBER: text})


GOOD_B64_ENTRY = '"b": "%s"' % b64(jpeg(7000))


# ======================================================================================
# CSV pixels (sign_mnist_csv/original: the train member is the bad one, test is clean)
# ======================================================================================

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


# ======================================================================================
# JSON-lines URLs (sign_mnist_json: data.json in the zip; images under img_mnist/)
# ======================================================================================

@case("json_clean_control", "json", "three good lines whose images exist",
      counts(train=(3, {})))
def _(folder):
    lines, files = good_json_images()
    json_source(folder, lines, files)


@case("json_million_lines", "json",
      "1,000,000 lines: 10 good ones spread through 999,990 with the unknown label J",
      counts(train=(10, {"unknown_label": 999_990}), max_rss_growth_mb=100),
      env={"SIGN_DATASETS_MAX_FAILED_SHARE": "1.0"}, isolated=True)
def _(folder):
    good_lines, files = good_json_images(10)
    good = good_lines.splitlines(keepends=True)
    filler = [b'{"content": "%s", "label": "j"}\n' % image_url(f"{n}_J.jpg").encode()
              for n in range(1000)]

    def write(stream):
        for block in range(1000):
            lines = list(filler)
            if block % 100 == 0:
                lines[500] = good[block // 100]
            stream.write(b"".join(lines))
    json_source(folder, write, files)


@case("json_nested_10000_deep", "json", "line 2 is an array nested 10,000 deep",
      fails("SourceError", rf"{JSON_SOURCE}:2: JSON nested too deeply to parse"))
def _(folder):
    lines, files = good_json_images(1)
    json_source(folder, lines + b"[" * 10_000 + b"]" * 10_000 + b"\n", files)


@case("json_nested_10000_deep_array", "json",
      "a JSON array whose second element is an object nested 10,000 deep",
      fails("SourceError", rf"{JSON_SOURCE}:3: JSON nested too deeply to parse"))
def _(folder):
    _, files = good_json_images(1)
    first = json.dumps({"content": image_url("1_A.jpg"), "label": "a"}).encode()
    deep = b'{"a":' * 10_000 + b"1" + b"}" * 10_000
    json_source(folder, b"[\n" + first + b",\n" + deep + b"\n]\n", files)


@case("json_5000_digit_number", "json", "a record with a 5,000-digit number in an extra field",
      fails("SourceError", rf"{JSON_SOURCE}:2: a JSON value that cannot be parsed \(Exceeds the limit"))
def _(folder):
    lines, files = good_json_images(1)
    extra = b'{"content": "%s", "label": "a", "size": %s}\n' % (image_url("1_A.jpg").encode(), b"9" * 5000)
    json_source(folder, lines + extra, files)


@case("json_raw_nul_byte", "json", "a raw NUL byte inside a URL string on line 3",
      fails("SourceError", rf"{JSON_SOURCE}:3: not a JSON record \(Invalid control character"))
def _(folder):
    lines, files = good_json_images(2)
    json_source(folder, lines + b'{"content": "http://x/\x00.jpg", "label": "a"}\n', files)


@case("json_escaped_nul_in_url", "json", "an escaped NUL (\\u0000) inside a URL",
      counts(train=(2, {"refused_url": 1})), env={"SIGN_DATASETS_MAX_FAILED_SHARE": "1.0"})
def _(folder):
    lines, files = good_json_images(2)
    json_source(folder, lines + b'{"content": "%s\\u0000.jpg", "label": "a"}\n'
                % image_url("1_A.jpg").encode(), files)


@case("json_latin1_line", "json", "line 3 is Latin-1, the others UTF-8",
      fails("SourceError", rf"{JSON_SOURCE}:3: not UTF-8 text"))
def _(folder):
    lines, files = good_json_images(2)
    json_source(folder, lines + '{"content": "http://x/señal.jpg", "label": "a"}\n'.encode("latin-1"),
                files)


@case("json_utf16_file", "json", "the whole file saved as UTF-16",
      fails("SourceError", rf"{JSON_SOURCE}:1: not UTF-8 text"))
def _(folder):
    lines, files = good_json_images(2)
    json_source(folder, lines.decode().encode("utf-16"), files)


@case("json_hostile_urls", "json",
      "URLs to local files outside the source, metadata services, other schemes, credentials, "
      "a 5,000-character URL and a path escaping the source folder",
      counts(train=(2, {"refused_url": 8})), env={"SIGN_DATASETS_MAX_FAILED_SHARE": "1.0"})
def _(folder):
    lines, files = good_json_images(2)
    hostile = [
        "file:///etc/passwd",
        "http://169.254.169.254/latest/meta-data/iam/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "ftp://example.com/a.jpg",
        "javascript:alert(1)",
        "http://user:secret@127.0.0.1:1/a.jpg",
        "http://example.com/" + "a" * 5000 + ".jpg",
        folder.resolve().as_uri() + "/img_mnist/../../../../etc/passwd",
    ]
    body = b"".join(json.dumps({"content": url, "label": "a"}).encode() + b"\n" for url in hostile)
    json_source(folder, lines + body, files)


@case("json_urls_to_bad_images", "json",
      "URLs to a decompression-bomb PNG, huge declared sizes, a zip, an empty file, a PNG text "
      "bomb, a TIFF, a missing file; and to CMYK, 16-bit and palette images (kept, resized)",
      counts(train=(8, {"image_too_large": 3, "not_an_image": 3, "corrupt_image": 1,
                        "not_found": 1})),
      env={"SIGN_DATASETS_MAX_FAILED_SHARE": "1.0"})
def _(folder):
    lines, files = good_json_images(2)
    bad = {
        "bomb.png": decompression_bomb_png(),
        "huge_png.png": png_claiming(100_000, 100_000),
        "huge_jpeg.jpg": jpeg_claiming(65_000, 65_000),
        "archive.jpg": _small_zip(),
        "empty.jpg": b"",
        "text_bomb.png": text_bomb_png(3),
        "tiff.jpg": encode(noise(4), "TIFF"),
    }
    files.update(bad)
    files.update(image_modes(5))
    names = list(bad) + ["missing.jpg"] + list(image_modes(5))
    body = b"".join(url_line(name, "b") for name in names)
    json_source(folder, lines + body, files)


@case("json_all_urls_missing", "json", "every image URL answers 'not found'",
      fails("TooManyFailures", rf"{JSON_SOURCE}: 3 of 3 records failed \(100.0%\), more than the "
                               rf"10% allowed.*not_found: 3 \(first: {JSON_SOURCE}:1 "))
def _(folder):
    lines, _ = good_json_images(3)
    json_source(folder, lines, {})


@case("json_all_urls_missing_no_limit", "json",
      "every image URL answers 'not found', with the failure limit lifted (share 1.0)",
      fails("SourceError", r"sign_mnist_json/default/2.0.0: all 3 records of the train split were "
                           rf"dropped.*not_found=3 \(first: {JSON_SOURCE}:1 "),
      env={"SIGN_DATASETS_MAX_FAILED_SHARE": "1.0"})
def _(folder):
    lines, _ = good_json_images(3)
    json_source(folder, lines, {})


# ======================================================================================
# base64 JSON (sign_mnist_base64: one object of label -> base64 image)
# ======================================================================================

@case("base64_clean_control", "base64", "one good entry, as in the course's file",
      counts(train=(1, {})))
def _(folder):
    base64_source(folder, ("{\n  %s\n}\n" % GOOD_B64_ENTRY).encode())


@case("base64_of_a_zip", "base64", "an entry whose base64 decodes to a zip holding a JPEG",
      counts(train=(1, {"not_an_image": 1})))
def _(folder):
    base64_source(folder, ('{%s, "c": "%s"}' % (GOOD_B64_ENTRY, b64(_small_zip()))).encode())


@case("base64_image_bombs", "base64",
      "a decompression-bomb PNG, PNG/JPEG/GIF headers declaring billions of pixels, a PNG text bomb",
      counts(train=(1, {"image_too_large": 4, "corrupt_image": 1})))
def _(folder):
    gif = bytearray(encode(Image.new("P", (2, 2)), "GIF"))
    gif[6:10] = struct.pack("<HH", 65535, 65535)
    bombs = [decompression_bomb_png(), png_claiming(100_000, 100_000), jpeg_claiming(65_000, 65_000),
             bytes(gif), text_bomb_png(6)]
    entries = [GOOD_B64_ENTRY] + ['"c": "%s"' % b64(data) for data in bombs]
    base64_source(folder, ("{" + ",\n".join(entries) + "}").encode())


@case("base64_image_modes", "base64",
      "CMYK JPEG, 16-bit PNG, palette PNG (with and without transparency), grey+alpha, 1-bit BMP",
      counts(train=(6, {})))
def _(folder):
    entries = ['"%s": "%s"' % (letter, b64(data))
               for letter, data in zip("abcdef", image_modes(7).values())]
    base64_source(folder, ("{" + ",\n".join(entries) + "}").encode())


@case("base64_nested_10000_deep", "base64", "a value nested 10,000 deep on line 2",
      fails("SourceError", rf"{BASE64_SOURCE}:2: JSON nested too deeply to parse"))
def _(folder):
    base64_source(folder, b'{"b":\n' + b"[" * 10_000 + b"]" * 10_000 + b"}")


@case("base64_5000_digit_number", "base64", "a label whose value is a 5,000-digit number",
      fails("SourceError", rf"{BASE64_SOURCE}:1: a JSON value that cannot be parsed"))
def _(folder):
    base64_source(folder, b'{"b": ' + b"7" * 5000 + b"}")


@case("base64_nul_bytes", "base64",
      "an escaped NUL inside the base64 text, and NULs decoded from the base64",
      counts(train=(1, {"bad_base64": 1, "not_an_image": 1})))
def _(folder):
    text = '{%s, "c": "%s\\u0000%s", "d": "%s"}' % (GOOD_B64_ENTRY, b64(jpeg(1))[:8],
                                                    b64(jpeg(1))[8:], b64(bytes(64)))
    base64_source(folder, text.encode())


@case("base64_raw_nul_byte", "base64", "a raw NUL byte inside the base64 string on line 3",
      fails("SourceError", rf"{BASE64_SOURCE}:3: not valid JSON at column \d+ \(Invalid control character"))
def _(folder):
    base64_source(folder, b'{\n  "a": "QUJD",\n  "b": "QU\x00JD"\n}')


@case("base64_latin1_byte", "base64", "a Latin-1 label on line 3 of a UTF-8 file",
      fails("SourceError", rf"{BASE64_SOURCE}:3: not UTF-8 text"))
def _(folder):
    base64_source(folder, ('{\n  %s,\n  "ñ": "QUJD"\n}' % GOOD_B64_ENTRY).encode("latin-1"))


@case("base64_non_ascii_payload", "base64", "base64 text with non-ASCII letters and a lone surrogate",
      counts(train=(1, {"bad_base64": 2})))
def _(folder):
    base64_source(folder, ('{%s, "c": "QUJDé", "d": "QU\\ud800JD"}' % GOOD_B64_ENTRY).encode())


@case("base64_other_formats", "base64", "TIFF and WebP images (formats outside JPEG/PNG/BMP/GIF)",
      counts(train=(1, {"not_an_image": 2})))
def _(folder):
    base64_source(folder, ('{%s, "c": "%s", "d": "%s"}' % (
        GOOD_B64_ENTRY, b64(encode(noise(8), "TIFF")), b64(encode(noise(9), "WEBP")))).encode())


# ======================================================================================
# zips of image folders (sign_language_img/28x28 unless said otherwise)
# ======================================================================================

def _small_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(zipfile.ZipInfo("inner.jpg", FIXED_TIME), jpeg(77))
    return buffer.getvalue()


@case("zip_clean_control", "zip", "Train/ and Test/ with one good image per class",
      counts(train=(2, {}), test=(2, {})))
def _(folder):
    folder_zip(folder / SIGN_ZIP)


@case("zip_empty_file", "zip", "the zip is 0 bytes",
      fails("SourceError", rf"{SIGN_ZIP}: not a zip archive \(no end-of-directory record\)"))
def _(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / SIGN_ZIP).write_bytes(b"")


@case("zip_empty_archive", "zip", "a valid zip with no members",
      fails("LayoutError", rf"{SIGN_ZIP}: no split folders found; the zip's top level holds \[\]"))
def _(folder):
    write_zip(folder / SIGN_ZIP, [])


@case("zip_truncated", "zip", "the zip cut at 60% (an interrupted download)",
      fails("SourceError", rf"{SIGN_ZIP}: not a zip archive \(no end-of-directory record\)"))
def _(folder):
    path = folder_zip(folder / SIGN_ZIP, [(f"Train/A/{i}.png", png(200 + i)) for i in range(10)])
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * 0.6)])


@case("zip_hole_in_members", "zip",
      "a hole of zeros over two members' bytes while the directory is intact",
      counts(train=(2, {"corrupt_member": 2}), test=(2, {})))
def _(folder):
    path = folder_zip(folder / SIGN_ZIP, [("Train/A/2.png", png(210)), ("Train/B/2.png", png(211))])

    def hole(data):
        start, _ = member_data_span(bytes(data), "Train/A/2.png")
        _, end = member_data_span(bytes(data), "Train/B/2.png")
        data[start - 10:end] = bytes(end - start + 10)
    patch(path, hole)


@case("zip_directory_lies_about_name", "zip",
      "a central directory entry whose name differs from its local header's",
      counts(train=(2, {"corrupt_member": 1}), test=(2, {})))
def _(folder):
    path = folder_zip(folder / SIGN_ZIP, [("Train/A/2.png", png(220))])

    def rename(data):
        at = central_at(data, "Train/A/2.png")
        data[at + 46:at + 46 + 13] = b"Train/A/9.png"
    patch(path, rename)


@case("zip_directory_lies_about_crc", "zip", "a central directory entry with a wrong CRC-32",
      counts(train=(2, {"corrupt_member": 1}), test=(2, {})))
def _(folder):
    path = folder_zip(folder / SIGN_ZIP, [("Train/A/2.png", png(230))])
    patch(path, lambda d: d.__setitem__(slice(central_at(d, "Train/A/2.png") + 16,
                                              central_at(d, "Train/A/2.png") + 20), b"\1\2\3\4"))


@case("zip_directory_lies_about_offset", "zip",
      "a central directory entry pointing at another member's local header",
      counts(train=(2, {"corrupt_member": 1}), test=(2, {})))
def _(folder):
    path = folder_zip(folder / SIGN_ZIP, [("Train/A/2.png", png(240))])

    def misplace(data):
        target = central_at(data, "Train/A/2.png")
        other = central_at(data, "Train/A/good.png")
        data[target + 42:target + 46] = data[other + 42:other + 46]
    patch(path, misplace)


@case("zip_directory_lies_about_its_size", "zip",
      "the end record declares a central directory 100 bytes larger than it is",
      fails("SourceError", rf"{SIGN_ZIP}: cannot read the zip directory \(.*\); the download may "
                           "be incomplete"))
def _(folder):
    path = folder_zip(folder / SIGN_ZIP)

    def grow(data):
        eocd = bytes(data).rindex(b"PK\x05\x06")
        size = struct.unpack("<I", data[eocd + 12:eocd + 16])[0]
        data[eocd + 12:eocd + 16] = struct.pack("<I", size + 100)
    patch(path, grow)


@case("zip_damaged_zip64_record", "zip", "an end record pointing at a zip64 record that is not there",
      fails("SourceError", rf"{SIGN_ZIP}: damaged zip64 end-of-directory record"))
def _(folder):
    path = folder_zip(folder / SIGN_ZIP)
    data = path.read_bytes()
    eocd = data.rindex(b"PK\x05\x06")
    locator = struct.pack("<4sIQI", b"PK\x06\x07", 0, len(data) + 10_000, 1)
    end = data[eocd:eocd + 8] + struct.pack("<HHII", 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF) \
        + data[eocd + 20:]
    path.write_bytes(data[:eocd] + locator + end)


@case("zip_path_traversal", "zip", "members named ../../evil.png, Train/A/../../../../x.png, ..\\..\\win.png",
      counts(train=(2, {}), test=(2, {}), junk={"archive": {"unsafe_path": 3}}))
def _(folder):
    folder_zip(folder / SIGN_ZIP, [("../../evil.png", png(250)), ("Train/A/../../../../x.png", png(251)),
                                   ("..\\..\\win.png", png(252))])


@case("zip_absolute_names", "zip",
      "members named /etc/cron.d/x.png, C:\\Windows\\x.png, C:/x.png, ./C:/y.png, "
      "//server/share/x.png",
      counts(train=(2, {}), test=(2, {}), junk={"archive": {"unsafe_path": 5}}))
def _(folder):
    folder_zip(folder / SIGN_ZIP, [("/etc/cron.d/x.png", png(260)), ("C:\\Windows\\x.png", png(261)),
                                   ("C:/x.png", png(262)), ("./C:/y.png", png(264)),
                                   ("//server/share/x.png", png(263))])


@case("zip_nul_in_member_name", "zip",
      "a member named Train/A/2.png<NUL>.txt (zipfile cuts names at NUL; nothing is written to disk)",
      counts(train=(3, {}), test=(2, {})))
def _(folder):
    path = folder_zip(folder / SIGN_ZIP, [("Train/A/2.pngX.txt", png(270))])

    def put_nul(data):
        for at in (central_at(data, "Train/A/2.pngX.txt"),):
            data[at + 46 + 13] = 0
        local = bytes(data).index(b"Train/A/2.pngX.txt")
        data[local + 13] = 0
    patch(path, put_nul)


@case("zip_empty_member_name", "zip", "a member whose name is empty",
      counts(train=(2, {}), test=(2, {}), junk={"archive": {"unsafe_path": 1}}))
def _(folder):
    folder_zip(folder / SIGN_ZIP, [("", png(275))])


@case("zip_name_flagged_utf8_but_not", "zip", "a member name flagged UTF-8 whose bytes are not UTF-8",
      fails("SourceError", rf"{SIGN_ZIP}: cannot read the zip directory \(.*utf-8"))
def _(folder):
    path = folder_zip(folder / SIGN_ZIP, [("Train/A/seXal.png", png(280))])

    def bad_utf8(data):
        at = central_at(data, "Train/A/seXal.png")
        flags = struct.unpack("<H", data[at + 8:at + 10])[0]
        data[at + 8:at + 10] = struct.pack("<H", flags | 0x800)
        data[at + 46 + 10] = 0xFF
    patch(path, bad_utf8)


@case("zip_cp437_name", "zip", "a legacy (cp437, unflagged) member name with a non-ASCII letter",
      counts(train=(3, {}), test=(2, {})))
def _(folder):
    path = folder_zip(folder / SIGN_ZIP, [("Train/A/seXal.png", png(290))])

    def cp437(data):
        at = central_at(data, "Train/A/seXal.png")
        data[at + 46 + 10] = 0xA4  # ñ in cp437
        local = bytes(data).index(b"Train/A/seXal.png")
        data[local + 10] = 0xA4
    patch(path, cp437)


@case("zip_bomb_by_ratio", "zip", "a 2 MB member of zeros that deflates to 2 KB (ratio ~1000:1)",
      fails("ZipBombError", rf"{SIGN_ZIP}: member 'Train/A/zeros.bmp' inflates [\d,]+ bytes into "
                            r"2,097,152 \(ratio [\d,]+:1, limit 200:1\)"))
def _(folder):
    folder_zip(folder / SIGN_ZIP, [("Train/A/zeros.bmp", bytes(2 << 20))])


@case("zip_bomb_by_member_count", "zip", "an end record declaring 3,000,000,000 members",
      fails("ZipBombError", rf"{SIGN_ZIP}: declares 3,000,000,000 members, over the limit of 500,000"))
def _(folder):
    path = folder_zip(folder / SIGN_ZIP)
    data = path.read_bytes()
    eocd = data.rindex(b"PK\x05\x06")
    directory_bytes, directory_at = struct.unpack("<II", data[eocd + 12:eocd + 20])
    body = data[:eocd]
    record = struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0,
                         3_000_000_000, 3_000_000_000, directory_bytes, directory_at)
    locator = struct.pack("<4sIQI", b"PK\x06\x07", 0, len(body), 1)
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    path.write_bytes(body + record + locator + end)


@case("zip_bomb_overlapping_members", "zip",
      "200 directory entries sharing one kernel of 512 KB of zeros (a non-recursive zip bomb)",
      fails("ZipBombError", rf"{SIGN_ZIP}: its members claim [\d,]+ compressed bytes in a [\d,]+-byte "
                            "file, so they overlap"))
def _(folder):
    # Under 1 MB, so the ratio limit exempts each entry: only the overlap gives it away.
    path = folder_zip(folder / SIGN_ZIP, [("Train/A/k000.png", bytes(512 << 10))])
    data = path.read_bytes()
    eocd = data.rindex(b"PK\x05\x06")
    count, size, offset = struct.unpack("<HII", data[eocd + 10:eocd + 20])
    kernel = next(at for at, name in central_entries(data) if name == "Train/A/k000.png")
    entry = data[kernel:kernel + 46 + len("Train/A/k000.png")]
    copies = [entry[:46] + f"Train/A/k{i:03d}.png".encode() for i in range(1, 200)]
    directory = data[offset:offset + size] + b"".join(copies)
    end = data[eocd:eocd + 8] + struct.pack("<HHII", count + 199, count + 199, len(directory), offset) \
        + data[eocd + 20:]
    path.write_bytes(data[:offset] + directory + end)


@case("zip_nested_archives", "zip", "a zip inside the zip, and a zip named .png",
      counts(train=(2, {"not_an_image": 1}), test=(2, {}), junk={"train": {"nested_archive": 1}}))
def _(folder):
    folder_zip(folder / SIGN_ZIP, [("Train/A/inner.zip", _small_zip()),
                                   ("Train/B/inner.png", _small_zip())])


@case("zip_symlink_member", "zip", "a member stored as a symlink to /etc/passwd (never followed)",
      counts(train=(2, {"not_an_image": 1}), test=(2, {})))
def _(folder):
    link = zipfile.ZipInfo("Train/A/link.png", FIXED_TIME)
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    folder_zip(folder / SIGN_ZIP, [(link, b"../../../../../../etc/passwd")])


@case("zip_encrypted_member", "zip", "a member flagged as encrypted",
      counts(train=(2, {"unreadable_member": 1}), test=(2, {})))
def _(folder):
    path = folder_zip(folder / SIGN_ZIP, [("Train/A/2.png", png(300))])

    def encrypt_flag(data):
        at = central_at(data, "Train/A/2.png")
        local = local_header_offset(bytes(data), at)
        for flags_at in (at + 8, local + 6):
            flags = struct.unpack("<H", data[flags_at:flags_at + 2])[0]
            data[flags_at:flags_at + 2] = struct.pack("<H", flags | 0x1)
    patch(path, encrypt_flag)


@case("zip_unknown_compression", "zip", "a member compressed with method 98 (PPMd), unknown to Python",
      counts(train=(2, {"unreadable_member": 1}), test=(2, {})))
def _(folder):
    path = folder_zip(folder / SIGN_ZIP, [("Train/A/2.png", png(310))])

    def method(data):
        at = central_at(data, "Train/A/2.png")
        local = local_header_offset(bytes(data), at)
        data[at + 10:at + 12] = struct.pack("<H", 98)
        data[local + 8:local + 10] = struct.pack("<H", 98)
    patch(path, method)


@case("zip_lzma_member_damaged", "zip", "an LZMA-compressed member whose stream is corrupt",
      counts(train=(2, {"corrupt_member": 1}), test=(2, {})))
def _(folder):
    path = folder_zip(folder / SIGN_ZIP, [("Train/A/2.png", png(320))], compression=zipfile.ZIP_LZMA)

    def corrupt(data):
        start, _ = member_data_span(bytes(data), "Train/A/2.png")
        data[start + 20:start + 60] = b"\xff" * 40
    patch(path, corrupt)


@case("zip_self_extracting_stub", "zip", "64 KB of executable stub before the zip (as in a .exe archive)",
      counts(train=(3, {}), test=(2, {})))
def _(folder):
    path = folder_zip(folder / SIGN_ZIP, [("Train/A/2.png", png(330))])
    path.write_bytes(b"MZ" + bytes(64 * 1024 - 2) + path.read_bytes())


@case("zip_image_bombs", "zip",
      "a real 8000x6000 PNG of zeros (46 KB), PNG/JPEG headers declaring 10^10 and 4*10^9 pixels, "
      "a PNG whose text chunk inflates to 100 MB",
      counts(train=(2, {"image_too_large": 3, "corrupt_image": 1}), test=(2, {})))
def _(folder):
    folder_zip(folder / SIGN_ZIP, [("Train/A/bomb.png", decompression_bomb_png()),
                                   ("Train/A/huge.png", png_claiming(100_000, 100_000)),
                                   ("Train/B/huge.jpg", jpeg_claiming(65_000, 65_000)),
                                   ("Train/B/text.png", text_bomb_png(340))])


@case("zip_odd_members", "zip",
      "a 0-byte image, an HTML page named .jpg, a TIFF named .png, a truncated JPEG",
      counts(train=(2, {"not_an_image": 3, "corrupt_image": 1}), test=(2, {})))
def _(folder):
    folder_zip(folder / SIGN_ZIP, [("Train/A/empty.jpg", b""),
                                   ("Train/A/page.jpg", b"<html>404 Not Found</html>"),
                                   ("Train/B/tiff.png", encode(noise(350), "TIFF")),
                                   ("Train/B/cut.jpg", jpeg(351)[:300])])


@case("zip_image_modes_rgb", "zip",
      "CMYK JPEG, 16-bit PNG, palette PNGs, grey+alpha, 1-bit BMP in an RGB dataset (all kept)",
      counts(train=(8, {}), test=(2, {})), dataset="malaria_cells/native")
def _(folder):
    modes = [(f"Train/Parasitized/{name}", data) for name, data in image_modes(360).items()]
    folder_zip(folder / MALARIA_ZIP, modes, classes=("Parasitized", "Uninfected"),
               maker=lambda seed: png(seed, (20, 20, 3)))


@case("zip_duplicate_names", "zip", "two entries with the same name (a zip appended to twice)",
      counts(train=(2, {"duplicate_member_name": 1}), test=(2, {})))
def _(folder):
    folder_zip(folder / SIGN_ZIP, [("Train/A/good.png", png(370))])


# ======================================================================================
# Team catalogs (SIGN_DATASETS_CATALOG): refused when read, naming file, entry and field
# ======================================================================================

CATALOG_FILE = "catalog.toml"
CATALOG_SOURCE = f"<source>/{CATALOG_FILE}"


def catalog_entry(name: str = "team_letters", location: str = "letters.zip",
                  extra: str = "") -> str:
    """A valid zip_folders entry, plus `extra` lines."""
    return (f'[[dataset]]\nname = "{name}"\nversion = "1.0.0"\n'
            'description = "Letters."\nformat = "zip_folders"\nclasses = ["A", "B"]\n'
            'image = { mode = "L", size = [28, 28] }\n'
            f'sources = [{{ location = "{location}" }}]\n{extra}')


def catalog_source(folder: Path, text: str) -> None:
    folder_zip(folder / "letters.zip", [("Train/A/a.png", png(900)), ("Train/B/b.png", png(901)),
                                        ("Test/A/a.png", png(902)), ("Test/B/b.png", png(903))])
    (folder / CATALOG_FILE).write_text(text)


def _catalog_error(entry: str, field: str, problem: str) -> Expect:
    return fails("CatalogError", rf"{CATALOG_SOURCE}: entry {entry}: field {field}: {problem}")


@case("catalog_unknown_key", "catalog", "an entry with a key the catalog does not know",
      _catalog_error("'team_letters'", r"'colour'", "unknown key"))
def _(folder):
    catalog_source(folder, catalog_entry(extra='colour = "blue"\n'))


@case("catalog_wrong_type", "catalog", "a version written as a number",
      _catalog_error("'team_letters'", r"'version'", "expected a string, found an integer"))
def _(folder):
    catalog_source(folder, catalog_entry().replace('version = "1.0.0"', "version = 1"))


@case("catalog_missing_classes", "catalog", "an entry without class names",
      _catalog_error("'team_letters'", r"'classes'", "missing"))
def _(folder):
    catalog_source(folder, catalog_entry().replace('classes = ["A", "B"]\n', ""))


@case("catalog_duplicate_name", "catalog", "two entries of one file with the same name",
      _catalog_error("'team_letters'", r"'name'", "duplicate name: entry #1 of this file"))
def _(folder):
    catalog_source(folder, catalog_entry() + "\n" + catalog_entry())


@case("catalog_name_of_the_project", "catalog", "an entry named like a project dataset",
      _catalog_error("'sign_mnist_csv'", r"'name'", r"duplicate name: .*catalog\.toml"))
def _(folder):
    catalog_source(folder, catalog_entry(name="sign_mnist_csv"))


@case("catalog_clash_with_tfds", "catalog", "an entry named like a dataset TFDS has (mnist)",
      _catalog_error("'mnist'", r"'name'", "'mnist' clashes with a dataset TFDS already has"))
def _(folder):
    catalog_source(folder, catalog_entry(name="mnist"))


@case("catalog_source_neither_url_nor_path", "catalog", "a source at ftp://",
      _catalog_error("'team_letters'", r"'sources\[0\]\.location'",
                     "'ftp://files.example.org/letters.zip' is neither a URL"))
def _(folder):
    catalog_source(folder, catalog_entry(location="ftp://files.example.org/letters.zip"))


@case("catalog_source_outside_allowed_roots", "catalog",
      "a source path that climbs out of the catalog's folder (../../.. up to /srv)",
      _catalog_error("'team_letters'", r"'sources\[0\]\.location'",
                     r"/srv/letters\.zip is outside the allowed roots \(<source>\)"))
def _(folder):
    # Deep enough to reach / from any temporary folder, so the message is the same everywhere.
    catalog_source(folder, catalog_entry(location="../" * 40 + "srv/letters.zip"))


@case("catalog_source_absolute_outside_roots", "catalog", "a source at /etc/passwd",
      _catalog_error("'team_letters'", r"'sources\[0\]\.location'",
                     "/etc/passwd is outside the allowed roots .*SIGN_DATASETS_ALLOWED_ROOTS"))
def _(folder):
    catalog_source(folder, catalog_entry(location="/etc/passwd"))


@case("catalog_not_toml", "catalog", "a catalog that is not TOML",
      fails("CatalogError", rf"{CATALOG_SOURCE}: not valid TOML"))
def _(folder):
    catalog_source(folder, catalog_entry() + "[[dataset]\n")


# The trust-boundary cases (hostile and odd catalogs, names, images) live in
# their own module; importing it registers them after the cases above.
from badinputs import trust_cases  # noqa: E402,F401

# --- writing -----------------------------------------------------------------------------

def make_case(case: Case, root: Path) -> Path:
    folder = root / case.id
    folder.mkdir(parents=True, exist_ok=True)
    case.make(folder)
    return folder


def make_corpus(root: Path, ids: Iterable[str] | None = None) -> dict[str, Path]:
    """Writes the chosen cases (all by default) under `root`; {id: folder}."""
    wanted = set(ids) if ids else None
    return {c.id: make_case(c, root) for c in CASES if wanted is None or c.id in wanted}


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    folders = make_corpus(Path(argv[0]), argv[1:])
    for case_id, folder in folders.items():
        print(f"{case_id}\t{folder}")
    return 0


if __name__ == "__main__":
    # Run as a script this module is __main__; the cases (trust_cases' too)
    # register into the importable badinputs.make_corpus.
    from badinputs import make_corpus as _registered
    sys.exit(_registered.main(sys.argv[1:]))
