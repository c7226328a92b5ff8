"""Zip members to records (formats/zip_folders.py): images read by content
whatever their name, converted and turned upright; a split's plan read on
one or two processes gives the records of one serial pass; garbage
collection frozen only while a build reads; decode tasks that cover every
member once.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

import sign_datasets  # noqa: F401  (registers the builders)
from sign_datasets.core.cleaning import Dropped

from image_helpers import encode, flat
from zip_helpers import SIGN_ZIP, build, examples, write_zip

pytest_plugins = ("zip_helpers",)


# --- image kinds: content, not extension; modes; EXIF --------------------------------

def exif_rotated_jpeg() -> bytes:
    """30 wide, 20 high, left half black; EXIF says: turn 90 degrees clockwise."""
    pixels = np.zeros((20, 30), dtype=np.uint8)
    pixels[:, 15:] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(pixels, "JPEG", quality=95, exif=exif.tobytes())


def image_kinds() -> dict[str, bytes]:
    """One image per kind; each has its own size, so the stored one is found by shape."""
    palette = Image.new("P", (23, 23), 0)
    palette.putpalette([200, 0, 0] + [0, 0, 0] * 255)
    palette_png = io.BytesIO()
    palette.save(palette_png, format="PNG")
    gif = io.BytesIO()
    frames = [Image.fromarray(flat(value, 24, 24)) for value in (50, 200)]
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:])
    cmyk = io.BytesIO()
    Image.new("CMYK", (21, 21), (0, 0, 0, 128)).save(cmyk, format="JPEG", quality=95)
    sixteen = io.BytesIO()
    Image.fromarray(np.full((22, 22), 0x8000, dtype=np.uint16)).save(sixteen, format="PNG")
    return {
        "cmyk.jpg": cmyk.getvalue(),
        "sixteen_bit.png": sixteen.getvalue(),
        "palette.png": palette_png.getvalue(),
        "animated.gif": gif.getvalue(),
        "bitmap.bmp": encode(np.dstack([flat(10, 25, 25), flat(200, 25, 25), flat(10, 25, 25)]), "BMP"),
        "png_named.jpg": encode(flat(77, 26, 26), "PNG"),
        "UPPER.JPG": encode(flat(150, 27, 27), "JPEG", quality=95),
        "rotated.jpg": exif_rotated_jpeg(),
    }


def test_images_are_read_by_content_converted_and_turned_upright(tmp_path, monkeypatch):
    kinds = image_kinds()
    classes = ["BENIGN", "MALIGNANT", "NORMAL"]
    members = [(f"Train/{classes[i % 3]}/{name}", data) for i, (name, data) in enumerate(kinds.items())]
    members += [(f"Test/{cls}/{cls}.jpg", encode(flat(40 + 40 * i, 8, 8), "JPEG"))
                for i, cls in enumerate(classes)]
    write_zip(tmp_path / "source" / "TumorClassification.zip", members)
    builder = build("tumor_classification", tmp_path / "source", tmp_path / "tfds", monkeypatch)
    report = builder.info.metadata["cleaning"]["train"]
    assert report["kept"] == report["records"] == len(kinds), report
    by_shape = {image.shape: image for _, image in examples(builder, "train")}
    assert sorted(by_shape) == sorted([(21, 21, 1), (22, 22, 1), (23, 23, 1), (24, 24, 1),
                                       (25, 25, 1), (26, 26, 1), (27, 27, 1), (30, 20, 1)])

    def level(shape):
        return float(by_shape[shape].mean())

    assert abs(level((21, 21, 1)) - 127) <= 3     # CMYK, converted to grey
    assert level((22, 22, 1)) == 128              # 16-bit 0x8000: the top 8 bits
    assert abs(level((23, 23, 1)) - 60) <= 1      # palette red (200, 0, 0)
    assert level((24, 24, 1)) == 50               # GIF: the first frame
    assert abs(level((25, 25, 1)) - 122) <= 1     # BMP green
    assert level((26, 26, 1)) == 77               # a PNG named .jpg
    assert abs(level((27, 27, 1)) - 150) <= 2     # upper-case .JPG
    rotated = by_shape[(30, 20, 1)]               # 30x20 turned to stand 20 wide, 30 high
    assert rotated[:12].mean() < 30 and rotated[-12:].mean() > 225


# --- plans read by the local runner, decode tasks ---------------------------------

def _outcomes(records) -> list[tuple]:
    """What each record became: (key, label, stored bytes, digest) or its drop."""
    return [("dropped", r.reason, r.where) if isinstance(r, Dropped)
            else (r.key, r.label, r.encoded, r.raw_shape, r.digest) for r in records]


def _plan_outcomes(plan, workers) -> list[tuple]:
    from sign_datasets.generate import local
    return _outcomes(record for _, record in local.positioned_records(plan, workers))


def test_the_local_runner_reads_each_split_as_one_serial_pass(messy):
    """A split's plan read on 1 or 2 processes gives the records, drops
    included, of one serial pass over its members, in member order; in any
    split order, and after a split was left half read."""
    from sign_datasets.formats import zip_folders, zip_layout
    from sign_datasets.core.labels import SIGN_LETTERS

    archive = zip_layout.scan_archive(messy / SIGN_ZIP, SIGN_LETTERS)
    spec = zip_folders.DecodeSpec(mode="L", size=(28, 28), raw=True)
    serial = {split: _outcomes(zip_folders.read_chunk(archive.records[split], str(archive.path),
                                                      archive.source, spec))
              for split in ("train", "test")}
    assert any(o[0] == "dropped" for o in serial["train"]) and len(serial["test"]) == 7
    plans = zip_folders.split_plans("d", archive, spec, drop_leaked_from_test=False)
    for workers in (1, 2):
        assert _plan_outcomes(plans["test"], workers) == serial["test"]
        assert _plan_outcomes(plans["train"], workers) == serial["train"]
        half = _plan_outcomes_lazily(plans["train"], workers)
        assert [next(half) for _ in range(3)] == serial["train"][:3]
        half.close()
        assert _plan_outcomes(plans["test"], workers) == serial["test"]


def _plan_outcomes_lazily(plan, workers):
    from sign_datasets.generate import local
    for _, record in local.positioned_records(plan, workers):
        yield _outcomes([record])[0]


def test_long_lived_objects_are_frozen_only_while_a_build_reads(messy):
    """Garbage collection skips the objects alive when reading starts (the
    scan and the decode loop run faster), and every block hands them back:
    nested blocks, a finished read and an abandoned one."""
    import gc

    from sign_datasets.formats import zip_folders, zip_layout
    from sign_datasets.core.labels import SIGN_LETTERS
    from sign_datasets.generate import local
    from sign_datasets.io.parallel import long_lived_objects_frozen

    assert gc.get_freeze_count() == 0
    with long_lived_objects_frozen():
        assert gc.get_freeze_count() > 0
        with long_lived_objects_frozen():
            assert gc.get_freeze_count() > 0
        assert gc.get_freeze_count() > 0  # the inner block leaves unfreezing to the outer
    assert gc.get_freeze_count() == 0

    archive = zip_layout.scan_archive(messy / SIGN_ZIP, SIGN_LETTERS)
    assert gc.get_freeze_count() == 0
    spec = zip_folders.DecodeSpec(mode="L", size=(28, 28), raw=True)
    plans = zip_folders.split_plans("d", archive, spec, drop_leaked_from_test=False)
    for workers in (1, 2):
        train = local.positioned_records(plans["train"], workers)
        next(train)
        assert gc.get_freeze_count() > 0
        list(train)
        assert gc.get_freeze_count() == 0
        half = local.positioned_records(plans["test"], workers)
        next(half)
        half.close()
        assert gc.get_freeze_count() == 0


def test_member_ranges_cover_every_member_once_starting_small():
    """Decode tasks: contiguous, every member once, the first ones small and
    doubling to the cap, a range closed early when its bytes reach the cap."""
    from sign_datasets.formats import zip_folders, zip_layout

    def ref(i, size=100):
        return zip_layout.MemberRef(i, f"m{i}", f"m{i}", "train", 0, size, size)

    members = [ref(i) for i in range(1000)]
    members[500] = Dropped("corrupt_member", "x", "")
    ranges = list(zip_folders.member_ranges(members, max_members=256, first_members=32))
    assert [stop - start for start, stop in ranges] == [32, 64, 128, 256, 256, 256, 8]
    assert [start for start, _ in ranges] == [0] + [stop for _, stop in ranges[:-1]]
    assert ranges[-1][1] == len(members)

    big = [ref(i, size=100 * 1024) for i in range(5)]
    assert list(zip_folders.member_ranges(big)) == [(0, 3), (3, 5)]
