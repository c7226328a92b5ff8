"""Bad-input cases of the trust boundary (docs/SECURITY.md): hostile and odd
team catalogs, names and images.

They come last in make_corpus.CASES. A catalog case whose `dataset` is
empty is refused when its catalog is read; one that names a dataset is
registered from its catalog.toml and then built through the real TFDS
builder, so what it expects are the built splits' counts or the build's
error.
"""

from __future__ import annotations

import json
import os
import unicodedata
import warnings
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from badinputs.images import encode, jpeg, noise, png
from badinputs.sources import (
    CATALOG_FILE, CATALOG_SOURCE, b64, base64_source, catalog_entry, catalog_source, csv_file,
    csv_row, csv_source)
from badinputs.table import CaseList, Expect, fails
from badinputs.zips import folder_zip, write_zip

CASES = CaseList()
case = CASES.case

NFD_CAFE = unicodedata.normalize("NFD", "café")
NFC_CAFE = unicodedata.normalize("NFC", "café")


def splits(**kept_and_drops: tuple[int, dict]) -> Expect:
    """Counts for any set of splits: splits(train=(2, {}), validation=(1, {}))."""
    return Expect(kept={s: kept for s, (kept, _) in kept_and_drops.items()},
                  drops={s: dict(drops) for s, (_, drops) in kept_and_drops.items()})


def refused(field: str, problem: str, entry: str = "'team_letters'") -> Expect:
    """Refused when read: the message names file, entry and field, then the problem."""
    return fails("CatalogError", rf"{CATALOG_SOURCE}: entry {entry}: field {field}: .*{problem}")


def write_catalog(folder: Path, text: str) -> None:
    (folder / CATALOG_FILE).write_text(text, encoding="utf-8")


def letters_zip(path: Path, members: list[tuple[str, bytes]]) -> None:
    write_zip(path, members)


def entry(name: str, fmt: str, classes: list[str], sources: str, image: str = "",
          extra: str = "") -> str:
    image = image or '{ mode = "L", size = [28, 28] }'
    return (f'[[dataset]]\nname = "{name}"\nversion = "1.0.0"\ndescription = "A case."\n'
            f'format = "{fmt}"\nclasses = {json.dumps(classes, ensure_ascii=False)}\n'
            f'image = {image}\nsources = [{sources}]\n{extra}')


CSV_HEADER = "label," + ",".join(f"pixel{i}" for i in range(1, 785))


def csv_text(rows: list[tuple[int, int]]) -> str:
    lines = [CSV_HEADER]
    for label, seed in rows:
        lines.append(",".join([str(label)] + [str(v) for v in noise(seed).ravel()]))
    return "\n".join(lines) + "\n"


def exif_rotated(pixels: np.ndarray, orientation: int, fmt: str = "PNG") -> bytes:
    """`pixels` stored transposed, with the EXIF orientation tag that undoes
    it (PNG keeps it in an eXIf chunk, lossless, so the pixels match exactly)."""
    image = Image.fromarray(pixels)
    stored = {6: image.transpose(Image.Transpose.ROTATE_90),
              8: image.transpose(Image.Transpose.ROTATE_270),
              3: image.transpose(Image.Transpose.ROTATE_180)}[orientation]
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(stored, fmt, exif=exif.tobytes())


# ======================================================================================
# Names that become paths, or that must never merge: refused when the catalog is read
# ======================================================================================

@case("catalog_config_name_climbs", "catalog",
      "a config named ../../outside (it would become a folder of the data dir)",
      refused(r"'configs\[0\]\.name'", "'../../outside' is not a config name"))
def _(folder):
    catalog_source(folder, catalog_entry(extra='configs = [{ name = "../../outside" }]\n'))


@case("catalog_config_name_absolute", "catalog", "a config named /tmp/x",
      refused(r"'configs\[0\]\.name'", "'/tmp/x' is not a config name"))
