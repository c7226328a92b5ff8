"""Writes dummy_data/ for the sign_mnist_json and sign_mnist_base64 builders' TFDS tests.

Tiny and hand-shaped like scripts/make_dummy_data.py: each file holds one of
every kind of dirt its builder must handle, at places the tests know.
Run: python scripts/make_dummy_data_json.py
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from sign_datasets.core.labels import SIGN_LETTERS
from sign_datasets.replica import sign_image

ROOT = Path(__file__).resolve().parents[1]
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
BUCKET = "https://storage.googleapis.com/platzi-tf2/"

# sign_mnist_json: 20 records. Expected: 18 kept (one of them resized from
# 56x56), 1 not_found, 1 unknown_label; 2 of 20 failed is exactly the 10 %
# the builder allows, so the build goes through.
JSON_GOOD = 17
JSON_RESIZED_NAME = "img_mnist/200_D.png"
JSON_MISSING_NAME = "img_mnist/404_E.jpg"


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, FIXED_TIME), data, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def _encoded(pixels: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def _sample(letter: str, rng: np.random.Generator, size: int = 28) -> np.ndarray:
    pixels = sign_image(SIGN_LETTERS.index(letter), rng)
    if size != 28:
        pixels = np.asarray(Image.fromarray(pixels).resize((size, size), Image.Resampling.NEAREST))
    return pixels


def _json_line(name: str, label: str) -> str:
    return json.dumps({"content": BUCKET + name, "label": label}) + "\n"


def sign_mnist_json() -> None:
    rng = np.random.default_rng(11)
    out = ROOT / "builders" / "sign_mnist_json" / "dummy_data"
    if (out / "img_mnist").exists():
        shutil.rmtree(out / "img_mnist")
    (out / "img_mnist").mkdir(parents=True)
    lines = []
    for i in range(JSON_GOOD):
        letter = SIGN_LETTERS[i % len(SIGN_LETTERS)]
        name = f"img_mnist/{i + 1}_{letter}.jpg"
        (out / name).write_bytes(_encoded(_sample(letter, rng), "JPEG"))
        # Labels come in either case; the builder maps both.
        lines.append(_json_line(name, letter.lower() if i % 2 == 0 else letter))
        if i == 4:
            lines.append("\n")  # a blank line is no record
    (out / JSON_RESIZED_NAME).write_bytes(_encoded(_sample("D", rng, 56), "PNG"))
    lines.insert(3, _json_line(JSON_RESIZED_NAME, "d"))
    lines.insert(8, _json_line(JSON_MISSING_NAME, "e"))
    lines.insert(12, _json_line("img_mnist/1_A.jpg", "j"))  # J needs motion: no class
    data = b"\xef\xbb\xbf" + "".join(lines).encode("utf-8")
    archive = out / "databasesLoadData.zip"
    archive.write_bytes(_zip_bytes({"sign_mnist_json/data.json": data}))
    print(f"wrote {archive} and {JSON_GOOD + 1} images under {out / 'img_mnist'}")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def sign_mnist_base64() -> None:
    """9 entries: 6 kept (one resized from 40x40), 1 unknown_label, 1 bad_base64, 1 not_an_image."""
    rng = np.random.default_rng(12)
    jpeg = {letter: _encoded(_sample(letter, rng), "JPEG") for letter in "BAFG"}
    wrapped = "\n".join(_b64(jpeg["B"])[i:i + 76] for i in range(0, len(_b64(jpeg["B"])), 76))
    document = [
        {"b": wrapped},                                                        # line breaks inside
        {"a": "data:image/jpeg;base64," + _b64(jpeg["A"]).rstrip("=")},        # data: URI, no padding
        {"label": "C", "image": _b64(_encoded(_sample("C", rng), "PNG"))},     # record form
        {"y": _b64(_encoded(_sample("Y", rng, 40), "PNG"))},                   # resized
        {"j": _b64(jpeg["A"])},                                                # unknown_label
        {"d": "@@not base64@@"},                                               # bad_base64
        {"e": _b64(b"plain text, not a picture")},                             # not_an_image
        {"f": _b64(jpeg["F"]), "g": _b64(jpeg["G"])},                          # two in one object
    ]
    data = json.dumps(document, indent=2).encode("ascii")
    out = ROOT / "builders" / "sign_mnist_base64" / "dummy_data" / "databasesLoadData.zip"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(_zip_bytes({"sign_mnist_base64/data.json": data}))
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    sign_mnist_json()
    sign_mnist_base64()
