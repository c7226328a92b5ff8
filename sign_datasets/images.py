"""Image encoding and decoding shared by every format reader."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

def encode_png(pixels: np.ndarray) -> bytes:
    """PNG bytes of an (H, W, 1) or (H, W, 3) uint8 array, RGB channel order.

    OpenCV's encoder is used because it costs about half of Pillow's per
    small image, and image encoding is most of a build's work. Its default
    settings are fixed, so the same pixels always give the same bytes. It
    runs in worker processes so that it uses every core.
    """
    import cv2

    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    if pixels.ndim == 3 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    elif pixels.ndim == 3 and pixels.shape[-1] == 3:
        pixels = np.ascontiguousarray(pixels[..., ::-1])  # OpenCV writes BGR
    ok, encoded = cv2.imencode(".png", pixels)
    if not ok:
        raise ValueError(f"could not PNG-encode an array of shape {pixels.shape}")
    return encoded.tobytes()


# --- decoding untrusted images ------------------------------------------------

# A 28x28 sign or a 640x480 frame is far below this; a header that declares
# more is a decompression bomb or garbage, refused before any pixel is decoded.
MAX_IMAGE_PIXELS = 40_000_000
ACCEPTED_FORMATS = ("JPEG", "PNG", "BMP", "GIF")


def decode_image(data: bytes, mode: str, where: str = "",
                 max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Decodes untrusted bytes into an (H, W, C) uint8 array in `mode` ('L' or 'RGB').

    The format is recognised by content, never by file name. EXIF orientation
    is applied; a GIF gives its first frame. Raises `Dropped` with reason
    not_an_image, image_too_large or corrupt_image.
    """
    from PIL import ImageOps, UnidentifiedImageError

    from sign_datasets.cleaning import Dropped

    try:
        with Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS) as image:
            width, height = image.size
            if width <= 0 or height <= 0 or width * height > max_pixels:
                raise Dropped("image_too_large", where,
                              f"{width}x{height} exceeds {max_pixels} pixels")
            image.seek(0)
            image.load()
            image = ImageOps.exif_transpose(image)
            if image.mode == "I;16" or image.mode.startswith("I;16") or image.mode == "I":
                # 16-bit grey: keep the top 8 bits rather than clipping.
                array = np.asarray(image, dtype=np.uint32) >> 8
                image = Image.fromarray(array.astype(np.uint8), "L")
            if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
                image = image.convert("RGBA")
                background = Image.new("RGBA", image.size, (255, 255, 255, 255))
                image = Image.alpha_composite(background, image)
            converted = image.convert(mode)
    except Dropped:
        raise
    except Image.DecompressionBombError as error:
        raise Dropped("image_too_large", where, str(error)) from None
    except UnidentifiedImageError:
        raise Dropped("not_an_image", where, "not a JPEG, PNG, BMP or GIF") from None
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise Dropped("corrupt_image", where, f"{type(error).__name__}: {error}") from None
    array = np.asarray(converted, dtype=np.uint8)
    return array[..., None] if array.ndim == 2 else array


def resize(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resizes an (H, W, C) uint8 array with a fixed, deterministic filter."""
    if pixels.shape[:2] == (height, width):
        return pixels
    channels = pixels.shape[-1]
    image = Image.fromarray(pixels[..., 0] if channels == 1 else pixels)
    out = np.asarray(image.resize((width, height), Image.Resampling.BILINEAR), dtype=np.uint8)
    return out[..., None] if out.ndim == 2 else out
