"""The team catalog (issue 5): datasets declared in TOML, built and loaded by name.

A team catalog written here declares a zip of image folders served over a
real HTTP server on loopback and a CSV of pixel rows on disk; both are built
through TFDS and loaded by name, also by a process that never imports
sign_datasets. Each invalid catalog gives a message naming file, entry and field.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, quiet_env

SHAPES = ("circle", "square", "triangle")
SHAPE_FILE_LABELS = (3, 5, 7)
PETS = ("cat", "dog")


# --- sources the tests make ------------------------------------------------------

def picture(seed: int, size=(16, 20), mode="RGB") -> np.ndarray:
    channels = 3 if mode == "RGB" else 1
    pixels = np.random.default_rng(seed).integers(0, 256, (*size, channels), dtype=np.uint8)
    return pixels if mode == "RGB" else pixels[..., 0]


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def make_pets_zip(path: Path, leak: bool = False) -> dict:
    """Train/<class>/ and Test/<class>/ PNGs, 16 high x 20 wide, RGB; train
    also holds one repeat of an image and one file that is no image; `leak`
    adds a test image equal to a train image."""
    members, pixels = {}, {}
    seed = 0
    for split, per_class in (("Train", 5), ("Test", 2)):
        for label in PETS:
            for i in range(per_class):
                seed += 1
                name = f"pets/{split}/{label}/{label}_{i}.png"
                pixels[name] = picture(seed)
                members[name] = png_bytes(pixels[name])
    members["pets/Train/dog/repeat.png"] = members["pets/Train/cat/cat_0.png"]
    members["pets/Train/cat/broken.png"] = b"this is not a picture"
    if leak:
        members["pets/Test/cat/leak.png"] = members["pets/Train/dog/dog_1.png"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), data)
    return pixels


def csv_text(rows: list[str], pixels: int = 64) -> str:
    header = ",".join(["label"] + [f"pixel{i}" for i in range(1, pixels + 1)])
    return "\n".join([header] + rows) + "\n"


def shape_row(label: int, seed: int) -> str:
    return ",".join(str(v) for v in [label, *picture(seed, (8, 8), "L").ravel()])


def make_shapes_csvs(folder: Path) -> dict:
    """train.csv: 9 good rows, one repeat, one unknown label, one 'x' pixel;
    test.csv: 3 good rows. Returns {(split, row index): (label, pixels)}."""
    folder.mkdir(parents=True, exist_ok=True)
    good = {}
    train = []
    for i in range(9):
        label = SHAPE_FILE_LABELS[i % 3]
        train.append(shape_row(label, 100 + i))
        good[("train", i)] = (i % 3, picture(100 + i, (8, 8), "L"))
    train.append(train[2])                                   # duplicate_row
    train.append(shape_row(4, 200))                          # unknown_label
    train.append(shape_row(3, 201).rsplit(",", 1)[0] + ",x")    # non_numeric_cell
    test = [shape_row(SHAPE_FILE_LABELS[i], 300 + i) for i in range(3)]
    (folder / "train.csv").write_text(csv_text(train))
    (folder / "test.csv").write_text(csv_text(test))
    return good


def team_catalog_text(zip_url: str, zip_sha: str) -> str:
    return textwrap.dedent(f"""\
        # A team's own datasets.
        [[dataset]]
        name = "team_pets"
        version = "1.1.0"
        description = "Cats and dogs of the team's photo booth."
        format = "zip_folders"
        classes = ["cat", "dog"]
        image = {{ mode = "RGB", size = [16, 20] }}
        sources = [{{ location = "{zip_url}", sha256 = "{zip_sha}" }}]
        homepage = "https://example.org/pets"
        license = "CC-BY-4.0"
        citation = "@misc{{pets, title = {{Pets}}}}"
        [dataset.release_notes]
        "1.0.0" = "First release."
        "1.1.0" = "More dogs."

        [[dataset]]
        name = "team_shapes"
        version = "1.0.0"
        description = "Hand-drawn shapes, 8x8 grayscale pixel rows."
        format = "csv_pixels"
        classes = ["circle", "square", "triangle"]
        csv_labels = [3, 5, 7]
        image = {{ mode = "L", size = [8, 8] }}
        cleaning = {{ drop_duplicates = true }}
        sources = [
          {{ location = "shapes/train.csv", split = "train" }},
          {{ location = "shapes/test.csv", split = "test" }},
        ]
        release_notes = {{ "1.0.0" = "First release." }}
        """)


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    """The team's folder (served over HTTP too) and its registered catalog."""
    from sign_datasets.catalog import schema
    from sign_datasets.replica import ReplicaServer

    root = tmp_path_factory.mktemp("team")
    pets = make_pets_zip(root / "bucket" / "pets.zip")
    shapes = make_shapes_csvs(root / "shapes")
    sha = hashlib.sha256((root / "bucket" / "pets.zip").read_bytes()).hexdigest()
    with ReplicaServer(root / "bucket", port=0) as server, pytest.MonkeyPatch.context() as patch:
        # A catalog may name a loopback server only when the one who builds allows it.
        patch.setenv("SIGN_DATASETS_ALLOWED_HOSTS", f"127.0.0.1:{server.port}")
        catalog = root / "catalog.toml"
        catalog.write_text(team_catalog_text(server.base_url + "pets.zip", sha))
        schema.register_file(catalog)
        yield {"root": root, "catalog": catalog, "pets": pets, "shapes": shapes,
               "server": server}


