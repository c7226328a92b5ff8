"""The base64 JSON reader (formats/base64_json.py) keeps or counts every
image: objects of several images, images beside a record, field names used
as class names, short labels; and it turns images upright as the zip reader
does.
"""

from __future__ import annotations

import base64
import io
import json
import zipfile

import numpy as np
import pytest

import sign_datasets  # noqa: F401  (registers the builders)
from sign_datasets.core.cleaning import SplitReport, clean, screen
from sign_datasets.formats import base64_json

from image_helpers import UNTURN, png, upright_picture
from zip_helpers import build, examples


# --- every image is kept or counted --------------------------------------------------------

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
    got = sorted((label, int(image[0, 0, 0])) for label, image in examples(builder, "train"))
    assert got == [(0, 3), (1, 1), (2, 2), (2, 4)]
    report = builder.info.metadata["cleaning"]["train"]
    assert report["records"] == report["kept"] == 4


# --- images turned upright --------------------------------------------------------------

def test_base64_images_are_turned_as_zip_images_are():
    up = upright_picture()
    twin = base64.b64encode(png(np.ascontiguousarray(UNTURN[6](up)), 6)).decode()
    entry = next(base64_json.read(io.BytesIO(json.dumps({"b": twin}).encode()), "b.json"))
    rules = [base64_json.check_label, base64_json.decode_payload,
             lambda record: base64_json.to_pixels(record, (20, 20, 1), "L")]
    kept = screen(entry, rules)
    assert np.array_equal(kept.pixels[..., 0], up)