def _(folder):
    catalog_source(folder, catalog_entry(extra='configs = [{ name = "/tmp/x" }]\n'))


@case("catalog_name_too_long", "catalog",
      "a dataset name of 300 letters (longer than a file name may be)",
      fails("CatalogError", rf"{CATALOG_SOURCE}: entry 'a+…: field 'name': .*is not a dataset name"))
def _(folder):
    catalog_source(folder, catalog_entry(name="a" * 300))


@case("catalog_split_climbs", "catalog", "a CSV source whose split is ../x",
      refused(r"'sources\[0\]\.split'", "'\\.\\./x' is not a split name"))
def _(folder):
    (folder / "train.csv").write_text(csv_text([(0, 1)]))
    write_catalog(folder, entry("team_letters", "csv_pixels", ["A", "B"],
                                '{ location = "train.csv", split = "../x" }'))


@case("catalog_version_climbs", "catalog", "a version of ../1.0.0",
      refused(r"'version'", "is not MAJOR.MINOR.PATCH"))
def _(folder):
    catalog_source(folder, catalog_entry().replace('version = "1.0.0"', 'version = "../1.0.0"'))


@case("catalog_classes_differ_in_case", "catalog", "classes cat and Cat",
      refused(r"'classes'", "'cat' and .*'Cat' differ only in letter case"))
def _(folder):
    catalog_source(folder, catalog_entry().replace('["A", "B"]', '["cat", "Cat"]'))


@case("catalog_classes_differ_in_normalisation", "catalog",
      "classes café (composed) and café (decomposed, as macOS writes it)",
      refused(r"'classes'", "(?i:normali[sz]ation)"))
def _(folder):
    catalog_source(folder, catalog_entry().replace(
        '["A", "B"]', json.dumps([NFC_CAFE, NFD_CAFE], ensure_ascii=False)))


@case("catalog_class_with_newline", "catalog", "a class name holding a newline",
      refused(r"'classes\[1\]'", "(?i:control|line)"))
def _(folder):
    catalog_source(folder, catalog_entry().replace('["A", "B"]', '["A", "B\\nC"]'))


@case("catalog_class_with_slash", "catalog", "a class name holding a slash (a/b)",
      refused(r"'classes\[1\]'", "/"))
def _(folder):
    catalog_source(folder, catalog_entry().replace('["A", "B"]', '["A", "a/b"]'))


@case("catalog_class_dot_dot", "catalog", "a class named ..",
      refused(r"'classes\[1\]'", r"\.\."))
def _(folder):
    catalog_source(folder, catalog_entry().replace('["A", "B"]', '["A", ".."]'))


@case("catalog_class_too_long", "catalog", "a class name of 10,000 characters",
      refused(r"'classes\[1\]'", "(?i:long|characters)"))
def _(folder):
    catalog_source(folder, catalog_entry().replace('["A", "B"]', f'["A", "{"b" * 10_000}"]'))


@case("catalog_too_many_classes", "catalog", "200,000 classes",
      refused(r"'classes'", "200,000 classes, more than the 10,000"))
def _(folder):
    names = json.dumps([f"c{i}" for i in range(200_000)])
    catalog_source(folder, catalog_entry().replace('["A", "B"]', names))


@case("catalog_image_size_huge", "catalog", "image.size of 100,000 x 100,000",
      refused(r"'image\.size'", "(?i:at most|too large|cap|exceeds)"))
def _(folder):
    catalog_source(folder, catalog_entry().replace("size = [28, 28]", "size = [100000, 100000]"))


@case("catalog_csv_too_many_columns", "catalog",
      "a csv_pixels entry of 2,000 x 2,000 RGB: 12 million columns a row",
      refused(r"'image\.size'", "12,000,000 values per image, more than 1,000,000"))
def _(folder):
    (folder / "train.csv").write_text(csv_text([(0, 1)]))
    write_catalog(folder, entry("team_letters", "csv_pixels", ["A", "B"],
                                '{ location = "train.csv" }',
                                image='{ mode = "RGB", size = [2000, 2000] }'))