@pytest.fixture(scope="module")
def built(team, tmp_path_factory):
    """Both team datasets built into two data dirs."""
    import tensorflow_datasets as tfds

    dirs = {"team_pets": tmp_path_factory.mktemp("data_pets"),
            "team_shapes": tmp_path_factory.mktemp("data_shapes")}
    for name, data_dir in dirs.items():
        tfds.builder(name, data_dir=str(data_dir)).download_and_prepare()
    return dirs


# --- build and load by name -------------------------------------------------------

def test_zip_folders_dataset_builds_and_loads_by_name(team, built):
    import tensorflow_datasets as tfds

    builder = tfds.builder("team_pets", data_dir=str(built["team_pets"]))
    info = builder.info
    assert info.full_name == "team_pets/default/1.1.0"
    assert info.features["label"].names == list(PETS)
    assert info.features["image"].shape == (16, 20, 3)
    assert {s: info.splits[s].num_examples for s in info.splits} == {"train": 10, "test": 4}
    cleaning = info.metadata["cleaning"]
    assert cleaning["train"]["drops"] == {"duplicate_image": 1, "not_an_image": 1}
    assert cleaning["test"]["drops"] == {}
    assert info.description.startswith("Cats and dogs")
    assert info.homepage == "https://example.org/pets"
    assert builder.RELEASE_NOTES["1.1.0"] == "More dogs."

    examples = {}
    for example in tfds.as_numpy(tfds.load("team_pets", split="test",
                                           data_dir=str(built["team_pets"]))):
        examples[int(example["label"]), example["image"].tobytes()] = example
    for name, pixels in team["pets"].items():
        if "/Test/" in name:
            label = PETS.index(name.split("/")[2])
            assert (label, pixels.tobytes()) in examples, name
    assert len(examples) == 4


def test_csv_pixels_dataset_builds_and_loads_by_name(team, built):
    import tensorflow_datasets as tfds

    data_dir = str(built["team_shapes"])
    builder = tfds.builder("team_shapes", data_dir=data_dir)
    cleaning = builder.info.metadata["cleaning"]
    assert cleaning["train"]["kept"] == 9
    assert cleaning["train"]["drops"] == {"duplicate_row": 1, "unknown_label": 1,
                                          "non_numeric_cell": 1}
    assert builder.info.splits["test"].num_examples == 3
    train = list(tfds.as_numpy(tfds.load("team_shapes", split="train", data_dir=data_dir,
                                         shuffle_files=False)))
    got = sorted((int(e["label"]), e["image"].tobytes()) for e in train)
    expected = sorted((label, pixels[..., None].tobytes())
                      for (split, _), (label, pixels) in team["shapes"].items())
    assert got == expected
    assert train[0]["image"].shape == (8, 8, 1) and train[0]["image"].dtype == np.uint8


