"""Team-catalog datasets generate on Apache Beam too (issue 9 with issue 5).

One team catalog declares a dataset of every format, each split read from
several sources (plain files and zip members, on disk and served over HTTP
on loopback), with dirt in each. A DirectRunner build of each must hold the
same examples under the same keys, byte for byte, and the same metadata as
the local build; the dirt shows that each rule ran across workers, and the
repeats and kept counts show that records of every source are there.
"""

from __future__ import annotations

import base64
import json
import textwrap
import zipfile
from pathlib import Path

import pytest

from test_beam import OPTIONS, build, metadata, shard_records
from catalog_helpers import make_pets_zip, picture, png_bytes

tfds = pytest.importorskip("tensorflow_datasets")
pytest.importorskip("apache_beam")

# A range of about six 8x8 rows: every CSV is read by several workers' ranges.
RANGE_BYTES = "1500"


def pixel_row(label: int, seed: int) -> str:
    return ",".join(str(v) for v in [label, *picture(seed, (8, 8), "L").ravel()])


def write_csvs(root: Path) -> dict:
    """Train: a plain CSV and a CSV inside a zip (which repeats rows of the
    first and of itself, and holds dirt of its own); test: a plain CSV."""
    header = ",".join(["label"] + [f"pixel{i}" for i in range(1, 65)])
    first = [pixel_row((3, 5, 7)[i % 3], 1000 + i) for i in range(30)]
    second = [pixel_row((3, 5, 7)[i % 3], 2000 + i) for i in range(30)]
    second[4] = first[10]                                    # duplicate_row across files
    second[20] = second[2]                                   # duplicate_row in the file
    second.insert(12, pixel_row(4, 3000))                    # unknown_label
    second.insert(15, pixel_row(3, 3001).rsplit(",", 1)[0] + ",x")   # non_numeric_cell
    first.insert(7, "3,1,2")                                 # wrong_field_count
    (root / "csv").mkdir()
    (root / "csv/first.csv").write_text("\n".join([header] + first) + "\n")
    (root / "csv/test.csv").write_text(
        "\n".join([header] + [pixel_row(5, 4000 + i) for i in range(9)]) + "\n")
    with zipfile.ZipFile(root / "csv/more.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("rows/second.csv", "\r\n".join([header] + second) + "\r\n")
    return {"train_kept": 30 + 30 - 2, "test_kept": 9}


def b64(pixels) -> str:
    return base64.b64encode(png_bytes(pixels)).decode()


def write_base64(root: Path) -> None:
    """Two files of two layouts: an object of label -> image, JSON Lines of records."""
    (root / "b64").mkdir()
    (root / "b64/first.json").write_text(json.dumps(
        {"dog": b64(picture(1, (12, 12), "L")), "cat": b64(picture(2, (12, 12), "L")),
         "cow": b64(picture(3, (12, 12), "L"))}))                     # unknown_label
    records = [{"label": "cat", "image": b64(picture(10 + i, (12, 12), "L"))} for i in range(5)]
    records.append({"label": "dog", "image": b64(picture(20, (30, 30), "L"))})   # resized
    records.append({"label": "dog", "image": base64.b64encode(b"no picture").decode()})
    records.append({"label": "dog", "image": "!!! not base64"})                  # bad_base64
    (root / "b64/second.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")


def write_urls(bucket: Path, base_url: str) -> None:
    """Images served over HTTP; two URL lists, one plain and one inside a zip."""
    (bucket / "img").mkdir(parents=True)
    for i in range(12):
        (bucket / f"img/{i}.png").write_bytes(png_bytes(picture(50 + i, (12, 12), "L")))
    (bucket / "img/big.png").write_bytes(png_bytes(picture(70, (24, 24), "L")))
    (bucket / "img/text.png").write_bytes(b"plain text\n")

    def line(name: str, label: str) -> str:
        return json.dumps({"content": f"{base_url}img/{name}", "label": label})

    first = [line(f"{i}.png", ("dog", "cat")[i % 2]) for i in range(6)]
    first += [line("missing.png", "dog"), line("big.png", "cat")]
    second = [line(f"{i}.png", ("dog", "cat")[i % 2]) for i in range(6, 12)]
    second += [line("text.png", "dog"), line("0.png", "horse")]
    (bucket / "first.jsonl").write_text("\n".join(first) + "\n")
    with zipfile.ZipFile(bucket / "urls.zip", "w") as zf:
        zf.writestr("lists/second.jsonl", "\n".join(second) + "\n")


def catalog_text(base_url: str) -> str:
    return textwrap.dedent(f"""\
        [[dataset]]
        name = "beam_team_shapes"
        version = "1.0.0"
        description = "8x8 shapes from a CSV and a zipped CSV."
        format = "csv_pixels"
        classes = ["circle", "square", "triangle"]
        csv_labels = [3, 5, 7]
        image = {{ mode = "L", size = [8, 8] }}
        sources = [
          {{ location = "csv/first.csv", split = "train" }},
          {{ location = "csv/more.zip", member = "rows/second.csv", split = "train" }},
          {{ location = "csv/test.csv", split = "test" }},
        ]

        [[dataset]]
        name = "beam_team_faces_b64"
        version = "1.0.0"
        description = "Faces as base64 in two files."
        format = "base64_json"
        classes = ["dog", "cat"]
        image = {{ mode = "L", size = [12, 12] }}
        sources = [{{ location = "b64/first.json" }}, {{ location = "b64/second.jsonl" }}]

        [[dataset]]
        name = "beam_team_faces_urls"
        version = "1.0.0"
        description = "Faces by URL, from two lists."
        format = "json_urls"
        classes = ["dog", "cat"]
        image = {{ mode = "L", size = [12, 12] }}
        cleaning = {{ max_failed_share = 0.5 }}
        sources = [
          {{ location = "{base_url}first.jsonl" }},
          {{ location = "{base_url}urls.zip", member = "lists/second.jsonl" }},
        ]

        [[dataset]]
        name = "beam_team_pets"
        version = "1.0.0"
        description = "Cats and dogs; the leaked test image is dropped."
        format = "zip_folders"
        classes = ["cat", "dog"]
        image = {{ mode = "RGB", size = [16, 20] }}
        cleaning = {{ drop_leaked_from_test = true }}
        sources = [{{ location = "{base_url}pets.zip" }}]
        """)


def make_team_catalog(tmp_path_factory):
    """The team catalog, its files and its server, registered: conftest's
    session fixture `team_catalog` runs it once per process (test_dask uses
    it too, and a name registers only once)."""
    from sign_datasets.catalog import teams
    from sign_datasets.replica import ReplicaServer

    root = tmp_path_factory.mktemp("beam_team")
    counts = write_csvs(root)
    write_base64(root)
    bucket = root / "bucket"
    make_pets_zip(bucket / "pets.zip", leak=True)
    with ReplicaServer(bucket, port=0) as server:
        write_urls(bucket, server.base_url)
        catalog = root / "catalog.toml"
        catalog.write_text(catalog_text(server.base_url))
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("SIGN_DATASETS_SOURCE", server.base_url)
            teams.register_file(catalog)
        yield {"root": root, "counts": counts, "catalog": catalog, "source": server.base_url}


@pytest.fixture(scope="module")
def team(team_catalog):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SIGN_DATASETS_SOURCE", team_catalog["source"])
        patch.setenv("SIGN_DATASETS_CATALOG", str(team_catalog["catalog"]))
        patch.setenv("SIGN_DATASETS_BEAM_RANGE_BYTES", RANGE_BYTES)
        yield {"root": team_catalog["root"], "counts": team_catalog["counts"]}


CASES = [
    ("beam_team_shapes", "multi_processing",
     {"train": {"duplicate_row": 2, "unknown_label": 1, "non_numeric_cell": 1,
                "wrong_field_count": 1}, "test": {}}),
    ("beam_team_faces_b64", "multi_threading",
     {"train": {"unknown_label": 1, "bad_base64": 1, "not_an_image": 1}}),
    ("beam_team_faces_urls", "multi_processing",
     {"train": {"not_found": 1, "not_an_image": 1, "unknown_label": 1}}),
    ("beam_team_pets", "multi_threading",
     {"train": {"duplicate_image": 1, "not_an_image": 1}, "test": {"leaked_from_train": 1}}),
]
KEPT = {"beam_team_shapes": {"train": 58, "test": 9}, "beam_team_faces_b64": {"train": 8},
        "beam_team_faces_urls": {"train": 13}, "beam_team_pets": {"train": 10, "test": 4}}


@pytest.mark.parametrize("name,mode,drops", CASES, ids=[c[0] for c in CASES])
def test_team_dataset_on_beam_equals_its_local_build(team, name, mode, drops, tmp_path):
    local = build(name, tmp_path / "local")
    report = metadata(local)["cleaning"]
    assert {split: r["drops"] for split, r in report.items()} == drops
    assert {split: r["kept"] for split, r in report.items()} == KEPT[name]
    on_beam = build(name, tmp_path / "beam", mode)
    assert set(on_beam.info.splits) == set(local.info.splits)
    for split in local.info.splits:
        records = shard_records(local, split)
        assert len(records) == KEPT[name][split]
        assert shard_records(on_beam, split) == records
    assert metadata(on_beam) == metadata(local)


def test_csv_ranges_of_a_plain_file_seek_to_the_same_lines(team):
    """A plain file's ranges start from line counts the launcher took in one
    pass; they must give the lines a whole read gives, numbered alike."""
    from sign_datasets.formats import csv_lines, csv_pixels

    path = team["root"] / "csv/first.csv"
    file = csv_lines.CsvFile(str(path), None, "first.csv")
    with open(path, "rb") as stream:
        whole = [line for chunk in csv_pixels.iter_chunks(stream, "first.csv", 64)
                 for line in chunk]
    for range_bytes in (1, 700, 1500, 10_000):
        ranges = csv_pixels.file_ranges(0, file, 64, range_bytes)
        assert all(r.known is not None for r in ranges)
        pieces = []
        for work in ranges:
            with open(path, "rb") as stream:
                for chunk in csv_lines.iter_range_chunks(stream, "first.csv", work.start,
                                                          work.end, known=work.known):
                    pieces.extend(chunk)
        assert pieces == whole, range_bytes
