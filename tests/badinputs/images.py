"""Generated images for the corpus: noise per seed, images whose headers lie
about their size, decompression and text bombs, and unusual modes."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


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
