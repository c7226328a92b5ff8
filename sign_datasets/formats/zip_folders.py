"""Zips of image folders: `<split>/<class>/<image>`, maybe inside one wrapper folder.

Splits are train and test, and validation when the zip has a Validation/
(val, valid, dev) folder; a folder at the top named like a split is a split
folder, never a wrapper, so `Train/test/x.png` is class `test` of train.
Class folders match class names ignoring letter case and Unicode
normalisation; two folders that differ only so are an error, never merged.

The archive is read in three steps, each usable on its own (a Beam pipeline
can run step 2 on any slice of the member list):

1. `scan_archive` reads only the zip's directory: it refuses zip bombs before
   a byte is inflated, finds the split and class folders, counts junk, and
   returns every record-to-be as a `MemberRef`, sorted by name.
2. `read_chunk` turns a list of members into records: it inflates each one
   (bounded), decodes it by content, and encodes what the dataset stores.
   Every step is a plain function of a `FolderImage` that returns it or
   raises `Dropped`, so worker processes can run it.
3. Rules that must see a whole split (exact duplicates, train/test leakage)
   run in the main process, in member order, through `CleanedBuilder`.

`ImageFolderBuilder` ties the steps to TFDS; a dataset only declares its
archive, class names, colour mode and sizes.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import hashlib
import io
import itertools
import lzma
import os
import re
import struct
import unicodedata
import zipfile
import zlib
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple, Sequence

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from sign_datasets.io import guards
from sign_datasets.core import images
from sign_datasets.generate.builder import ENCODED_IMAGE, RAW_PIXELS, CleanedBuilder, image_features
from sign_datasets.core.cleaning import Dropped, DuplicateFilter, SourceError, screen
from sign_datasets.io.parallel import default_workers, long_lived_objects_frozen, ordered_map
from sign_datasets.core.plans import LeakageShare, SplitPlan

SPLIT_FOLDER_ALIASES = {"train": "train", "training": "train", "test": "test", "testing": "test",
                        "validation": "validation", "valid": "validation", "val": "validation",
                        "dev": "validation"}
# Every archive has these; a validation folder is optional.
REQUIRED_SPLITS = ("train", "test")
# The order splits are listed, read and written in.
SPLITS = ("train", "validation", "test")
EXPECTED_SPLIT_FOLDERS = ("Train/ and Test/ (any letter case; also train/test, training/testing), "
                          "optionally Validation/ (also val, valid, dev)")
# Junk found outside every split folder is counted under this name.
OUTSIDE_SPLITS = "archive"

TEXT_SUFFIXES = frozenset({".txt", ".md", ".rst", ".csv", ".tsv", ".json", ".xml", ".html",
                           ".htm", ".log", ".ini", ".cfg", ".yaml", ".yml", ".rtf", ".py"})
ARCHIVE_SUFFIXES = frozenset({".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar"})

# Reader failures that mean "this member's bytes are damaged", not "the
# whole archive is unusable".
_MEMBER_READ_ERRORS = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError, ValueError)

MB = 1 << 20
GB = 1 << 30


class ZipBombError(SourceError):
    """The archive would inflate beyond a safety limit; nothing was inflated."""


class LayoutError(SourceError):
    """The archive's folders are not `<split>/<class>/` as the dataset expects."""


@dataclasses.dataclass(frozen=True)
class ArchiveLimits:
    """Bounds on untrusted archives, checked from the zip directory before any
    member is inflated. The defaults are far above the course's archives
    (MalariaCells.zip: 550 MB, 43,400 members; its JPEGs barely compress) and
    far below what would exhaust a laptop."""

    max_members: int = 500_000
    # Bounds the memory zipfile needs to parse the directory itself.
    max_directory_bytes: int = 256 * MB
    max_member_bytes: int = 256 * MB
    max_total_bytes: int = 16 * GB
    # Deflate tops out near 1032:1 and images rarely pass 20:1; members too
    # small to hurt are exempt, since tiny files compress oddly.
    max_ratio: float = 200.0
    ratio_exempt_below: int = 1 * MB


class MemberRef(NamedTuple):
    """One zip member that should be an image: where it is and what it claims.

    A named tuple: as immutable as a frozen dataclass, and made in half the
    time, once per member before the build can start."""

    index: int            # position in the zip directory
    name: str             # the raw member name, as the zip spells it
    path: str             # normalised name: the record's key
    split: str
    label: int
    file_size: int
    compress_size: int


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

_EOCD = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_EOCD = b"PK\x06\x06"
_EOCD_SIZE = 22
_MAX_COMMENT = 0xFFFF


