"""Writes the dummy_data/ zips of the four image-folder builders' TFDS tests.

Each zip is a few KB and uses a different one of the layouts the reader must
accept, so the TFDS tests alone already cover them:

- sign-language-img.zip: Train/ and Test/, junk, a repeat, a truncated JPEG
  and a test image that repeats a train image (leakage).
- MalariaCells.zip: one wrapper folder, lower-case train/ and test/.
- TomAndJerry.zip: lower-case class folders.
- TumorClassification.zip: training/ and testing/, RGB files of grey content.

Run: python scripts/make_dummy_data_folders.py
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def jpeg(pixels: np.ndarray, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def write_zip(path: Path, members: dict[str, bytes]) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, FIXED_TIME), data, zipfile.ZIP_DEFLATED)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    print(f"wrote {path} ({path.stat().st_size} bytes)")


def gray(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    # Smooth gradients plus a random block: distinct images that JPEG keeps distinct.
    base = np.add.outer(np.arange(height), np.arange(width)) * (255 / (height + width))
    base[rng.integers(0, height // 2):, rng.integers(0, width // 2):] += rng.integers(20, 90)
    return np.clip(base, 0, 255).astype(np.uint8)


def colour(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    return np.stack([gray(rng, height, width) for _ in range(3)], axis=-1)


def builder_dir(name: str) -> Path:
    return ROOT / "builders" / name / "dummy_data"


def sign_language_img() -> None:
    """Kept: train 9, test 6 (5 without the leaked one)."""
    rng = np.random.default_rng(1)
    members: dict[str, bytes] = {}
    train = {}
    for letter in "ABC":
        for i in range(1, 4):
            train[f"{letter}/{i:04d}.jpg"] = jpeg(gray(rng, 28, 28))
    for name, data in train.items():
        members[f"Train/{name}"] = data
    members["Train/B/0004.jpg"] = train["B/0001.jpg"]          # duplicate_image
    members["Train/C/0009.jpg"] = train["C/0003.jpg"][:-200]   # corrupt_image (truncated)
    members["Train/A/.DS_Store"] = b"\x00\x00\x00\x01Bud1"       # junk: hidden_file
    members["Train/Thumbs.db"] = b"\xd0\xcf\x11\xe0"            # junk: thumbs_db
    members["__MACOSX/Train/A/._0001.jpg"] = b"\x00\x05\x16\x07"  # junk: macos_metadata
    members["README.txt"] = b"Sign language letters\n"          # junk: text_file
    for letter in "ABC":
        for i in range(1, 3):
            members[f"Test/{letter}/{i:04d}.jpg"] = jpeg(gray(rng, 28, 28))
    members["Test/C/0002.jpg"] = train["A/0002.jpg"]            # leakage from train
    write_zip(builder_dir("sign_language_img") / "sign-language-img.zip", members)


def malaria_cells() -> None:
    """Kept: train 4, test 2."""
    rng = np.random.default_rng(2)
    members = {}
    for split, count in (("train", 2), ("test", 1)):
        for cls in ("Parasitized", "Uninfected"):
            for i in range(1, count + 1):
                height, width = rng.integers(10, 20, size=2)
                members[f"MalariaCells/{split}/{cls}/{i:04d}.jpg"] = jpeg(colour(rng, height, width))
    write_zip(builder_dir("malaria_cells") / "MalariaCells.zip", members)


def tom_and_jerry() -> None:
    """Kept: train 4, test 2."""
    rng = np.random.default_rng(3)
    members = {}
    for split, count in (("Train", 2), ("Test", 1)):
        for cls in ("tom", "jerry"):
            for i in range(1, count + 1):
                members[f"{split}/{cls}/frame{i}.JPG"] = jpeg(colour(rng, 24, 32), quality=60)
    write_zip(builder_dir("tom_and_jerry") / "TomAndJerry.zip", members)


def tumor_classification() -> None:
    """Kept: train 3, test 3."""
    rng = np.random.default_rng(4)
    members = {}
    for split in ("training", "testing"):
        for cls in ("BENIGN", "MALIGNANT", "NORMAL"):
            slice_ = gray(rng, 16, 18)
            members[f"{split}/{cls}/{cls.lower()}_1.jpg"] = jpeg(np.repeat(slice_[..., None], 3, axis=2))
    write_zip(builder_dir("tumor_classification") / "TumorClassification.zip", members)


if __name__ == "__main__":
    sign_language_img()
    malaria_cells()
    tom_and_jerry()
    tumor_classification()