def test_a_process_without_sign_datasets_loads_both_from_their_data_dirs(built):
    code = textwrap.dedent(f"""
        import json, sys
        import tensorflow_datasets as tfds
        out = {{}}
        # one through TFDS_DATA_DIR, one through data_dir=
        pets = tfds.load("team_pets", split="train")
        shapes = tfds.load("team_shapes", split="train", data_dir={str(built["team_shapes"])!r})
        out["pets"] = sorted(int(e["label"]) for e in tfds.as_numpy(pets))
        out["shapes"] = sorted(int(e["label"]) for e in tfds.as_numpy(shapes))
        out["imported"] = sorted(m for m in sys.modules if m.startswith("sign_datasets"))
        print(json.dumps(out))
        """)
    env = quiet_env(TFDS_DATA_DIR=str(built["team_pets"]))
    env.pop("SIGN_DATASETS_CATALOG", None)
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd="/", capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["imported"] == []
    assert out["pets"] == [0] * 5 + [1] * 5
    assert out["shapes"] == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_a_wrong_sha256_stops_the_build_naming_entry_and_field(team, tmp_path):
    import tensorflow_datasets as tfds

    from sign_datasets.catalog import schema
    from sign_datasets.catalog.generated import ChecksumMismatch

    catalog = team["root"] / "wrong_sha.toml"
    catalog.write_text(team_catalog_text(team["server"].base_url + "pets.zip", "0" * 64)
                       .replace("team_pets", "team_pets_bad_sha")
                       .split("[[dataset]]\nname = \"team_shapes\"")[0])
    schema.register_file(catalog)
    with pytest.raises(ChecksumMismatch) as error:
        tfds.builder("team_pets_bad_sha", data_dir=str(tmp_path)).download_and_prepare()
    message = str(error.value)
    assert str(catalog) in message and "'team_pets_bad_sha'" in message
    assert "sources[0].sha256" in message and "0" * 64 in message


def test_a_local_source_edited_in_place_is_read_anew(tmp_path):
    """A local file is read where it is, not from a copy in the download
    cache keyed by its path: after the team edits it, the next build (same
    download dir) holds the new rows."""
    import tensorflow_datasets as tfds

    from sign_datasets.catalog import schema

    rows = [shape_row(SHAPE_FILE_LABELS[i % 3], 700 + i) for i in range(3)]
    (tmp_path / "rows.csv").write_text(csv_text(rows))
    catalog = tmp_path / "edited.toml"
    catalog.write_text(entry_text(name="team_edited_in_place", location="rows.csv")
                       .replace('["circle", "square"]', '["circle", "square", "triangle"]')
                       + 'csv_labels = [3, 5, 7]\n')
    schema.register_file(catalog)
    downloads = tmp_path / "downloads"

    def build(data_dir) -> list[bytes]:
        builder = tfds.builder("team_edited_in_place", data_dir=str(data_dir))
        builder.download_and_prepare(download_dir=str(downloads))
        return sorted(e["image"].tobytes() for e in tfds.as_numpy(builder.as_dataset(split="train")))

    first = build(tmp_path / "first")
    rows.append(shape_row(SHAPE_FILE_LABELS[0], 800))
    (tmp_path / "rows.csv").write_text(csv_text(rows))
    second = build(tmp_path / "second")
    assert len(first) == 3 and len(second) == 4
    assert set(first) < set(second)


# --- invalid catalogs -----------------------------------------------------------------

GOOD_ENTRY = """\
[[dataset]]
name = "{name}"
version = "1.0.0"
description = "Some shapes."
format = "csv_pixels"
classes = ["circle", "square"]
image = {{ mode = "L", size = [8, 8] }}
sources = [{{ location = "{location}" }}]
"""


def bad_catalog(tmp_path: Path, text: str, filename="bad.toml") -> Path:
    path = tmp_path / filename
    path.write_text(text)
    return path


def entry_text(name="team_ok", location="shapes.csv") -> str:
    return GOOD_ENTRY.format(name=name, location=location)