def read_directory_claims(path: Path, source: str) -> tuple[int, int]:
    """(member count, directory bytes) as the end-of-directory record declares them.

    Read from the file's last bytes before zipfile parses the directory, so
    a claimed billion members is refused without building a billion objects.
    """
    with guards.open_source(path) as f:
        size = os.fstat(f.fileno()).st_size
        tail_start = max(0, size - (_EOCD_SIZE + _MAX_COMMENT))
        f.seek(tail_start)
        tail = f.read()
        at = tail.rfind(_EOCD)
        if at < 0 or len(tail) - at < _EOCD_SIZE:
            raise SourceError(f"{source}: not a zip archive (no end-of-directory record); "
                              "the download may be incomplete or the file is something else.")
        count, directory_bytes = struct.unpack("<HI", tail[at + 10:at + 16])
        if count != 0xFFFF and directory_bytes != 0xFFFFFFFF:
            return count, directory_bytes
        locator_at = tail_start + at - 20
        if locator_at < 0:
            raise SourceError(f"{source}: damaged zip64 end-of-directory record.")
        f.seek(locator_at)
        locator = f.read(20)
        if locator[:4] != _ZIP64_LOCATOR:
            return count, directory_bytes
        (record_at,) = struct.unpack("<Q", locator[8:16])
        if record_at > size - 56:
            raise SourceError(f"{source}: damaged zip64 end-of-directory record.")
        f.seek(record_at)
        record = f.read(56)
        if record[:4] != _ZIP64_EOCD:
            raise SourceError(f"{source}: damaged zip64 end-of-directory record.")
        count64, directory64 = struct.unpack("<QQ", record[32:48])
        return count64, directory64


_DRIVE = re.compile(r"[A-Za-z]:")


# Both run once per member of archives of tens of thousands of members, before
# any worker can start: they are written for speed (string methods in C),
# and tests/test_properties.py checks them against plain versions.
def normalised_parts(raw_name: str) -> tuple[str, ...] | None:
    """The folder parts of a member name, or None when the name could reach
    outside the archive's folder (absolute, drive letter, '..', NUL)."""
    name = raw_name.replace("\\", "/")
    if "\x00" in name or name.startswith("/") or _DRIVE.match(name):
        return None
    parts = name.split("/")
    if "" in parts or "." in parts:
        parts = [part for part in parts if part not in ("", ".")]
    # The drive is checked again after dropping "." parts: "./C:/x" is C:/x too.
    if not parts or ".." in parts or _DRIVE.match(parts[0]):
        return None
    return tuple(parts)


def junk_kind(parts: Sequence[str]) -> str | None:
    """What kind of non-record a member is, judged by its name, or None."""
    if "__macosx" in map(str.lower, parts):
        return "macos_metadata"
    if ("/" + "/".join(parts)).find("/.") != -1:
        return "hidden_file"
    return _file_name_kind(parts[-1])


def _file_name_kind(file_name: str) -> str | None:
    """junk_kind's rules on the file name alone, for a name that is not hidden
    and not under __MACOSX."""
    file_name = file_name.lower()
    if file_name in ("thumbs.db", "ehthumbs.db"):
        return "thumbs_db"
    if file_name == "desktop.ini":
        return "desktop_ini"
    # Not a hidden file (checked first), so the file name does not start with a dot.
    stem, dot, extension = file_name.rpartition(".")
    suffix = dot + extension if stem else ""
    if suffix in TEXT_SUFFIXES:
        return "text_file"
    if suffix in ARCHIVE_SUFFIXES:
        return "nested_archive"  # never expanded: a zip inside a zip is a classic bomb
    return None


_UNUSUAL_FILE_NAMES = ("", ".", "..")


def classify_names(names: Iterable[str]) -> Iterator[tuple[tuple[str, ...] | None, str | None]]:
    """(normalised_parts(name), junk_kind of those parts or None) for each name.

    Members share a few folders, so the folder part of a name is judged once
    per folder and only the file name once per member: the scan runs before
    any worker can start, and judging every name whole costs the scan of
    35,000 names about a fifth more. Names the shortcut cannot judge
    from their folder alone take the plain functions; tests/test_properties.py
    checks the results are the same for any names.
    """
    folders: dict[str, _Folder | None] = {}
    for raw_name in names:
        cut = max(raw_name.rfind("/"), raw_name.rfind("\\"))
        file_name = raw_name[cut + 1:]
        folder = None
        # Names without a folder, and file names the normalisation drops or
        # refuses, take the plain rules.
        if cut > 0 and file_name not in _UNUSUAL_FILE_NAMES and "\x00" not in file_name:
            head = raw_name[:cut + 1]
            folder = folders.get(head, False)
            if folder is False:
                folder = folders[head] = _judge_folder(head)
        if folder is None:
            parts = normalised_parts(raw_name)
            yield parts, (None if parts is None else junk_kind(parts))
            continue
        folder_parts, under_macosx, hidden = folder
        if folder_parts is None:  # every name in it would reach outside
            yield None, None
        elif under_macosx or file_name.lower() == "__macosx":
            yield folder_parts + (file_name,), "macos_metadata"
        elif hidden or file_name.startswith("."):
            yield folder_parts + (file_name,), "hidden_file"
        else:
            yield folder_parts + (file_name,), _file_name_kind(file_name)


