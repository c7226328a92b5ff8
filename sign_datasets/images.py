"""Image encoding and decoding shared by every format reader."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

# Fixed so that the same pixels always give the same bytes (deterministic
# shards); level 6 is zlib's default trade-off.
PNG_COMPRESS_LEVEL = 6


def encode_png(pixels: np.ndarray) -> bytes:
    """PNG bytes of an (H, W, 1) or (H, W, 3) uint8 array.

    Encoding here, in worker processes, instead of in TFDS's writer lets the
    expensive part of example generation run on every core.
    """
    if pixels.ndim == 3 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8)).save(
        buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()
