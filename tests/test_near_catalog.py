"""Near copies end to end from a catalog: every image format takes the
cleaning key `drop_near_leaked_from_test`, per entry or per config; test
images planted as near copies of train images (shifted by a pixel,
brighter, recompressed as JPEG) are reported, and dropped under
`near_leaked_from_train` only when asked. The course's own new configs are
built from their builders' dummy data."""

from __future__ import annotations

import base64
import io
import json
import textwrap
import zipfile

import cv2
import numpy as np
import pytest
from PIL import Image

FORMATS = ("csv_pixels", "base64_json", "json_urls", "zip_folders")
LABELS = ("cat", "dog")
PLANTED = 3


def sign_like(seed: int) -> np.ndarray:
    """A 28x28 grey picture of blobs (as tests/test_near.py draws them)."""
    rng = np.random.default_rng(seed)
    image = np.full((28, 28), rng.integers(90, 160), dtype=np.uint8)
    for _ in range(4):
        centre = tuple(int(v) for v in rng.integers(4, 24, 2))
        cv2.circle(image, centre, int(rng.integers(3, 8)), int(rng.integers(0, 255)), -1)
    return cv2.GaussianBlur(image, (3, 3), 0)


def planted_copies(image: np.ndarray) -> list[np.ndarray]:
    moved = cv2.copyMakeBorder(image, 0, 0, 1, 0, cv2.BORDER_REPLICATE)[:, :28]
    brighter = np.clip(image.astype(np.float32) * 1.1, 0, 255).astype(np.uint8)
    jpeg = cv2.imdecode(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 75])[1], 0)
    return [moved, brighter, jpeg]