# (folder parts, or None when they reach outside; under __MACOSX; hidden)
_Folder = tuple[tuple[str, ...] | None, bool, bool]


def _judge_folder(head: str) -> _Folder | None:
    """What `head` + any plain file name is, as far as the folder decides it;
    None when the file name would matter (the folder normalises to nothing,
    so the file name would be checked as a drive)."""
    parts = normalised_parts(head + "x")
    if parts is None:
        return None, False, False
    if len(parts) < 2:
        return None
    folder_parts = parts[:-1]
    return (folder_parts, "__macosx" in map(str.lower, folder_parts),
            any(part.startswith(".") for part in folder_parts))


@dataclasses.dataclass
class FolderArchive:
    """What `scan_archive` learned; everything later steps need, no bytes."""

    path: Path
    source: str
    wrapper: str | None
    split_folders: dict[str, str]
    records: dict[str, list[MemberRef | Dropped]]
    junk: dict[str, Counter]

    def junk_report(self) -> dict:
        return {where: dict(sorted(kinds.items())) for where, kinds in sorted(self.junk.items())}

    @property
    def splits(self) -> tuple[str, ...]:
        """The splits the archive holds, in `SPLITS` order."""
        return tuple(split for split in SPLITS if split in self.split_folders)

    def layout_report(self) -> dict:
        return {"wrapper": self.wrapper, "split_folders": dict(self.split_folders)}


def _check_declared_sizes(source: str, refs: Iterable[MemberRef], archive_bytes: int,
                          all_compressed: int, limits: ArchiveLimits) -> None:
    total = 0
    for ref in refs:
        hint = ("If the archive is genuine, raise the limit "
                "(ArchiveLimits in sign_datasets.formats.zip_folders).")
        if ref.file_size > limits.max_member_bytes:
            raise ZipBombError(
                f"{source}: member {ref.name!r} declares {ref.file_size:,} bytes uncompressed, "
                f"over the {limits.max_member_bytes:,}-byte limit for one image; the build "
                f"stops before inflating it. {hint}")
        ratio = ref.file_size / max(ref.compress_size, 1)
        if ref.file_size >= limits.ratio_exempt_below and ratio > limits.max_ratio:
            raise ZipBombError(
                f"{source}: member {ref.name!r} inflates {ref.compress_size:,} bytes into "
                f"{ref.file_size:,} (ratio {ratio:,.0f}:1, limit {limits.max_ratio:,.0f}:1); "
                f"this looks like a zip bomb, so the build stops before inflating it. {hint}")
        total += ref.file_size
        if total > limits.max_total_bytes:
            raise ZipBombError(
                f"{source}: its images declare over {limits.max_total_bytes:,} bytes "
                f"uncompressed in total; the build stops before inflating them. {hint}")
    if all_compressed > archive_bytes:
        # Honest members never share bytes; overlapping ones are how
        # non-recursive zip bombs multiply one compressed kernel.
        raise ZipBombError(
            f"{source}: its members claim {all_compressed:,} compressed bytes in a "
            f"{archive_bytes:,}-byte file, so they overlap: a zip bomb. The build stops.")


def _find_root(candidates: list[tuple[str, ...]], source: str) -> tuple[str, ...]:
    """The folder holding the split folders: the top, or one wrapper folder."""
    def is_split(part: str) -> bool:
        return part.lower() in SPLIT_FOLDER_ALIASES

    at_top = sorted({p[0] for p in candidates if len(p) >= 2 and is_split(p[0])})
    # A split folder is never a wrapper: in Train/test/x.png, test is a class.
    wrapped = sorted({p[0] for p in candidates
                      if len(p) >= 3 and is_split(p[1]) and not is_split(p[0])})
    expected = f"{EXPECTED_SPLIT_FOLDERS}, at the top of the zip or inside one wrapper folder"
    if at_top and wrapped:
        raise LayoutError(
            f"{source}: split folders appear both at the top ({at_top}) and inside "
            f"wrapper folders ({wrapped}); expected {expected}.")
    if at_top:
        return ()
    if len(wrapped) == 1:
        return (wrapped[0],)
    if wrapped:
        raise LayoutError(f"{source}: several wrapper folders hold split folders: {wrapped}; "
                          f"expected {expected}.")
    top = sorted({p[0] + ("/" if len(p) > 1 else "") for p in candidates})
    raise LayoutError(f"{source}: no split folders found; the zip's top level holds "
                      f"{top[:30]}; expected {expected}.")


