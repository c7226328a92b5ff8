"""Zipped image folders end to end: real zips, real TFDS builds.

The four datasets are built from the replica served on 127.0.0.1 and counted
against its manifest. Hand-made zips, saved under the bucket's object names
in a temporary folder that SIGN_DATASETS_SOURCE points at, carry every kind
of junk, bad image, odd layout and zip bomb the reader must handle.
"""

from __future__ import annotations

import functools
import hashlib
import io
import struct
import subprocess
import sys
import warnings
import zipfile
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

import sign_datasets  # noqa: F401  (registers the builders)
from sign_datasets.core.cleaning import Dropped, SourceError
from sign_datasets.formats.zip_layout import LayoutError, scan_archive
from sign_datasets.io.archives import ArchiveLimits, ZipBombError
from sign_datasets.core.labels import SIGN_LETTERS

from conftest import quiet_env

TFDS_CLI = str(Path(sys.executable).parent / "tfds")
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
SIGN_ZIP = "sign-language-img.zip"

DATASETS = {
    # name: (bucket object, class names in label order, default config shape)
    "sign_language_img": (SIGN_ZIP, list(SIGN_LETTERS), (28, 28, 1)),
    "malaria_cells": ("MalariaCells.zip", ["Parasitized", "Uninfected"], (None, None, 3)),
    "tom_and_jerry": ("TomAndJerry.zip", ["Jerry", "Tom"], (None, None, 3)),
    "tumor_classification": ("TumorClassification.zip", ["BENIGN", "MALIGNANT", "NORMAL"],
                             (None, None, 1)),
}
SIZED_CONFIGS = {
    "malaria_cells/124x124": (124, 124, 3),
    "tom_and_jerry/640x480": (480, 640, 3),
    "tumor_classification/124x124": (124, 124, 1),
}


# --- helpers --------------------------------------------------------------------

def write_zip(path: Path, members: list[tuple[str, bytes]], compression=zipfile.ZIP_DEFLATED) -> Path:
    """A real zip with exactly these entries, repeats and odd names included."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name" is the point
        with zipfile.ZipFile(path, "w", compression) as zf:
            for name, data in members:
                zf.writestr(zipfile.ZipInfo(name, FIXED_TIME), data, compression)
    return path


def encode(pixels: np.ndarray, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def noise(rng: np.random.Generator, height: int = 28, width: int = 28, channels: int = 0) -> np.ndarray:
    shape = (height, width, channels) if channels else (height, width)
    return rng.integers(0, 256, shape, dtype=np.uint8)


def flat(value, height: int, width: int) -> np.ndarray:
    return np.full((height, width), value, dtype=np.uint8)


def png_claiming_size(width: int, height: int) -> bytes:
    """A valid PNG whose header declares width x height (a decompression bomb)."""
    data = bytearray(encode(flat(0, 1, 1), "PNG"))
    ihdr = data.index(b"IHDR")
    data[ihdr + 4:ihdr + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr:ihdr + 17]))
    data[ihdr + 17:ihdr + 21] = struct.pack(">I", crc)
    return bytes(data)


def patch_central_entry(path: Path, name: str, field_offset: int, value: int) -> None:
    """Overwrites one 4-byte field of `name`'s central directory entry."""
    data = bytearray(path.read_bytes())
    at = 0
    while True:
        at = data.index(b"PK\x01\x02", at)
        name_length = struct.unpack("<H", data[at + 28:at + 30])[0]
        if data[at + 46:at + 46 + name_length] == name.encode():
            break
        at += 4
    data[at + field_offset:at + field_offset + 4] = struct.pack("<I", value)
    path.write_bytes(bytes(data))


def claim_member_count(path: Path, count: int) -> None:
    """Rewrites the end records as zip64 ones that declare `count` members."""
    data = path.read_bytes()
    eocd = data.rindex(b"PK\x05\x06")
    directory_bytes, directory_at = struct.unpack("<II", data[eocd + 12:eocd + 20])
    body = data[:eocd]
    record_at = len(body)
    zip64_record = struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0,
                               count, count, directory_bytes, directory_at)
    locator = struct.pack("<4sIQI", b"PK\x06\x07", 0, record_at, 1)
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF,
                      0xFFFFFFFF, 0xFFFFFFFF, 0)
    path.write_bytes(body + zip64_record + locator + end)


def build(name: str, source: Path | str, data_dir: Path, monkeypatch):
    monkeypatch.setenv("SIGN_DATASETS_SOURCE", str(source))
    builder = tfds.builder(name, data_dir=str(data_dir))
    builder.download_and_prepare()
    return builder


