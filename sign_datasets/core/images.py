"""Image encoding and decoding shared by every format reader."""

from __future__ import annotations

import io
import struct
import warnings

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from sign_datasets.core.cleaning import Dropped

def encode_png(pixels: np.ndarray) -> bytes:
    """PNG bytes of an (H, W, 1) or (H, W, 3) uint8 array, RGB channel order.

    OpenCV's encoder is used because it costs about half of Pillow's per
    small image, and image encoding is most of a build's work. Its default
    settings are fixed, so the same pixels always give the same bytes. It
    runs in worker processes so that it uses every core.
    """
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
EXIF_ORIENTATION = 0x0112
# The orientations ImageOps.exif_transpose acts on; any other value leaves
# the pixels as stored.
TURNING_ORIENTATIONS = frozenset(range(2, 9))
# What Pillow raises on damaged files (struct/index errors come from EXIF
# and palette parsing): a drop of that image, never a failed build.
_CORRUPT_IMAGE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error,
                         IndexError, KeyError, TypeError)


def decode_image(data: bytes, mode: str, where: str = "",
                 max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Decodes untrusted bytes into an (H, W, C) uint8 array in `mode` ('L' or 'RGB').

    The format is recognised by content, never by file name. EXIF orientation
    is applied (JPEG APP1 and PNG eXIf alike); a GIF gives its first frame.
    Raises `Dropped` with reason not_an_image, image_too_large or corrupt_image.
    """
    return decode_upright(data, mode, where, max_pixels)[0]


def decode_upright(data: bytes, mode: str, where: str = "",
                   max_pixels: int = MAX_IMAGE_PIXELS) -> tuple[np.ndarray, bool]:
    """`decode_image`, and whether EXIF orientation turned or flipped the
    pixels: then the original bytes, which decoders without EXIF support
    (TensorFlow's) show unturned, must not be stored as they are."""
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its own limit and twice that; such a
            # header is refused below anyway, as an error it is one clear drop.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
        with opened as image:
            width, height = image.size
            if width <= 0 or height <= 0 or width * height > max_pixels:
                raise Dropped("image_too_large", where,
                              f"{width}x{height} exceeds {max_pixels} pixels")
            image.seek(0)
            image.load()  # also reads an eXIf chunk stored after the pixels
            turned = image.getexif().get(EXIF_ORIENTATION, 1) in TURNING_ORIENTATIONS
            converted = _to_mode(image, mode)
    except Dropped:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise Dropped("image_too_large", where, str(error)) from None
    except UnidentifiedImageError:
        raise Dropped("not_an_image", where, "not a JPEG, PNG, BMP or GIF") from None
    except _CORRUPT_IMAGE_ERRORS as error:
        raise Dropped("corrupt_image", where, f"{type(error).__name__}: {error}") from None
    array = np.asarray(converted, dtype=np.uint8)
    return (array[..., None] if array.ndim == 2 else array), turned


def _to_mode(image: Image.Image, mode: str) -> Image.Image:
    """The loaded image upright, on white if it has transparency, in `mode`."""
    image = ImageOps.exif_transpose(image)
    if image.mode == "I;16" or image.mode.startswith("I;16") or image.mode == "I":
        # 16-bit grey: keep the top 8 bits rather than clipping.
        array = np.asarray(image, dtype=np.uint32) >> 8
        image = Image.fromarray(array.astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    return image.convert(mode)


def resize(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resizes an (H, W, C) uint8 array with a fixed, deterministic filter."""
    if pixels.shape[:2] == (height, width):
        return pixels
    channels = pixels.shape[-1]
    image = Image.fromarray(pixels[..., 0] if channels == 1 else pixels)
    out = np.asarray(image.resize((width, height), Image.Resampling.BILINEAR), dtype=np.uint8)
    return out[..., None] if out.ndim == 2 else out
