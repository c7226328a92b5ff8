"""Zips of image folders: their members turned into records, and the plan.

The archive is read in three steps, each usable on its own:

1. `zip_layout.scan_archive` reads only the zip's directory and returns
   every record-to-be as a `MemberRef`, sorted by name.
2. `read_chunk` turns a list of members into records: it inflates each one
   (bounded), decodes it by content, and encodes what the dataset stores.
   Every step is a plain function of a `FolderImage` that returns it or
   raises `Dropped`, so worker processes can run it.
3. `plan` states a split as chunks of members for the runners, with the
   rules that must see a whole split: exact duplicates (on the decoded
   pixels) and test images with a copy in train.

`generate.folder_builder.ImageFolderBuilder` ties them to TFDS.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import lzma
import zipfile
import zlib
from typing import Iterator, Sequence

import numpy as np
from PIL import Image

from sign_datasets.core import images, near
from sign_datasets.core.cleaning import Dropped, SourceError, screen
from sign_datasets.core.plans import LeakageShare, SplitPlan
from sign_datasets.formats.zip_layout import FolderArchive, MemberRef
from sign_datasets.io.archives import MB, ZipBombError, release_archive, zip_for_this_process


# Reader failures that mean "this member's bytes are damaged", not "the
# whole archive is unusable".
_MEMBER_READ_ERRORS = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError, ValueError)


@dataclasses.dataclass(frozen=True)
class DecodeSpec:
    """How a member becomes a stored image."""

    mode: str                              # "L" or "RGB"
    size: tuple[int, int] | None = None    # (height, width); None keeps the native size
    max_pixels: int = images.MAX_IMAGE_PIXELS
    # Store the decoded uint8 pixels themselves (a raw tensor feature), not
    # image bytes: small images then read without a decode per example.
    raw: bool = False


@dataclasses.dataclass
class FolderImage:
    """A member on its way to becoming an example; the rules fill it in."""

    member: MemberRef
    source: str
    data: bytes | None = None
    pixels: np.ndarray | None = None
    # Store the original bytes rather than a PNG (see _original_is_faithful).
    keep_original: bool = False
    digest: bytes = b""
    # What the dataset stores: image bytes, or with `raw_shape` the pixels'
    # bytes (sent back from a worker as bytes: a tenth of an array's pickle cost).
    encoded: bytes = b""
    raw_shape: tuple[int, ...] | None = None
    # The quality report's facts of the stored pixels (core.near).
    facts: near.ImageFacts | None = None

    @property
    def where(self) -> str:
        return f"{self.source}/{self.member.path}"

    @property
    def key(self) -> str:
        return self.member.path

    @property
    def label(self) -> int:
        return self.member.label


# --- the zip directory --------------------------------------------------------


# --- members -> records (runs in worker processes) -----------------------------


def read_member(image: FolderImage, archive_path: str) -> FolderImage:
    """Rule: inflates the member, never past the size the directory declared."""
    ref = image.member
    zf = zip_for_this_process(archive_path)
    info = zf.infolist()[ref.index]
    if info.filename != ref.name:
        raise SourceError(f"{image.source}: the zip changed while it was read "
                          f"(entry {ref.index} is now {info.filename!r}, was {ref.name!r}).")
    try:
        with zf.open(info) as stream:
            data = stream.read(ref.file_size + 1)
    except RuntimeError as error:  # encrypted members
        raise Dropped("unreadable_member", image.where, str(error)) from None
    except NotImplementedError as error:  # compression methods Python lacks
        raise Dropped("unreadable_member", image.where, str(error)) from None
    except _MEMBER_READ_ERRORS as error:
        raise Dropped("corrupt_member", image.where, f"{type(error).__name__}: {error}") from None
    if len(data) > ref.file_size:
        raise ZipBombError(f"{image.where}: inflates past its declared {ref.file_size:,} bytes; "
                           "the archive lies about its sizes, so the build stops.")
    image.data = data
    return image


def _original_is_faithful(data: bytes, mode: str, pixels: np.ndarray) -> bool:
    """True when storing the original bytes loses nothing: a JPEG or PNG,
    already in `mode`, at the stored size (the decode already said whether
    EXIF turned it). Re-encoding a JPEG would only add loss; TensorFlow then
    decodes the original as keras does (its JPEG decoder may differ from
    Pillow's by a few levels)."""
    try:
        with Image.open(io.BytesIO(data), formats=("JPEG", "PNG")) as original:
            if original.mode != mode or original.size != (pixels.shape[1], pixels.shape[0]):
                return False
            return original.format != "PNG" or "transparency" not in original.info
    except Exception:  # noqa: BLE001 - any doubt means re-encode
        return False


def decode_member(image: FolderImage, spec: DecodeSpec) -> FolderImage:
    """Rule: decodes by content into the dataset's mode (drops bad images)."""
    pixels, turned = images.decode_upright(image.data, spec.mode, image.where, spec.max_pixels)
    image.pixels = pixels
    # Duplicates are judged on the decoded pixels before any resize, so every
    # size config of a dataset drops the same images.
    shape = np.asarray(pixels.shape, dtype=np.int64).tobytes()
    image.digest = hashlib.blake2b(shape + pixels.tobytes(), digest_size=16).digest()
    # TensorFlow ignores EXIF: turned pixels are stored re-encoded, upright.
    image.keep_original = not turned  # until a later step changes the pixels
    return image


def fit_size(image: FolderImage, spec: DecodeSpec) -> FolderImage:
    """Rule: resizes to the config's size, if it has one."""
    if spec.size is not None and image.pixels.shape[:2] != tuple(spec.size):
        image.pixels = images.resize(image.pixels, *spec.size)
        image.keep_original = False
    return image


def encode_member(image: FolderImage, spec: DecodeSpec) -> FolderImage:
    """Rule: the bytes the dataset stores; the pixels stay for the chunk's
    facts (`read_chunk`)."""
    if spec.raw:
        image.encoded = image.pixels.tobytes()
        image.raw_shape = image.pixels.shape
    else:
        keep = image.keep_original and _original_is_faithful(image.data, spec.mode, image.pixels)
        image.keep_original = keep
        image.encoded = image.data if keep else images.encode_png(image.pixels)
    image.data = None
    return image


def forget_pixels(image: FolderImage) -> FolderImage:
    image.data = None
    image.pixels = None
    return image


def member_rules(archive_path: str, spec: DecodeSpec, encode: bool = True) -> list:
    """The per-member rules, as picklable partials; `encode=False` stops after
    the digest (enough to compare splits)."""
    rules = [functools.partial(read_member, archive_path=archive_path),
             functools.partial(decode_member, spec=spec)]
    if encode:
        rules += [functools.partial(fit_size, spec=spec),
                  functools.partial(encode_member, spec=spec)]
    else:
        rules.append(forget_pixels)
    return rules


def read_chunk(members: Sequence[MemberRef | Dropped], archive_path: str, source: str,
               spec: DecodeSpec, encode: bool = True) -> list[FolderImage | Dropped]:
    """Members -> records, in order; never raises for one bad member."""
    rules = member_rules(archive_path, spec, encode)
    records = [member if isinstance(member, Dropped)
               else screen(FolderImage(member, source), rules)
               for member in members]
    if encode:
        add_facts([record for record in records if not isinstance(record, Dropped)])
    return records


def add_facts(kept: list[FolderImage]) -> None:
    """The quality report's facts of the stored pixels, computed for the
    chunk at once (core.near); the pixels, bulky, do not travel back."""
    for image, facts in zip(kept, near.facts_of_batch([image.pixels for image in kept])):
        image.facts = facts
        image.pixels = None


# A range's compressed bytes, about its decoding work. Results come back in
# order, so a process that finishes its range early waits for the ranges
# before it: ranges of 256 of the replica's malaria crops (0.4 s of work)
# left the build process waiting 1.0-1.3 s per build, 256 KB 0.3-0.5 s, and
# the malaria_cells build took 4.1 s instead of 4.8 s (docs/DESIGN.md).
RANGE_BYTES = 256 * 1024


def member_ranges(members: Sequence[MemberRef | Dropped], max_members: int = 256,
                  max_bytes: int = RANGE_BYTES, first_members: int = 32) -> Iterator[tuple[int, int]]:
    """(start, stop) of consecutive members, grouped so that each worker task
    is worth its IPC, and small. The first ranges hold `first_members` and
    double up to `max_members`: the writer gets its first records while the
    pool is still starting, a part of the build no worker count shortens."""
    start = size = 0
    limit = min(first_members, max_members)
    for position, member in enumerate(members):
        size += member.file_size if isinstance(member, MemberRef) else 0
        if position + 1 - start >= limit or size >= max_bytes:
            yield start, position + 1
            start, size = position + 1, 0
            limit = min(2 * limit, max_members)
    if start < len(members):
        yield start, len(members)


# --- the plan: members in chunks, each decoded on a worker ---------------------------

def read_positioned(span: tuple[int, int], members: Sequence[MemberRef | Dropped],
                    archive_path: str, source: str, spec: DecodeSpec,
                    encode: bool = True) -> list[tuple[int, FolderImage | Dropped]]:
    """(position in the split's member list, record) of members[start:stop]."""
    start, stop = span
    return list(enumerate(read_chunk(members[start:stop], archive_path, source, spec, encode),
                          start=start))


def pack_images(records: list[tuple[int, FolderImage | Dropped]]) -> list:
    """What a worker computed for each member, without the member: pickling
    whole records costs the build process ten times as much."""
    return [record if isinstance(record, Dropped)
            else (record.encoded, record.raw_shape, record.digest, record.keep_original,
                  record.facts)
            for _, record in records]


def unpack_images(span: tuple[int, int], packed: list, members: Sequence[MemberRef | Dropped],
                  source: str) -> list[tuple[int, FolderImage | Dropped]]:
    start, stop = span
    return [(position, result if isinstance(result, Dropped) else
             FolderImage(member, source, keep_original=result[3], digest=result[2],
                         encoded=result[0], raw_shape=result[1], facts=result[4]))
            for position, member, result in zip(range(start, stop), members[start:stop], packed)]


def folder_example(image: FolderImage) -> tuple[str, dict]:
    stored = image.encoded
    if image.raw_shape is not None:
        stored = np.frombuffer(stored, np.uint8).reshape(image.raw_shape)
    return image.key, {"image": stored, "label": image.label}


def image_digest(image: FolderImage) -> bytes:
    return image.digest


def image_facts(image: FolderImage) -> tuple:
    return image.facts, image.label, image.key


def plan(dataset: str, archive: FolderArchive, split: str, spec: DecodeSpec,
         leakage: LeakageShare | None = None, encode: bool = True) -> SplitPlan:
    """The split's members in chunks, each decoded on a worker; the archive
    was scanned (and its layout checked) before. Repeats are judged on the
    decoded pixels; with `leakage`, test images are compared with train's."""
    members = tuple(archive.records[split])
    return SplitPlan(
        dataset=dataset, split=split, work=list(member_ranges(members)),
        read=functools.partial(read_positioned, members=members, archive_path=str(archive.path),
                               source=archive.source, spec=spec, encode=encode),
        to_example=folder_example, duplicate_content=image_digest,
        duplicate_reason="duplicate_image", leakage=leakage,
        release=functools.partial(release_archive, str(archive.path)),
        pack=pack_images, facts=image_facts if encode else None,
        unpack=functools.partial(unpack_images, members=members, source=archive.source))


def split_plans(dataset: str, archive: FolderArchive, spec: DecodeSpec,
                drop_leaked_from_test: bool) -> dict[str, SplitPlan]:
    """{split: plan} of every split of the archive. Test is compared with
    train (pixels only, never encoded, when test is built without train)."""
    share = LeakageShare(drop_from_test=drop_leaked_from_test,
                         train_plan=plan(dataset, archive, "train", spec, encode=False))
    return {split: plan(dataset, archive, split, spec,
                        share if split in ("train", "test") else None)
            for split in archive.splits}