def _open_directory(path: Path, source: str, limits: ArchiveLimits) -> list[zipfile.ZipInfo]:
    """The zip's entries, after checking what the end record claims."""
    count, directory_bytes = read_directory_claims(path, source)
    if count > limits.max_members:
        raise ZipBombError(f"{source}: declares {count:,} members, over the limit of "
                           f"{limits.max_members:,}; the build stops before reading them.")
    if directory_bytes > limits.max_directory_bytes:
        raise ZipBombError(f"{source}: its directory declares {directory_bytes:,} bytes, over "
                           f"the limit of {limits.max_directory_bytes:,}.")
    try:
        infos = _remember_directory(str(path)).infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise SourceError(f"{source}: cannot read the zip directory ({error}); the download "
                          "may be incomplete. Delete it from the download cache and retry.") from None
    if len(infos) > limits.max_members:
        raise ZipBombError(f"{source}: holds {len(infos):,} members, over the limit of "
                           f"{limits.max_members:,}.")
    return infos


def _find_split_folders(candidates: list[tuple[str, ...]], root: tuple[str, ...],
                        source: str) -> dict[str, str]:
    """{split: folder name as spelled in the zip}, for every split it holds."""
    split_folders: dict[str, str] = {}
    for parts in candidates:
        rest = parts[len(root):]
        if parts[:len(root)] == root and len(rest) >= 2 and rest[0].lower() in SPLIT_FOLDER_ALIASES:
            split = SPLIT_FOLDER_ALIASES[rest[0].lower()]
            seen = split_folders.setdefault(split, rest[0])
            if seen != rest[0]:
                raise LayoutError(f"{source}: both {seen}/ and {rest[0]}/ hold the {split} split; "
                                  "keep one.")
    missing = [split for split in REQUIRED_SPLITS if split not in split_folders]
    if missing:
        prefix = "".join(part + "/" for part in root)
        found = sorted(f"{prefix}{folder}/" for folder in split_folders.values())
        raise LayoutError(f"{source}: no folder for the {' and '.join(missing)} split; found "
                          f"split folders {found}; expected {EXPECTED_SPLIT_FOLDERS}.")
    return split_folders


