"""Decoding untrusted images (core/images.py): the EXIF orientation applied
wherever the EXIF chunk sits, turned images stored upright and found to be
duplicates of their twins, and image headers capped before decoding.
"""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image

import sign_datasets  # noqa: F401  (registers the builders)
from sign_datasets.core import images
from sign_datasets.core.cleaning import Dropped

from image_helpers import UNTURN, exif_after_pixels, jpeg, picture, png, upright_picture
from zip_helpers import balanced, build, examples, write_stored_zip

TUMOR_ZIP = "TumorClassification.zip"


# --- orientation, the same everywhere ------------------------------------------------------

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
    write_stored_zip(tmp_path / "source" / TUMOR_ZIP, members)
    builder = build("tumor_classification", tmp_path / "source", tmp_path / "data", monkeypatch)
    train = builder.info.metadata["cleaning"]["train"]
    assert train["drops"] == {"duplicate_image": 1}
    assert train["examples"] == {"duplicate_image": [f"{TUMOR_ZIP}/Train/BENIGN/up_twin.png"]}
    assert builder.info.metadata["leakage"] == {
        "count": 1, "examples": [f"{TUMOR_ZIP}/Test/BENIGN/leak.png = "
                                 f"{TUMOR_ZIP}/Train/BENIGN/up.png"],
        "dropped_from_test": False}
    by_label = {label: image[..., 0] for label, image in examples(builder, "train")}
    assert np.array_equal(by_label[0], up)
    assert np.array_equal(by_label[1], other)
    expected_jpeg = images.decode_image(members[3][1], "L")[..., 0]
    assert np.array_equal(by_label[2], expected_jpeg)
    # Upright: the dark block is top-left, as in `up` (73 = 200 - 255 // 2).
    assert abs(float(by_label[2][:5, :10].mean()) - 73) <= 4
    assert abs(float(by_label[2][10:, 15:].mean()) - 140) <= 4
    balanced(builder)


# --- headers capped before decoding ----------------------------------------------------

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
