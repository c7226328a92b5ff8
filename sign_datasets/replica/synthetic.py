"""Synthetic pictures for the offline replica of the course bucket.

The pictures only have to be learnable and cheap: a model trained on the
replica must beat chance by far, so the loading code can be tested end to end
without the real data. Every sign-language source of the replica (CSV rows,
img_mnist JPEGs, the base64 JPEG, the image-folder zip) draws from
`sign_images`, so a model trained on one source recognises the others.
"""

from __future__ import annotations

import io
from typing import NamedTuple, Sequence

import numpy as np
from PIL import Image, ImageDraw

from sign_datasets.core.labels import SIGN_LETTERS

SIGN_SIZE = 28
# The prototypes are drawn larger than 28x28 so that a random crop gives the
# +-2 px shift without wrapping pixels around the border.
_MAX_SHIFT = 2
_PROTO_SIZE = SIGN_SIZE + 2 * _MAX_SHIFT
# Fixed on purpose and independent of make_replica's seed: the class look must
# be the same whatever seed a test uses, or a model trained on one replica
# would not recognise another.
_PROTOTYPE_SEED = 20_240_601


def _segment_distance(yy, xx, y0, x0, y1, x1):
    dy, dx = y1 - y0, x1 - x0
    length2 = dy * dy + dx * dx
    t = np.clip(((yy - y0) * dy + (xx - x0) * dx) / np.maximum(length2, 1e-6), 0.0, 1.0)
    return np.hypot(yy - (y0 + t * dy), xx - (x0 + t * dx))


class _Letter(NamedTuple):
    """What makes a letter recognisable: where the light comes from, the
    palm, the finger strokes (y0, x0, y1, x1, width, depth) and a fingertip."""

    light: float
    palm: tuple[float, float, float, float]
    strokes: np.ndarray
    tip: tuple[float, float]


def _make_letter(class_index: int) -> _Letter:
    rng = np.random.default_rng([_PROTOTYPE_SEED, class_index])
    c = (_PROTO_SIZE - 1) / 2.0
    light = rng.uniform(0, 2 * np.pi)
    palm = (c + rng.uniform(-4, 4), c + rng.uniform(-4, 4), rng.uniform(7, 12), rng.uniform(6, 11))
    strokes = []
    for _ in range(rng.integers(3, 5)):
        y0, x0, y1, x1 = rng.uniform(_MAX_SHIFT + 2, _PROTO_SIZE - _MAX_SHIFT - 3, size=4)
        strokes.append((y0, x0, y1, x1, rng.uniform(1.0, 2.2), rng.uniform(70, 110)))
    tip = tuple(rng.uniform(_MAX_SHIFT + 3, _PROTO_SIZE - _MAX_SHIFT - 4, size=2))
    return _Letter(light, palm, np.array(strokes), tip)


_LETTERS = [_make_letter(i) for i in range(len(SIGN_LETTERS))]
_ARANGE = np.arange(SIGN_SIZE)
_GRID = np.mgrid[0:_PROTO_SIZE, 0:_PROTO_SIZE].astype(np.float32)
# Each sample is its own photo of the letter: strokes, fingertip, palm and
# light move per sample by these amounts (px, px, radians). Chosen by
# measurement (docs/DESIGN.md, "Near copies"): samples of a letter are then
# rarely near copies by the perceptual hash (1 pair in 10,000 at 4 bits, where
# one drawing per letter made 7 in 100), and a small CNN still reaches 0.89
# on 900 training rows.
_STROKE_JITTER, _PALM_JITTER, _LIGHT_JITTER = 3.0, 4.0, 0.8


