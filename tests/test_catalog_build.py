"""Team datasets built from a catalog's entries (catalog/generated.py) and
loaded by name.

A team catalog declares a zip of image folders served over a real HTTP
server on loopback and a CSV of pixel rows on disk; both are built through
TFDS and loaded by name, also by a process that never imports
sign_datasets. The JSON formats build from a catalog too.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from catalog_helpers import (PETS, SHAPE_FILE_LABELS, csv_text, entry_text, picture, png_bytes,
                             shape_row, team_catalog_text)
from conftest import quiet_env

pytest_plugins = ("catalog_fixtures",)


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

    from sign_datasets.catalog import teams
    from sign_datasets.catalog.generated import ChecksumMismatch

    catalog = team["root"] / "wrong_sha.toml"
    catalog.write_text(team_catalog_text(team["server"].base_url + "pets.zip", "0" * 64)
                       .replace("team_pets", "team_pets_bad_sha")
                       .split("[[dataset]]\nname = \"team_shapes\"")[0])
    teams.register_file(catalog)
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

    from sign_datasets.catalog import teams

    rows = [shape_row(SHAPE_FILE_LABELS[i % 3], 700 + i) for i in range(3)]
    (tmp_path / "rows.csv").write_text(csv_text(rows))
    catalog = tmp_path / "edited.toml"
    catalog.write_text(entry_text(name="team_edited_in_place", location="rows.csv")
                       .replace('["circle", "square"]', '["circle", "square", "triangle"]')
                       + 'csv_labels = [3, 5, 7]\n')
    teams.register_file(catalog)
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



def test_json_urls_and_base64_json_datasets_build_from_a_catalog(tmp_path, monkeypatch):
    import base64

    import tensorflow_datasets as tfds

    from sign_datasets.catalog import teams
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
        teams.register_file(catalog)
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