INVALID = {
    "unknown_key": (lambda: entry_text() + 'colour = "blue"\n', "'team_ok'", "colour",
                    "unknown key"),
    "unknown_key_in_image": (lambda: entry_text().replace('mode = "L"', 'mode = "L", depth = 8'),
                             "'team_ok'", "image.depth", "unknown key"),
    "wrong_type": (lambda: entry_text().replace('version = "1.0.0"', "version = 1"),
                   "'team_ok'", "version", "expected a string, found an integer"),
    "wrong_type_size": (lambda: entry_text().replace("size = [8, 8]", 'size = "8x8"'),
                        "'team_ok'", "image.size", "expected an array, found a string"),
    "missing_class_names": (lambda: entry_text().replace('classes = ["circle", "square"]\n', ""),
                            "'team_ok'", "classes", "missing"),
    "empty_class_names": (lambda: entry_text().replace('["circle", "square"]', "[]"),
                          "'team_ok'", "classes", "empty"),
    "duplicate_name_in_file": (lambda: entry_text() + "\n" + entry_text(), "'team_ok'", "name",
                               "duplicate name"),
    "neither_url_nor_path": (lambda: entry_text(location="ftp://files.example.org/shapes.csv"),
                             "'team_ok'", "sources[0].location", "neither a URL"),
    "url_without_host": (lambda: entry_text(location="https:///shapes.csv"),
                         "'team_ok'", "sources[0].location", "neither a URL"),
    "outside_allowed_roots": (lambda: entry_text(location="/etc/passwd"),
                              "'team_ok'", "sources[0].location", "outside the allowed roots"),
    "escapes_by_dotdot": (lambda: entry_text(location="../../elsewhere/shapes.csv"),
                          "'team_ok'", "sources[0].location", "outside the allowed roots"),
    "unknown_format": (lambda: entry_text().replace('"csv_pixels"', '"parquet"'),
                       "'team_ok'", "format", "not one of csv_pixels"),
    "entry_without_name": (lambda: entry_text().replace('name = "team_ok"\n', ""),
                           "#1 (no name)", "name", "missing"),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_catalog_names_file_entry_and_field(case, tmp_path):
    from sign_datasets.catalog.schema import CatalogError, load_catalog

    make, entry, field, problem = INVALID[case]
    path = bad_catalog(tmp_path, make())
    with pytest.raises(CatalogError) as error:
        load_catalog(path)
    message = str(error.value)
    assert message.startswith(str(path) + ": "), message
    assert f"entry {entry}" in message, message
    assert f"field {field!r}" in message, message
    assert problem in message, message


def test_a_name_the_project_has_is_a_duplicate(tmp_path):
    from sign_datasets.catalog.schema import CatalogError, register_file

    path = bad_catalog(tmp_path, entry_text(name="sign_mnist_csv"))
    with pytest.raises(CatalogError) as error:
        register_file(path)
    message = str(error.value)
    assert str(path) in message and "entry 'sign_mnist_csv'" in message
    assert "field 'name'" in message and "duplicate name" in message
    assert "catalog.toml" in message  # where the first one is


def test_a_name_tfds_has_is_refused(tmp_path):
    from sign_datasets.catalog.schema import CatalogError, register_file

    path = bad_catalog(tmp_path, entry_text(name="mnist"))
    with pytest.raises(CatalogError) as error:
        register_file(path)
    message = str(error.value)
    assert str(path) in message and "entry 'mnist'" in message and "field 'name'" in message
    assert "clashes with a dataset TFDS already has" in message


def test_a_second_catalog_reusing_a_team_name_is_a_duplicate(team, tmp_path):
    from sign_datasets.catalog.schema import CatalogError, register_file

    path = bad_catalog(tmp_path, entry_text(name="team_shapes"))
    with pytest.raises(CatalogError) as error:
        register_file(path)
    assert "duplicate name" in str(error.value) and str(team["catalog"]) in str(error.value)


def test_allowed_roots_setting_admits_another_folder(tmp_path, monkeypatch):
    from sign_datasets.catalog.schema import ALLOWED_ROOTS_ENV, load_catalog

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    catalog_dir = tmp_path / "catalogs"
    catalog_dir.mkdir()
    path = bad_catalog(catalog_dir, entry_text(location=str(elsewhere / "shapes.csv")))
    monkeypatch.setenv(ALLOWED_ROOTS_ENV, str(elsewhere))
    (entry,) = load_catalog(path)
    assert entry.sources[0].kind == "path"
    assert entry.sources[0].target == str((elsewhere / "shapes.csv").resolve())


def test_a_bad_catalog_stops_import_sign_datasets(tmp_path):
    path = bad_catalog(tmp_path, entry_text() + "colour = 3\n")
    env = quiet_env(SIGN_DATASETS_CATALOG=str(path))
    done = subprocess.run([sys.executable, "-c", "import sign_datasets"], env=env,
                          capture_output=True, text=True, timeout=300, cwd=str(REPO))
    assert done.returncode != 0
    assert f"{path}: entry 'team_ok': field 'colour': unknown key" in done.stderr


def test_catalog_env_registers_datasets_on_import(team):
    env = quiet_env(SIGN_DATASETS_CATALOG=f"{team['catalog']}")
    code = ("import sign_datasets, tensorflow_datasets as tfds; "
            "b = tfds.builder('team_shapes'); "
            "print(b.info.full_name, b.info.features['label'].names)")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=300, cwd=str(REPO))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "team_shapes/1.0.0 ['circle', 'square', 'triangle']" in done.stdout


