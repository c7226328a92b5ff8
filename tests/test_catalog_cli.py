"""The catalog commands of `sign-datasets` (cli/catalog_commands.py): list,
info, show, build several, and `new` proposing an entry from a look at the
source.
"""

from __future__ import annotations

import hashlib
import json
import zipfile

import numpy as np
from PIL import Image

from catalog_helpers import entry_text, picture, png_bytes, run_cli

pytest_plugins = ("catalog_fixtures",)


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
    from sign_datasets.catalog import teams

    broken = team["root"] / "broken.toml"
    broken.write_text(entry_text(name="team_gone", location="gone/nothing.csv"))
    teams.register_file(broken)
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
    from sign_datasets.catalog.loader import load_catalog
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
