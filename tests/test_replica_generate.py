"""The offline bucket replica as written (replica/generate.py): every object
in its real layout with its manifest, the dirty rows of the cleaned CSV,
the real files' shapes, the counts at every scale, and the same bytes for
the same seed, object by object and from worker processes.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sign_datasets.core.labels import CSV_LABEL_TO_INDEX, SIGN_LETTERS
from sign_datasets.replica import (
    ALL_OBJECTS,
    DEFAULT_SCALE,
    FIRST_ZERO_ROW,
    FWEFEW_ROWS,
    IMAGE_FOLDER_ZIPS,
    MANIFEST_NAME,
    REAL_BUCKET,
    REPEATED_ZERO_ROWS,
    csv_row_counts,
    image_folder_counts,
    json_entries,
    make_replica,
)

REAL_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "reference" / "platzi-tf2"
REAL_JSON_LINES = REAL_DIR / "databasesLoadData" / "sign_mnist_json" / "data.json"
REAL_BASE64 = REAL_DIR / "databasesLoadData" / "sign_mnist_base64" / "data.json"
REAL_CIFAR = REAL_DIR / "cifar100_labels.json"

PIXEL_COLUMNS = [f"pixel{i}" for i in range(1, 785)]
LINE_RE = re.compile(
    r'^\{"content": "https://storage\.googleapis\.com/platzi-tf2/img_mnist/(\d+)_([A-Z])\.jpg","label":"([a-z])"\}$'
)


def _real(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real reference file absent: {path}")
    return path


def _sha256_tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def replica(tmp_path_factory):
    dest = tmp_path_factory.mktemp("replica")
    manifest = make_replica(dest, scale=DEFAULT_SCALE, seed=0)
    return dest, manifest


@pytest.fixture(scope="module")
def train_frames(replica):
    dest, _ = replica
    with zipfile.ZipFile(dest / "databasesLoadData.zip") as zf:
        plain = pd.read_csv(zf.open("sign_mnist_train/sign_mnist_train.csv"))
        dirty = pd.read_csv(zf.open("sign_mnist_train/sign_mnist_train_clean.csv"))
    return plain, dirty


# ------------------------------------------------------------------ layout ----

def test_every_object_is_written_with_manifest(replica):
    dest, manifest = replica
    top = sorted(p.name for p in dest.iterdir())
    assert top == sorted(
        [
            "databasesLoadData.zip", "img_mnist", "sign-language-img.zip", "MalariaCells.zip",
            "TomAndJerry.zip", "TumorClassification.zip", "cifar100_labels.json", MANIFEST_NAME,
        ]
    )
    assert json.loads((dest / MANIFEST_NAME).read_text()) == manifest
    assert manifest["scale"] == DEFAULT_SCALE and manifest["seed"] == 0
    for name in ALL_OBJECTS:
        assert name in manifest
    for name in ("databasesLoadData.zip", "sign-language-img.zip", "MalariaCells.zip", "TomAndJerry.zip",
                 "TumorClassification.zip", "cifar100_labels.json"):
        data = (dest / name).read_bytes()
        assert manifest[name]["bytes"] == len(data)
        assert manifest[name]["sha256"] == hashlib.sha256(data).hexdigest()
    assert not list(dest.rglob("*.part"))


def test_databases_zip_layout(replica):
    dest, manifest = replica
    with zipfile.ZipFile(dest / "databasesLoadData.zip") as zf:
        names = zf.namelist()
        assert names == manifest["databasesLoadData.zip"]["members"]
        files = {n for n in names if not n.endswith("/")}
        assert files == {
            "pixeles.png",
            "sign_mnist_base64/data.json",
            "sign_mnist_json/data.json",
            "sign_mnist_train/sign_mnist_train.csv",
            "sign_mnist_train/sign_mnist_train_clean.csv",
            "sign_mnist_test/sign_mnist_test.csv",
        }
        assert {n for n in names if n.endswith("/")} == {
            "sign_mnist_base64/", "sign_mnist_json/", "sign_mnist_train/", "sign_mnist_test/",
        }
        png = Image.open(io.BytesIO(zf.read("pixeles.png")))
        assert png.format == "PNG" and png.size == (724, 308) and png.mode == "RGB"
        assert all(info.date_time == (1980, 1, 1, 0, 0, 0) for info in zf.infolist())
        assert zf.testzip() is None


def test_csv_headers_rows_and_labels(replica):
    dest, manifest = replica
    facts = manifest["databasesLoadData.zip"]
    n_train, n_test = csv_row_counts(DEFAULT_SCALE)
    assert (n_train, n_test) == (900, 143)
    valid = {str(label) for label in CSV_LABEL_TO_INDEX}
    with zipfile.ZipFile(dest / "databasesLoadData.zip") as zf:
        for member, key, rows in (
            ("sign_mnist_train/sign_mnist_train.csv", "sign_mnist_train.csv", n_train),
            ("sign_mnist_test/sign_mnist_test.csv", "sign_mnist_test.csv", n_test),
        ):
            raw = zf.read(member)
            assert raw.split(b"\n", 1)[0] == ("label," + ",".join(PIXEL_COLUMNS)).encode()
            assert b"\r" not in raw and raw.endswith(b"\n")
            df = pd.read_csv(io.BytesIO(raw))
            assert len(df) == rows == facts[key]["rows"]
            assert list(df.columns) == ["label"] + PIXEL_COLUMNS
            assert all(dtype == np.int64 for dtype in df.dtypes)
            counts = {str(k): int(v) for k, v in df["label"].value_counts().items()}
            assert counts == facts[key]["label_counts"]
            assert set(counts) == valid  # 24 letters, no 9 (J) and no 25 (Z)
            pixels = df[PIXEL_COLUMNS].to_numpy()
            assert pixels.min() >= 1 and pixels.max() <= 255
            assert not df.duplicated().any()
            assert not df[PIXEL_COLUMNS].duplicated().any()


def test_dirty_copy_rows(train_frames, replica):
    plain, dirty = train_frames
    facts = replica[1]["databasesLoadData.zip"]["sign_mnist_train_clean.csv"]
    assert facts["zero_rows"] == list(REPEATED_ZERO_ROWS) == [317, 487, 595, 689]
    assert facts["fwefew_rows"] == list(FWEFEW_ROWS) == [727, 802, 861]
    assert facts["first_zero_row"] == FIRST_ZERO_ROW
    assert len(dirty) == len(plain) == facts["rows"]
    # "fwefew" makes pandas read every pixel column as text.
    assert all(dirty[c].dtype == object or pd.api.types.is_string_dtype(dirty[c]) for c in PIXEL_COLUMNS)
    assert pd.api.types.is_integer_dtype(dirty["label"])
    assert not dirty.isna().any().any()

    zero = dirty.iloc[FIRST_ZERO_ROW]
    assert (zero[PIXEL_COLUMNS] == "0").all()
    assert zero["label"] == plain.iloc[FIRST_ZERO_ROW]["label"] == facts["zero_label"]
    for r in REPEATED_ZERO_ROWS:
        assert dirty.iloc[r].equals(zero)
    zero_mask = (dirty[PIXEL_COLUMNS] == "0").all(axis=1)
    assert list(np.flatnonzero(zero_mask)) == facts["all_zero_rows"]
    # The repeats are exact duplicates of the earlier row, label included.
    assert list(np.flatnonzero(dirty.duplicated())) == list(REPEATED_ZERO_ROWS)

    fwefew_labels = []
    for r in FWEFEW_ROWS:
        row = dirty.iloc[r]
        assert (row[PIXEL_COLUMNS] == "fwefew").all()
        assert int(row["label"]) in CSV_LABEL_TO_INDEX
        fwefew_labels.append(int(row["label"]))
    assert len(set(fwefew_labels)) == 3
    assert list(np.flatnonzero((dirty[PIXEL_COLUMNS] == "fwefew").any(axis=1))) == list(FWEFEW_ROWS)

    special = [FIRST_ZERO_ROW, *REPEATED_ZERO_ROWS, *FWEFEW_ROWS]
    rest_dirty = dirty.drop(index=special)
    rest_plain = plain.drop(index=special)
    assert (rest_dirty["label"].to_numpy() == rest_plain["label"].to_numpy()).all()
    assert (rest_dirty[PIXEL_COLUMNS].astype(np.int64).to_numpy() == rest_plain[PIXEL_COLUMNS].to_numpy()).all()
    counts = {str(k): int(v) for k, v in dirty["label"].value_counts().items()}
    assert counts == facts["label_counts"]


def test_json_lines_and_img_mnist(replica):
    dest, manifest = replica
    with zipfile.ZipFile(dest / "databasesLoadData.zip") as zf:
        raw = zf.read("sign_mnist_json/data.json").decode("ascii")
    assert raw.endswith("\n")
    lines = raw.splitlines()
    assert len(lines) == manifest["databasesLoadData.zip"]["sign_mnist_json"]["lines"] == 9
    names = set()
    for line in lines:
        m = LINE_RE.match(line)
        assert m, line
        n, letter, label = m.groups()
        assert label == letter.lower() and letter in SIGN_LETTERS
        entry = json.loads(line)
        assert entry["content"].startswith(REAL_BUCKET + "img_mnist/")
        names.add(f"{n}_{letter}.jpg")
        img = Image.open(dest / "img_mnist" / f"{n}_{letter}.jpg")
        assert img.format == "JPEG" and img.size == (28, 28) and img.mode == "L"
    assert len(names) == len(lines)
    assert sorted(p.name for p in (dest / "img_mnist").iterdir()) == sorted(names)
    assert set(manifest["img_mnist"]["files"]) == names


def test_json_lines_grow_with_scale():
    assert len(json_entries(0.001)) == 9
    big = json_entries(1.0)
    assert len(big) == 450
    assert len({(n, letter) for n, letter in big}) == 450
    assert {letter for _, letter in big} == set(SIGN_LETTERS)
    assert big[:9] == json_entries(0.02)


def test_first_json_lines_equal_the_real_file(replica):
    real = _real(REAL_JSON_LINES).read_text()
    dest, _ = replica
    with zipfile.ZipFile(dest / "databasesLoadData.zip") as zf:
        ours = zf.read("sign_mnist_json/data.json").decode("ascii")
    real_lines, our_lines = real.splitlines(), ours.splitlines()
    assert len(real_lines) == 9
    for a, b in zip(real_lines, our_lines[:9]):
        assert json.loads(a).keys() == json.loads(b).keys()
        assert json.loads(a) == json.loads(b)
        assert a == b  # same spacing quirk too
    assert real.endswith("\n") and ours.endswith("\n")


def test_base64_json_has_the_real_shape(replica):
    real = _real(REAL_BASE64).read_text()
    dest, manifest = replica
    with zipfile.ZipFile(dest / "databasesLoadData.zip") as zf:
        ours = zf.read("sign_mnist_base64/data.json").decode("ascii")
    for text in (real, ours):
        assert text.startswith('{\n  "b": "') and text.endswith('"\n}')
        obj = json.loads(text)
        assert list(obj) == ["b"]
        img = Image.open(io.BytesIO(base64.b64decode(obj["b"])))
        assert img.format == "JPEG" and img.size == (28, 28) and img.mode == "L"
    assert manifest["databasesLoadData.zip"]["sign_mnist_base64"]["entries"] == 1


def test_cifar_labels_equal_the_real_file(replica):
    dest, _ = replica
    ours = (dest / "cifar100_labels.json").read_bytes()
    labels = json.loads(ours)
    assert len(labels) == 100 and labels[0] == "apple" and labels[-1] == "worm"
    assert not ours.endswith(b"\n")
    assert ours == _real(REAL_CIFAR).read_bytes()


@pytest.mark.parametrize("object_name", sorted(IMAGE_FOLDER_ZIPS))
def test_image_folder_zips(replica, object_name):
    dest, manifest = replica
    facts = manifest[object_name]
    classes = list(IMAGE_FOLDER_ZIPS[object_name]["classes"])
    with zipfile.ZipFile(dest / object_name) as zf:
        names = zf.namelist()
        assert all(n.split("/")[0] in ("Train", "Test") for n in names)  # no wrapper folder
        dirs = {n for n in names if n.endswith("/")}
        assert dirs == {"Train/", "Test/"} | {f"{s}/{c}/" for s in ("Train", "Test") for c in classes}
        assert names.index("Train/") < names.index(f"Train/{classes[0]}/")
        for split in ("Train", "Test"):
            expected = image_folder_counts(object_name, DEFAULT_SCALE)[split]
            assert facts[split] == expected
            total = round(IMAGE_FOLDER_ZIPS[object_name][split.lower()] * DEFAULT_SCALE)
            assert sum(expected.values()) == max(total, 2 * len(classes))
            sizes = set()
            for cls in classes:
                members = [n for n in names if n.startswith(f"{split}/{cls}/") and not n.endswith("/")]
                assert len(members) == expected[cls] >= 2
                assert all(n.endswith(".jpg") for n in members)
                for member in members[:3]:
                    img = Image.open(io.BytesIO(zf.read(member)))
                    img.load()
                    assert img.format == "JPEG"
                    sizes.add(img.size)
                    if object_name == "sign-language-img.zip":
                        assert img.size == (28, 28) and img.mode == "L"
                    elif object_name == "TomAndJerry.zip":
                        assert img.size == (640, 480) and img.mode == "RGB"
                    elif object_name == "MalariaCells.zip":
                        assert img.mode == "RGB" and all(90 <= s <= 160 for s in img.size)
                    else:
                        assert img.mode == "RGB" and all(128 <= s <= 256 for s in img.size)
            if object_name in ("MalariaCells.zip", "TumorClassification.zip"):
                assert len(sizes) > 1  # sizes vary
        assert all(info.date_time == (1980, 1, 1, 0, 0, 0) for info in zf.infolist())


def test_scale_one_counts_are_the_real_ones():
    assert csv_row_counts(1.0) == (27455, 7172)
    real = {
        "sign-language-img.zip": (27455, 7172, 24),
        "MalariaCells.zip": (27558, 15832, 2),
        "TomAndJerry.zip": (301, 42, 2),
        "TumorClassification.zip": (1050, 144, 3),
    }
    for name, (train, test, k) in real.items():
        counts = image_folder_counts(name, 1.0)
        assert sum(counts["Train"].values()) == train
        assert sum(counts["Test"].values()) == test
        assert len(counts["Train"]) == k
        assert max(counts["Train"].values()) - min(counts["Train"].values()) <= 1


# ------------------------------------------------------------ determinism ----

def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path):
    a = make_replica(tmp_path / "a", scale=0.005, seed=3)
    b = make_replica(tmp_path / "b", scale=0.005, seed=3)
    assert a == b
    hashes_a = _sha256_tree(tmp_path / "a")
    assert hashes_a == _sha256_tree(tmp_path / "b")
    assert len(hashes_a) == 7 + 9  # 6 objects + manifest, 9 img_mnist files
    make_replica(tmp_path / "c", scale=0.005, seed=4)
    hashes_c = _sha256_tree(tmp_path / "c")
    for name in ("databasesLoadData.zip", "sign-language-img.zip", "MalariaCells.zip", "TomAndJerry.zip",
                 "TumorClassification.zip", "img_mnist/29_B.jpg"):
        assert hashes_a[name] != hashes_c[name], name
    assert hashes_a["cifar100_labels.json"] == hashes_c["cifar100_labels.json"]


def test_objects_subset_and_manifest_merge(tmp_path):
    m1 = make_replica(tmp_path, scale=0.005, seed=0, objects={"cifar100_labels.json"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cifar100_labels.json", MANIFEST_NAME]
    assert "cifar100_labels.json" in m1 and "databasesLoadData.zip" not in m1
    m2 = make_replica(tmp_path, scale=0.005, seed=0, objects=["img_mnist/29_B.jpg", "TomAndJerry.zip"])
    assert sorted(p.name for p in (tmp_path / "img_mnist").iterdir()) == ["29_B.jpg"]
    assert "cifar100_labels.json" in m2 and "TomAndJerry.zip" in m2
    assert m2["img_mnist"]["count"] == 1
    # A single object written alone equals the same object of a full run.
    full = make_replica(tmp_path / "full", scale=0.005, seed=0)
    assert full["TomAndJerry.zip"]["sha256"] == m2["TomAndJerry.zip"]["sha256"]
    assert (tmp_path / "img_mnist/29_B.jpg").read_bytes() == (tmp_path / "full/img_mnist/29_B.jpg").read_bytes()
    with pytest.raises(ValueError):
        make_replica(tmp_path, scale=0.005, objects={"nope.zip"})
    with pytest.raises(ValueError):
        make_replica(tmp_path, scale=0)


def test_worker_processes_write_the_same_bytes(tmp_path):
    objects = ["TomAndJerry.zip", "TumorClassification.zip", "img_mnist"]
    one = make_replica(tmp_path / "one", scale=0.005, seed=2, objects=objects)
    two = make_replica(tmp_path / "two", scale=0.005, seed=2, objects=objects, workers=2)
    assert one == two
    assert _sha256_tree(tmp_path / "one") == _sha256_tree(tmp_path / "two")