# --- the project's own catalog -------------------------------------------------------------

def test_the_seven_builders_declare_what_the_project_catalog_says():
    import tensorflow_datasets as tfds

    from sign_datasets.catalog.schema import project_entries
    from sign_datasets.core.labels import CSV_LABEL_TO_INDEX

    entries = {e.name: e for e in project_entries()}
    assert sorted(entries) == sorted(
        p.name for p in (REPO / "builders").iterdir() if (p / f"{p.name}_dataset_builder.py").exists())
    for name, entry in entries.items():
        cls = tfds.builder_cls(name)
        assert str(cls.VERSION) == entry.version, name
        assert cls.RELEASE_NOTES == entry.release_notes and entry.version in cls.RELEASE_NOTES
        assert [c.name for c in cls.BUILDER_CONFIGS] == [c.name for c in entry.configs], name
        builder = tfds.builder(name)
        assert builder.info.features["label"].names == list(entry.classes), name
        channels = builder.info.features["image"].shape[-1]
        assert channels == entry.channels, name
    csv = entries["sign_mnist_csv"]
    assert dict(zip(csv.file_labels(), range(24))) == CSV_LABEL_TO_INDEX


# --- the command line -----------------------------------------------------------------------

def run_cli(capsys, *argv) -> tuple[int, str, str]:
    from sign_datasets.cli.commands import main
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_shows_version_built_counts_size_and_data_dir(built, capsys):
    code, out, _ = run_cli(capsys, "list", "--data-dir", str(built["team_pets"]))
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines()[2:]}
    pets = lines["team_pets/default"].split()
    assert pets[1:4] == ["1.1.0", "yes", "train=10,"] and pets[4] == "test=4"
    assert pets[5].replace(".", "").isdigit() and pets[6] in ("KB", "MB")
    assert pets[7] == str(built["team_pets"] / "team_pets" / "default" / "1.1.0")
    shapes = lines["team_shapes"].split()
    assert shapes[1:3] == ["1.0.0", "no"]
    for name in ("sign_mnist_csv/original", "sign_mnist_csv/dirty", "sign_language_img/28x28",
                 "malaria_cells/124x124", "tom_and_jerry/native", "tumor_classification/native",
                 "sign_mnist_json/default", "sign_mnist_base64"):
        assert name in lines, name


def test_info_shows_features_splits_cleaning_and_release_notes(built, capsys):
    code, out, _ = run_cli(capsys, "info", "team_shapes", "--data-dir", str(built["team_shapes"]))
    assert code == 0
    assert out.startswith("team_shapes/1.0.0\n")
    assert "Hand-drawn shapes" in out
    assert "Tensor(shape=(8, 8, 1), dtype=uint8" in out
    assert "ClassLabel(shape=(), dtype=int64, num_classes=3)" in out
    assert "  train: 9 examples" in out and "  test: 3 examples" in out
    assert "duplicate_row" in out and "unknown_label" in out and "non_numeric_cell" in out
    assert "  1.0.0: First release." in out
    assert "tfds.load('team_shapes'" in out