def folded(name: str) -> str:
    """A folder or class name as names are compared: letter case and Unicode
    normalisation ignored (macOS zips spell Caf\u00e9 as Cafe\u0301)."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


def _check_class_folders(folder_names: list[str], class_names: Sequence[str], where: str,
                         source: str) -> None:
    wanted = {folded(name) for name in class_names}
    unknown = [folder for folder in folder_names if folded(folder) not in wanted]
    spellings = Counter(folded(folder) for folder in folder_names)
    clashes = [folder for folder in folder_names if spellings[folded(folder)] > 1]
    if clashes:
        # ascii() shows what tells the names apart (case, or e\u0301 against \xe9).
        shown = ", ".join(ascii(folder) for folder in clashes)
        raise LayoutError(f"{source}: in {where}, class folders {shown} differ only in letter "
                          "case or Unicode normalisation, so they would merge into one class; "
                          "keep one.")
    if unknown:
        raise LayoutError(f"{source}: in {where}, class folder(s) {unknown} are not classes of "
                          f"this dataset; found {folder_names}; expected {list(class_names)} "
                          "(any letter case).")
    if not folder_names:
        raise LayoutError(f"{source}: {where} holds no images in class folders; "
                          f"expected folders {list(class_names)}.")


def _in_name_order(refs: list[MemberRef], source: str) -> list[MemberRef | Dropped]:
    """Sorted by name; a second entry with a name already seen is dropped,
    since keys come from names and two examples cannot share one."""
    ordered: list[MemberRef | Dropped] = []
    previous = None
    for ref in sorted(refs, key=lambda ref: (ref.path, ref.index)):
        if ref.path == previous:
            ordered.append(Dropped("duplicate_member_name", f"{source}/{ref.path}",
                                   f"zip entry {ref.index} repeats the name"))
        else:
            ordered.append(ref)
        previous = ref.path
    return ordered


def scan_archive(path: Path, class_names: Sequence[str], source: str | None = None,
                 limits: ArchiveLimits = ArchiveLimits()) -> FolderArchive:
    """Reads the zip directory (not the members) and plans the records.

    Raises `ZipBombError` or `LayoutError` (both `SourceError`) with a
    message naming the archive and the member or folders at fault.
    """
    path = Path(path)
    with long_lived_objects_frozen():
        return _scan(path, class_names, source or path.name, limits)


def _scan(path: Path, class_names: Sequence[str], source: str,
          limits: ArchiveLimits) -> FolderArchive:
    infos = _open_directory(path, source, limits)

    junk: dict[str, Counter] = {}
    candidates: list[tuple[int, tuple[str, ...]]] = []
    junk_members: list[tuple[tuple[str, ...], str]] = []
    # Not info.is_dir(): it raises IndexError on an empty member name, which
    # a crafted zip can hold; that name is counted as unsafe below.
    members = [(index, info.filename) for index, info in enumerate(infos)
               if not info.filename.endswith("/")]  # folders are structure, not content
    for (index, _), (parts, kind) in zip(members, classify_names(name for _, name in members)):
        if parts is None:
            junk.setdefault(OUTSIDE_SPLITS, Counter())["unsafe_path"] += 1
        elif kind:
            junk_members.append((parts, kind))
        else:
            candidates.append((index, parts))

    # The layout depends only on the folders: one member of each stands for all.
    one_per_folder = list({parts[:-1]: parts for _, parts in candidates}.values())
    root = _find_root(one_per_folder, source)
    split_folders = _find_split_folders(one_per_folder, root, source)
    folder_to_split = {folder: split for split, folder in split_folders.items()}

    def split_of(parts: tuple[str, ...]) -> str | None:
        if parts and parts[0].lower() == "__macosx":
            parts = parts[1:]
        if parts[:len(root)] != root or len(parts) <= len(root) + 1:
            return None
        return folder_to_split.get(parts[len(root)])

    for parts, kind in junk_members:
        junk.setdefault(split_of(parts) or OUTSIDE_SPLITS, Counter())[kind] += 1

    def place(parts: tuple[str, ...]) -> tuple[str | None, str | None]:
        """(split, class folder) of a member; a None says where it is not."""
        split = split_of(parts)
        rest = parts[len(root) + 1:]
        # Deeper folders inside a class folder still belong to the class, as
        # with keras' image_dataset_from_directory.
        return split, (rest[0] if split is not None and len(rest) >= 2 else None)

    places: dict[tuple[str, ...], tuple[str | None, str | None]] = {}
    class_folders: dict[str, set[str]] = {split: set() for split in split_folders}
    placed: list[tuple[int, tuple[str, ...], str, str]] = []
    for index, parts in candidates:
        folder = parts[:-1]
        found = places.get(folder)
        if found is None:
            found = places[folder] = place(parts)
        split, class_folder = found
        if split is None:
            junk.setdefault(OUTSIDE_SPLITS, Counter())["outside_split_folders"] += 1
        elif class_folder is None:
            junk.setdefault(split, Counter())["outside_class_folders"] += 1
        else:
            class_folders[split].add(class_folder)
            placed.append((index, parts, split, class_folder))
    prefix = "".join(part + "/" for part in root)
    for split in split_folders:
        _check_class_folders(sorted(class_folders[split]), class_names,
                             f"{prefix}{split_folders[split]}/", source)

    labels = {folded(name): label for label, name in enumerate(class_names)}
    refs_by_split: dict[str, list[MemberRef]] = {split: [] for split in split_folders}
    for index, parts, split, class_folder in placed:
        info = infos[index]
        refs_by_split[split].append(MemberRef(
            index, info.filename, "/".join(parts), split, labels[folded(class_folder)],
            info.file_size, info.compress_size))
    _check_declared_sizes(source, (r for refs in refs_by_split.values() for r in refs),
                          path.stat().st_size, sum(i.compress_size for i in infos), limits)
    return FolderArchive(path=path, source=source, wrapper=root[0] if root else None,
                         split_folders=split_folders,
                         records={split: _in_name_order(refs, source)
                                  for split, refs in refs_by_split.items()},
                         junk=junk)


# --- members -> records (runs in worker processes) -----------------------------

# The ZipFile each process reads an archive through: the scan's, or one it
# opened itself (never an ordinary file object from before a fork: forked
# processes share its offset).
_OPEN_ZIPS: dict[tuple[int, str], zipfile.ZipFile] = {}


class _PositionalFile(io.RawIOBase):
    """A read-only file that reads with os.pread at a position of its own and
    never moves the descriptor's offset, the one thing a forked process
    shares with its parent: a ZipFile on it, parsed once, can serve the build
    process and every decode worker forked from it."""

    def __init__(self, path: str):
        super().__init__()
        self.name = path
        self._pos = 0
        self._fd: int | None = None
        self.identity = self.reopen()

    def reopen(self) -> tuple[int, ...]:
        """Opens the file again if `release` closed it; the identity of the
        file open now."""
        if self._fd is None:
            self._fd = guards.open_source_descriptor(self.name)
        return _identity(os.fstat(self._fd))

    def release(self) -> None:
        """Closes the descriptor in this process; `reopen` can open it again."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def close(self) -> None:
        self.release()
        super().close()

    def fileno(self) -> int:
        if self._fd is None:
            raise ValueError(f"{self.name}: released")
        return self._fd

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos}.get(whence)
        if base is None:
            base = os.fstat(self.fileno()).st_size
        if base + offset < 0:  # as a file would: zipfile expects OSError for a short file
            raise OSError(errno.EINVAL, f"negative seek position {base + offset}")
        self._pos = base + offset
        return self._pos

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = max(0, os.fstat(self.fileno()).st_size - self._pos)
        data = os.pread(self.fileno(), size, self._pos)
        self._pos += len(data)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        memoryview(buffer).cast("B")[:len(data)] = data
        return len(data)