@case("catalog_homepage_javascript", "catalog", "a homepage of javascript:alert(1)",
      refused(r"'homepage'", "(?i:http)"))
def _(folder):
    catalog_source(folder, catalog_entry(extra='homepage = " JavaScript:alert(1)"\n'))


@case("catalog_description_of_a_megabyte", "catalog", "a description of 1 MB",
      refused(r"'description'", "(?i:at most|too long|characters|bytes)"))
def _(folder):
    catalog_source(folder, catalog_entry().replace('"Letters."', '"' + "x" * (1 << 20) + '"'))


# ======================================================================================
# Paths in any spelling: nothing read outside the allowed roots
# ======================================================================================

@case("catalog_file_url_percent_encoded_climb", "catalog",
      "a file:// location climbing out with %2e%2e (percent-encoded ..)",
      refused(r"'sources\[0\]\.location'", "outside the allowed roots"))
def _(folder):
    catalog_source(folder, catalog_entry(
        location=f"file://{folder.resolve()}/" + "%2e%2e/" * 40 + "etc/passwd"))


@case("catalog_path_percent_literal", "catalog",
      "a plain path with %2e%2e in it: a folder name, not an encoding (so it does not exist)",
      fails("FileNotFoundError", r"field 'sources\[0\]\.location': .*%2e%2e.* does not exist"),
      dataset="bi_percent_literal")
def _(folder):
    write_catalog(folder, catalog_entry(name="bi_percent_literal",
                                        location="%2e%2e/%2e%2e/etc/passwd"))


@case("catalog_object_percent_encoded_climb", "catalog",
      "an object name %2e%2e/%2e%2e/etc/passwd under SIGN_DATASETS_SOURCE",
      refused(r"'sources\[0\]\.object'", "is not an object name"))
def _(folder):
    catalog_source(folder, catalog_entry().replace('location = "letters.zip"',
                                                   'object = "%2e%2e/%2e%2e/etc/passwd"'))


@case("catalog_object_backslash_climb", "catalog", r"an object name ..\..\etc\passwd",
      refused(r"'sources\[0\]\.object'", "is not an object name"))
def _(folder):
    catalog_source(folder, catalog_entry().replace('location = "letters.zip"',
                                                   'object = "..\\\\..\\\\etc\\\\passwd"'))


@case("catalog_path_unknown_user_home", "catalog", "a location of ~nosuchuser/letters.zip",
      refused(r"'sources\[0\]\.location'", "(?i:nosuchuser)"))
def _(folder):
    catalog_source(folder, catalog_entry(location="~nosuchuser/letters.zip"))


@case("catalog_path_home_outside_roots", "catalog", "a location of ~/letters.zip (the builder's home)",
      refused(r"'sources\[0\]\.location'", "outside the allowed roots"))
def _(folder):
    catalog_source(folder, catalog_entry(location="~/letters.zip"))


@case("catalog_symlink_out_of_root", "catalog",
      "a location inside the catalog's folder that is a symlink to /etc/passwd",
      refused(r"'sources\[0\]\.location'", "outside the allowed roots"))
def _(folder):
    catalog_source(folder, catalog_entry(location="innocent.zip"))
    os.symlink("/etc/passwd", folder / "innocent.zip")


@case("catalog_symlinked_folder_out_of_root", "catalog",
      "a location through a symlinked folder (data -> /etc) of the catalog's folder",
      refused(r"'sources\[0\]\.location'", "outside the allowed roots"))
def _(folder):
    catalog_source(folder, catalog_entry(location="data/passwd"))
    os.symlink("/etc", folder / "data")


@case("catalog_file_url_other_host", "catalog", "a file:// URL naming another machine",
      refused(r"'sources\[0\]\.location'", "(?i:neither a URL|another machine|host)"))