def test_show_writes_a_grid_of_labelled_examples(built, tmp_path, capsys):
    out_file = tmp_path / "pets.png"
    code, out, _ = run_cli(capsys, "show", "team_pets", "--split", "test", "--out", str(out_file),
                           "--data-dir", str(built["team_pets"]))
    assert code == 0 and out.strip() == str(out_file)
    with Image.open(out_file) as grid:
        assert grid.format == "PNG" and grid.width > 400 and grid.height > 200
        # Not a blank canvas: the examples' colours are in it.
        assert len(set(grid.convert("RGB").getdata())) > 100


def test_show_builds_a_dataset_not_built_yet_unless_told_not_to(team, tmp_path, capsys):
    code, _, err = run_cli(capsys, "show", "team_shapes", "--data-dir", str(tmp_path),
                           "--no-build", "--out", str(tmp_path / "no.png"))
    assert code == 2 and "not built" in err and "sign-datasets build team_shapes" in err
    assert not (tmp_path / "no.png").exists() and not (tmp_path / "team_shapes").exists()
    code, out, err = run_cli(capsys, "show", "team_shapes", "--data-dir", str(tmp_path),
                             "--out", str(tmp_path / "yes.png"))
    assert code == 0 and out.strip().splitlines()[-1] == str(tmp_path / "yes.png")
    assert "team_shapes is not built in" in err and "building it first" in err
    assert (tmp_path / "team_shapes" / "1.0.0" / "dataset_info.json").exists()
    with Image.open(tmp_path / "yes.png") as grid:
        assert grid.format == "PNG"


def test_build_reports_every_failure_and_exits_non_zero(team, tmp_path, capsys):
    from sign_datasets.catalog import schema

    broken = team["root"] / "broken.toml"
    broken.write_text(entry_text(name="team_gone", location="gone/nothing.csv"))
    schema.register_file(broken)
    code, out, err = run_cli(capsys, "build", "team_gone", "team_shapes",
                             "--data-dir", str(tmp_path))
    assert code == 1
    assert "team_gone" in out and "FAILED" in out
    assert "team_shapes" in out and "9" in out
    assert "error: team_gone: " in err and "sources[0].location" in err and "does not exist" in err


def test_build_wants_names_or_all(capsys):
    code, _, err = run_cli(capsys, "build")
    assert code == 2 and "--all" in err


def test_build_all_covers_every_catalog_dataset(team):
    from sign_datasets.catalog import registry
    names = registry.all_dataset_names()
    assert names[:2] == ["sign_mnist_csv/original", "sign_mnist_csv/dirty"]
    assert "team_pets/default" in names and "team_shapes" in names
    assert len(names) == len(set(names))


# --- `new`: proposals from a look at the source -------------------------------------------

def test_new_proposes_classes_and_shape_of_a_zip(team, tmp_path, capsys):
    import tomllib

    catalog = tmp_path / "team.toml"
    code, out, _ = run_cli(capsys, "new", "team_pets_proposed", "--format", "zip_folders",
                           "--source", str(team["root"] / "bucket" / "pets.zip"),
                           "--catalog", str(catalog))
    # The zip is outside the new catalog's folder: refused, nothing appended.
    assert code == 2 and not catalog.exists()
    catalog = team["root"] / "bucket" / "team.toml"
    code, out, _ = run_cli(capsys, "new", "team_pets_proposed", "--format", "zip_folders",
                           "--source", str(team["root"] / "bucket" / "pets.zip"),
                           "--catalog", str(catalog))
    assert code == 0
    (entry,) = tomllib.loads(catalog.read_text())["dataset"]
    assert entry["classes"] == ["cat", "dog"]
    assert entry["image"] == {"mode": "RGB", "size": [16, 20]}
    assert entry["sources"] == [{"location": "pets.zip", "sha256": hashlib.sha256(
        (team["root"] / "bucket" / "pets.zip").read_bytes()).hexdigest()}]
    # Counted from names: the repeat and the broken file are the build's to drop.
    assert "train: 12 images; cat 6, dog 6" in catalog.read_text()
    assert "test: 4 images; cat 2, dog 2" in catalog.read_text()
    from sign_datasets.catalog.schema import load_catalog
    (checked,) = load_catalog(catalog)
    assert checked.name == "team_pets_proposed" and checked.format == "zip_folders"