def _identity(stat: os.stat_result) -> tuple[int, ...]:
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


# The directory the scan parsed, on its positional file: a process forked
# afterwards (a decode worker) reads through it instead of parsing the
# directory again, which for 35,000 members takes 0.3 s, once per worker
# and split otherwise.
_PARSED_DIRECTORIES: dict[str, tuple[zipfile.ZipFile, _PositionalFile]] = {}


def _remember_directory(archive_path: str) -> zipfile.ZipFile:
    """Parses the zip's directory; the ZipFile stays for later readers."""
    for zf, file in _PARSED_DIRECTORIES.values():  # one archive at a time is enough
        zf.close()
        file.close()
    _PARSED_DIRECTORIES.clear()
    file = _PositionalFile(archive_path)
    try:
        # Buffered as open() would be: a member's header and bytes then come in
        # one read (unbuffered, reading every member took 10 % longer).
        zf = zipfile.ZipFile(io.BufferedReader(file))
    except BaseException:
        file.close()
        raise
    file.release()  # until a reader needs it
    _PARSED_DIRECTORIES[archive_path] = (zf, file)
    return zf


def _parsed_directory(archive_path: str) -> zipfile.ZipFile | None:
    """The scan's ZipFile, readable in this process, if the file at
    `archive_path` is still the one it parsed."""
    parsed = _PARSED_DIRECTORIES.get(archive_path)
    if parsed is None:
        return None
    zf, file = parsed
    try:
        if _identity(os.stat(archive_path)) != file.identity or file.reopen() != file.identity:
            return None
    except OSError:
        return None
    return zf


def _zip_for_this_process(archive_path: str) -> zipfile.ZipFile:
    key = (os.getpid(), archive_path)
    zf = _OPEN_ZIPS.get(key)
    if zf is None:
        zf = _parsed_directory(archive_path)
        if zf is None:
            zf = guards.open_zip(archive_path)
        _OPEN_ZIPS[key] = zf
    return zf


def release_archive(archive_path: str) -> None:
    """Closes this process's handle on `archive_path`, if it has one (the
    scan's directory stays parsed for a later read of the same file)."""
    archive_path = str(archive_path)
    zf = _OPEN_ZIPS.pop((os.getpid(), archive_path), None)
    parsed = _PARSED_DIRECTORIES.get(archive_path)
    if parsed is not None and zf is parsed[0]:
        parsed[1].release()
    elif zf is not None:
        zf.close()


def read_member(image: FolderImage, archive_path: str) -> FolderImage:
    """Rule: inflates the member, never past the size the directory declared."""
    ref = image.member
    zf = _zip_for_this_process(archive_path)
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
    """Rule: the bytes the dataset stores; drops the bulky intermediates,
    which would otherwise travel back from the worker."""
    if spec.raw:
        image.encoded = image.pixels.tobytes()
        image.raw_shape = image.pixels.shape
    else:
        keep = image.keep_original and _original_is_faithful(image.data, spec.mode, image.pixels)
        image.keep_original = keep
        image.encoded = image.data if keep else images.encode_png(image.pixels)
    image.data = None
    image.pixels = None
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
    return [member if isinstance(member, Dropped)
            else screen(FolderImage(member, source), rules)
            for member in members]


def member_ranges(members: Sequence[MemberRef | Dropped], max_members: int = 256,
                  max_bytes: int = 4 * MB, first_members: int = 32) -> Iterator[tuple[int, int]]:
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


# Forked decode workers find a split's members here, by position, instead of
# receiving them, and send back only what they computed: pickling members out
# and whole records back costs the main process (which also runs TFDS's
# writer) about a fifth of its CPU in a parallel build of small images.
_SPLITS_FOR_WORKERS: dict[int, tuple[FolderArchive, DecodeSpec, bool]] = {}
_SPLIT_TOKENS = itertools.count()


def _decode_range(task: tuple[int, str, int, int]) -> list[tuple | Dropped]:
    token, split, start, stop = task
    archive, spec, encode = _SPLITS_FOR_WORKERS[token]
    records = read_chunk(archive.records[split][start:stop], str(archive.path), archive.source,
                         spec, encode)
    return [record if isinstance(record, Dropped)
            else (record.encoded, record.raw_shape, record.digest, record.keep_original)
            for record in records]


def _decoded(archive: FolderArchive, splits: Sequence[str], spec: DecodeSpec, workers: int,
             encode: bool) -> Iterator[FolderImage | Dropped]:
    """The records of `splits`, one split after the other, in member order."""
    with long_lived_objects_frozen():
        yield from _decoded_unfrozen(archive, splits, spec, workers, encode)


