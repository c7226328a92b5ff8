"""The layout of a zip of image folders (formats/zip_layout.py): the accepted
layouts, validation split folders in every spelling, class folders named
like splits or spelt in another letter case or Unicode normalisation, and a
clear error for every layout that does not fit.

Real zips, saved in a folder SIGN_DATASETS_SOURCE points at, built by real
TFDS builds (on Beam too) or scanned directly.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

import sign_datasets  # noqa: F401  (registers the builders)
from sign_datasets.formats.zip_layout import LayoutError, scan_archive
from sign_datasets.generate.folder_builder import FolderConfig, ImageFolderBuilder

from image_helpers import encode, noise, picture, png
from zip_helpers import SIGN_ZIP, as_set, balanced, build, examples, write_stored_zip, write_zip

TOM_ZIP = "TomAndJerry.zip"


# --- layouts --------------------------------------------------------------------

LAYOUTS = {
    # name: (train Tom, train Jerry, test Tom, test Jerry folders), wrapper, split folders
    "wrapper folder": (("TomAndJerry/Train/Tom", "TomAndJerry/Train/Jerry", "TomAndJerry/Test/Tom",
                        "TomAndJerry/Test/Jerry"), "TomAndJerry", "Train", "Test"),
    "lower-case split and class folders": (("train/tom", "train/jerry", "test/tom", "test/jerry"),
                                           None, "train", "test"),
    "training/testing in a wrapper": (("data/TRAINING/TOM", "data/TRAINING/jerry", "data/testing/Tom",
                                       "data/testing/JERRY"), "data", "TRAINING", "testing"),
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_accepted_layouts(layout, tmp_path, monkeypatch):
    folders, wrapper, train_folder, test_folder = LAYOUTS[layout]
    rng = np.random.default_rng(1)
    members = []
    for folder, count in zip(folders, (3, 2, 1, 2)):
        members += [(f"{folder}/{i}.jpg", encode(noise(rng, 12, 16, 3), "JPEG")) for i in range(count)]
    write_zip(tmp_path / "source" / "TomAndJerry.zip", members)
    builder = build("tom_and_jerry", tmp_path / "source", tmp_path / "tfds", monkeypatch)
    names = builder.info.features["label"].names
    assert Counter(names[label] for label, _ in examples(builder, "train")) == {"Tom": 3, "Jerry": 2}
    assert Counter(names[label] for label, _ in examples(builder, "test")) == {"Tom": 1, "Jerry": 2}
    assert builder.info.metadata["layout"] == {
        "wrapper": wrapper, "split_folders": {"train": train_folder, "test": test_folder}}


def sign_zip(source: Path, names: list[str]) -> Path:
    rng = np.random.default_rng(2)
    return write_zip(source / SIGN_ZIP, [(name, encode(noise(rng), "JPEG")) for name in names])


def test_unknown_class_folder_stops_with_the_folders_found(tmp_path, monkeypatch):
    sign_zip(tmp_path / "source", ["Train/A/1.jpg", "Train/J/1.jpg", "Train/Hello/1.jpg",
                                   "Test/A/1.jpg"])
    with pytest.raises(LayoutError) as caught:
        build("sign_language_img", tmp_path / "source", tmp_path / "tfds", monkeypatch)
    message = str(caught.value)
    assert message.startswith(SIGN_ZIP + ": in Train/")
    assert "['Hello', 'J'] are not classes" in message
    assert "found ['A', 'Hello', 'J']" in message
    assert "expected ['A', 'B', 'C'" in message and "'Y']" in message


@pytest.mark.parametrize("names, expected", [
    (["Train/A/1.jpg"], "no folder for the test split; found split folders ['Train/']"),
    (["images/A/1.jpg", "more/B/1.jpg"], "no split folders found; the zip's top level holds "
                                         "['images/', 'more/']"),
    (["Train/A/1.jpg", "Test/A/1.jpg", "TRAIN/B/1.jpg"], "both Train/ and TRAIN/ hold the train split"),
    (["one/Train/A/1.jpg", "two/Test/A/1.jpg"], "several wrapper folders hold split folders: "
                                                "['one', 'two']"),
])
def test_other_layout_mismatches_are_clear_errors(names, expected, tmp_path, monkeypatch):
    sign_zip(tmp_path / "source", names)
    with pytest.raises(LayoutError, match=SIGN_ZIP) as caught:
        build("sign_language_img", tmp_path / "source", tmp_path / "tfds", monkeypatch)
    assert expected in str(caught.value)


# --- validation split folders ------------------------------------------------------------

def tom_members(validation_folder: str | None, rng_seed: int = 0) -> tuple[list, dict]:
    """Train 3 Tom + 2 Jerry, test 1 + 1, validation (if any) 2 Tom + 1 Jerry:
    every image distinct, PNG, RGB."""
    counts = {"Train": (3, 2), "Test": (1, 1)}
    if validation_folder is not None:
        counts[validation_folder] = (2, 1)
    members, pixels, seed = [], {}, rng_seed
    for folder, (toms, jerries) in counts.items():
        for cls, count in (("Tom", toms), ("Jerry", jerries)):
            for i in range(count):
                seed += 1
                name = f"{folder}/{cls}/{i}.png"
                pixels[name] = picture(seed)
                members.append((name, png(pixels[name])))
    return members, pixels


@pytest.mark.parametrize("folder", ["Validation", "val", "VALID", "Dev", "validation"])
def test_scan_finds_every_validation_spelling(folder, tmp_path):
    members, _ = tom_members(folder)
    archive = scan_archive(write_stored_zip(tmp_path / TOM_ZIP, members), ["Jerry", "Tom"])
    assert archive.splits == ("train", "validation", "test")
    assert archive.split_folders == {"train": "Train", "test": "Test", "validation": folder}
    assert len(archive.records["validation"]) == 3
    assert archive.junk == {}


@pytest.fixture(scope="module")
def with_validation(tmp_path_factory):
    root = tmp_path_factory.mktemp("validation")
    members, pixels = tom_members("Validation")
    # Junk in the validation folder is counted under that split.
    members.append(("Validation/Tom/notes.txt", b"frames from episode 3\n"))
    write_stored_zip(root / "source" / TOM_ZIP, members)
    with pytest.MonkeyPatch.context() as patch:
        builder = build("tom_and_jerry", root / "source", root / "data", patch)
    return builder, pixels, root


def test_a_validation_folder_becomes_the_validation_split(with_validation):
    builder, pixels, _ = with_validation
    assert set(builder.info.splits) == {"train", "validation", "test"}
    names = builder.info.features["label"].names
    for split, folder in (("train", "Train"), ("validation", "Validation"), ("test", "Test")):
        expected = Counter((names.index(name.split("/")[1]), p.shape, p.tobytes())
                           for name, p in pixels.items() if name.startswith(folder + "/"))
        assert as_set(examples(builder, split)) == expected, split
        report = builder.info.metadata["cleaning"][split]
        assert report["records"] == report["kept"] == sum(expected.values())
    assert builder.info.metadata["layout"] == {
        "wrapper": None,
        "split_folders": {"train": "Train", "test": "Test", "validation": "Validation"}}
    assert builder.info.metadata["junk"] == {"validation": {"text_file": 1}}
    balanced(builder)


def test_two_folders_for_the_validation_split_are_a_clear_error(tmp_path, monkeypatch):
    members, _ = tom_members("Validation")
    members.append(("val/Tom/x.png", png(picture(99))))
    write_stored_zip(tmp_path / "source" / TOM_ZIP, members)
    with pytest.raises(LayoutError, match="both Validation/ and val/ hold the validation split; "
                                          "keep one"):
        build("tom_and_jerry", tmp_path / "source", tmp_path / "data", monkeypatch)


def test_validation_under_beam_gives_the_same_bytes(with_validation):
    pytest.importorskip("apache_beam")
    from test_beam import OPTIONS, metadata, shard_records

    from sign_datasets.generate import beam as beam_lib

    local, _, root = with_validation
    config = tfds.download.DownloadConfig(
        beam_options=beam_lib.pipeline_options(OPTIONS.format(mode="multi_threading")))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SIGN_DATASETS_SOURCE", str(root / "source"))
        on_beam = tfds.builder("tom_and_jerry", data_dir=str(root / "beam_data"))
        on_beam.download_and_prepare(download_dir=str(root / "beam_downloads"),
                                     download_config=config)
    assert set(on_beam.info.splits) == {"train", "validation", "test"}
    for split in ("train", "validation", "test"):
        assert shard_records(on_beam, split) == shard_records(local, split), split
    assert metadata(on_beam) == metadata(local)


# --- class folder names -------------------------------------------------------------------

class _Folders(ImageFolderBuilder, skip_registration=True):
    """A folder dataset with the classes a test needs (never registered)."""

    VERSION = tfds.core.Version("1.0.0")
    BUILDER_CONFIGS = [FolderConfig(name="default")]
    MODE = "L"


class SplitNamedClasses(_Folders, skip_registration=True):
    ARCHIVE = "split-named.zip"
    CLASS_NAMES = ("test", "train", "validation")


class Drinks(_Folders, skip_registration=True):
    ARCHIVE = "drinks.zip"
    CLASS_NAMES = ("Café", "Tea")


def build_own(builder_class, source: Path, data_dir: Path, monkeypatch):
    monkeypatch.setenv("SIGN_DATASETS_SOURCE", str(source))
    builder = builder_class(data_dir=str(data_dir))
    builder.download_and_prepare()
    return builder


def grey_members(names: list[str], seed: int = 0) -> tuple[list, dict]:
    pixels = {name: picture(seed + i, 8, 8, 1) for i, name in enumerate(names)}
    return [(name, png(p)) for name, p in pixels.items()], pixels


def test_classes_named_like_splits_stay_classes(tmp_path, monkeypatch):
    names = ["Train/test/1.png", "Train/test/2.png", "Train/train/1.png",
             "Train/validation/1.png", "Test/train/1.png", "Test/test/1.png",
             "Val/validation/1.png", "Val/test/1.png"]
    members, pixels = grey_members(names)
    write_stored_zip(tmp_path / "source" / "split-named.zip", members)
    builder = build_own(SplitNamedClasses, tmp_path / "source", tmp_path / "data", monkeypatch)
    assert builder.info.metadata["layout"] == {
        "wrapper": None, "split_folders": {"train": "Train", "test": "Test", "validation": "Val"}}
    classes = list(SplitNamedClasses.CLASS_NAMES)
    for split, folder in (("train", "Train"), ("test", "Test"), ("validation", "Val")):
        expected = Counter((classes.index(name.split("/")[1]), (8, 8, 1), p.tobytes())
                           for name, p in pixels.items() if name.startswith(folder + "/"))
        assert as_set(examples(builder, split)) == expected, split
    assert builder.info.metadata["junk"] == {}
    balanced(builder)


def test_classes_named_like_splits_inside_a_wrapper(tmp_path):
    members, _ = grey_members(["data/Train/test/1.png", "data/Test/train/1.png",
                               "data/Train/train/1.png"])
    archive = scan_archive(write_stored_zip(tmp_path / "w.zip", members), ["test", "train"])
    assert archive.wrapper == "data"
    assert [r.path for r in archive.records["train"]] == ["data/Train/test/1.png",
                                                         "data/Train/train/1.png"]
    assert [r.label for r in archive.records["train"]] == [0, 1]


def test_class_folders_match_after_unicode_normalisation(tmp_path, monkeypatch):
    decomposed = "Cafe\u0301"
    members, pixels = grey_members([f"Train/{decomposed}/1.png", "Train/tea/1.png",
                                    "Test/CAFE\u0301/1.png", "Test/Tea/1.png"])
    write_stored_zip(tmp_path / "source" / "drinks.zip", members)
    builder = build_own(Drinks, tmp_path / "source", tmp_path / "data", monkeypatch)
    assert sorted(label for label, _ in examples(builder, "train")) == [0, 1]
    assert sorted(label for label, _ in examples(builder, "test")) == [0, 1]
    balanced(builder)


@pytest.mark.parametrize("first, second, shown", [
    ("Café", "Cafe\u0301", r"'Cafe\u0301', 'Caf\xe9'"),
    ("Tea", "TEA", "'TEA', 'Tea'"),
])
def test_folders_differing_only_by_case_or_normalisation_never_merge(first, second, shown,
                                                                     tmp_path, monkeypatch):
    members, _ = grey_members([f"Train/{first}/1.png", f"Train/{second}/2.png",
                               "Test/Tea/1.png"])
    write_stored_zip(tmp_path / "source" / "drinks.zip", members)
    with pytest.raises(LayoutError) as caught:
        build_own(Drinks, tmp_path / "source", tmp_path / "data", monkeypatch)
    message = str(caught.value)
    assert message.startswith("drinks.zip: in Train/, class folders " + shown)
    assert "differ only in letter case or Unicode normalisation" in message
    assert "\n" not in message
