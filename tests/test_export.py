"""`sign-datasets export`: Parquet, a dataset card and croissant.json, read
back by three tools nobody here wrote: mlcroissant, Hugging Face `datasets`
and TFDS's CroissantBuilder. Each must give the built dataset's splits,
counts, labels and pixels.

Two datasets built from the replica: sign_mnist_csv (raw pixels, grayscale)
and malaria_cells (a zip of image folders: encoded RGB images of their own
sizes).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

import sign_datasets  # noqa: F401
from sign_datasets.cli import main

from conftest import quiet_env

MLCROISSANT = str(Path(sys.executable).parent / "mlcroissant")
DATASETS = {"sign_mnist_csv/original": "original", "malaria_cells/native": "native"}


@pytest.fixture(scope="module")
def exported(replica_dir, tmp_path_factory):
    """Each dataset built by `export` itself (not built yet) into one data dir."""
    root = tmp_path_factory.mktemp("export")
    data_dir = root / "tfds"
    outs = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SIGN_DATASETS_SOURCE", str(replica_dir))
        for name in DATASETS:
            out = root / name.replace("/", "-")
            assert main(["export", name, "--to", "parquet", "--out", str(out),
                         "--data-dir", str(data_dir)]) == 0
            outs[name] = out
    return {"data_dir": data_dir, "outs": outs, "root": root}


def _digest(pixels: np.ndarray) -> str:
    pixels = np.asarray(pixels, dtype=np.uint8)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    return hashlib.sha256(repr(pixels.shape).encode() + pixels.tobytes()).hexdigest()


def built_examples(data_dir: Path, name: str) -> dict[str, Counter]:
    """{split: Counter of (label, pixel digest)} as TFDS reads the build."""
    builder = tfds.builder(name, data_dir=str(data_dir))
    found = {}
    for split in builder.info.splits:
        dataset = builder.as_dataset(split=split, shuffle_files=False)
        found[split] = Counter((int(ex["label"]), _digest(ex["image"]))
                               for ex in tfds.as_numpy(dataset))
    return found


def _gray_or_rgb(pixels: np.ndarray, channels: int) -> np.ndarray:
    """An image a tool read as RGB, back to the build's channels (a grayscale
    image read as RGB must hold three equal channels)."""
    pixels = np.asarray(pixels)
    if channels == 1 and pixels.ndim == 3 and pixels.shape[-1] == 3:
        assert (pixels == pixels[..., :1]).all()
        return pixels[..., :1]
    return pixels


def _channels(data_dir: Path, name: str) -> int:
    return tfds.builder(name, data_dir=str(data_dir)).info.features["image"].shape[-1]


@pytest.mark.parametrize("name", DATASETS)
def test_mlcroissant_validates_and_reads_the_examples(exported, name):
    out = exported["outs"][name]
    check = subprocess.run([MLCROISSANT, "validate", "--jsonld", str(out / "croissant.json")],
                           capture_output=True, text=True, env=quiet_env())
    assert check.returncode == 0, check.stderr[-3000:]
    assert "not standard" not in check.stderr  # the @context is the specification's

    import mlcroissant as mlc

    record_set = DATASETS[name]
    channels = _channels(exported["data_dir"], name)
    found: dict[str, Counter] = {}
    for record in mlc.Dataset(str(out / "croissant.json")).records(record_set):
        split = record[f"{record_set}/split"].decode()
        image = _gray_or_rgb(np.asarray(record[f"{record_set}/image"]), channels)
        found.setdefault(split, Counter())[(record[f"{record_set}/label"], _digest(image))] += 1
    assert found == built_examples(exported["data_dir"], name)


@pytest.mark.parametrize("name", DATASETS)
def test_hugging_face_datasets_loads_the_same_examples(exported, name, tmp_path):
    import datasets

    loaded = datasets.load_dataset(str(exported["outs"][name]), cache_dir=str(tmp_path))
    builder = tfds.builder(name, data_dir=str(exported["data_dir"]))
    assert set(loaded) == set(builder.info.splits)
    for split, dataset in loaded.items():
        assert dataset.num_rows == builder.info.splits[split].num_examples
        label = dataset.features["label"]
        assert isinstance(label, datasets.ClassLabel)
        assert label.names == builder.info.features["label"].names
        assert isinstance(dataset.features["image"], datasets.Image)
    found = {split: Counter((ex["label"], _digest(np.asarray(ex["image"]))) for ex in dataset)
             for split, dataset in loaded.items()}
    assert found == built_examples(exported["data_dir"], name)


@pytest.mark.parametrize("name", DATASETS)
def test_tfds_croissant_builder_builds_the_same_examples(exported, name, tmp_path):
    builder = tfds.dataset_builders.CroissantBuilder(
        jsonld=str(exported["outs"][name] / "croissant.json"), file_format="tfrecord",
        data_dir=str(tmp_path))
    builder.download_and_prepare()
    channels = _channels(exported["data_dir"], name)
    found = {}
    for split in builder.info.splits:
        dataset = builder.as_dataset(split=split, shuffle_files=False)
        found[split] = Counter(
            (int(ex["label"]), _digest(_gray_or_rgb(ex["image"], channels)))
            for ex in tfds.as_numpy(dataset))
    assert found == built_examples(exported["data_dir"], name)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_export_is_deterministic_and_replaces_an_earlier_one(exported):
    name = "sign_mnist_csv/original"
    first = _files(exported["outs"][name])
    again = exported["root"] / "again"
    assert main(["export", name, "--out", str(again), "--data-dir",
                 str(exported["data_dir"]), "--no-build"]) == 0
    assert _files(again) == first
    # An earlier export is replaced whole, and nothing is left beside it.
    assert main(["export", name, "--out", str(again), "--data-dir",
                 str(exported["data_dir"])]) == 0
    assert _files(again) == first
    assert not [p for p in exported["root"].iterdir() if p.name.startswith(".")]


def test_croissant_lists_every_file_with_its_sha256(exported):
    out = exported["outs"]["malaria_cells/native"]
    document = json.loads((out / "croissant.json").read_text())
    assert document["conformsTo"] == "http://mlcommons.org/croissant/1.0"
    objects = [d for d in document["distribution"] if d["@type"] == "cr:FileObject"]
    assert sorted(d["contentUrl"] for d in objects) == sorted(
        str(p.relative_to(out)) for p in (out / "data").glob("*.parquet"))
    for item in objects:
        assert item["sha256"] == hashlib.sha256((out / item["contentUrl"]).read_bytes()).hexdigest()
    fields = {f["name"] for f in document["recordSet"][0]["field"]}
    assert fields == {"image", "label", "split"}
    assert document["creator"]["name"] == "lhncbc.nlm.nih.gov"  # the homepage's host
    assert len(document["datePublished"]) == 10


def test_card_front_matter_and_cleaning_report(exported):
    text = (exported["outs"]["sign_mnist_csv/original"] / "README.md").read_text()
    front, body = text.split("---\n")[1], text.split("---\n", 2)[2]
    assert 'config_name: "original"' in front and 'path: "data/train-*"' in front
    assert '"0": "A"' in front and '"23": "Y"' in front and "num_examples:" in front
    assert "citation: " in front
    assert "# sign_mnist_csv/original" in body and "## Cleaning report" in body
    assert "records" in body and "## Citation" in body


def test_export_refuses_with_one_line(exported, tmp_path, capsys):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    assert main(["export", "sign_mnist_csv/original", "--out", str(busy),
                 "--data-dir", str(exported["data_dir"])]) == 2
    assert main(["export", "sign_mnist_csv/dirty", "--out", str(tmp_path / "new"),
                 "--data-dir", str(exported["data_dir"]), "--no-build"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and all(line.startswith("error: ") for line in errors), errors
    assert "other files" in errors[0] and "not built" in errors[1]
    assert (busy / "notes.txt").read_text() == "mine"
    assert not (tmp_path / "new").exists()


def test_catalog_creator_and_date_published(tmp_path, monkeypatch):
    from sign_datasets.catalog import teams

    rng = np.random.default_rng(0)
    rows = [",".join(str(v) for v in [i % 2, *rng.integers(0, 256, 4)]) for i in range(6)]
    (tmp_path / "shapes.csv").write_text("label,pixel1,pixel2,pixel3,pixel4\n"
                                         + "\n".join(rows) + "\n")
    (tmp_path / "team.toml").write_text(textwrap.dedent("""\
        [[dataset]]
        name = "export_shapes"
        version = "1.0.0"
        description = "Tiny shapes."
        format = "csv_pixels"
        classes = ["round", "square"]
        image = { mode = "L", size = [2, 2] }
        license = "CC-BY-4.0"
        creator = "The shapes team"
        date_published = 2024-05-01
        sources = [{ location = "shapes.csv" }]
        """))
    teams.register_file(tmp_path / "team.toml")
    out = tmp_path / "out"
    assert main(["export", "export_shapes", "--out", str(out),
                 "--data-dir", str(tmp_path / "tfds")]) == 0
    document = json.loads((out / "croissant.json").read_text())
    assert document["creator"]["name"] == "The shapes team"
    assert document["datePublished"] == "2024-05-01"
    assert document["license"] == "CC-BY-4.0"
    assert 'license: "cc-by-4.0"' in (out / "README.md").read_text()