def _decoded_unfrozen(archive: FolderArchive, splits: Sequence[str], spec: DecodeSpec,
                      workers: int, encode: bool) -> Iterator[FolderImage | Dropped]:
    try:
        if workers <= 1:
            for split in splits:
                members = archive.records[split]
                for start, stop in member_ranges(members):
                    yield from read_chunk(members[start:stop], str(archive.path), archive.source,
                                          spec, encode)
            return
        token = next(_SPLIT_TOKENS)
        _SPLITS_FOR_WORKERS[token] = (archive, spec, encode)  # before the pool forks
        try:
            ranges = [(split, start, stop) for split in splits
                      for start, stop in member_ranges(archive.records[split])]
            tasks = [(token, *task) for task in ranges]
            # The build process decodes too, whenever TFDS's writer leaves it time.
            decoded = ordered_map(_decode_range, tasks, workers, caller_helps=True)
            for (split, start, stop), results in zip(ranges, decoded):
                for member, result in zip(archive.records[split][start:stop], results):
                    if isinstance(result, Dropped):
                        yield result
                    else:
                        encoded, raw_shape, digest, keep = result
                        yield FolderImage(member, archive.source, keep_original=keep,
                                          digest=digest, encoded=encoded, raw_shape=raw_shape)
        finally:
            _SPLITS_FOR_WORKERS.pop(token, None)
    finally:
        release_archive(str(archive.path))


def read_split(archive: FolderArchive, split: str, spec: DecodeSpec, workers: int | None = None,
               encode: bool = True) -> Iterator[FolderImage | Dropped]:
    """Records of one split in member order, decoded on every core."""
    workers = default_workers() if workers is None else workers
    return _decoded(archive, [split], spec, workers, encode)


class SplitReader:
    """The splits of one archive from one worker pool, in the order given.

    TFDS writes a split's shards after its last example and only then asks
    for the next split: meanwhile the pool already decodes the first chunks
    of the next one, and no second pool is forked. A split asked for out of
    that order (or after an earlier one was left unfinished) is read on its
    own, as `read_split` does.
    """

    def __init__(self, archive: FolderArchive, spec: DecodeSpec, order: Sequence[str],
                 workers: int | None = None):
        self.archive, self.spec = archive, spec
        self.workers = default_workers() if workers is None else workers
        self._pending = list(order)
        self._stream: Iterator[FolderImage | Dropped] | None = None

    def read(self, split: str) -> Iterator[FolderImage | Dropped]:
        if not self._pending or self._pending[0] != split:
            self._abandon()
            yield from read_split(self.archive, split, self.spec, self.workers)
            return
        if self._stream is None:
            self._stream = _decoded(self.archive, list(self._pending), self.spec, self.workers, True)
        self._pending.pop(0)
        stream = self._stream
        try:
            # next(), not islice: a stream ending early is a bug to surface,
            # never records silently missing.
            for _ in range(len(self.archive.records[split])):
                yield next(stream)
            if not self._pending:
                self._abandon()  # the last split: the pool ends now
        except BaseException:
            self._abandon()  # the stream stands inside this split: no later split may use it
            raise

    def _abandon(self) -> None:
        self._pending.clear()
        if self._stream is not None:
            stream, self._stream = self._stream, None
            stream.close()


# --- Beam: members spread in chunks ---------------------------------------------

def read_positioned(batch: tuple[int, list[MemberRef | Dropped]], archive_path: str, source: str,
                    spec: DecodeSpec, encode: bool = True) -> list[tuple[int, FolderImage | Dropped]]:
    """(position in the split's member list, record) of one chunk."""
    offset, members = batch
    return list(enumerate(read_chunk(members, archive_path, source, spec, encode), start=offset))


def folder_example(image: FolderImage) -> tuple[str, dict]:
    stored = image.encoded
    if image.raw_shape is not None:
        stored = np.frombuffer(stored, np.uint8).reshape(image.raw_shape)
    return image.key, {"image": stored, "label": image.label}


def image_digest(image: FolderImage) -> bytes:
    return image.digest


def beam_plan(dataset: str, archive: FolderArchive, split: str, spec: DecodeSpec,
              leakage: LeakageShare | None, encode: bool = True) -> SplitPlan:
    """The split's members in chunks, each decoded on a worker; the archive
    was scanned (and its layout checked) by the launcher."""
    members = archive.records[split]
    work = [(start, members[start:stop]) for start, stop in member_ranges(members)]
    return SplitPlan(
        dataset=dataset, split=split, work=work,
        read=functools.partial(read_positioned, archive_path=str(archive.path),
                               source=archive.source, spec=spec, encode=encode),
        to_example=folder_example, duplicate_content=image_digest,
        duplicate_reason="duplicate_image", leakage=leakage)


# --- whole-split rules (main process) --------------------------------------------

MAX_LEAKAGE_EXAMPLES = 10


def no_repeated_images() -> DuplicateFilter:
    """Rule: a later image with the same decoded pixels as an earlier one of
    the same split is dropped."""
    return DuplicateFilter(content=image_digest, where=lambda image: image.where,
                           reason="duplicate_image")


