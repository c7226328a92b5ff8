"""The quality report on the replica, through the real download path: the
replica plants near copies (replica/near_copies.py) and draws every other
image far from the rest, so the report's counts are exact: the planted pairs
within train, the planted test copies of train images (those under another
label apart), and the configs that drop near leakage drop exactly those."""

from __future__ import annotations

import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")

CSV = "databasesLoadData.zip/sign_mnist_{}.csv"
CSV_MEMBER = {"train": "sign_mnist_train/sign_mnist_train", "test": "sign_mnist_test/sign_mnist_test"}


@pytest.fixture(scope="module")
def near_builds(replica_server, tmp_path_factory):
    import sign_datasets  # noqa: F401  (registers the builders)

    data_dir = tmp_path_factory.mktemp("tfds_near")
    builders = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SIGN_DATASETS_SOURCE", replica_server.base_url)
        for name in ("sign_mnist_csv/dirty", "sign_mnist_csv/original_no_near_leakage",
                     "sign_language_img/28x28_no_near_leakage"):
            builders[name] = tfds.builder(name, data_dir=str(data_dir))
            builders[name].download_and_prepare()
    return builders


def csv_where(split: str, row: int, train_file: str) -> str:
    member = CSV_MEMBER[split] + (train_file if split == "train" else "")
    return f"databasesLoadData.zip/{member}.csv:{row + 2}"  # header line 1, rows from line 2


def planted(manifest: dict, name: str) -> tuple[set, set, int]:
    """(pairs within train, test-train pairs, test copies under another label)
    as the report names them: (earlier, later) within train, (test, train)."""
    if name.startswith("sign_mnist_csv"):
        train_file = "_clean" if name.endswith("dirty") else ""
        plants = manifest["databasesLoadData.zip"]["sign_mnist_near_copies"]
        where = [(csv_where(p["split"], p["index"], train_file), csv_where("train", p["source"], train_file),
                  p) for p in plants]
        within = {tuple(sorted((a, b), key=lambda w: int(w.rsplit(":", 1)[1]))) for a, b, p in where
                  if p["split"] == "train"}
    else:
        plants = manifest["sign-language-img.zip"]["near_copies"]
        where = [("sign-language-img.zip/" + p["member"], "sign-language-img.zip/" + p["source"], p)
                 for p in plants]
        within = {tuple(sorted((a, b))) for a, b, p in where if p["member"].startswith("Train/")}
    leaks = {(a, b) for a, b, p in where if not (p.get("split") == "train"
                                                 or p.get("member", "").startswith("Train/"))}
    return within, leaks, sum(not p["same_label"] for p in plants)


@pytest.mark.parametrize("name", ["sign_mnist_csv/dirty", "sign_mnist_csv/original_no_near_leakage",
                                  "sign_language_img/28x28_no_near_leakage"])
def test_the_report_counts_the_planted_near_copies_exactly(near_builds, replica_manifest, name):
    within, leaks, relabelled = planted(replica_manifest, name)
    assert (len(within), len(leaks), relabelled) == (6, 9, 2)
    quality = near_builds[name].info.metadata["quality"]
    train, test = quality["splits"]["train"], quality["splits"]["test"]
    assert (train["near_pairs"], train["near_groups"], train["in_near_groups"]) == (6, 6, 12)
    assert train["different_labels"] == 0
    listed = {tuple(sorted(pair[:2], key=lambda w: (len(w), w))) for pair in train["first_pairs"]}
    assert listed == {tuple(sorted(pair, key=lambda w: (len(w), w))) for pair in within}
    assert test["near_pairs"] == 0
    leak = quality["near_leaked_from_train"]
    assert (leak["count"], leak["different_labels"]) == (9, 2)
    found = {tuple(pair[:2]) for pair in leak["first_pairs"] + leak["first_different_labels"]}
    assert found == leaks
    dropping = name.endswith("no_near_leakage")
    assert leak["dropped_from_test"] == dropping
    report = near_builds[name].info.metadata["cleaning"]["test"]
    assert report["drops"].get("near_leaked_from_train", 0) == (9 if dropping else 0)
    assert report["kept"] == report["records"] - (9 if dropping else 0)
    assert near_builds[name].info.splits["test"].num_examples == report["kept"]


def test_stored_index_finds_each_listed_image_in_the_built_split(near_builds, replica_dir):
    """The report says where each listed image is stored: the example there
    has the pixels of the zip member it names."""
    import zipfile

    from sign_datasets.core.images import decode_image

    builder = near_builds["sign_language_img/28x28_no_near_leakage"]
    quality = builder.info.metadata["quality"]
    stored = dict(quality["splits"]["train"]["stored_index"])
    stored.update(quality["near_leaked_from_train"]["stored_index"]["train"])
    assert quality["near_leaked_from_train"]["stored_index"]["test"] == {}  # dropped
    assert len(stored) >= 12
    with zipfile.ZipFile(replica_dir / "sign-language-img.zip") as archive:
        for where, index in sorted(stored.items()):
            (example,) = tfds.as_numpy(builder.as_dataset(split=f"train[{index}:{index + 1}]"))
            member = where.removeprefix("sign-language-img.zip/")
            expected = decode_image(archive.read(member), "L")
            assert np.array_equal(example["image"], expected), where
