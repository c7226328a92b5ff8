"""Issue 17, names and data: every format keeps or counts every image.

Real zips, JSON and CSV files written here, built through the real builders
(TFDS builds from a folder SIGN_DATASETS_SOURCE points at) or read by the
real readers; counts, labels, splits and pixels are checked exactly.
"""

from __future__ import annotations

import base64
import io
import json
import struct
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

import sign_datasets  # noqa: F401  (registers the builders)
from sign_datasets.core import images
from sign_datasets.core.cleaning import Dropped, SourceError, SplitReport, clean, screen
from sign_datasets.formats import base64_json, csv_pixels
from sign_datasets.formats.zip_layout import LayoutError, scan_archive
from sign_datasets.generate.folder_builder import FolderConfig, ImageFolderBuilder
from sign_datasets.core.labels import CSV_LABEL_TO_INDEX

FIXED_TIME = (1980, 1, 1, 0, 0, 0)
TOM_ZIP = "TomAndJerry.zip"
TUMOR_ZIP = "TumorClassification.zip"


# --- helpers ------------------------------------------------------------------------

def write_zip(path: Path, members: list[tuple[str, bytes]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(zipfile.ZipInfo(name, FIXED_TIME), data)
    return path


def picture(seed: int, height: int = 12, width: int = 16, channels: int = 3) -> np.ndarray:
    shape = (height, width, channels) if channels > 1 else (height, width)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def png(pixels: np.ndarray, orientation: int | None = None) -> bytes:
    buffer = io.BytesIO()
    options = {}
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        options["exif"] = exif.tobytes()
    Image.fromarray(pixels).save(buffer, format="PNG", **options)
    return buffer.getvalue()


def jpeg(pixels: np.ndarray, orientation: int | None = None) -> bytes:
    buffer = io.BytesIO()
    options = {"quality": 95}
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        options["exif"] = exif.tobytes()
    Image.fromarray(pixels).save(buffer, format="JPEG", **options)
    return buffer.getvalue()


def exif_after_pixels(data: bytes) -> bytes:
    """The PNG with its eXIf chunk moved after IDAT (the spec allows either)."""
    chunks, at = [], 8
    while at < len(data):
        length = struct.unpack(">I", data[at:at + 4])[0]
        chunks.append(data[at:at + 12 + length])
        at += 12 + length
    exif = [c for c in chunks if c[4:8] == b"eXIf"]
    rest = [c for c in chunks if c[4:8] != b"eXIf"]
    assert len(exif) == 1 and rest[-1][4:8] == b"IEND"
    return data[:8] + b"".join(rest[:-1]) + exif[0] + rest[-1]


def build(name: str, source: Path, data_dir: Path, monkeypatch):
    monkeypatch.setenv("SIGN_DATASETS_SOURCE", str(source))
    builder = tfds.builder(name, data_dir=str(data_dir))
    builder.download_and_prepare()
    return builder


def stored(builder, split: str) -> list[tuple[int, np.ndarray]]:
    dataset = builder.as_dataset(split=split, shuffle_files=False)
    return [(int(ex["label"]), ex["image"]) for ex in tfds.as_numpy(dataset)]


def as_set(pairs) -> Counter:
    return Counter((label, image.shape, image.tobytes()) for label, image in pairs)


def balanced(builder) -> None:
    for split, report in builder.info.metadata["cleaning"].items():
        assert report["records"] == report["kept"] + sum(report["drops"].values()), split


# --- 1. validation split folders ---------------------------------------------------------

def tom_members(validation_folder: str | None, rng_seed: int = 0) -> tuple[list, dict]:
    """Train 3 Tom + 2 Jerry, test 1 + 1, validation (if any) 2 Tom + 1 Jerry:
    every image distinct, PNG, RGB."""
    counts = {"Train": (3, 2), "Test": (1, 1)}
    if validation_folder is not None:
        counts[validation_folder] = (2, 1)
    members, pixels, seed = [], {}, rng_seed
    for folder, (toms, jerries) in counts.items():
        for cls, count in (("Tom", toms), ("Jerry", jerries)):
            for i in range(count):
                seed += 1
                name = f"{folder}/{cls}/{i}.png"
                pixels[name] = picture(seed)
                members.append((name, png(pixels[name])))
    return members, pixels


@pytest.mark.parametrize("folder", ["Validation", "val", "VALID", "Dev", "validation"])
def test_scan_finds_every_validation_spelling(folder, tmp_path):
    members, _ = tom_members(folder)
    archive = scan_archive(write_zip(tmp_path / TOM_ZIP, members), ["Jerry", "Tom"])
    assert archive.splits == ("train", "validation", "test")
    assert archive.split_folders == {"train": "Train", "test": "Test", "validation": folder}
    assert len(archive.records["validation"]) == 3
    assert archive.junk == {}


@pytest.fixture(scope="module")
def with_validation(tmp_path_factory):
    root = tmp_path_factory.mktemp("validation")
    members, pixels = tom_members("Validation")
    # Junk in the validation folder is counted under that split.
    members.append(("Validation/Tom/notes.txt", b"frames from episode 3\n"))
    write_zip(root / "source" / TOM_ZIP, members)
    with pytest.MonkeyPatch.context() as patch:
        builder = build("tom_and_jerry", root / "source", root / "data", patch)
    return builder, pixels, root


def test_a_validation_folder_becomes_the_validation_split(with_validation):
    builder, pixels, _ = with_validation
    assert set(builder.info.splits) == {"train", "validation", "test"}
    names = builder.info.features["label"].names
    for split, folder in (("train", "Train"), ("validation", "Validation"), ("test", "Test")):
        expected = Counter((names.index(name.split("/")[1]), p.shape, p.tobytes())
                           for name, p in pixels.items() if name.startswith(folder + "/"))
        assert as_set(stored(builder, split)) == expected, split
        report = builder.info.metadata["cleaning"][split]
        assert report["records"] == report["kept"] == sum(expected.values())
    assert builder.info.metadata["layout"] == {
        "wrapper": None,
        "split_folders": {"train": "Train", "test": "Test", "validation": "Validation"}}
    assert builder.info.metadata["junk"] == {"validation": {"text_file": 1}}
    balanced(builder)


def test_two_folders_for_the_validation_split_are_a_clear_error(tmp_path, monkeypatch):
    members, _ = tom_members("Validation")
    members.append(("val/Tom/x.png", png(picture(99))))
    write_zip(tmp_path / "source" / TOM_ZIP, members)
    with pytest.raises(LayoutError, match="both Validation/ and val/ hold the validation split; "
                                          "keep one"):
        build("tom_and_jerry", tmp_path / "source", tmp_path / "data", monkeypatch)


def test_validation_under_beam_gives_the_same_bytes(with_validation):
    pytest.importorskip("apache_beam")
    from test_beam import OPTIONS, metadata, shard_records

    from sign_datasets.generate import beam as beam_lib

    local, _, root = with_validation
    config = tfds.download.DownloadConfig(
        beam_options=beam_lib.pipeline_options(OPTIONS.format(mode="multi_threading")))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SIGN_DATASETS_SOURCE", str(root / "source"))
        on_beam = tfds.builder("tom_and_jerry", data_dir=str(root / "beam_data"))
        on_beam.download_and_prepare(download_dir=str(root / "beam_downloads"),
                                     download_config=config)
    assert set(on_beam.info.splits) == {"train", "validation", "test"}
    for split in ("train", "validation", "test"):
        assert shard_records(on_beam, split) == shard_records(local, split), split
    assert metadata(on_beam) == metadata(local)


# --- 2 and 3. class folder names ----------------------------------------------------------

class _Folders(ImageFolderBuilder, skip_registration=True):
    """A folder dataset with the classes a test needs (never registered)."""

    VERSION = tfds.core.Version("1.0.0")
    BUILDER_CONFIGS = [FolderConfig(name="default")]
    MODE = "L"


class SplitNamedClasses(_Folders, skip_registration=True):
    ARCHIVE = "split-named.zip"
    CLASS_NAMES = ("test", "train", "validation")


class Drinks(_Folders, skip_registration=True):
    ARCHIVE = "drinks.zip"
    CLASS_NAMES = ("Café", "Tea")


def build_own(builder_class, source: Path, data_dir: Path, monkeypatch):
    monkeypatch.setenv("SIGN_DATASETS_SOURCE", str(source))
    builder = builder_class(data_dir=str(data_dir))
    builder.download_and_prepare()
    return builder


def grey_members(names: list[str], seed: int = 0) -> tuple[list, dict]:
    pixels = {name: picture(seed + i, 8, 8, 1) for i, name in enumerate(names)}
    return [(name, png(p)) for name, p in pixels.items()], pixels


def test_classes_named_like_splits_stay_classes(tmp_path, monkeypatch):
    names = ["Train/test/1.png", "Train/test/2.png", "Train/train/1.png",
             "Train/validation/1.png", "Test/train/1.png", "Test/test/1.png",
             "Val/validation/1.png", "Val/test/1.png"]
    members, pixels = grey_members(names)
    write_zip(tmp_path / "source" / "split-named.zip", members)
    builder = build_own(SplitNamedClasses, tmp_path / "source", tmp_path / "data", monkeypatch)
    assert builder.info.metadata["layout"] == {
        "wrapper": None, "split_folders": {"train": "Train", "test": "Test", "validation": "Val"}}
    classes = list(SplitNamedClasses.CLASS_NAMES)
    for split, folder in (("train", "Train"), ("test", "Test"), ("validation", "Val")):
        expected = Counter((classes.index(name.split("/")[1]), (8, 8, 1), p.tobytes())
                           for name, p in pixels.items() if name.startswith(folder + "/"))
        assert as_set(stored(builder, split)) == expected, split
    assert builder.info.metadata["junk"] == {}
    balanced(builder)


def test_classes_named_like_splits_inside_a_wrapper(tmp_path):
    members, _ = grey_members(["data/Train/test/1.png", "data/Test/train/1.png",
                               "data/Train/train/1.png"])
    archive = scan_archive(write_zip(tmp_path / "w.zip", members), ["test", "train"])
    assert archive.wrapper == "data"
    assert [r.path for r in archive.records["train"]] == ["data/Train/test/1.png",
                                                         "data/Train/train/1.png"]
    assert [r.label for r in archive.records["train"]] == [0, 1]


def test_class_folders_match_after_unicode_normalisation(tmp_path, monkeypatch):
    decomposed = "Cafe\u0301"
    members, pixels = grey_members([f"Train/{decomposed}/1.png", "Train/tea/1.png",
                                    "Test/CAFE\u0301/1.png", "Test/Tea/1.png"])
    write_zip(tmp_path / "source" / "drinks.zip", members)
    builder = build_own(Drinks, tmp_path / "source", tmp_path / "data", monkeypatch)
    assert sorted(label for label, _ in stored(builder, "train")) == [0, 1]
    assert sorted(label for label, _ in stored(builder, "test")) == [0, 1]
    balanced(builder)


@pytest.mark.parametrize("first, second, shown", [
    ("Café", "Cafe\u0301", r"'Cafe\u0301', 'Caf\xe9'"),
    ("Tea", "TEA", "'TEA', 'Tea'"),
])
def test_folders_differing_only_by_case_or_normalisation_never_merge(first, second, shown,
                                                                     tmp_path, monkeypatch):
    members, _ = grey_members([f"Train/{first}/1.png", f"Train/{second}/2.png",
                               "Test/Tea/1.png"])
    write_zip(tmp_path / "source" / "drinks.zip", members)
    with pytest.raises(LayoutError) as caught:
        build_own(Drinks, tmp_path / "source", tmp_path / "data", monkeypatch)
    message = str(caught.value)
    assert message.startswith("drinks.zip: in Train/, class folders " + shown)
    assert "differ only in letter case or Unicode normalisation" in message
    assert "\n" not in message


# --- 4. orientation, the same everywhere ---------------------------------------------------

# Stored pixels S with orientation o display as turn[o](S); each twin below
# stores the inverse turn so that it displays `upright`.
UNTURN = {3: lambda p: np.rot90(p, 2), 6: lambda p: np.rot90(p, 1), 8: lambda p: np.rot90(p, -1),
          2: lambda p: p[:, ::-1]}


def upright_picture() -> np.ndarray:
    pixels = np.zeros((20, 20), np.uint8)
    pixels[:5, :10] = 255       # a bright block top-left: any turn moves it
    pixels[10:, 15:] = 120
    return pixels


@pytest.mark.parametrize("orientation", sorted(UNTURN))
@pytest.mark.parametrize("late", [False, True], ids=["exif_first", "exif_after_pixels"])
def test_png_exif_orientation_is_applied(orientation, late):
    up = upright_picture()
    data = png(np.ascontiguousarray(UNTURN[orientation](up)), orientation)
    if late:
        data = exif_after_pixels(data)
    pixels, turned = images.decode_upright(data, "L")
    assert turned and np.array_equal(pixels[..., 0], up)
    assert np.array_equal(images.decode_image(png(up), "L")[..., 0], up)


def test_turned_images_are_stored_upright_and_are_duplicates_of_their_twins(tmp_path, monkeypatch):
    """tumor_classification keeps original bytes when it can: a square PNG or
    JPEG whose EXIF says turn it must be stored turned (TensorFlow ignores
    EXIF); a twin that displays as an earlier image is a duplicate, and one in
    test is leakage."""
    up = upright_picture()
    other = picture(5, 20, 20, 1)
    flipped_other = np.ascontiguousarray(UNTURN[3](other))
    members = [
        ("Train/BENIGN/up.png", png(up)),
        ("Train/BENIGN/up_twin.png", png(np.ascontiguousarray(UNTURN[3](up)), 3)),
        ("Train/MALIGNANT/turned.png", exif_after_pixels(png(flipped_other, 3))),
        ("Train/NORMAL/turned.jpg", jpeg(np.ascontiguousarray(UNTURN[6](200 - up // 2)), 6)),
        ("Test/BENIGN/leak.png", png(np.ascontiguousarray(UNTURN[8](up)), 8)),
        ("Test/NORMAL/plain.png", png(picture(6, 20, 20, 1))),
    ]
    write_zip(tmp_path / "source" / TUMOR_ZIP, members)
    builder = build("tumor_classification", tmp_path / "source", tmp_path / "data", monkeypatch)
    train = builder.info.metadata["cleaning"]["train"]
    assert train["drops"] == {"duplicate_image": 1}
    assert train["examples"] == {"duplicate_image": [f"{TUMOR_ZIP}/Train/BENIGN/up_twin.png"]}
    assert builder.info.metadata["leakage"] == {
        "count": 1, "examples": [f"{TUMOR_ZIP}/Test/BENIGN/leak.png = "
                                 f"{TUMOR_ZIP}/Train/BENIGN/up.png"],
        "dropped_from_test": False}
    by_label = {label: image[..., 0] for label, image in stored(builder, "train")}
    assert np.array_equal(by_label[0], up)
    assert np.array_equal(by_label[1], other)
    expected_jpeg = images.decode_image(members[3][1], "L")[..., 0]
    assert np.array_equal(by_label[2], expected_jpeg)
    # Upright: the dark block is top-left, as in `up` (73 = 200 - 255 // 2).
    assert abs(float(by_label[2][:5, :10].mean()) - 73) <= 4
    assert abs(float(by_label[2][10:, 15:].mean()) - 140) <= 4
    balanced(builder)


def test_base64_images_are_turned_as_zip_images_are():
    up = upright_picture()
    twin = base64.b64encode(png(np.ascontiguousarray(UNTURN[6](up)), 6)).decode()
    entry = next(base64_json.read(io.BytesIO(json.dumps({"b": twin}).encode()), "b.json"))
    rules = [base64_json.check_label, base64_json.decode_payload,
             lambda record: base64_json.to_pixels(record, (20, 20, 1), "L")]
    kept = screen(entry, rules)
    assert np.array_equal(kept.pixels[..., 0], up)


# --- 5. base64 JSON: every image is kept or counted ------------------------------------------

def sign_png_b64(value: int) -> str:
    return base64.b64encode(png(np.full((28, 28), value, np.uint8))).decode()


def read_counted(text: str) -> tuple[list, SplitReport]:
    report = SplitReport()
    kept = list(clean(base64_json.read(io.BytesIO(text.encode()), "b.json"),
                      base64_json.entry_rules(), report))
    report.check_balance()
    return kept, report


def test_an_object_of_several_images_gives_each_one():
    kept, report = read_counted(json.dumps({"a": sign_png_b64(10), "b": sign_png_b64(20),
                                            "c": sign_png_b64(30)}))
    assert [(e.label_index, int(e.pixels[0, 0, 0])) for e in kept] == [(0, 10), (1, 20), (2, 30)]
    assert report.records == 3 and report.kept == 3


def test_images_beside_a_record_are_entries_too():
    text = json.dumps({"label": "a", "image": sign_png_b64(10), "b": sign_png_b64(20),
                       "id": 7})
    kept, report = read_counted(text)
    assert [(e.label_index, int(e.pixels[0, 0, 0])) for e in kept] == [(0, 10), (1, 20)]
    # "id" is read as a label too: counted, named, never silently skipped.
    assert report.records == 3 and report.kept == 2 and report.drops == {"unknown_label": 1}
    assert report.examples["unknown_label"] == ["b.json:1 entry 3 label 'id'"]


@pytest.mark.parametrize("obj, images", [
    ({"label": sign_png_b64(10)}, 1),                           # a class named "label"
    ({"image": sign_png_b64(10)}, 1),                           # a class named "image"
    ({"image": sign_png_b64(10), "label": sign_png_b64(20)}, 2),  # two images, not a record
    ({"label": "data:image/png;base64," + sign_png_b64(20), "image": sign_png_b64(10)}, 2),
])
def test_field_names_as_keys_are_classes_when_they_hold_images(obj, images):
    entries = list(base64_json.read(io.BytesIO(json.dumps(obj).encode()), "b.json"))
    assert [(e.label, e.payload) for e in entries] == list(obj.items())
    kept, report = read_counted(json.dumps(obj))
    # No sign letter is named "image" or "label": each image is a counted drop.
    assert kept == [] and report.records == images
    assert dict(report.drops) == {"unknown_label": images}


def test_a_record_with_a_short_label_is_one_entry():
    for label in ("a", "A", "Tom", "dGVzdA=="):   # the last is base64, but of no image
        entries = list(base64_json.read(io.BytesIO(json.dumps(
            {"image": sign_png_b64(10), "label": label}).encode()), "b.json"))
        assert [(e.label, e.payload) for e in entries] == [(label, sign_png_b64(10))]


def test_base64_build_counts_every_image_of_the_file(tmp_path, monkeypatch):
    data = json.dumps([{"b": sign_png_b64(1), "c": sign_png_b64(2)},
                       {"label": "a", "image": sign_png_b64(3), "c": sign_png_b64(4)}])
    folder = tmp_path / "source"
    folder.mkdir()
    with zipfile.ZipFile(folder / "databasesLoadData.zip", "w") as zf:
        zf.writestr("sign_mnist_base64/data.json", data)
    builder = build("sign_mnist_base64", folder, tmp_path / "data", monkeypatch)
    got = sorted((label, int(image[0, 0, 0])) for label, image in stored(builder, "train"))
    assert got == [(0, 3), (1, 1), (2, 2), (2, 4)]
    report = builder.info.metadata["cleaning"]["train"]
    assert report["records"] == report["kept"] == 4


# --- 6. caps ------------------------------------------------------------------------------

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
    assert all(sum(len(l) for _, l in chunk) < csv_pixels.MAX_CHUNK_BYTES + len(line)
               for chunk in chunks)


def header_claiming(kind: str, width: int, height: int) -> bytes:
    """A small valid image whose header declares width x height."""
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(buffer, format=kind)
    data = bytearray(buffer.getvalue())
    if kind == "PNG":
        import zlib
        at = data.index(b"IHDR")
        data[at + 4:at + 12] = struct.pack(">II", width, height)
        data[at + 17:at + 21] = struct.pack(">I", zlib.crc32(bytes(data[at:at + 17])))
    elif kind == "GIF":
        data[6:10] = struct.pack("<HH", width, height)              # logical screen
        flags = data[10]
        at = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)   # after the colour table
        while data[at] == 0x21:                                     # extension blocks
            at += 2
            while data[at]:
                at += data[at] + 1
            at += 1
        assert data[at] == 0x2C                                     # the image descriptor
        data[at + 5:at + 9] = struct.pack("<HH", width, height)
    elif kind == "BMP":
        data[18:26] = struct.pack("<ii", width, -height)
    return bytes(data)


@pytest.mark.parametrize("kind", ["PNG", "GIF", "BMP"])
@pytest.mark.parametrize("width, height", [(8000, 6000), (10000, 9500), (60000, 60000)],
                         ids=["over_our_cap", "pillow_warns", "pillow_refuses"])
def test_image_headers_are_capped_before_decoding(kind, width, height, recwarn):
    data = header_claiming(kind, width, height)
    with pytest.raises(Dropped) as caught:
        images.decode_image(data, "L", "x.img")
    assert caught.value.reason == "image_too_large"
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]


def test_pillows_own_bomb_error_is_a_drop_even_above_our_cap():
    with pytest.raises(Dropped) as caught:
        images.decode_image(header_claiming("PNG", 60000, 60000), "L", "x.png",
                            max_pixels=10 ** 12)
    assert caught.value.reason == "image_too_large"
    assert "decompression bomb" in caught.value.detail


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