class LeakageCheck:
    """Finds test images whose pixels equal a train image's.

    Train records pass `remember`; test records pass `check`, which reports
    them (and drops them when asked). Only digests are held.
    """

    def __init__(self, drop_from_test: bool = False):
        self.drop_from_test = drop_from_test
        self.train_known = False
        self._train: dict[bytes, str] = {}
        self.count = 0
        self.examples: list[str] = []

    def remember(self, image: FolderImage) -> FolderImage:
        self._train.setdefault(image.digest, image.where)
        return image

    def learn_train(self, train_images: Iterable[FolderImage | Dropped]) -> None:
        for image in train_images:
            if not isinstance(image, Dropped):
                self.remember(image)
        self.train_known = True

    def check(self, image: FolderImage) -> FolderImage:
        first = self._train.get(image.digest)
        if first is None:
            return image
        self.count += 1
        if len(self.examples) < MAX_LEAKAGE_EXAMPLES:
            self.examples.append(f"{image.where} = {first}")
        if self.drop_from_test:
            raise Dropped("leaked_from_train", image.where, f"same pixels as {first}")
        return image

    def report(self) -> dict:
        return {"count": self.count, "examples": list(self.examples),
                "dropped_from_test": self.drop_from_test}


# --- TFDS ---------------------------------------------------------------------

@dataclasses.dataclass
class FolderConfig(tfds.core.BuilderConfig):
    """size: (height, width) every image is resized to; None keeps native sizes.
    drop_leaked_from_test: drop test images whose pixels equal a train image."""

    size: tuple[int, int] | None = None
    drop_leaked_from_test: bool = False


class ImageFolderBuilder(CleanedBuilder, skip_registration=True):
    """A dataset read from one zip of `<split>/<class>/<image>` folders."""

    ARCHIVE: str = ""
    CLASS_NAMES: tuple[str, ...] = ()
    MODE: str = "RGB"
    ARCHIVE_LIMITS = ArchiveLimits()
    # ENCODED_IMAGE keeps (or PNG-encodes) image bytes; RAW_PIXELS stores
    # the decoded pixels, for configs of one fixed, small size.
    STORAGE: str = ENCODED_IMAGE

    def image_shape(self) -> tuple[int | None, int | None, int]:
        height, width = self.builder_config.size or (None, None)
        return height, width, 1 if self.MODE == "L" else 3

    def decode_spec(self) -> DecodeSpec:
        size = self.builder_config.size
        return DecodeSpec(mode=self.MODE, size=tuple(size) if size else None,
                          raw=self.STORAGE == RAW_PIXELS)

    def _features(self):
        return image_features(self.image_shape(), self.STORAGE, self.CLASS_NAMES)

    def _split_generators(self, dl_manager):
        path = self.download_object(dl_manager, self.ARCHIVE)
        archive = scan_archive(path, self.CLASS_NAMES, source=self.ARCHIVE,
                               limits=self.ARCHIVE_LIMITS)
        self.info.metadata["junk"] = archive.junk_report()
        self.info.metadata["layout"] = archive.layout_report()
        drop_leaked = self.builder_config.drop_leaked_from_test
        if self.generates_on_beam:
            leakage, reader = LeakageShare(drop_from_test=drop_leaked), None
        else:
            leakage = LeakageCheck(drop_from_test=drop_leaked)
            reader = SplitReader(archive, self.decode_spec(), order=archive.splits)
        return {split: self._generate_examples(archive, split, leakage, reader)
                for split in archive.splits}

    def _generate_examples(self, archive: FolderArchive, split: str,
                           leakage: LeakageCheck | LeakageShare, reader: SplitReader | None):
        if reader is not None:
            return self._generate_locally(archive, split, leakage, reader)
        spec = self.decode_spec()
        if split == "test":
            leakage.train_plan = beam_plan(self.info.full_name, archive, "train", spec,
                                           None, encode=False)
        elif split != "train":
            leakage = None  # the leakage rule compares test with train only
        return self.beam_examples(beam_plan(self.info.full_name, archive, split, spec, leakage))

    def _generate_locally(self, archive: FolderArchive, split: str, leakage: LeakageCheck,
                          reader: SplitReader):
        spec = reader.spec
        rules = [no_repeated_images()]
        if split == "train":
            rules.append(leakage.remember)
        elif split == "test":  # the leakage rule compares test with train only
            if not leakage.train_known:
                # TFDS wrote test first (or alone): learn train's pixels now.
                leakage.learn_train(read_split(archive, "train", spec, encode=False))
            rules.append(leakage.check)
        yield from self.cleaned_examples(split, reader.read(split), rules,
                                         folder_example)
        if split == "train":
            leakage.train_known = True
        elif split == "test":
            self.info.metadata["leakage"] = leakage.report()
