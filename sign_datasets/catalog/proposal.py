"""`sign-datasets new`: a proposed catalog entry, from a look at the source.

It reads just enough of the source to fill in what people get wrong by hand:
the class folders of a zip and the size and colour mode of its images, the
header and labels of a CSV, the labels and first image of a JSON file. The
proposal is checked like any catalog entry and appended to the catalog with
a comment asking for review; nothing is built.
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import io
import json
import math
import tempfile
import tomllib
import urllib.parse
import zipfile
from pathlib import Path
from typing import IO, Iterator

import numpy as np
from PIL import Image

from sign_datasets.catalog.entries import Entry
from sign_datasets.catalog.loader import load_catalog
from sign_datasets.catalog.paths import allowed_roots, classify_location, sha256_of
from sign_datasets.catalog.schema import FORMATS, EntryChecker
from sign_datasets.catalog.teams import check_names
from sign_datasets.core import images
from sign_datasets.core.cleaning import Dropped, SourceError
from sign_datasets.formats import base64_json, csv_pixels, json_urls
from sign_datasets.io import downloads, sources
from sign_datasets.io.settings import SettingsError, user_path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
SPLIT_ALIASES = {"train": "train", "training": "train", "test": "test", "testing": "test"}
# Images opened to learn size and mode; enough to see a mixture, few enough
# to answer in a second on a 500 MB zip.
SAMPLE_PER_CLASS = 8
MAX_HEADER_BYTES = 1 << 20
# A sampled image member larger than this is not opened (the build's own
# bomb limits apply when it is built).
MAX_SAMPLE_BYTES = 32 << 20
# Longer label fields are not labels; int() of them costs quadratic time.
MAX_LABEL_DIGITS = 18


class ProposalError(ValueError):
    """The source cannot be inspected as the asked-for format."""


@contextlib.contextmanager
def local_copy(source: str) -> Iterator[Path]:
    """The source as a local file: a path as is; an http(s) or gs:// URL
    downloaded to a temporary folder through the URL policy (scope CATALOG:
    public hosts, gs:// buckets the user allowed), with the size cap and time
    limit of every source download."""
    parts = urllib.parse.urlsplit(source)
    if parts.scheme.lower() in ("http", "https", "gs"):
        with tempfile.TemporaryDirectory() as tmp:
            try:
                downloaded = downloads.download_source(source, tmp)
            except downloads.SourceDownloadError as error:
                raise ProposalError(str(error)) from None
            # Notes name the file as the URL does.
            yield downloaded.rename(Path(tmp) / downloads.safe_file_name(source))
    else:
        path = Path(urllib.parse.unquote(parts.path)) if parts.scheme == "file" \
            else _expanded(source)
        if not path.is_file():
            raise ProposalError(f"{source}: no such file")
        yield path


def _expanded(source: str) -> Path:
    """`source` with `~` and `~user` expanded; an unknown user is a ProposalError."""
    try:
        return user_path("--source", source)
    except SettingsError as error:
        raise ProposalError(str(error)) from None


def _is_grey(image: Image.Image) -> bool:
    if image.mode in ("1", "L", "LA", "I", "I;16", "F"):
        return True
    rgb = np.asarray(image.convert("RGB"))
    return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())


def _size_and_mode(images: list[Image.Image], notes: list[str]) -> tuple[list[int] | None, str]:
    sizes = collections.Counter((img.height, img.width) for img in images)
    mode = "L" if all(_is_grey(img) for img in images) else "RGB"
    if len(sizes) == 1:
        (height, width), = sizes
        return [height, width], mode
    seen = ", ".join(f"{w}x{h} ({n})" for (h, w), n in sizes.most_common(5))
    notes.append(f"images of several sizes (width x height: {seen}); without `size` each "
                 "keeps its own, add size = [height, width] to resize them all")
    return None, mode


def open_zip(path: Path, needed_for: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ProposalError(f"{path.name}: not a readable zip archive ({error}); "
                            f"{needed_for}") from None


def open_member(zf: zipfile.ZipFile, path: Path, member: str) -> IO[bytes]:
    try:
        return io.BufferedReader(zf.open(member))
    except KeyError:
        some = [n for n in zf.namelist() if not n.endswith("/")][:5]
        raise ProposalError(f"{path.name}: no member {member!r}; --member names a file of "
                            f"the zip, e.g. {', '.join(map(repr, some)) or '(it is empty)'}") \
            from None


def inspect_zip_folders(path: Path, notes: list[str]) -> dict:
    with open_zip(path, "--format zip_folders needs a zip of <split>/<class>/ image "
                        "folders") as zf:
        per_split: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        samples: dict[str, list[zipfile.ZipInfo]] = collections.defaultdict(list)
        for info in zf.infolist():
            parts = [p for p in info.filename.split("/") if p]
            if info.is_dir() or not parts or any(p.startswith((".", "__MACOSX")) for p in parts):
                continue
            if not parts[-1].lower().endswith(IMAGE_SUFFIXES):
                continue
            at = next((i for i, p in enumerate(parts[:-2]) if p.lower() in SPLIT_ALIASES), None)
            if at is None:
                continue
            split, label = SPLIT_ALIASES[parts[at].lower()], parts[at + 1]
            per_split[split][label] += 1
            if len(samples[label]) < SAMPLE_PER_CLASS:
                samples[label].append(info)
        if not per_split:
            raise ProposalError(f"{path.name}: no images in <split>/<class>/ folders "
                                "(split folders are train/training and test/testing)")
        images = []
        for infos in samples.values():
            for info in infos:
                image = _sample_image(zf, info)
                if image is None:
                    notes.append(f"{info.filename}: not readable as an image (or over the "
                                 "size caps)")
                else:
                    images.append(image)
    if not images:
        raise ProposalError(f"{path.name}: none of the sampled images could be read")
    # keras' image_dataset_from_directory numbers classes alphabetically.
    classes = sorted({label for counter in per_split.values() for label in counter})
    for split in ("train", "test"):
        counter = per_split.get(split)
        if not counter:
            notes.append(f"no {split} folder: the build needs both train and test")
            continue
        notes.append(f"{split}: {sum(counter.values())} images; "
                     + ", ".join(f"{label} {counter[label]}" for label in classes))
    size, mode = _size_and_mode(images, notes)
    return {"classes": classes, "size": size, "mode": mode}


def _sample_image(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Image.Image | None:
    """One member as an image, read under the build's caps (member bytes and
    pixels, checked before decoding); None when it is not one or too large."""
    if info.file_size > MAX_SAMPLE_BYTES:
        return None
    try:
        with zf.open(info) as member:
            data = member.read(MAX_SAMPLE_BYTES + 1)  # the header's size may lie
        if len(data) > MAX_SAMPLE_BYTES:
            return None
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > images.MAX_IMAGE_PIXELS:
                return None
            image.load()
            return image.copy()
    except Exception:  # noqa: BLE001 - a bad file is the build's business, counted there
        return None


def _pixel_shape(count: int) -> tuple[list[int], str] | None:
    side = math.isqrt(count)
    if side * side == count:
        return [side, side], "L"
    if count % 3 == 0 and math.isqrt(count // 3) ** 2 == count // 3:
        side = math.isqrt(count // 3)
        return [side, side], "RGB"
    return None


def inspect_csv_pixels(stream: IO[bytes], source: str, notes: list[str]) -> dict:
    header = stream.readline(MAX_HEADER_BYTES).removeprefix(b"\xef\xbb\xbf")
    if not header.strip():
        raise ProposalError(f"{source}: the file is empty (no header, no rows).")
    names = [n.strip().lower() for n in header.decode("utf-8", "replace").strip().split(",")]
    if names[0] != "label" or len(names) < 2:
        # The build's own words for a missing header, and how to add it.
        try:
            csv_pixels.parse_header(header, source, max(1, len(names) - 1))
        except SourceError as error:
            raise ProposalError(str(error)) from None
    pixels = len(names) - 1
    shape = _pixel_shape(pixels)
    if shape is None:
        raise ProposalError(f"{source}: {pixels} pixel columns are no square image (grey or "
                            "RGB); write image.size by hand")
    labels: collections.Counter = collections.Counter()
    rows = bad = 0
    while line := stream.readline(MAX_HEADER_BYTES):
        if len(line) == MAX_HEADER_BYTES and not line.endswith(b"\n"):
            # A line over the cap (the build drops it as line_too_long): skip
            # the rest of it without holding it.
            while (rest := stream.readline(MAX_HEADER_BYTES)) and not rest.endswith(b"\n"):
                pass
            rows += 1
            bad += 1
            continue
        if not line.strip():
            continue
        rows += 1
        first = line.split(b",", 1)[0].strip()
        if len(first) <= MAX_LABEL_DIGITS and first.lstrip(b"-").isdigit():
            labels[int(first)] += 1
        else:
            bad += 1
    if not labels:
        raise ProposalError(f"{source}: no row with an integer label")
    notes.append(f"{rows} rows; labels " + ", ".join(f"{k} ({v})" for k, v in sorted(labels.items()))
                 + (f"; {bad} rows without an integer label" if bad else ""))
    notes.append("class names are placeholders: name each class, keeping csv_labels in step")
    ordered = sorted(labels)
    size, mode = shape
    return {"classes": [f"class_{label}" for label in ordered], "csv_labels": ordered,
            "size": size, "mode": mode}


def _first_image(data: bytes, notes: list[str], source: str) -> tuple[list[int], str]:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            size, mode = _size_and_mode([image.copy()], notes)
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise ProposalError(f"{source}: the first image is not readable "
                            f"({type(error).__name__}); check the file, or write image.mode "
                            "and image.size by hand") from None
    return size or [image.height, image.width], mode


def inspect_json_urls(stream: IO[bytes], source: str, notes: list[str]) -> dict:
    records = list(json_urls.read(io.BufferedReader(stream) if not hasattr(stream, "peek")
                                  else stream, source))
    if not records:
        raise ProposalError(f"{source}: no records")
    labels = collections.Counter(r.label for r in records)
    notes.append(f"{len(records)} records; labels " + ", ".join(
        f"{k} ({v})" for k, v in sorted(labels.items())))
    size, mode = [28, 28], "L"
    try:
        # A URL found in a file: the data scope of the URL policy, as builds fetch it.
        data = downloads.fetch_one(sources.rebase_url(records[0].url))
        size, mode = _first_image(data, notes, records[0].url)
        notes.append(f"size and mode from the first image ({records[0].url})")
    except Exception as error:  # noqa: BLE001 - a guess is still a useful proposal
        notes.append(f"the first image could not be fetched ({type(error).__name__}); "
                     "size and mode are a guess")
    return {"classes": sorted(labels), "size": size, "mode": mode}


def inspect_base64_json(stream: IO[bytes], source: str, notes: list[str]) -> dict:
    entries = list(base64_json.read(stream, source))
    if not entries:
        raise ProposalError(f"{source}: no entries")
    labels = collections.Counter(str(e.label) for e in entries)
    notes.append(f"{len(entries)} images; labels " + ", ".join(
        f"{k} ({v})" for k, v in sorted(labels.items())))
    where = f"{source}: entry {entries[0].label!r}"
    try:
        data = base64_json.decode_base64_text(entries[0].payload, where)
    except Dropped as drop:
        raise ProposalError(f"{drop}; check the file, or write image.mode and image.size by "
                            "hand") from None
    size, mode = _first_image(data, notes, where)
    return {"classes": sorted(labels), "size": size, "mode": mode}


def inspect(fmt: str, source: str, member: str | None = None) -> tuple[dict, str, list[str]]:
    """(fields found, sha256 of the source, notes for the reviewer)."""
    if fmt not in FORMATS:
        raise ProposalError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    notes: list[str] = []
    with local_copy(source) as path:
        sha = sha256_of(path)
        if fmt == "zip_folders":
            return inspect_zip_folders(path, notes), sha, notes
        with contextlib.ExitStack() as stack:
            if member:
                zf = stack.enter_context(open_zip(path, "--member reads a file inside a zip"))
                stream = stack.enter_context(open_member(zf, path, member))
                label = f"{path.name}/{member}"
            else:
                stream = stack.enter_context(open(path, "rb"))
                label = path.name
            reader = {"csv_pixels": inspect_csv_pixels, "json_urls": inspect_json_urls,
                      "base64_json": inspect_base64_json}[fmt]
            return reader(stream, label, notes), sha, notes


def _toml(value) -> str:
    # JSON's strings, numbers and arrays are valid TOML.
    return json.dumps(value)


def location_for(source: str, catalog: Path) -> str:
    """A local source relative to the catalog's folder when beneath it (so a
    shared folder can move), else absolute; URLs as given."""
    kind = classify_location(source)
    if kind is None or kind[0] == "url":
        return source
    path = _expanded(kind[1]).resolve()
    try:
        return str(path.relative_to(catalog.resolve().parent))
    except ValueError:
        return str(path)


def propose(name: str, fmt: str, source: str, catalog: Path, member: str | None = None,
            today: datetime.date | None = None) -> str:
    """The TOML text of a proposed entry, checked as the catalog would check it."""
    fields, sha, notes = inspect(fmt, source, member)
    today = today or datetime.date.today()
    src = {"location": location_for(source, catalog), "sha256": sha}
    if member:
        src["member"] = member
    lines = ["", f"# Proposed by `sign-datasets new` on {today.isoformat()} from "
                 f"{_comment_text(source)}.",
             "# Review it: describe the dataset, name the classes, add homepage, license and",
             "# citation. What the source holds:"]
    # Notes quote member and folder names of the source: a newline in one
    # must not end the comment and write TOML of the source's choosing.
    lines += [f"#   {_comment_text(note)}" for note in notes]
    lines += ["[[dataset]]",
              f"name = {_toml(name)}",
              'version = "1.0.0"',
              f"description = {_toml('TODO: what the images show, where they come from.')}",
              f"format = {_toml(fmt)}",
              f"classes = {_toml(fields['classes'])}"]
    if "csv_labels" in fields:
        lines.append(f"csv_labels = {_toml(fields['csv_labels'])}")
    image = f'mode = {_toml(fields["mode"])}'
    if fields.get("size"):
        image += f", size = {_toml(fields['size'])}"
    lines.append(f"image = {{ {image} }}")
    source_items = ", ".join(f"{k} = {_toml(v)}" for k, v in src.items())
    lines.append(f"sources = [{{ {source_items} }}]")
    lines.append('release_notes = { "1.0.0" = "First release." }')
    text = "\n".join(lines) + "\n"
    check(text, catalog)
    return text


def _comment_text(text: str, limit: int = 2000) -> str:
    """`text` on one line of a TOML comment: control and line-breaking
    characters written as escapes, cut to `limit` characters."""
    text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def check(text: str, catalog: Path) -> Entry:
    """Refuses a proposal the catalog would refuse (bad name, roots, clash)."""
    proposed = tomllib.loads(text).get("dataset", [])
    if len(proposed) != 1:  # never: names in it are escaped
        raise ProposalError(f"the proposal holds {len(proposed)} entries, not one")
    raw = proposed[0]
    existing = load_catalog(catalog) if catalog.exists() else []
    entry = EntryChecker(catalog, len(existing), raw, allowed_roots(catalog)).check()
    if any(e.name == entry.name for e in existing):
        raise entry.error("name", f"duplicate name: {catalog} already has {entry.name!r}")
    check_names([entry])
    return entry


def append(catalog: Path, text: str) -> None:
    """Appends to the catalog, creating the file (not its folder) if needed."""
    before = catalog.read_text() if catalog.exists() else ""
    with open(catalog, "a") as out:
        if before and not before.endswith("\n"):
            out.write("\n")
        out.write(text)
