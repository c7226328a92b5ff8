"""PNG encoding must be lossless, keep channel order and be deterministic."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from sign_datasets.core.cleaning import Dropped
from sign_datasets.core.images import decode_image, encode_png, resize


@pytest.mark.parametrize("shape", [(28, 28, 1), (13, 17, 3)])
def test_png_round_trip_is_exact_in_tf_and_pillow(shape):
    pixels = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    encoded = encode_png(pixels)
    assert encoded[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.array_equal(tf.io.decode_png(encoded, channels=shape[-1]).numpy(), pixels)
    decoded = np.asarray(Image.open(io.BytesIO(encoded)))
    assert np.array_equal(decoded.reshape(shape), pixels)
    assert encode_png(pixels.copy()) == encoded


def test_decode_recognises_content_not_name_and_converts_mode():
    rgb = np.zeros((10, 12, 3), np.uint8)
    rgb[..., 0] = 255  # pure red
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "PNG")
    grey = decode_image(buffer.getvalue(), "L", "red.jpg")
    assert grey.shape == (10, 12, 1) and int(grey[0, 0, 0]) == 76  # ITU-R 601 luma of red
    assert decode_image(buffer.getvalue(), "RGB").shape == (10, 12, 3)


def _truncated_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()[:300]


@pytest.mark.parametrize("data,reason", [
    (b"plain text, not a picture", "not_an_image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not_an_image"),
    (_truncated_jpeg(), "corrupt_image"),
])
def test_bad_images_are_named_drops(data, reason):
    with pytest.raises(Dropped) as caught:
        decode_image(data, "L", "member.jpg")
    assert caught.value.reason == reason and caught.value.where == "member.jpg"


def test_declared_size_over_the_bound_is_refused_before_decoding():
    buffer = io.BytesIO()
    Image.new("L", (300, 300)).save(buffer, "PNG")
    with pytest.raises(Dropped) as caught:
        decode_image(buffer.getvalue(), "L", "bomb.png", max_pixels=300 * 299)
    assert caught.value.reason == "image_too_large"


def test_resize_keeps_channels():
    pixels = np.full((56, 40, 1), 9, np.uint8)
    out = resize(pixels, 28, 28)
    assert out.shape == (28, 28, 1) and (out == 9).all()
