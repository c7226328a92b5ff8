"""The layout of a zip of image folders: `<split>/<class>/<image>`, maybe
inside one wrapper folder, read from the zip's directory alone.

Splits are train and test, and validation when the zip has a Validation/
(val, valid, dev) folder; a folder at the top named like a split is a split
folder, never a wrapper, so `Train/test/x.png` is class `test` of train.
Class folders match class names ignoring letter case and Unicode
normalisation; two folders that differ only so are an error, never merged.
`scan_archive` refuses zip bombs before a byte is inflated, finds the split
and class folders, counts junk, and returns every record-to-be as a
`MemberRef`, sorted by name.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple, Sequence

from sign_datasets.core.cleaning import Dropped, SourceError
from sign_datasets.io import remote_files
from sign_datasets.io.archives import ArchiveLimits, check_declared_sizes, open_directory
from sign_datasets.io.parallel import long_lived_objects_frozen


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


class LayoutError(SourceError):
    """The archive's folders are not `<split>/<class>/` as the dataset expects."""


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

    path: Path | str  # a URL string under a remote download dir (remote_files)
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


def scan_archive(path: Path | str, class_names: Sequence[str], source: str | None = None,
                 limits: ArchiveLimits = ArchiveLimits()) -> FolderArchive:
    """Reads the zip directory (not the members) and plans the records.

    Raises `ZipBombError` or `LayoutError` (both `SourceError`) with a
    message naming the archive and the member or folders at fault.
    """
    path = remote_files.as_path(path)
    with long_lived_objects_frozen():
        return _scan(path, class_names, source or remote_files.name(path), limits)


def _scan(path: Path | str, class_names: Sequence[str], source: str,
          limits: ArchiveLimits) -> FolderArchive:
    infos = open_directory(path, source, limits)

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
    check_declared_sizes(source, (r for refs in refs_by_split.values() for r in refs),
                          remote_files.size(path), sum(i.compress_size for i in infos), limits)
    return FolderArchive(path=path, source=source, wrapper=root[0] if root else None,
                         split_folders=split_folders,
                         records={split: _in_name_order(refs, source)
                                  for split, refs in refs_by_split.items()},
                         junk=junk)
