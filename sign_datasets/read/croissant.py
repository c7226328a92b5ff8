"""Croissant 1.0 metadata (MLCommons) of an exported dataset: croissant.json.

It describes the export's Parquet files (a FileObject each, with its sha256,
and a FileSet that reads them all) and one record set of `image`, `label`
and `split`, laid out as Hugging Face lays out its own Croissant files: the
split comes from each file's path and refers to a record set of the split
names, which is how mlcroissant and TFDS's CroissantBuilder tell splits
apart. A second record set lists the class names by index.

The document depends only on what it is given: the same export gives the
same bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path

from sign_datasets.read.parquet import DATA_FOLDER, SplitFiles

CONFORMS_TO = "http://mlcommons.org/croissant/1.0"
# The @context of the Croissant 1.0 specification.
CONTEXT = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}
PARQUET = "application/x-parquet"
FILE_SET = "parquet-files"
SPLITS = "splits"
CLASSES = "classes"


@dataclasses.dataclass(frozen=True)
class Described:
    """What the metadata says about a dataset besides its files."""

    name: str                 # NAME/CONFIG as TFDS names it
    config: str               # the record set's name: the config, else "default"
    version: str
    description: str
    homepage: str
    license: str
    citation: str
    creator: str
    date_published: str       # YYYY-MM-DD
    classes: tuple[str, ...]


def sha256_of(path: Path) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _file_objects(folder: Path, splits: list[SplitFiles]) -> list[dict]:
    objects = []
    for split in splits:
        for name in split.files:
            path = folder / name
            objects.append({
                "@type": "cr:FileObject", "@id": name, "name": name,
                "description": f"examples of the {split.split} split",
                "contentUrl": name, "contentSize": f"{path.stat().st_size} B",
                "encodingFormat": PARQUET, "sha256": sha256_of(path)})
    return objects


def _field(record_set: str, name: str, data_type: str, description: str, source: dict,
           **more) -> dict:
    return {"@type": "cr:Field", "@id": f"{record_set}/{name}", "name": name,
            "description": description, "dataType": data_type, "source": source, **more}


def _split_pattern(splits: list[SplitFiles]) -> str:
    names = "|".join(re.escape(s.split) for s in splits)
    # Plain enough for mlcroissant to turn into a glob when it reads one split.
    return rf"{DATA_FOLDER}/({names})-.+\.parquet$"


def _record_sets(described: Described, splits: list[SplitFiles]) -> list[dict]:
    rs = described.config
    from_files = {"fileSet": {"@id": FILE_SET}}
    examples = {
        "@type": "cr:RecordSet", "@id": rs, "name": rs,
        "description": f"The examples of {described.name}, every split.",
        "field": [
            _field(rs, "image", "sc:ImageObject", "the image, PNG",
                   {**from_files, "extract": {"column": "image"},
                    "transform": {"jsonPath": "bytes"}}),
            _field(rs, "label", "sc:Integer",
                   f"the class index; record set {CLASSES} names each",
                   {**from_files, "extract": {"column": "label"}}),
            _field(rs, "split", "sc:Text", "the split the example belongs to",
                   {**from_files, "extract": {"fileProperty": "fullpath"},
                    "transform": {"regex": _split_pattern(splits)}},
                   references={"field": {"@id": f"{SPLITS}/name"}}),
        ],
    }
    split_names = {
        "@type": "cr:RecordSet", "@id": SPLITS, "name": SPLITS, "dataType": "cr:Split",
        "description": "The splits of the dataset.", "key": {"@id": f"{SPLITS}/name"},
        "field": [{"@type": "cr:Field", "@id": f"{SPLITS}/name", "name": "name",
                   "dataType": "sc:Text"}],
        "data": [{f"{SPLITS}/name": s.split} for s in splits],
    }
    class_names = {
        "@type": "cr:RecordSet", "@id": CLASSES, "name": CLASSES,
        "description": "The class of each label index.", "key": {"@id": f"{CLASSES}/index"},
        "field": [{"@type": "cr:Field", "@id": f"{CLASSES}/index", "name": "index",
                   "dataType": "sc:Integer"},
                  {"@type": "cr:Field", "@id": f"{CLASSES}/name", "name": "name",
                   "dataType": "sc:Text"}],
        "data": [{f"{CLASSES}/index": i, f"{CLASSES}/name": name}
                 for i, name in enumerate(described.classes)],
    }
    return [examples, split_names, class_names]


def metadata(described: Described, folder: Path, splits: list[SplitFiles]) -> dict:
    """The Croissant document of the Parquet files of `splits` under `folder`."""
    document = {"@context": CONTEXT, "@type": "sc:Dataset", "conformsTo": CONFORMS_TO,
                "name": described.name,
                "description": described.description or f"The dataset {described.name}.",
                "version": described.version,
                "datePublished": described.date_published,
                "creator": {"@type": "sc:Organization", "name": described.creator}}
    if described.homepage:
        document["url"] = described.homepage
    if described.license:
        document["license"] = described.license
    if described.citation:
        document["citeAs"] = described.citation
    document["distribution"] = _file_objects(folder, splits) + [{
        "@type": "cr:FileSet", "@id": FILE_SET, "name": FILE_SET,
        "description": "Every Parquet file of the export.",
        "encodingFormat": PARQUET, "includes": f"{DATA_FOLDER}/*.parquet"}]
    document["recordSet"] = _record_sets(described, splits)
    return document


def dumps(document: dict) -> str:
    """The document as croissant.json holds it."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def relocated(document: dict, prefix: str) -> dict:
    """The document with its file paths under `prefix` (e.g. "data/x/"): the
    copy a page embeds, whose relative URLs resolve against the page."""
    moved = json.loads(json.dumps(document))
    for item in moved.get("distribution", []):
        for key in ("contentUrl", "includes"):
            if key in item:
                item[key] = prefix + item[key]
    return moved