def _draw(letter: _Letter, rng: np.random.Generator, count: int) -> np.ndarray:
    """(count, 32, 32) float drawings of one letter, each its own photo."""
    yy, xx = _GRID[0][None], _GRID[1][None]
    c = (_PROTO_SIZE - 1) / 2.0
    column = lambda values: np.asarray(values, dtype=np.float32).reshape(count, 1, 1)  # noqa: E731
    light = column(letter.light + rng.uniform(-_LIGHT_JITTER, _LIGHT_JITTER, count))
    # Mid-grey backdrop lit from one side, like the photos of sign MNIST.
    img = 150.0 + 25.0 * ((np.cos(light) * (xx - c) + np.sin(light) * (yy - c)) / c)
    cy, cx, ry, rx = letter.palm
    moved = rng.uniform(-_PALM_JITTER, _PALM_JITTER, (2, count))
    img += 45.0 * np.exp(-(((yy - column(cy + moved[0])) / ry) ** 2
                           + ((xx - column(cx + moved[1])) / rx) ** 2) ** 2)
    # Dark strokes (finger edges) carry most of the letter's identity.
    for y0, x0, y1, x1, width, depth in letter.strokes:
        jitter = rng.uniform(-_STROKE_JITTER, _STROKE_JITTER, (4, count))
        dist = _segment_distance(yy, xx, column(y0 + jitter[0]), column(x0 + jitter[1]),
                                 column(y1 + jitter[2]), column(x1 + jitter[3]))
        img -= depth * np.exp(-((dist / width) ** 2))
    # One bright fingertip spot so letters with similar strokes still differ.
    fy, fx = letter.tip
    moved = rng.uniform(-_STROKE_JITTER, _STROKE_JITTER, (2, count))
    img += 60.0 * np.exp(-(((yy - column(fy + moved[0])) ** 2 + (xx - column(fx + moved[1])) ** 2) / 6.0))
    return img