def _(folder):
    catalog_source(folder, catalog_entry(location="file://fileserver/share/letters.zip"))


@case("catalog_nul_in_path", "catalog", "a location holding a NUL byte",
      refused(r"'sources\[0\]\.location'", "neither a URL"))
def _(folder):
    catalog_source(folder, catalog_entry(location="letters.zip\\u0000.png"))


@case("catalog_directory_instead_of_file", "catalog", "the catalog path is a folder",
      fails("CatalogError", rf"{CATALOG_SOURCE}: .*(?i:folder|directory)"))
def _(folder):
    (folder / CATALOG_FILE).mkdir()


@case("catalog_not_utf8", "catalog", "a catalog saved as Latin-1 (é as one byte)",
      fails("CatalogError", rf"{CATALOG_SOURCE}: .*(?i:utf-8)"))
def _(folder):
    (folder / CATALOG_FILE).write_bytes(catalog_entry().replace("Letters.", "Lettres é.")
                                        .encode("latin-1"))


@case("catalog_nested_arrays", "catalog", "a value of arrays nested 100,000 deep",
      fails("CatalogError", rf"{CATALOG_SOURCE}: "))
def _(folder):
    (folder / CATALOG_FILE).write_text(catalog_entry(extra="x = " + "[" * 100_000
                                                     + "]" * 100_000 + "\n"))


# ======================================================================================
# Network locations a catalog names: refused by the URL policy
# ======================================================================================

@case("catalog_url_with_credentials", "catalog",
      "a source URL carrying a user and password (user:secret@host)",
      fails("Exception", "(?i:credentials)"), dataset="bi_credentials")
def _(folder):
    write_catalog(folder, catalog_entry(name="bi_credentials",
                                        location="https://user:secret@files.example.org/l.zip"))


@case("catalog_url_cloud_metadata", "catalog",
      "a source URL at the cloud metadata address 169.254.169.254",
      fails("Exception", "(?i:metadata)"), dataset="bi_metadata")
def _(folder):
    write_catalog(folder, catalog_entry(name="bi_metadata",
                                        location="http://169.254.169.254/latest/meta-data/l.zip"))


@case("catalog_url_loopback_decimal", "catalog",
      "a source URL at 2130706433 (127.0.0.1 spelled as one number)",
      fails("Exception", "(?i:loopback)"), dataset="bi_decimal_loopback")
def _(folder):
    write_catalog(folder, catalog_entry(name="bi_decimal_loopback",
                                        location="http://2130706433:9/letters.zip"))


@case("catalog_gs_bucket_not_allowed", "catalog",
      "a gs:// source in a bucket the builder did not list (its credentials would read it)",
      fails("Exception", "(?i:SIGN_DATASETS_ALLOWED_HOSTS)"), dataset="bi_gs")
def _(folder):
    write_catalog(folder, catalog_entry(name="bi_gs", location="gs://someone-elses-bucket/l.zip"))


# ======================================================================================
# Odd but honest: built, every image kept or counted
# ======================================================================================

@case("catalog_class_named_like_splits", "catalog",
      "classes named train and test (Train/test/ is class test of split train)",
      splits(train=(2, {}), test=(2, {})), dataset="bi_split_names")
def _(folder):
    letters_zip(folder / "letters.zip", [
        ("Train/train/a.png", png(1)), ("Train/test/b.png", png(2)),
        ("Test/train/c.png", png(3)), ("Test/test/d.png", png(4))])
    write_catalog(folder, catalog_entry(name="bi_split_names")
                  .replace('["A", "B"]', '["train", "test"]'))


@case("catalog_zip_validation_folder", "catalog", "a zip with Train/, Test/ and Validation/",
      splits(train=(2, {}), test=(2, {}), validation=(2, {})), dataset="bi_validation")
def _(folder):
    folder_zip(folder / "letters.zip", [("Validation/A/v.png", png(11)),
                                        ("Validation/B/w.png", png(12))])
    write_catalog(folder, catalog_entry(name="bi_validation"))


