"""`sign-datasets export`: a built dataset as Parquet files, a dataset card
and Croissant metadata, which Hugging Face `datasets`, mlcroissant and TFDS's
CroissantBuilder read without this package.

    DIR/README.md                          the card: YAML front matter, then text
    DIR/croissant.json                     Croissant 1.0 (croissant.py)
    DIR/data/{split}-00000-of-00001.parquet

The export is written beside DIR and moved into place whole, so DIR never
holds half of one. DIR may be empty, missing or an earlier export (which it
replaces); anything else is refused.
"""

from __future__ import annotations

import datetime
import json
import re
import shutil
import urllib.parse
from pathlib import Path

from sign_datasets.core.cleaning import format_report
from sign_datasets.read import croissant, parquet
from sign_datasets.read.parquet import ExportError, SplitFiles

CARD = "README.md"
METADATA = "croissant.json"
EXPORT_FILES = {CARD, METADATA, parquet.DATA_FOLDER}
DEFAULT_CREATOR = "sign-datasets"
# A license the card names by its identifier (cc-by-4.0, mit, ...); any other
# text is "other", with the text as its name.
_LICENSE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+-]{0,63}")


def _default_homepage(url: str) -> bool:
    # TFDS fills in a tensorflow.org address for builders without a homepage.
    return url.startswith("https://www.tensorflow.org/datasets/")


def homepage_of(info) -> str:
    return "" if not info.homepage or _default_homepage(info.homepage) else info.homepage


def license_of(info) -> str:
    redistribution = getattr(info, "redistribution_info", None)
    return (getattr(redistribution, "license", "") or "") if redistribution else ""


def build_date(builder) -> str:
    """The day the dataset was built (UTC), the default date of publication."""
    stamp = (Path(str(builder.data_dir)) / "dataset_info.json").stat().st_mtime
    return datetime.datetime.fromtimestamp(stamp, datetime.timezone.utc).strftime("%Y-%m-%d")


def default_creator(homepage: str) -> str:
    """Whoever publishes the homepage, else the tool that made the dataset."""
    host = urllib.parse.urlsplit(homepage).hostname if homepage else None
    return host or DEFAULT_CREATOR


def described(builder, creator: str = "", date_published: str = "") -> croissant.Described:
    """What the card and the Croissant metadata say of a built dataset;
    creator and date default as `default_creator` and `build_date` say."""
    info = builder.info
    homepage = homepage_of(info)
    config = builder.builder_config.name if builder.builder_config else "default"
    name = f"{builder.name}/{config}" if builder.builder_config else builder.name
    return croissant.Described(
        name=name, config=config, version=str(builder.version),
        description=(info.description or "").strip(), homepage=homepage,
        license=license_of(info).strip(), citation=(info.citation or "").strip(),
        creator=creator or default_creator(homepage),
        date_published=date_published or build_date(builder),
        classes=tuple(parquet.class_names(builder)))


# --- the dataset card --------------------------------------------------------------

def _q(value) -> str:
    """A YAML scalar: a JSON string is a valid YAML double-quoted one."""
    return json.dumps(value) if isinstance(value, str) else str(value)


def front_matter(about: croissant.Described, splits: list[SplitFiles]) -> list[str]:
    """The card's YAML: what `datasets` reads (configs, features, splits)
    and the license and citation."""
    lines = ["---", f"pretty_name: {_q(about.name)}"]
    if about.license:
        if _LICENSE_ID.fullmatch(about.license):
            lines.append(f"license: {_q(about.license.lower())}")
        else:
            lines += ["license: \"other\"", f"license_name: {_q(about.license)}"]
    if about.citation:
        lines.append(f"citation: {_q(about.citation)}")
    lines += ["configs:", f"- config_name: {_q(about.config)}", "  data_files:"]
    for split in splits:
        lines += [f"  - split: {_q(split.split)}",
                  f"    path: {_q(f'{parquet.DATA_FOLDER}/{split.split}-*')}"]
    lines += ["  default: true", "dataset_info:", f"  config_name: {_q(about.config)}",
              "  features:", "  - name: \"image\"", "    dtype: \"image\"",
              "  - name: \"label\"", "    dtype:", "      class_label:", "        names:"]
    lines += [f"          {_q(str(i))}: {_q(name)}" for i, name in enumerate(about.classes)]
    lines.append("  splits:")
    for split in splits:
        lines += [f"  - name: {_q(split.split)}", f"    num_bytes: {split.num_bytes}",
                  f"    num_examples: {split.examples}"]
    lines += [f"  download_size: {sum(s.num_bytes for s in splits)}",
              f"  dataset_size: {sum(s.num_bytes for s in splits)}", "---"]
    return lines