def test_new_proposes_labels_and_shape_of_a_csv(team, capsys):
    import tomllib

    catalog = team["root"] / "shapes" / "proposed.toml"
    code, out, _ = run_cli(capsys, "new", "team_shapes_proposed", "--format", "csv_pixels",
                           "--source", str(team["root"] / "shapes" / "train.csv"),
                           "--catalog", str(catalog))
    assert code == 0
    (entry,) = tomllib.loads(catalog.read_text())["dataset"]
    # Label 4 is in the file (a row the build will drop); the reviewer decides.
    assert entry["csv_labels"] == [3, 4, 5, 7]
    assert entry["classes"] == ["class_3", "class_4", "class_5", "class_7"]
    assert entry["image"] == {"mode": "L", "size": [8, 8]}
    assert entry["sources"][0]["location"] == "train.csv"
    assert "12 rows" in catalog.read_text()


def test_new_sees_grey_images_and_mixed_sizes(tmp_path, capsys):
    import tomllib

    members = {}
    for split in ("train", "test"):
        for label, size in (("ok", (10, 12)), ("bad", (14, 9))):
            grey = picture(len(members), size, "L")
            members[f"{split}/{label}/{label}.png"] = png_bytes(grey)
    # A colour file holding grey pixels still proposes mode L.
    members["train/ok/rgb_grey.png"] = png_bytes(np.repeat(picture(99, (10, 12), "L")[..., None],
                                                           3, axis=2))
    with zipfile.ZipFile(tmp_path / "scans.zip", "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    catalog = tmp_path / "catalog.toml"
    code, _, _ = run_cli(capsys, "new", "team_scans", "--format", "zip_folders",
                         "--source", str(tmp_path / "scans.zip"), "--catalog", str(catalog))
    assert code == 0
    (entry,) = tomllib.loads(catalog.read_text())["dataset"]
    assert entry["classes"] == ["bad", "ok"]
    assert entry["image"] == {"mode": "L"}
    assert "images of several sizes" in catalog.read_text()


def test_the_readme_example_catalog_is_valid(tmp_path):
    from sign_datasets.catalog import schema

    readme = (REPO / "README.md").read_text()
    start = readme.index("```toml\n# /shared/catalog/team.toml\n") + len("```toml\n")
    text = readme[start:readme.index("```", start)]
    path = tmp_path / "team.toml"
    path.write_text(text)
    entries = schema.load_catalog(path)
    # Not names TFDS has (this module's team catalog uses the same names).
    ours = {entry.name for entry in schema.all_entries()}
    assert not {entry.name for entry in entries} & (schema._tfds_names() - ours)
    shapes, pets = entries
    assert (shapes.name, shapes.format, shapes.splits) == ("team_shapes", "csv_pixels",
                                                          ("train", "test"))
    assert shapes.sources[0].target == str(tmp_path / "shapes" / "train.csv")
    assert shapes.sources[1].kind == "url" and pets.sources[0].kind == "url"
    assert [c.name for c in pets.configs] == ["native", "128x128"]


# --- the JSON formats, declared in a catalog -------------------------------------------------

def test_json_urls_and_base64_json_datasets_build_from_a_catalog(tmp_path, monkeypatch):
    import base64

    import tensorflow_datasets as tfds

    from sign_datasets.catalog import schema
    from sign_datasets.replica import ReplicaServer

    bucket = tmp_path / "bucket"
    (bucket / "img").mkdir(parents=True)
    images = {}
    for i in range(4):
        images[f"img/{i}.png"] = picture(500 + i, (12, 12), "L")
        (bucket / f"img/{i}.png").write_bytes(png_bytes(images[f"img/{i}.png"]))
    # A 20x20 picture is resized to the declared 12x12 (kept, and counted).
    (bucket / "img/big.png").write_bytes(png_bytes(picture(600, (20, 20), "L")))
    records = [{"label": "cat" if i % 2 else "dog", "image": base64.b64encode(png_bytes(
        images[f"img/{i}.png"])).decode()} for i in range(4)]
    records.append({"label": "cow", "image": records[0]["image"]})        # unknown_label
    records.append({"label": "cat", "image": "%%% not base64 %%%"})       # bad_base64
    (tmp_path / "faces.json").write_text(json.dumps(records))
    with ReplicaServer(bucket, port=0) as server:
        monkeypatch.setenv("SIGN_DATASETS_SOURCE", server.base_url)
        # Labels are compared exactly (after NFC): "Dog" is not class "dog".
        lines = [{"content": f"{server.base_url}img/{i}.png",
                  "label": "cat" if i % 2 else ("Dog" if i == 0 else "dog")} for i in range(4)]
        lines.append({"content": f"{server.base_url}img/big.png", "label": "cat"})
        lines.append({"content": f"{server.base_url}img/missing.png", "label": "dog"})
        (bucket / "urls.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
        catalog = tmp_path / "faces.toml"
        catalog.write_text(textwrap.dedent(f"""\
            [[dataset]]
            name = "team_faces_b64"
            version = "1.0.0"
            description = "Faces as base64."
            format = "base64_json"
            classes = ["dog", "cat"]
            image = {{ mode = "L", size = [12, 12] }}
            sources = [{{ location = "faces.json" }}]

            [[dataset]]
            name = "team_faces_urls"
            version = "1.0.0"
            description = "Faces by URL."
            format = "json_urls"
            classes = ["dog", "cat"]
            image = {{ mode = "L", size = [12, 12] }}
            cleaning = {{ max_failed_share = 0.5 }}
            sources = [{{ location = "{server.base_url}urls.jsonl" }}]
            """))
        schema.register_file(catalog)
        for name in ("team_faces_b64", "team_faces_urls"):
            tfds.builder(name, data_dir=str(tmp_path / "data")).download_and_prepare()

    b64 = tfds.builder("team_faces_b64", data_dir=str(tmp_path / "data"))
    assert b64.info.metadata["cleaning"]["train"]["drops"] == {"unknown_label": 1,
                                                                "bad_base64": 1}
    got = sorted((int(e["label"]), e["image"].tobytes()) for e in tfds.as_numpy(
        tfds.load("team_faces_b64", split="train", data_dir=str(tmp_path / "data"))))
    assert got == sorted((1 if i % 2 else 0, images[f"img/{i}.png"][..., None].tobytes())
                         for i in range(4))

    urls = tfds.builder("team_faces_urls", data_dir=str(tmp_path / "data"))
    report = urls.info.metadata["cleaning"]["train"]
    assert report["kept"] == 4 and report["drops"] == {"not_found": 1, "unknown_label": 1}
    assert urls.info.metadata["resized"] == {"train": 1}
    labels = sorted(int(e["label"]) for e in tfds.as_numpy(
        tfds.load("team_faces_urls", split="train", data_dir=str(tmp_path / "data"))))
    assert labels == [0, 1, 1, 1]


def test_new_reads_base64_json_inside_a_zip(tmp_path, capsys):
    import base64
    import tomllib

    payload = {"b": base64.b64encode(png_bytes(picture(7, (28, 28), "L"))).decode(),
               "a": base64.b64encode(png_bytes(picture(8, (28, 28), "L"))).decode()}
    with zipfile.ZipFile(tmp_path / "letters.zip", "w") as zf:
        zf.writestr("letters/data.json", json.dumps(payload))
    catalog = tmp_path / "catalog.toml"
    code, _, _ = run_cli(capsys, "new", "team_letters_b64", "--format", "base64_json",
                         "--source", str(tmp_path / "letters.zip"), "--member", "letters/data.json",
                         "--catalog", str(catalog))
    assert code == 0
    (entry,) = tomllib.loads(catalog.read_text())["dataset"]
    assert entry["classes"] == ["a", "b"]
    assert entry["image"] == {"mode": "L", "size": [28, 28]}
    assert entry["sources"][0]["member"] == "letters/data.json"
    assert entry["sources"][0]["location"] == "letters.zip"
