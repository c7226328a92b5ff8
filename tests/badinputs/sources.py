"""The objects each dataset reads, in the bucket's layout: databasesLoadData.zip
and its CSV, JSON and base64 members, the img_mnist/ images, and a team
catalog.toml with its zip."""

from __future__ import annotations

import base64
import json
import zipfile
from pathlib import Path
from typing import Callable, Iterable

from badinputs.images import jpeg, noise, png
from badinputs.zips import FIXED_TIME, folder_zip

SIGN_LETTERS = tuple("ABCDEFGHIKLMNOPQRSTUVWXY")
BUCKET = "https://storage.googleapis.com/platzi-tf2/"
DATABASES_ZIP = "databasesLoadData.zip"
CSV_TRAIN = "sign_mnist_train/sign_mnist_train.csv"
CSV_TEST = "sign_mnist_test/sign_mnist_test.csv"
JSON_MEMBER = "sign_mnist_json/data.json"
BASE64_MEMBER = "sign_mnist_base64/data.json"
SIGN_ZIP = "sign-language-img.zip"
MALARIA_ZIP = "MalariaCells.zip"

# What the CSV, JSON and base64 readers name as their source in messages.
CSV_SOURCE = f"{DATABASES_ZIP}/{CSV_TRAIN}"
JSON_SOURCE = f"{DATABASES_ZIP}/{JSON_MEMBER}"
BASE64_SOURCE = f"{DATABASES_ZIP}/{BASE64_MEMBER}"

CATALOG_FILE = "catalog.toml"
CATALOG_SOURCE = f"<source>/{CATALOG_FILE}"

CSV_HEADER = b"label," + b",".join(b"pixel%d" % i for i in range(1, 785))


def csv_row(label: int, seed: int) -> bytes:
    return b",".join([str(label).encode()] + [str(v).encode() for v in noise(seed).ravel()])


def csv_file(rows: Iterable[bytes], header: bytes = CSV_HEADER, end: bytes = b"\n") -> bytes:
    return end.join([header, *rows]) + end


GOOD_TEST_CSV = csv_file([csv_row(0, 9001), csv_row(1, 9002)])


def databases_zip(folder: Path, members: dict[str, bytes | Callable[[object], None]]) -> Path:
    """databasesLoadData.zip holding `members`; a callable value streams its member."""
    path = folder / DATABASES_ZIP
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in members.items():
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            if callable(content):
                with zf.open(info, "w", force_zip64=True) as stream:
                    content(stream)
            else:
                zf.writestr(info, content)
    return path


def csv_source(folder: Path, train: bytes | Callable[[object], None]) -> Path:
    return databases_zip(folder, {CSV_TRAIN: train, CSV_TEST: GOOD_TEST_CSV})


def image_url(name: str) -> str:
    return f"{BUCKET}img_mnist/{name}"


def url_line(name: str, label: str) -> bytes:
    return json.dumps({"content": image_url(name), "label": label}).encode() + b"\n"


def json_source(folder: Path, data: bytes | Callable[[object], None],
                files: dict[str, bytes] | None = None) -> None:
    databases_zip(folder, {JSON_MEMBER: data})
    (folder / "img_mnist").mkdir(parents=True, exist_ok=True)
    for name, content in (files or {}).items():
        (folder / "img_mnist" / name).write_bytes(content)


def good_json_images(count: int = 3) -> tuple[bytes, dict[str, bytes]]:
    """`count` valid lines and the images they name (letters A, B, C, ...)."""
    lines, files = b"", {}
    for i in range(count):
        name = f"{i + 1}_{SIGN_LETTERS[i]}.jpg"
        files[name] = jpeg(5000 + i)
        lines += url_line(name, SIGN_LETTERS[i].lower())
    return lines, files


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def base64_source(folder: Path, text: bytes) -> None:
    databases_zip(folder, {BASE64_MEMBER: text})


GOOD_B64_ENTRY = '"b": "%s"' % b64(jpeg(7000))


def catalog_entry(name: str = "team_letters", location: str = "letters.zip",
                  extra: str = "") -> str:
    """A valid zip_folders entry, plus `extra` lines."""
    return (f'[[dataset]]\nname = "{name}"\nversion = "1.0.0"\n'
            'description = "Letters."\nformat = "zip_folders"\nclasses = ["A", "B"]\n'
            'image = { mode = "L", size = [28, 28] }\n'
            f'sources = [{{ location = "{location}" }}]\n{extra}')


def catalog_source(folder: Path, text: str) -> None:
    folder_zip(folder / "letters.zip", [("Train/A/a.png", png(900)), ("Train/B/b.png", png(901)),
                                        ("Test/A/a.png", png(902)), ("Test/B/b.png", png(903))])
    (folder / CATALOG_FILE).write_text(text)