def _fenced(text: str, kind: str = "") -> list[str]:
    # A fence longer than any run of backticks in the text, so none closes it.
    fence = "`" * max(3, 1 + max((len(r) for r in re.findall(r"`+", text)), default=0))
    return [fence + kind, text, fence]


def card(about: croissant.Described, splits: list[SplitFiles], cleaning: dict | None) -> str:
    """README.md of the export: front matter, description, splits, cleaning
    report, citation."""
    lines = front_matter(about, splits) + ["", f"# {about.name}", ""]
    if about.description:
        lines += [about.description, ""]
    lines += [f"Version {about.version}, exported by sign-datasets from its TFDS build. "
              f"`image` is a PNG, `label` the index of one of {len(about.classes)} classes. "
              f"`{METADATA}` describes the files in Croissant 1.0.", "",
              "## Splits", "", "| split | examples | files |", "|---|---|---|"]
    lines += [f"| {s.split} | {s.examples} | {len(s.files)} |" for s in splits]
    lines += ["", "## Cleaning report", ""]
    if cleaning:
        lines += _fenced(format_report({about.name: cleaning}))
    else:
        lines.append("No cleaning report is stored with this build.")
    if about.homepage:
        lines += ["", f"Homepage: <{about.homepage}>"]
    if about.license:
        lines += ["", f"License: {about.license}"]
    if about.citation:
        lines += ["", "## Citation", ""] + _fenced(about.citation, "bibtex")
    return "\n".join(lines) + "\n"


# --- writing it --------------------------------------------------------------------

def _is_export(folder: Path) -> bool:
    """Whether `folder` holds nothing but an earlier export (or nothing)."""
    entries = {p.name for p in folder.iterdir()}
    if not entries <= EXPORT_FILES:
        return False
    data = folder / parquet.DATA_FOLDER
    return not data.exists() or (data.is_dir() and all(
        p.suffix == ".parquet" for p in data.iterdir()))


def check_out(out: Path) -> None:
    """Refuses an --out that is a file or a folder of other things."""
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out}: a file is there; name a folder")
    if out.is_dir() and not _is_export(out):
        raise ExportError(f"--out {out}: the folder holds other files than an earlier "
                          "export; name an empty or new folder")


def write(builder, out: Path, about: croissant.Described, progress: bool = True) -> dict:
    """Writes the export of a built dataset into `out`; returns its Croissant document."""
    check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = out.parent / f".{out.name}.export-tmp"
    shutil.rmtree(work, ignore_errors=True)  # a killed export's leftovers
    work.mkdir()
    try:
        splits = parquet.write_splits(builder, work, progress)
        cleaning = dict(builder.info.metadata or {}).get("cleaning")
        (work / CARD).write_text(card(about, splits, cleaning), encoding="utf-8")
        document = croissant.metadata(about, work, splits)
        (work / METADATA).write_text(croissant.dumps(document), encoding="utf-8")
        _replace(out, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return document


def _replace(out: Path, work: Path) -> None:
    """Moves the finished export into `out`, which holds an earlier one or nothing."""
    old = out.parent / f".{out.name}.export-old"
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    work.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def export(builder, out: Path, creator: str = "", date_published: str = "",
           progress: bool = True) -> dict:
    """Exports a built dataset into `out` (see the module's docstring)."""
    return write(builder, Path(out), described(builder, creator, date_published), progress)