@case("catalog_zip_val_folder", "catalog", "a zip with train/, test/ and val/ (lower case)",
      splits(train=(2, {}), test=(2, {}), validation=(1, {})), dataset="bi_val")
def _(folder):
    letters_zip(folder / "letters.zip", [
        ("train/A/a.png", png(21)), ("train/B/b.png", png(22)),
        ("test/A/c.png", png(23)), ("test/B/d.png", png(24)), ("val/A/e.png", png(25))])
    write_catalog(folder, catalog_entry(name="bi_val"))


@case("catalog_zip_decomposed_class_folder", "catalog",
      "class folders written decomposed (macOS) for a composed class name",
      splits(train=(2, {}), test=(2, {})), dataset="bi_cafe")
def _(folder):
    letters_zip(folder / "letters.zip", [
        (f"Train/{NFD_CAFE}/a.png", png(31)), ("Train/B/b.png", png(32)),
        (f"Test/{NFD_CAFE}/c.png", png(33)), ("Test/B/d.png", png(34))])
    write_catalog(folder, catalog_entry(name="bi_cafe").replace(
        '["A", "B"]', json.dumps([NFC_CAFE, "B"], ensure_ascii=False)))


@case("catalog_zip_folders_merge_by_normalisation", "catalog",
      "two class folders, café composed and decomposed, that would merge into one class",
      fails("Exception", "(?i:caf)"), dataset="bi_two_cafes")
def _(folder):
    letters_zip(folder / "letters.zip", [
        (f"Train/{NFC_CAFE}/a.png", png(41)), (f"Train/{NFD_CAFE}/b.png", png(42)),
        ("Train/B/b.png", png(43)), (f"Test/{NFC_CAFE}/c.png", png(44)),
        ("Test/B/d.png", png(45))])
    write_catalog(folder, catalog_entry(name="bi_two_cafes").replace(
        '["A", "B"]', json.dumps([NFC_CAFE, "B"], ensure_ascii=False)))


@case("catalog_two_sources_same_file_name", "catalog",
      "one split read from 2023/data.csv and 2024/data.csv (same file name, same line numbers)",
      splits(train=(4, {})), dataset="bi_years")
def _(folder):
    for year, seed in (("2023", 50), ("2024", 60)):
        (folder / year).mkdir()
        (folder / year / "data.csv").write_text(csv_text([(0, seed), (1, seed + 1)]))
    write_catalog(folder, entry("bi_years", "csv_pixels", ["A", "B"],
                                '{ location = "2023/data.csv" }, { location = "2024/data.csv" }'))


@case("catalog_json_label_other_case", "catalog",
      "data.json labels b for class B: names are compared exactly as written",
      splits(train=(1, {"unknown_label": 1})), dataset="bi_label_case")
def _(folder):
    (folder / "img").mkdir()
    (folder / "img" / "a.png").write_bytes(png(61))
    (folder / "img" / "b.png").write_bytes(png(62))
    base = folder.resolve().as_uri()
    lines = [{"content": f"{base}/img/a.png", "label": "A"},
             {"content": f"{base}/img/b.png", "label": "b"}]
    (folder / "data.json").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    write_catalog(folder, entry("bi_label_case", "json_urls", ["A", "B"],
                                '{ location = "data.json" }',
                                extra="cleaning = { max_failed_share = 1.0 }\n"))


@case("catalog_json_label_decomposed", "catalog",
      "a data.json label written decomposed for a composed class name",
      splits(train=(2, {})), dataset="bi_label_nfd")
def _(folder):
    (folder / "img").mkdir()
    (folder / "img" / "a.png").write_bytes(png(71))
    (folder / "img" / "b.png").write_bytes(png(72))
    base = folder.resolve().as_uri()
    lines = [{"content": f"{base}/img/a.png", "label": NFD_CAFE},
             {"content": f"{base}/img/b.png", "label": "B"}]
    (folder / "data.json").write_text("\n".join(json.dumps(x, ensure_ascii=False)
                                                for x in lines) + "\n", encoding="utf-8")
    write_catalog(folder, entry("bi_label_nfd", "json_urls", [NFC_CAFE, "B"],
                                '{ location = "data.json" }'))


