"""Pictures and encoded images that the zip, image and base64 tests write:
noise, flat and seeded pictures, PNG and JPEG bytes (with an EXIF
orientation if asked), and a PNG header that claims a size it does not have.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

# Stored pixels S with orientation o display as turn[o](S); a test's twin
# stores the inverse turn so that it displays as `upright_picture()`.
UNTURN = {3: lambda p: np.rot90(p, 2), 6: lambda p: np.rot90(p, 1), 8: lambda p: np.rot90(p, -1),
          2: lambda p: p[:, ::-1]}


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


def upright_picture() -> np.ndarray:
    pixels = np.zeros((20, 20), np.uint8)
    pixels[:5, :10] = 255       # a bright block top-left: any turn moves it
    pixels[10:, 15:] = 120
    return pixels
