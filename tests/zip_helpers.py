"""Zips that the zip tests write and the builds they run: a zip of exactly
the given entries, a TFDS build from a folder SIGN_DATASETS_SOURCE points
at, the examples it stored, and `messy`, a sign-language zip holding one of
everything the reader must sort out.

Test modules that use the `messy` fixture name this module in
`pytest_plugins`.
"""

from __future__ import annotations

import io
import warnings
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from image_helpers import encode, noise, png_claiming_size

FIXED_TIME = (1980, 1, 1, 0, 0, 0)
SIGN_ZIP = "sign-language-img.zip"
SIGN_PREFIX = SIGN_ZIP + "/"


def write_zip(path: Path, members: list[tuple[str, bytes]], compression=zipfile.ZIP_DEFLATED) -> Path:
    """A real zip with exactly these entries, repeats and odd names included."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name" is the point
        with zipfile.ZipFile(path, "w", compression) as zf:
            for name, data in members:
                zf.writestr(zipfile.ZipInfo(name, FIXED_TIME), data, compression)
    return path


def write_stored_zip(path: Path, members: list[tuple[str, bytes]]) -> Path:
    """The same, its entries stored rather than deflated."""
    return write_zip(path, members, zipfile.ZIP_STORED)


def build(name: str, source: Path | str, data_dir: Path, monkeypatch):
    monkeypatch.setenv("SIGN_DATASETS_SOURCE", str(source))
    builder = tfds.builder(name, data_dir=str(data_dir))
    builder.download_and_prepare()
    return builder


def examples(builder, split: str) -> list[tuple[int, np.ndarray]]:
    dataset = builder.as_dataset(split=split, shuffle_files=False)
    return [(int(ex["label"]), ex["image"]) for ex in tfds.as_numpy(dataset)]


def as_set(pairs) -> Counter:
    return Counter((label, image.shape, image.tobytes()) for label, image in pairs)


def balanced(builder) -> None:
    for split, report in builder.info.metadata["cleaning"].items():
        assert report["records"] == report["kept"] + sum(report["drops"].values()), split


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