def examples(builder, split: str) -> list[tuple[int, np.ndarray]]:
    dataset = builder.as_dataset(split=split, shuffle_files=False)
    return [(int(ex["label"]), ex["image"]) for ex in tfds.as_numpy(dataset)]


def shard_digests(builder) -> dict[str, str]:
    folder = Path(builder.data_dir)
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.glob("*.tfrecord*"))}


# --- the four datasets from the served replica ------------------------------------

@pytest.fixture(scope="module")
def replica_builds(replica_server, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds_folders")
    builders = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SIGN_DATASETS_SOURCE", replica_server.base_url)
        for name in [*DATASETS, *SIZED_CONFIGS]:
            builders[name] = tfds.builder(name, data_dir=str(data_dir))
            builders[name].download_and_prepare()
    return builders


@pytest.mark.parametrize("name", DATASETS)
def test_replica_counts_are_exact_per_split_and_class(replica_builds, replica_manifest, name):
    object_name, class_names, shape = DATASETS[name]
    builder = replica_builds[name]
    assert builder.info.features["label"].names == class_names
    assert builder.info.features["image"].shape == shape
    manifest = replica_manifest[object_name]
    for split, folder in (("train", "Train"), ("test", "Test")):
        got = Counter(class_names[label] for label, _ in examples(builder, split))
        assert got == Counter(manifest[folder]), split
        report = builder.info.metadata["cleaning"][split]
        assert report["records"] == report["kept"] == sum(manifest[folder].values())
        assert report["drops"] == {}
    assert builder.info.metadata["junk"] == {}
    assert builder.info.metadata["leakage"] == {"count": 0, "examples": [],
                                                "dropped_from_test": False}
    assert builder.info.metadata["layout"] == {
        "wrapper": None, "split_folders": {"train": "Train", "test": "Test"}}


@pytest.mark.parametrize("name", SIZED_CONFIGS)
def test_sized_configs_store_the_course_sizes(replica_builds, replica_manifest, name):
    builder = replica_builds[name]
    shape = SIZED_CONFIGS[name]
    assert builder.info.features["image"].shape == shape
    stored = examples(builder, "test")
    assert all(image.shape == shape for _, image in stored)
    assert len(stored) == sum(replica_manifest[DATASETS[name.split("/")[0]][0]]["Test"].values())


def test_native_configs_keep_each_image_size_and_mode(replica_builds, replica_dir):
    with zipfile.ZipFile(replica_dir / "TumorClassification.zip") as zf:
        sizes = Counter(Image.open(io.BytesIO(zf.read(n))).size[::-1]
                        for n in zf.namelist() if n.startswith("Train/") and n.endswith(".jpg"))
    stored = examples(replica_builds["tumor_classification"], "train")
    assert Counter(image.shape[:2] for _, image in stored) == sizes
    assert {image.shape[2] for _, image in stored} == {1}
    malaria = examples(replica_builds["malaria_cells"], "test")
    assert {image.shape[2] for _, image in malaria} == {3}
    assert len({image.shape for _, image in malaria}) > 1


def test_sign_images_are_the_originals_decoded_once(replica_builds, replica_dir):
    """sign_language_img stores raw pixels (2.0.0): exactly Pillow's decode of
    each original JPEG, as a (28, 28, 1) uint8 tensor, which is TensorFlow's
    decode with the accurate IDCT, and within a few levels of its default
    (fast IDCT) decode that keras uses."""
    expected, by_tensorflow = Counter(), {}
    with zipfile.ZipFile(replica_dir / SIGN_ZIP) as zf:
        for name in zf.namelist():
            if name.startswith("Test/") and name.endswith(".jpg"):
                label = SIGN_LETTERS.index(name.split("/")[1])
                data = zf.read(name)
                pixels = np.asarray(Image.open(io.BytesIO(data)).convert("L"))[..., None]
                expected[(label, pixels.tobytes())] += 1
                accurate = tf.io.decode_jpeg(data, channels=1, dct_method="INTEGER_ACCURATE")
                assert accurate.numpy().tobytes() == pixels.tobytes(), name
                by_tensorflow[(label, pixels.tobytes())] = tf.io.decode_jpeg(data, channels=1)
    builder = replica_builds["sign_language_img"]
    assert isinstance(builder.info.features["image"], tfds.features.Tensor)
    got = examples(builder, "test")
    assert all(image.shape == (28, 28, 1) and image.dtype == np.uint8 for _, image in got)
    assert Counter((label, image.tobytes()) for label, image in got) == expected
    gaps = [np.abs(tensorflow.numpy().astype(int) - np.frombuffer(stored, np.uint8).reshape(28, 28, 1))
            for (_, stored), tensorflow in by_tensorflow.items()]
    assert max(int(gap.max()) for gap in gaps) <= 3
    assert np.mean([gap.mean() for gap in gaps]) < 1.0


def test_parallel_build_is_byte_identical_to_a_one_worker_cli_build(replica_builds,
                                                                    replica_server, tmp_path):
    """`tfds build` in another process with one worker writes the same shards
    as this process's build with a worker pool."""
    data_dir = tmp_path / "cli"
    result = subprocess.run(
        [TFDS_CLI, "build", "--imports", "sign_datasets", "sign_language_img",
         "--data_dir", str(data_dir)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env=quiet_env(SIGN_DATASETS_SOURCE=replica_server.base_url, SIGN_DATASETS_WORKERS="1",
                      PYTHONHASHSEED="3"))
    assert result.returncode == 0, result.stderr[-3000:]
    reference = shard_digests(replica_builds["sign_language_img"])
    assert reference
    assert shard_digests(tfds.builder("sign_language_img", data_dir=str(data_dir))) == reference


# --- junk, bad images, duplicates, leakage, unsafe names ---------------------------

SIGN_PREFIX = SIGN_ZIP + "/"


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    """A sign-language zip holding one of everything the reader must sort out.

    Train: 9 good images, 2 corrupt, 1 not an image, 1 decompression bomb,
    1 repeat of a good image, 1 second entry with a good image's name.
    Test: 6 good images plus one that has a train image's pixels (as a PNG).
    """
    rng = np.random.default_rng(0)
    good = {f"{letter}/{i:04d}.jpg": encode(noise(rng), "JPEG", quality=90)
            for letter in "ABC" for i in range(1, 4)}
    train_a2_pixels = np.asarray(Image.open(io.BytesIO(good["A/0002.jpg"])).convert("L"))
    nested = io.BytesIO()
    with zipfile.ZipFile(nested, "w") as inner:
        inner.writestr("Train/A/inner.jpg", encode(noise(rng), "JPEG"))
    members = [(f"Train/{name}", data) for name, data in good.items()]
    members += [
        ("Train/A/corrupt.jpg", b"\xff\xd8\xff\xe0" + bytes(rng.integers(0, 256, 400, dtype=np.uint8))),
        ("Train/A/truncated.jpg", good["C/0003.jpg"][: len(good["C/0003.jpg"]) // 2]),
        ("Train/B/hello.jpg", b"hello, this is not an image\n"),
        ("Train/C/bomb.png", png_claiming_size(50_000, 50_000)),
        ("Train/B/dup.jpg", good["B/0001.jpg"]),
        ("Train/C/0001.jpg", encode(noise(rng), "JPEG")),     # second entry, same name
        # junk
        ("__MACOSX/Train/A/._0001.jpg", b"\x00\x05\x16\x07mac"),
        ("Train/A/.DS_Store", b"\x00\x00\x00\x01Bud1"),
        ("Train/B/Thumbs.db", b"\xd0\xcf\x11\xe0"),
        ("Train/desktop.ini", b"[.ShellClassInfo]\r\n"),
        ("Train/C/notes.txt", b"taken on a Tuesday\n"),
        ("Train/loose.jpg", encode(noise(rng), "JPEG")),
        ("README.md", b"# letters\n"),
        ("cover.png", encode(noise(rng), "PNG")),
        ("Test/A/more.zip", nested.getvalue()),
        # names that point outside the archive's folder
        ("../evil.jpg", good["A/0001.jpg"]),
        ("/tmp/Train/A/absolute.jpg", good["A/0001.jpg"]),
        ("Train/A/../../../../escaped.jpg", good["A/0001.jpg"]),
    ]
    members += [(f"Test/{letter}/{i:04d}.jpg", encode(noise(rng), "JPEG"))
                for letter in "ABC" for i in range(1, 3)]
    members.append(("Test/C/leak.png", encode(train_a2_pixels, "PNG")))
    source = tmp_path_factory.mktemp("messy_source")
    write_zip(source / SIGN_ZIP, members)
    return source


@pytest.fixture(scope="module")
def messy_builds(messy, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("messy_tfds")
    builders = {}
    with pytest.MonkeyPatch.context() as patch:
        for config in ("28x28", "28x28_no_leakage"):
            builders[config] = build(f"sign_language_img/{config}", messy, data_dir, patch)
    return builders


def test_every_bad_image_is_a_named_drop(messy_builds):
    builder = messy_builds["28x28"]
    report = builder.info.metadata["cleaning"]["train"]
    assert report["drops"] == {"corrupt_image": 2, "not_an_image": 1, "image_too_large": 1,
                               "duplicate_image": 1, "duplicate_member_name": 1}
    assert report["examples"] == {
        "corrupt_image": [SIGN_PREFIX + "Train/A/corrupt.jpg", SIGN_PREFIX + "Train/A/truncated.jpg"],
        "not_an_image": [SIGN_PREFIX + "Train/B/hello.jpg"],
        "image_too_large": [SIGN_PREFIX + "Train/C/bomb.png"],
        "duplicate_image": [SIGN_PREFIX + "Train/B/dup.jpg"],
        "duplicate_member_name": [SIGN_PREFIX + "Train/C/0001.jpg"],
    }
    assert report["records"] == 15 and report["kept"] == 9
    assert builder.info.splits["train"].num_examples == 9
    assert Counter(label for label, _ in examples(builder, "train")) == {0: 3, 1: 3, 2: 3}


def test_junk_is_counted_apart_from_records(messy_builds):
    assert messy_builds["28x28"].info.metadata["junk"] == {
        "archive": {"outside_split_folders": 1, "text_file": 1, "unsafe_path": 3},
        "train": {"desktop_ini": 1, "hidden_file": 1, "macos_metadata": 1,
                  "outside_class_folders": 1, "text_file": 1, "thumbs_db": 1},
        "test": {"nested_archive": 1},
    }


def test_a_build_says_which_archive_members_it_skipped(messy, tmp_path, monkeypatch, capfd):
    """Junk is no record, so no drop; the printed report still tells of it."""
    build("sign_language_img/28x28", messy, tmp_path / "tfds", monkeypatch)
    printed = capfd.readouterr().err
    assert "Skipped archive members (not records): archive: " in printed
    assert "outside_split_folders=1, text_file=1, unsafe_path=3" in printed


def test_nested_zip_and_unsafe_names_are_never_expanded_or_written(messy_builds, messy):
    # The nested zip's image did not become a record, and nothing landed
    # beside or above the source folder.
    assert messy_builds["28x28"].info.metadata["cleaning"]["test"]["records"] == 7
    for place in (messy.parent, messy.parent.parent, Path("/tmp")):
        assert not (place / "evil.jpg").exists()
        assert not (place / "escaped.jpg").exists()
    assert not Path("/tmp/Train/A/absolute.jpg").exists()


def test_leakage_is_reported_not_dropped_by_default(messy_builds):
    builder = messy_builds["28x28"]
    expected_example = SIGN_PREFIX + "Test/C/leak.png = " + SIGN_PREFIX + "Train/A/0002.jpg"
    assert builder.info.metadata["leakage"] == {
        "count": 1, "examples": [expected_example], "dropped_from_test": False}
    assert builder.info.splits["test"].num_examples == 7

    strict = messy_builds["28x28_no_leakage"]
    assert strict.info.metadata["leakage"]["dropped_from_test"] is True
    report = strict.info.metadata["cleaning"]["test"]
    assert report["drops"] == {"leaked_from_train": 1}
    assert report["examples"] == {"leaked_from_train": [SIGN_PREFIX + "Test/C/leak.png"]}
    assert strict.info.splits["test"].num_examples == 6
    # The filter touches test only.
    assert strict.info.metadata["cleaning"]["train"] == builder.info.metadata["cleaning"]["train"]


# --- image kinds: content, not extension; modes; EXIF --------------------------------

def exif_rotated_jpeg() -> bytes:
    """30 wide, 20 high, left half black; EXIF says: turn 90 degrees clockwise."""
    pixels = np.zeros((20, 30), dtype=np.uint8)
    pixels[:, 15:] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(pixels, "JPEG", quality=95, exif=exif.tobytes())


def image_kinds() -> dict[str, bytes]:
    """One image per kind; each has its own size, so the stored one is found by shape."""
    palette = Image.new("P", (23, 23), 0)
    palette.putpalette([200, 0, 0] + [0, 0, 0] * 255)
    palette_png = io.BytesIO()
    palette.save(palette_png, format="PNG")
    gif = io.BytesIO()
    frames = [Image.fromarray(flat(value, 24, 24)) for value in (50, 200)]
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:])
    cmyk = io.BytesIO()
    Image.new("CMYK", (21, 21), (0, 0, 0, 128)).save(cmyk, format="JPEG", quality=95)
    sixteen = io.BytesIO()
    Image.fromarray(np.full((22, 22), 0x8000, dtype=np.uint16)).save(sixteen, format="PNG")
    return {
        "cmyk.jpg": cmyk.getvalue(),
        "sixteen_bit.png": sixteen.getvalue(),
        "palette.png": palette_png.getvalue(),
        "animated.gif": gif.getvalue(),
        "bitmap.bmp": encode(np.dstack([flat(10, 25, 25), flat(200, 25, 25), flat(10, 25, 25)]), "BMP"),
        "png_named.jpg": encode(flat(77, 26, 26), "PNG"),
        "UPPER.JPG": encode(flat(150, 27, 27), "JPEG", quality=95),
        "rotated.jpg": exif_rotated_jpeg(),
    }


def test_images_are_read_by_content_converted_and_turned_upright(tmp_path, monkeypatch):
    kinds = image_kinds()
    classes = ["BENIGN", "MALIGNANT", "NORMAL"]
    members = [(f"Train/{classes[i % 3]}/{name}", data) for i, (name, data) in enumerate(kinds.items())]
    members += [(f"Test/{cls}/{cls}.jpg", encode(flat(40 + 40 * i, 8, 8), "JPEG"))
                for i, cls in enumerate(classes)]
    write_zip(tmp_path / "source" / "TumorClassification.zip", members)
    builder = build("tumor_classification", tmp_path / "source", tmp_path / "tfds", monkeypatch)
    report = builder.info.metadata["cleaning"]["train"]
    assert report["kept"] == report["records"] == len(kinds), report
    by_shape = {image.shape: image for _, image in examples(builder, "train")}
    assert sorted(by_shape) == sorted([(21, 21, 1), (22, 22, 1), (23, 23, 1), (24, 24, 1),
                                       (25, 25, 1), (26, 26, 1), (27, 27, 1), (30, 20, 1)])

    def level(shape):
        return float(by_shape[shape].mean())

    assert abs(level((21, 21, 1)) - 127) <= 3     # CMYK, converted to grey
    assert level((22, 22, 1)) == 128              # 16-bit 0x8000: the top 8 bits
    assert abs(level((23, 23, 1)) - 60) <= 1      # palette red (200, 0, 0)
    assert level((24, 24, 1)) == 50               # GIF: the first frame
    assert abs(level((25, 25, 1)) - 122) <= 1     # BMP green
    assert level((26, 26, 1)) == 77               # a PNG named .jpg
    assert abs(level((27, 27, 1)) - 150) <= 2     # upper-case .JPG
    rotated = by_shape[(30, 20, 1)]               # 30x20 turned to stand 20 wide, 30 high
    assert rotated[:12].mean() < 30 and rotated[-12:].mean() > 225


# --- layouts --------------------------------------------------------------------

LAYOUTS = {
    # name: (train Tom, train Jerry, test Tom, test Jerry folders), wrapper, split folders
    "wrapper folder": (("TomAndJerry/Train/Tom", "TomAndJerry/Train/Jerry", "TomAndJerry/Test/Tom",
                        "TomAndJerry/Test/Jerry"), "TomAndJerry", "Train", "Test"),
    "lower-case split and class folders": (("train/tom", "train/jerry", "test/tom", "test/jerry"),
                                           None, "train", "test"),
    "training/testing in a wrapper": (("data/TRAINING/TOM", "data/TRAINING/jerry", "data/testing/Tom",
                                       "data/testing/JERRY"), "data", "TRAINING", "testing"),
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_accepted_layouts(layout, tmp_path, monkeypatch):
    folders, wrapper, train_folder, test_folder = LAYOUTS[layout]
    rng = np.random.default_rng(1)
    members = []
    for folder, count in zip(folders, (3, 2, 1, 2)):
        members += [(f"{folder}/{i}.jpg", encode(noise(rng, 12, 16, 3), "JPEG")) for i in range(count)]
    write_zip(tmp_path / "source" / "TomAndJerry.zip", members)
    builder = build("tom_and_jerry", tmp_path / "source", tmp_path / "tfds", monkeypatch)
    names = builder.info.features["label"].names
    assert Counter(names[label] for label, _ in examples(builder, "train")) == {"Tom": 3, "Jerry": 2}
    assert Counter(names[label] for label, _ in examples(builder, "test")) == {"Tom": 1, "Jerry": 2}
    assert builder.info.metadata["layout"] == {
        "wrapper": wrapper, "split_folders": {"train": train_folder, "test": test_folder}}


def sign_zip(source: Path, names: list[str]) -> Path:
    rng = np.random.default_rng(2)
    return write_zip(source / SIGN_ZIP, [(name, encode(noise(rng), "JPEG")) for name in names])


def test_unknown_class_folder_stops_with_the_folders_found(tmp_path, monkeypatch):
    sign_zip(tmp_path / "source", ["Train/A/1.jpg", "Train/J/1.jpg", "Train/Hello/1.jpg",
                                   "Test/A/1.jpg"])
    with pytest.raises(LayoutError) as caught:
        build("sign_language_img", tmp_path / "source", tmp_path / "tfds", monkeypatch)
    message = str(caught.value)
    assert message.startswith(SIGN_ZIP + ": in Train/")
    assert "['Hello', 'J'] are not classes" in message
    assert "found ['A', 'Hello', 'J']" in message
    assert "expected ['A', 'B', 'C'" in message and "'Y']" in message


@pytest.mark.parametrize("names, expected", [
    (["Train/A/1.jpg"], "no folder for the test split; found split folders ['Train/']"),
    (["images/A/1.jpg", "more/B/1.jpg"], "no split folders found; the zip's top level holds "
                                         "['images/', 'more/']"),
    (["Train/A/1.jpg", "Test/A/1.jpg", "TRAIN/B/1.jpg"], "both Train/ and TRAIN/ hold the train split"),
    (["one/Train/A/1.jpg", "two/Test/A/1.jpg"], "several wrapper folders hold split folders: "
                                                "['one', 'two']"),
])
def test_other_layout_mismatches_are_clear_errors(names, expected, tmp_path, monkeypatch):
    sign_zip(tmp_path / "source", names)
    with pytest.raises(LayoutError, match=SIGN_ZIP) as caught:
        build("sign_language_img", tmp_path / "source", tmp_path / "tfds", monkeypatch)
    assert expected in str(caught.value)


# --- zip bombs --------------------------------------------------------------------

def bomb_source(tmp_path: Path, extra: list[tuple[str, bytes]]) -> Path:
    rng = np.random.default_rng(3)
    members = [("Train/A/1.jpg", encode(noise(rng), "JPEG")), ("Test/A/1.jpg", encode(noise(rng), "JPEG"))]
    write_zip(tmp_path / "source" / SIGN_ZIP, members + extra)
    return tmp_path / "source"


def test_ratio_zip_bomb_stops_before_inflating(tmp_path, monkeypatch):
    # 64 MB of zeros deflates to about 64 KB: a ratio near 1000:1.
    source = bomb_source(tmp_path, [("Train/A/zeros.bmp", bytes(64 << 20))])
    archive_bytes = (source / SIGN_ZIP).stat().st_size
    assert archive_bytes < 200_000
    with pytest.raises(ZipBombError) as caught:
        build("sign_language_img", source, tmp_path / "tfds", monkeypatch)
    message = str(caught.value)
    assert "sign-language-img.zip: member 'Train/A/zeros.bmp' inflates" in message
    assert "limit 200:1" in message and "zip bomb" in message
    assert not list((tmp_path / "tfds").glob("sign_language_img/*/*/*.tfrecord*"))


def test_huge_declared_size_stops_the_build(tmp_path, monkeypatch):
    source = bomb_source(tmp_path, [("Train/A/big.jpg", b"\xff\xd8" + bytes(1000))])
    patch_central_entry(source / SIGN_ZIP, "Train/A/big.jpg", 24, 3 << 30)  # uncompressed size
    with pytest.raises(ZipBombError, match=r"member 'Train/A/big\.jpg' declares 3,221,225,472 bytes"):
        build("sign_language_img", source, tmp_path / "tfds", monkeypatch)


def test_member_inflating_past_its_declared_size_is_cut_and_dropped(tmp_path, monkeypatch):
    rng = np.random.default_rng(4)
    liar = encode(noise(rng), "PNG")
    source = bomb_source(tmp_path, [("Train/B/liar.png", liar)])
    patch_central_entry(source / SIGN_ZIP, "Train/B/liar.png", 24, 100)
    builder = build("sign_language_img", source, tmp_path / "tfds", monkeypatch)
    report = builder.info.metadata["cleaning"]["train"]
    assert report["drops"] == {"corrupt_member": 1}
    assert report["examples"] == {"corrupt_member": [SIGN_PREFIX + "Train/B/liar.png"]}


def test_overlapping_members_are_refused(tmp_path, monkeypatch):
    source = bomb_source(tmp_path, [("Train/A/2.jpg", b"\xff\xd8" + bytes(100))])
    patch_central_entry(source / SIGN_ZIP, "Train/A/2.jpg", 20, 10_000_000)  # compressed size
    with pytest.raises(ZipBombError, match="overlap"):
        build("sign_language_img", source, tmp_path / "tfds", monkeypatch)


def test_member_count_bomb_is_refused_before_the_directory_is_parsed(tmp_path, monkeypatch):
    source = bomb_source(tmp_path, [])
    claim_member_count(source / SIGN_ZIP, 3_000_000_000)
    with pytest.raises(ZipBombError, match="declares 3,000,000,000 members, over the limit of 500,000"):
        build("sign_language_img", source, tmp_path / "tfds", monkeypatch)


def test_member_count_limit_counts_real_entries(tmp_path):
    path = write_zip(tmp_path / SIGN_ZIP, [(f"Train/A/{i}.jpg", b"x") for i in range(60)]
                     + [("Test/A/1.jpg", b"x")])
    with pytest.raises(ZipBombError, match="declares 61 members, over the limit of 50"):
        scan_archive(path, SIGN_LETTERS, limits=ArchiveLimits(max_members=50))
    scan_archive(path, SIGN_LETTERS, limits=ArchiveLimits(max_members=61))


def test_a_file_that_is_not_a_zip_is_a_clear_error(tmp_path, monkeypatch):
    (tmp_path / "source").mkdir()
    (tmp_path / "source" / SIGN_ZIP).write_bytes(b"<html>Service Unavailable</html>")
    with pytest.raises(SourceError, match="sign-language-img.zip: not a zip archive"):
        build("sign_language_img", tmp_path / "source", tmp_path / "tfds", monkeypatch)


def _read_members(path: str, indices: list[int]) -> list[tuple[bool, bytes]]:
    """(whether the scan's directory was reused, member bytes), in any process."""
    from sign_datasets.io import archives
    zf = archives.zip_for_this_process(path)
    parsed = archives._PARSED_DIRECTORIES.get(path)
    reused = parsed is not None and zf is parsed[0]
    return [(reused, zf.read(zf.infolist()[i])) for i in indices]


def _zip_of_random_members(path, count: int, size: int) -> dict[str, bytes]:
    import os
    members = {f"Train/A/{i}.bin": os.urandom(size + i) for i in range(count)}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return members


def test_forked_workers_read_through_the_scanned_directory(tmp_path):
    """Decode workers do not parse the zip's directory again (0.3 s for the
    sign-language zip, per worker and split): the build process and its
    workers read every member through the scan's ZipFile, byte for byte;
    a zip replaced since the scan is parsed anew."""
    from sign_datasets.io import archives, parallel

    path = tmp_path / "a.zip"
    members = _zip_of_random_members(path, 40, 300)
    infos = archives.open_directory(path, "a.zip", archives.ArchiveLimits())

    read_all = functools.partial(_read_members, str(path))
    chunks = [list(range(start, start + 8)) for start in range(0, 40, 8)]
    for caller_helps in (False, True):
        got = [item for chunk in parallel.ordered_map(read_all, chunks, workers=2,
                                                      caller_helps=caller_helps)
               for item in chunk]
        assert all(reused for reused, _ in got)
        assert [data for _, data in got] == [members[info.filename] for info in infos]
        archives.release_archive(str(path))

    with zipfile.ZipFile(path, "w") as zf:  # replaced: another size
        zf.writestr("Train/A/0.bin", b"new")
    got = list(parallel.ordered_map(read_all, [[0]], workers=2))
    assert got == [[(False, b"new")]]


def test_processes_reading_one_descriptor_leave_its_shared_offset_alone(tmp_path):
    """The scan's ZipFile is open in the build process when its workers fork,
    so they all hold one open file, whose offset is shared between
    processes: reads must never move it (each reads at a position of its own),
    or one process's seek would land another's read in the wrong member."""
    import os
    from sign_datasets.io import archives, parallel

    path = tmp_path / "a.zip"
    members = _zip_of_random_members(path, 64, 20_000)
    infos = archives.open_directory(path, "a.zip", archives.ArchiveLimits())
    assert _read_members(str(path), [0]) == [(True, members[infos[0].filename])]
    descriptor = archives._PARSED_DIRECTORIES[str(path)][1].fileno()
    os.lseek(descriptor, 12_345, os.SEEK_SET)
    try:
        chunks = [list(range(start, start + 4)) for start in range(0, 64, 4)]
        got = [item for chunk in parallel.ordered_map(
            functools.partial(_read_members, str(path)), chunks, workers=3, caller_helps=True)
            for item in chunk]
        assert [data for _, data in got] == [members[info.filename] for info in infos]
        assert os.lseek(descriptor, 0, os.SEEK_CUR) == 12_345
    finally:
        archives.release_archive(str(path))
    with pytest.raises(ValueError, match="released"):
        archives._PARSED_DIRECTORIES[str(path)][1].fileno()


def _outcomes(records) -> list[tuple]:
    """What each record became: (key, label, stored bytes, digest) or its drop."""
    return [("dropped", r.reason, r.where) if isinstance(r, Dropped)
            else (r.key, r.label, r.encoded, r.raw_shape, r.digest) for r in records]


def _plan_outcomes(plan, workers) -> list[tuple]:
    from sign_datasets.generate import local
    return _outcomes(record for _, record in local.positioned_records(plan, workers))


def test_the_local_runner_reads_each_split_as_one_serial_pass(messy):
    """A split's plan read on 1 or 2 processes gives the records, drops
    included, of one serial pass over its members, in member order; in any
    split order, and after a split was left half read."""
    from sign_datasets.formats import zip_folders, zip_layout
    from sign_datasets.core.labels import SIGN_LETTERS

    archive = zip_layout.scan_archive(messy / SIGN_ZIP, SIGN_LETTERS)
    spec = zip_folders.DecodeSpec(mode="L", size=(28, 28), raw=True)
    serial = {split: _outcomes(zip_folders.read_chunk(archive.records[split], str(archive.path),
                                                      archive.source, spec))
              for split in ("train", "test")}
    assert any(o[0] == "dropped" for o in serial["train"]) and len(serial["test"]) == 7
    plans = zip_folders.split_plans("d", archive, spec, drop_leaked_from_test=False)
    for workers in (1, 2):
        assert _plan_outcomes(plans["test"], workers) == serial["test"]
        assert _plan_outcomes(plans["train"], workers) == serial["train"]
        half = _plan_outcomes_lazily(plans["train"], workers)
        assert [next(half) for _ in range(3)] == serial["train"][:3]
        half.close()
        assert _plan_outcomes(plans["test"], workers) == serial["test"]


def _plan_outcomes_lazily(plan, workers):
    from sign_datasets.generate import local
    for _, record in local.positioned_records(plan, workers):
        yield _outcomes([record])[0]


def test_long_lived_objects_are_frozen_only_while_a_build_reads(messy):
    """Garbage collection skips the objects alive when reading starts (the
    scan and the decode loop run faster), and every block hands them back:
    nested blocks, a finished read and an abandoned one."""
    import gc

    from sign_datasets.formats import zip_folders, zip_layout
    from sign_datasets.core.labels import SIGN_LETTERS
    from sign_datasets.generate import local
    from sign_datasets.io.parallel import long_lived_objects_frozen

    assert gc.get_freeze_count() == 0
    with long_lived_objects_frozen():
        assert gc.get_freeze_count() > 0
        with long_lived_objects_frozen():
            assert gc.get_freeze_count() > 0
        assert gc.get_freeze_count() > 0  # the inner block leaves unfreezing to the outer
    assert gc.get_freeze_count() == 0

    archive = zip_layout.scan_archive(messy / SIGN_ZIP, SIGN_LETTERS)
    assert gc.get_freeze_count() == 0
    spec = zip_folders.DecodeSpec(mode="L", size=(28, 28), raw=True)
    plans = zip_folders.split_plans("d", archive, spec, drop_leaked_from_test=False)
    for workers in (1, 2):
        train = local.positioned_records(plans["train"], workers)
        next(train)
        assert gc.get_freeze_count() > 0
        list(train)
        assert gc.get_freeze_count() == 0
        half = local.positioned_records(plans["test"], workers)
        next(half)
        half.close()
        assert gc.get_freeze_count() == 0


def test_member_ranges_cover_every_member_once_starting_small():
    """Decode tasks: contiguous, every member once, the first ones small and
    doubling to the cap, a range closed early when its bytes reach the cap."""
    from sign_datasets.formats import zip_folders, zip_layout

    def ref(i, size=100):
        return zip_layout.MemberRef(i, f"m{i}", f"m{i}", "train", 0, size, size)

    members = [ref(i) for i in range(1000)]
    members[500] = Dropped("corrupt_member", "x", "")
    ranges = list(zip_folders.member_ranges(members, max_members=256, first_members=32))
    assert [stop - start for start, stop in ranges] == [32, 64, 128, 256, 256, 256, 8]
    assert [start for start, _ in ranges] == [0] + [stop for _, stop in ranges[:-1]]
    assert ranges[-1][1] == len(members)

    big = [ref(i, size=3 * (1 << 20)) for i in range(5)]
    assert list(zip_folders.member_ranges(big)) == [(0, 2), (2, 4), (4, 5)]