def splits() -> dict[str, list[tuple[str, np.ndarray]]]:
    """Train: 8 pictures. Test: a near copy of each of 3 train pictures (of
    each kind once), then 3 pictures of their own."""
    train = [(LABELS[i % 2], sign_like(i)) for i in range(8)]
    test = [(train[i][0], planted_copies(train[i][1])[i]) for i in range(PLANTED)]
    test += [(LABELS[i % 2], sign_like(100 + i)) for i in range(3)]
    return {"train": train, "test": test}


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def write_sources(folder, base_url: str) -> dict[str, str]:
    """Each format's files for both splits; {format: its sources line}."""
    data = splits()
    header = ",".join(["label"] + [f"pixel{i}" for i in range(1, 785)])
    with zipfile.ZipFile(folder / "near.zip", "w") as archive:
        for split, images in data.items():
            rows, records, lines = [header], [], []
            for k, (label, pixels) in enumerate(images):
                rows.append(",".join([str(LABELS.index(label))] + [str(v) for v in pixels.ravel()]))
                encoded = png(pixels)
                records.append({"label": label, "image": base64.b64encode(encoded).decode()})
                (folder / f"{split}_{k}.png").write_bytes(encoded)
                lines.append({"content": f"{base_url}{split}_{k}.png", "label": label})
                info = zipfile.ZipInfo(f"{split.title()}/{label}/{k}.png", (1980, 1, 1, 0, 0, 0))
                archive.writestr(info, encoded)
            (folder / f"{split}.csv").write_text("\n".join(rows) + "\n")
            (folder / f"{split}.json").write_text(json.dumps(records))
            (folder / f"{split}.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    both = '{{ location = "{0}train.{1}" }}, {{ location = "{0}test.{1}", split = "test" }}'
    return {"csv_pixels": both.format("", "csv"), "base64_json": both.format("", "json"),
            "json_urls": both.format(base_url, "jsonl"),
            "zip_folders": f'{{ location = "{base_url}near.zip" }}'}


def catalog_text(sources: dict[str, str]) -> str:
    entries = []
    for fmt in FORMATS:
        entries.append(textwrap.dedent(f"""\
            [[dataset]]
            name = "team_near_{fmt}"
            version = "1.0.0"
            description = "Planted near copies."
            format = "{fmt}"
            classes = ["cat", "dog"]
            image = {{ mode = "L", size = [28, 28] }}
            configs = [
              {{ name = "reported", cleaning = {{ near_distance = 4 }} }},
              {{ name = "dropped", cleaning = {{ drop_near_leaked_from_test = true }} }},
            ]
            sources = [{sources[fmt]}]
            """))
    return "\n".join(entries)


@pytest.fixture(scope="module")
def near_builds(tmp_path_factory):
    import tensorflow_datasets as tfds

    from sign_datasets.catalog import teams
    from sign_datasets.replica import ReplicaServer

    root = tmp_path_factory.mktemp("near")
    bucket = root / "bucket"
    bucket.mkdir()
    with ReplicaServer(bucket, port=0) as server, pytest.MonkeyPatch.context() as patch:
        patch.setenv("SIGN_DATASETS_ALLOWED_HOSTS", f"127.0.0.1:{server.port}")
        sources = write_sources(bucket, server.base_url)
        for fmt in ("csv_pixels", "base64_json"):
            for split in ("train", "test"):
                suffix = "csv" if fmt == "csv_pixels" else "json"
                (root / f"{split}.{suffix}").write_bytes((bucket / f"{split}.{suffix}").read_bytes())
        catalog = root / "near.toml"
        catalog.write_text(catalog_text(sources))
        teams.register_file(catalog)
        builds = {}
        for fmt in FORMATS:
            for config in ("reported", "dropped"):
                builder = tfds.builder(f"team_near_{fmt}/{config}", data_dir=str(root / "data"))
                builder.download_and_prepare()
                builds[fmt, config] = builder
    return builds


@pytest.mark.parametrize("fmt", FORMATS)
def test_planted_near_copies_are_reported_and_dropped_only_when_asked(near_builds, fmt):
    reported, dropped = near_builds[fmt, "reported"], near_builds[fmt, "dropped"]
    for builder, drops in ((reported, {}), (dropped, {"near_leaked_from_train": PLANTED})):
        leak = builder.info.metadata["quality"]["near_leaked_from_train"]
        assert leak["count"] == PLANTED and leak["different_labels"] == 0
        assert len(leak["first_pairs"]) == PLANTED
        assert builder.info.metadata["cleaning"]["test"]["drops"] == drops
        assert builder.info.splits["test"].num_examples == 6 - len(drops) * PLANTED
        assert builder.info.splits["train"].num_examples == 8
    assert dropped.info.metadata["quality"]["near_leaked_from_train"]["dropped_from_test"]
    assert not reported.info.metadata["quality"]["near_leaked_from_train"]["dropped_from_test"]


def test_the_course_configs_drop_near_leakage_from_dummy_data(monkeypatch, tmp_path):
    """sign_language_img/28x28_no_near_leakage drops one exact and one near
    copy of a train image; sign_mnist_csv's dummy rows have none."""
    import tensorflow_datasets as tfds

    import sign_datasets
    from sign_datasets.builders.sign_language_img import sign_language_img_dataset_builder as img
    from sign_datasets.builders.sign_mnist_csv import sign_mnist_csv_dataset_builder as csv

    expected = {
        "sign_language_img/28x28_no_near_leakage": (
            img, {"leaked_from_train": 1, "near_leaked_from_train": 1}, 1),
        "sign_mnist_csv/original_no_near_leakage": (csv, {}, 0),
    }
    assert sign_datasets
    for name, (module, drops, near) in expected.items():
        dummy = module.__file__.rsplit("/", 1)[0] + "/dummy_data"
        monkeypatch.setenv("SIGN_DATASETS_SOURCE", dummy)
        builder = tfds.builder(name, data_dir=str(tmp_path / "data"))
        builder.download_and_prepare()
        assert builder.info.metadata["cleaning"]["test"]["drops"] == drops
        leak = builder.info.metadata["quality"]["near_leaked_from_train"]
        assert (leak["count"], leak["dropped_from_test"]) == (near, True)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_image_format_takes_the_near_keys(tmp_path, fmt):
    from sign_datasets.catalog.loader import load_catalog

    sources = {"zip_folders": '{ location = "near.zip" }'}
    path = tmp_path / "ok.toml"
    path.write_text(catalog_text({f: sources.get(f, '{ location = "train.csv" }')
                                  for f in FORMATS}).replace(
        'configs = [', 'cleaning = { near_distance = 6 }\nconfigs = ['))
    entry = {e.format: e for e in load_catalog(path)}[fmt]
    assert entry.cleaning_for("reported") == {"near_distance": 4}  # the config overrides the entry
    assert entry.cleaning_for("dropped") == {"near_distance": 6,
                                             "drop_near_leaked_from_test": True}


@pytest.mark.parametrize("cleaning, field, problem", [
    ("{ near_distance = 11 }", "configs[0].cleaning.near_distance", "is not between 0 and 10"),
    ("{ drop_duplicates = true }", "configs[0].cleaning.drop_duplicates", ""),
])
def test_a_configs_cleaning_holds_only_near_keys_in_range(tmp_path, cleaning, field, problem):
    from catalog_refusals import assert_refused

    path = tmp_path / "bad.toml"
    path.write_text(catalog_text({f: '{ location = "train.csv" }' for f in FORMATS})
                    .split("\n[[dataset]]")[0]
                    .replace('{ name = "reported", cleaning = { near_distance = 4 } }',
                             f'{{ name = "reported", cleaning = {cleaning} }}'))
    assert_refused(path, None, field, problem)


def test_report_and_info_print_the_quality_report(near_builds, capsys):
    from catalog_helpers import run_cli

    builder = near_builds["csv_pixels", "dropped"]
    data_dir = str(builder.data_dir).split("/team_near_csv_pixels/")[0]
    for command in ("report", "info"):
        code, out, err = run_cli(capsys, command, "team_near_csv_pixels/dropped",
                                 "--data-dir", data_dir)
        assert code == 0, err
        assert "Quality report: team_near_csv_pixels/dropped/1.0.0 (hash dct64" in out
        assert "test images with a near copy in train: 3 (dropped)" in out