def sign_images(class_indices: Sequence[int] | np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Returns uint8 (n, 28, 28) samples of the given classes (0..23).

    Each sample is its own drawing of its letter (see _draw), shifted by up to
    2 px, with brightness, contrast and noise jitter, clipped to 1..255 so no
    sample is ever all zero (the dirty CSV's all-zero rows must be the only
    ones).
    """
    classes = np.asarray(class_indices, dtype=np.int64).reshape(-1)
    if classes.size and (classes.min() < 0 or classes.max() >= len(SIGN_LETTERS)):
        raise ValueError(f"class index out of range 0..{len(SIGN_LETTERS) - 1}")
    n = classes.size
    drawn = np.empty((n, _PROTO_SIZE, _PROTO_SIZE), dtype=np.float32)
    for letter in np.unique(classes).tolist():
        at = np.flatnonzero(classes == letter)
        drawn[at] = _draw(_LETTERS[letter], rng, len(at))
    dy = rng.integers(0, 2 * _MAX_SHIFT + 1, size=n)
    dx = rng.integers(0, 2 * _MAX_SHIFT + 1, size=n)
    rows = dy[:, None, None] + _ARANGE[None, :, None]
    cols = dx[:, None, None] + _ARANGE[None, None, :]
    base = drawn[np.arange(n)[:, None, None], rows, cols]
    contrast = rng.uniform(0.8, 1.2, size=(n, 1, 1)).astype(np.float32)
    brightness = rng.uniform(-20, 20, size=(n, 1, 1)).astype(np.float32)
    noise = rng.normal(0.0, 9.0, size=(n, SIGN_SIZE, SIGN_SIZE)).astype(np.float32)
    out = (base - 150.0) * contrast + 150.0 + brightness + noise
    return np.clip(np.rint(out), 1, 255).astype(np.uint8)


def sign_image(class_index: int, rng: np.random.Generator) -> np.ndarray:
    """One uint8 (28, 28) sample of class `class_index` (0..23, A-I K-Y)."""
    return sign_images([class_index], rng)[0]


def jpeg_bytes(image: np.ndarray | Image.Image, quality: int = 75) -> bytes:
    """Encodes a PIL image or a uint8 (H, W) / (H, W, 3) array; Pillow's output
    is stable for a given Pillow build, which the replica's determinism relies on."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


# ---------------------------------------------------------------- malaria ----

_MALARIA_SIZE_RANGE = (90, 160)
# Drawing fresh Gaussian noise per pixel dominated the cost of a cell (43k
# cells at scale 1), so cells take a random window of one fixed noise field.
# Channel-first throughout: numpy is slow on a trailing axis of length 3.
_NOISE_FIELD = np.random.default_rng([_PROTOTYPE_SEED, 7]).normal(0.0, 4.0, size=(3, 256, 256)).astype(np.float32)


def _noise_window(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    y = int(rng.integers(0, _NOISE_FIELD.shape[1] - h + 1))
    x = int(rng.integers(0, _NOISE_FIELD.shape[2] - w + 1))
    return _NOISE_FIELD[:, y:y + h, x:x + w]


def _merge_rgb(channels: np.ndarray) -> Image.Image:
    return Image.merge("RGB", [Image.fromarray(c) for c in channels])


def malaria_cell(parasitized: bool, rng: np.random.Generator) -> Image.Image:
    """An RGB cell crop of varying size: a pink disc on black, with purple
    chromatin dots when parasitized (dark enough to show in grayscale too)."""
    h = int(rng.integers(_MALARIA_SIZE_RANGE[0], _MALARIA_SIZE_RANGE[1] + 1))
    w = int(np.clip(h + rng.integers(-12, 13), *_MALARIA_SIZE_RANGE))
    ys = np.arange(h, dtype=np.float32)[:, None]
    xs = np.arange(w, dtype=np.float32)[None, :]
    cy, cx = (h - 1) / 2 + rng.uniform(-3, 3), (w - 1) / 2 + rng.uniform(-3, 3)
    ry, rx = h / 2 - rng.uniform(3, 9), w / 2 - rng.uniform(3, 9)
    ny, nx = (ys - np.float32(cy)) / np.float32(ry), (xs - np.float32(cx)) / np.float32(rx)
    theta = np.arctan2(ny, nx)
    wobble = 1.0 + np.float32(0.04) * np.sin(np.float32(rng.integers(2, 6)) * theta + np.float32(rng.uniform(0, 6.3)))
    r = np.sqrt(ny * ny + nx * nx) / wobble
    inside = np.clip((1.0 - r) * np.float32(12.0), 0.0, 1.0)
    base_color = np.array(
        [rng.uniform(195, 230), rng.uniform(130, 165), rng.uniform(145, 180)], dtype=np.float32
    )[:, None, None]
    # Cells are paler in the middle (biconcave shape) and have low-frequency mottling.
    shade = 1.0 - np.float32(0.12) * np.exp(-(r * r) * np.float32(1 / 0.2025)) + np.float32(0.08) * r
    shade += np.float32(0.04) * np.sin(xs / np.float32(rng.uniform(6, 14)) + np.float32(rng.uniform(0, 6.3))) * np.cos(
        ys / np.float32(rng.uniform(6, 14)) + np.float32(rng.uniform(0, 6.3))
    )
    img = shade[None] * base_color
    if parasitized:
        dot_color = np.array(
            [rng.uniform(70, 110), rng.uniform(20, 50), rng.uniform(110, 150)], dtype=np.float32
        )[:, None, None]
        for _ in range(int(rng.integers(1, 4))):
            rad = rng.uniform(0.0, 0.6)
            ang = rng.uniform(0, 2 * np.pi)
            py, px = cy + rad * ry * np.sin(ang), cx + rad * rx * np.cos(ang)
            size = rng.uniform(3.5, 7.0)
            # Only a window around the dot: the rest of the cell is untouched.
            y0, y1 = max(0, int(py - 3 * size)), min(h, int(py + 3 * size) + 1)
            x0, x1 = max(0, int(px - 3 * size)), min(w, int(px + 3 * size) + 1)
            d2 = ((ys[y0:y1] - np.float32(py)) ** 2 + (xs[:, x0:x1] - np.float32(px)) ** 2) / np.float32(size * size)
            dot = np.exp(-(d2 * np.sqrt(d2)))[None]
            img[:, y0:y1, x0:x1] = img[:, y0:y1, x0:x1] * (1 - dot) + dot * dot_color
    img = (img + _noise_window(rng, h, w)) * inside[None]
    np.clip(img, 0, 255, out=img)
    return _merge_rgb(img.astype(np.uint8))


# ---------------------------------------------------------- Tom and Jerry ----

TOM_JERRY_SIZE = (640, 480)


def _jitter(rng, color, amount=18):
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in color)


def tom_jerry_frame(is_tom: bool, rng: np.random.Generator) -> Image.Image:
    """A 640x480 RGB cartoon-like frame: a big blue-grey cat with pointed ears
    (Tom) or a small brown mouse with round ears (Jerry) on a varied room."""
    width, height = TOM_JERRY_SIZE
    # Smooth backgrounds keep the JPEGs small, like flat cartoon colours.
    top = rng.uniform(90, 240, size=3)
    bottom = rng.uniform(60, 220, size=3)
    t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    column = top[None, :] * (1 - t) + bottom[None, :] * t
    bg = np.repeat(column[:, None, :], width, axis=1)
    img = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    floor_y = int(rng.integers(330, 420))
    draw.rectangle([0, floor_y, width, height], fill=_jitter(rng, (150, 110, 70), 40))
    for _ in range(int(rng.integers(1, 4))):
        x0 = int(rng.integers(0, width - 80))
        y0 = int(rng.integers(40, floor_y - 60))
        draw.rectangle(
            [x0, y0, x0 + int(rng.integers(50, 160)), y0 + int(rng.integers(40, 140))],
            fill=_jitter(rng, (120, 160, 120), 60),
        )
    if is_tom:
        _draw_tom(draw, rng, floor_y)
    else:
        _draw_jerry(draw, rng, floor_y)
    return img


def _draw_tom(draw: ImageDraw.ImageDraw, rng, floor_y: int) -> None:
    fur = _jitter(rng, (115, 128, 155))
    scale = rng.uniform(0.8, 1.2)
    body_h, body_w = int(190 * scale), int(120 * scale)
    cx = int(rng.integers(body_w, 640 - body_w))
    bottom = min(floor_y + 30, 470)
    body = [cx - body_w // 2, bottom - body_h, cx + body_w // 2, bottom]
    draw.ellipse(body, fill=fur, outline=(30, 30, 40), width=3)
    head_r = int(55 * scale)
    hy = body[1] - head_r + 10
    # Pointed ears are the cat's shape cue, readable in grayscale.
    for side in (-1, 1):
        ex = cx + side * int(head_r * 0.6)
        draw.polygon(
            [(ex - 22 * scale, hy - head_r * 0.5), (ex + 22 * scale, hy - head_r * 0.5), (ex + side * 8, hy - head_r * 1.6)],
            fill=fur,
            outline=(30, 30, 40),
        )
    draw.ellipse([cx - head_r, hy - head_r, cx + head_r, hy + head_r], fill=fur, outline=(30, 30, 40), width=3)
    draw.ellipse([cx - head_r * 0.6, hy, cx + head_r * 0.6, hy + head_r * 0.9], fill=(235, 230, 215))
    for side in (-1, 1):
        draw.ellipse([cx + side * 20 * scale - 9, hy - 18, cx + side * 20 * scale + 9, hy + 2], fill=(250, 250, 240))
        draw.ellipse([cx + side * 20 * scale - 3, hy - 12, cx + side * 20 * scale + 3, hy - 2], fill=(20, 20, 20))
    tail_x = cx + body_w // 2
    draw.line([(tail_x - 10, bottom - 40), (tail_x + 60 * scale, bottom - 120 * scale)], fill=fur, width=int(14 * scale))


def _draw_jerry(draw: ImageDraw.ImageDraw, rng, floor_y: int) -> None:
    fur = _jitter(rng, (165, 100, 45))
    scale = rng.uniform(0.7, 1.3)
    body_h, body_w = int(80 * scale), int(55 * scale)
    cx = int(rng.integers(60, 580))
    bottom = min(floor_y + 20, 475)
    body = [cx - body_w // 2, bottom - body_h, cx + body_w // 2, bottom]
    draw.ellipse(body, fill=fur, outline=(40, 25, 10), width=2)
    head_r = int(28 * scale)
    hy = body[1] - head_r + 6
    # Big round ears are the mouse's shape cue.
    ear_r = int(20 * scale)
    for side in (-1, 1):
        ex, ey = cx + side * int(head_r * 0.9), hy - int(head_r * 0.8)
        draw.ellipse([ex - ear_r, ey - ear_r, ex + ear_r, ey + ear_r], fill=fur, outline=(40, 25, 10), width=2)
        draw.ellipse([ex - ear_r // 2, ey - ear_r // 2, ex + ear_r // 2, ey + ear_r // 2], fill=(235, 160, 150))
    draw.ellipse([cx - head_r, hy - head_r, cx + head_r, hy + head_r], fill=fur, outline=(40, 25, 10), width=2)
    draw.ellipse([cx - head_r * 0.5, hy, cx + head_r * 0.5, hy + head_r * 0.8], fill=(240, 215, 170))
    draw.ellipse([cx - 4, hy + 2, cx + 4, hy + 9], fill=(20, 10, 10))
    draw.line([(cx - body_w // 2, bottom - 10), (cx - body_w // 2 - 50 * scale, bottom - 5)], fill=(200, 140, 110), width=3)


# ------------------------------------------------------------------ tumour ----

_TUMOR_SIZE_RANGE = (128, 256)


def tumor_slice(kind: str, rng: np.random.Generator) -> np.ndarray:
    """A uint8 grayscale (H, W) lung-CT-like slice. kind: "NORMAL" (no
    lesion), "BENIGN" (small round smooth nodule) or "MALIGNANT" (larger
    irregular spiky mass)."""
    if kind not in ("NORMAL", "BENIGN", "MALIGNANT"):
        raise ValueError(kind)
    s = int(rng.integers(_TUMOR_SIZE_RANGE[0], _TUMOR_SIZE_RANGE[1] + 1))
    # Broadcast (s, 1) and (1, s) coordinates instead of full grids: cheaper.
    yy = np.arange(s, dtype=np.float32)[:, None] / np.float32(s - 1)
    xx = np.arange(s, dtype=np.float32)[None, :] / np.float32(s - 1)
    img = np.zeros((s, s), dtype=np.float32)
    body = ((yy - 0.52) / rng.uniform(0.36, 0.42)) ** 2 + ((xx - 0.5) / rng.uniform(0.42, 0.47)) ** 2
    img += np.where(body < 1.0, rng.uniform(100, 125), 0.0)
    lungs = []
    for side in (-1, 1):
        ly, lx = 0.48 + rng.uniform(-0.03, 0.03), 0.5 + side * rng.uniform(0.17, 0.21)
        lry, lrx = rng.uniform(0.22, 0.28), rng.uniform(0.11, 0.14)
        mask = ((yy - ly) / lry) ** 2 + ((xx - lx) / lrx) ** 2 < 1.0
        img = np.where(mask, rng.uniform(20, 35), img)
        lungs.append((ly, lx, lry, lrx))
    # Bright spine and a few vessel specks make every class look like a CT.
    spine = ((yy - 0.82) ** 2 + (xx - 0.5) ** 2) < 0.004
    img = np.where(spine, 220.0, img)
    for _ in range(6):
        ly, lx, lry, lrx = lungs[int(rng.integers(0, 2))]
        vy, vx = ly + rng.uniform(-0.6, 0.6) * lry, lx + rng.uniform(-0.6, 0.6) * lrx
        # The Gaussian is separable, so an outer product of two 1-D ones.
        img += np.float32(55.0) * np.exp(-((yy - np.float32(vy)) ** 2) / np.float32(0.00008)) * np.exp(
            -((xx - np.float32(vx)) ** 2) / np.float32(0.00008)
        )
    if kind != "NORMAL":
        ly, lx, lry, lrx = lungs[int(rng.integers(0, 2))]
        ny, nx = ly + rng.uniform(-0.4, 0.4) * lry, lx + rng.uniform(-0.3, 0.3) * lrx
        d = np.hypot(yy - ny, xx - nx)
        theta = np.arctan2(yy - ny, xx - nx)
        if kind == "BENIGN":
            radius = rng.uniform(0.035, 0.05)
            lesion = np.clip((radius - d) / 0.006, 0.0, 1.0)
        else:
            radius = rng.uniform(0.06, 0.085)
            spikes = 1.0 + 0.35 * np.sin(rng.integers(5, 9) * theta + rng.uniform(0, 6.3)) + 0.2 * np.sin(
                rng.integers(11, 15) * theta + rng.uniform(0, 6.3)
            )
            lesion = np.clip((radius * spikes - d) / 0.01, 0.0, 1.0)
        img = img * (1 - lesion) + lesion * rng.uniform(165, 200)
    img += np.float32(1.5) * _noise_window(rng, s, s)[0]
    return np.clip(img, 0, 255).astype(np.uint8)


# ----------------------------------------------------------- pixeles.png ----

PIXELES_SIZE = (724, 308)


def pixeles_png() -> bytes:
    """A 724x308 RGB picture in the spirit of the course's pixeles.png: a 28x28
    sample drawn large, then the same grid as shaded cells, then a plain grid."""
    rng = np.random.default_rng([_PROTOTYPE_SEED, 999])
    sample = sign_image(1, rng)
    width, height = PIXELES_SIZE
    img = Image.new("RGB", (width, height), (255, 255, 255))
    cell = height // SIGN_SIZE  # 11 px cells, 308 px tall
    big = Image.fromarray(sample, "L").resize((SIGN_SIZE * cell, SIGN_SIZE * cell), Image.NEAREST)
    img.paste(big.convert("RGB"), (0, 0))
    draw = ImageDraw.Draw(img)
    x_mid = SIGN_SIZE * cell + 4
    for r in range(SIGN_SIZE):
        for c in range(SIGN_SIZE):
            v = int(sample[r, c])
            x0, y0 = x_mid + c * cell, r * cell
            draw.rectangle([x0, y0, x0 + cell - 1, y0 + cell - 1], fill=(v, v, v), outline=(128, 128, 128))
    x_right = x_mid + SIGN_SIZE * cell + 4
    for r in range(SIGN_SIZE + 1):
        draw.line([(x_right, r * cell), (width - 1, r * cell)], fill=(200, 200, 200))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