@case("catalog_base64_several_images_in_one_object", "catalog",
      "one JSON object holding three base64 images under three labels",
      splits(train=(3, {})), dataset="bi_b64_many")
def _(folder):
    blob = {"A": b64(jpeg(81)), "B": b64(jpeg(82)), "C": b64(jpeg(83))}
    (folder / "data.json").write_text(json.dumps(blob, indent=2))
    write_catalog(folder, entry("bi_b64_many", "base64_json", ["A", "B", "C"],
                                '{ location = "data.json" }'))


@case("catalog_base64_keys_named_like_fields", "catalog",
      "base64 images under keys named image and label (classes image and label)",
      splits(train=(2, {})), dataset="bi_b64_fields")
def _(folder):
    blob = {"image": b64(jpeg(91)), "label": b64(jpeg(92))}
    (folder / "data.json").write_text(json.dumps(blob, indent=2))
    write_catalog(folder, entry("bi_b64_fields", "base64_json", ["image", "label"],
                                '{ location = "data.json" }'))


@case("zip_exif_rotated_twin", "zip",
      "a train image and its twin stored rotated with an EXIF orientation tag (a duplicate)",
      splits(train=(3, {"duplicate_image": 2}), test=(2, {})))
def _(folder):
    pixels = noise(4242)
    folder_zip(folder / "sign-language-img.zip",
               [("Train/A/upright.png", encode(pixels, "PNG")),
                ("Train/A/rotated_90.png", exif_rotated(pixels, 6)),
                ("Train/A/rotated_180.png", exif_rotated(pixels, 3))])


@case("catalog_csv_header_ten_million_columns", "catalog",
      "a CSV whose header line holds 10 million columns (20 MB)",
      fails("SourceError", r"(?i:line 1)"), dataset="bi_wide_csv")
def _(folder):
    with open(folder / "train.csv", "wb") as out:
        out.write(b"label" + b",p" * 10_000_000 + b"\n")
    write_catalog(folder, entry("bi_wide_csv", "csv_pixels", ["A", "B"],
                                '{ location = "train.csv" }'))


@case("base64_key_named_label", "base64",
      "the course's base64 file with an image under the key 'label' (not a letter)",
      splits(train=(1, {"unknown_label": 1})))
def _(folder):
    base64_source(folder, json.dumps({"b": b64(jpeg(101)), "label": b64(jpeg(102))},
                                     indent=2).encode())



@case("csv_five_thousand_digit_cells", "csv",
      "a pixel and a label of 5,000 digits (past Python's int() limit of 4,300)",
      splits(train=(1, {"pixel_out_of_range": 1, "unknown_label": 1}), test=(2, {})))
def _(folder):
    huge = b"9" * 5000
    pixel = csv_row(1, 151).rsplit(b",", 1)[0] + b"," + huge
    label = huge + b"," + csv_row(2, 152).split(b",", 1)[1]
    csv_source(folder, csv_file([csv_row(0, 150), pixel, label]))


@case("csv_member_twice_in_the_zip", "csv",
      "databasesLoadData.zip holds the train CSV twice (a zip appended to): zipfile reads the last",
      fails("SourceError", r"<source>/databasesLoadData\.zip: 2 members are named "
                           r"'sign_mnist_train/sign_mnist_train\.csv'"))
def _(folder):
    csv_source(folder, csv_file([csv_row(0, 160)]))
    with zipfile.ZipFile(folder / "databasesLoadData.zip", "a") as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        zf.writestr("sign_mnist_train/sign_mnist_train.csv", csv_file([csv_row(1, 161)]))
