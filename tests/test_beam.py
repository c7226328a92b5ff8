"""Generation on Apache Beam (issue 9): for every dataset, a DirectRunner build
holds the same examples under the same keys, byte for byte, as a local build,
and stores the same cleaning report; both CLIs run it; the library works
without apache-beam.

Sources are the small replica with dirt added to every reader's input, so
each drop reason and whole-split rule (repeats, leakage) crosses workers.
"""

from __future__ import annotations

import base64
import io
import json
import random
import shutil
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, quiet_env
from sign_datasets.formats import csv_lines, csv_pixels

tfds = pytest.importorskip("tensorflow_datasets")
pytest.importorskip("apache_beam")

import sign_datasets  # noqa: E402,F401  (registers the builders)
from sign_datasets.core.cleaning import SourceError  # noqa: E402
from sign_datasets.generate import beam as beam_lib  # noqa: E402

DATA_ZIP = "databasesLoadData.zip"
SIGN_ZIP = "sign-language-img.zip"
CSV_MEMBER = "sign_mnist_train/sign_mnist_train_clean.csv"
JSON_MEMBER = "sign_mnist_json/data.json"
BASE64_MEMBER = "sign_mnist_base64/data.json"
BUCKET = "https://storage.googleapis.com/platzi-tf2/"
# Small byte ranges, so that the CSV (about 1.6 MB here) is read by many
# workers' ranges and its 1.2 MB line crosses several of them.
RANGE_BYTES = "100000"
OPTIONS = "runner=DirectRunner,direct_num_workers=2,direct_running_mode={mode}"

# Every dataset, at least one config each; multi_processing where it matters
# most (it starts slower), threads or in-memory for the others.
CASES = [
    ("sign_mnist_csv/dirty", "multi_processing"),
    ("sign_mnist_csv/original", "in_memory"),
    ("sign_mnist_json", "multi_processing"),
    ("sign_mnist_base64", "multi_threading"),
    ("sign_language_img/28x28", "multi_threading"),
    ("sign_language_img/28x28_no_leakage", "multi_processing"),
    ("malaria_cells/124x124", "multi_threading"),
    ("tom_and_jerry/native", "in_memory"),
    ("tumor_classification/native", "multi_threading"),
]
# What each dirty input must show, so that the comparison covers the rules.
EXPECTED_DROPS = {
    "sign_mnist_csv/dirty": {"train": {"line_too_long", "wrong_field_count", "empty_cell",
                                       "non_numeric_label", "non_numeric_cell",
                                       "pixel_out_of_range", "unknown_label", "duplicate_row"}},
    "sign_mnist_json": {"train": {"unknown_label", "not_found", "not_an_image"}},
    "sign_mnist_base64": {"train": {"unknown_label", "bad_base64", "not_an_image"}},
    "sign_language_img/28x28": {"train": {"duplicate_image", "corrupt_image", "not_an_image",
                                          "duplicate_member_name"}},
    "sign_language_img/28x28_no_leakage": {"test": {"leaked_from_train"}},
}


# --- the dirty source -------------------------------------------------------------

def jpeg(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=90)
    return out.getvalue()


def rewrite_zip(path: Path, change) -> None:
    with zipfile.ZipFile(path) as zf:
        members = [(info.filename, zf.read(info)) for info in zf.infolist()]
    members = change(members)
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name" is the point
        for name, data in members:
            zf.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)


def dirty_csv(text: bytes) -> bytes:
    """The replica's dirty copy with one row of every other fault, spread over
    the file, and more repeats far from their originals."""
    lines = text.split(b"\n")
    good = lines[5]
    label, *pixels = good.split(b",")
    faults = {
        40: b"3," + b"1," * 5000 + b"1" * (1_200_000),           # line_too_long
        120: b"3,1,2,3",                                         # wrong_field_count
        200: b"3," + b",".join(pixels[:-1]) + b",",              # empty_cell
        260: b"x," + b",".join(pixels),                          # non_numeric_label
        380: b"3,300," + b",".join(pixels[1:]),                  # pixel_out_of_range
        450: b"9," + b",".join(pixels),                          # unknown_label
        520: good,                                               # a repeat of line 7
        640: lines[300],                                         # a repeat
        700: b"",                                                # blank
        760: good + b"\r",                                       # CRLF repeat
    }
    for at in sorted(faults, reverse=True):
        lines.insert(at, faults[at])
    return b"\n".join(lines)


def dirty_json(text: bytes, images: Path) -> bytes:
    rng = np.random.default_rng(1)
    (images / "big_A.jpg").write_bytes(jpeg(rng.integers(0, 256, (40, 40), dtype=np.uint8)))
    (images / "text_B.jpg").write_bytes(b"not an image at all\n")
    extra = [("big_A.jpg", "a"), ("missing_C.jpg", "c"), ("text_B.jpg", "b"), ("29_B.jpg", "j")]
    lines = text.rstrip(b"\n").split(b"\n")
    for at, (name, label) in zip((2, 5, 7, 9), extra):
        lines.insert(at, json.dumps({"content": f"{BUCKET}img_mnist/{name}", "label": label}).encode())
    return b"\n".join(lines + lines[:3]) + b"\n"  # repeated URLs too


def dirty_base64() -> bytes:
    rng = np.random.default_rng(2)

    def b64(pixels) -> str:
        return base64.b64encode(jpeg(pixels)).decode()

    first = {"b": b64(rng.integers(0, 256, (28, 28), dtype=np.uint8)),
             "j": b64(rng.integers(0, 256, (28, 28), dtype=np.uint8)),
             "c": "!!!not base64",
             "d": base64.b64encode(b"plain text, no picture").decode(),
             "e": b64(rng.integers(0, 256, (40, 40), dtype=np.uint8))}
    second = {"a": b64(rng.integers(0, 256, (28, 28), dtype=np.uint8))}
    return (json.dumps(first, indent=2) + "\n" + json.dumps(second) + "\n").encode()


def dirty_sign_zip(members: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    train = [(n, d) for n, d in members if n.startswith("Train/") and n.endswith(".jpg")]
    test = [(n, d) for n, d in members if n.startswith("Test/") and n.endswith(".jpg")]
    (n1, d1), (n2, d2), (n3, d3) = train[3], train[100], train[200]
    folder = n1.rsplit("/", 1)[0]
    return members + [
        (f"{folder}/zz_repeat.jpg", d1),                          # duplicate_image
        (n2.rsplit("/", 1)[0] + "/aa_repeat.jpg", d2),            # before its original
        (f"{folder}/truncated.jpg", d3[: len(d3) // 2]),           # corrupt_image
        (f"{folder}/hello.jpg", b"hello, not an image\n"),        # not_an_image
        (n3, d1),                                                 # duplicate_member_name
        (test[0][0].rsplit("/", 1)[0] + "/leak_1.jpg", d3),       # leaked from train
        (test[9][0].rsplit("/", 1)[0] + "/leak_2.jpg", d2),
        ("__MACOSX/Train/._x.jpg", b"mac"),
        ("Train/notes.txt", b"junk\n"),
    ]


@pytest.fixture(scope="module")
def dirty_source(replica_dir, tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("beam_source") / "bucket"
    shutil.copytree(replica_dir, source)

    def data_zip(members):
        out = []
        for name, data in members:
            if name == CSV_MEMBER:
                data = dirty_csv(data)
            elif name == JSON_MEMBER:
                data = dirty_json(data, source / "img_mnist")
            elif name == BASE64_MEMBER:
                data = dirty_base64()
            out.append((name, data))
        return out

    rewrite_zip(source / DATA_ZIP, data_zip)
    rewrite_zip(source / SIGN_ZIP, dirty_sign_zip)
    return source


@pytest.fixture(scope="module")
def env(dirty_source):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SIGN_DATASETS_SOURCE", str(dirty_source))
        patch.setenv(csv_lines.BEAM_RANGE_ENV, RANGE_BYTES)
        # 4 of the 16 records of the dirty data.json fail on purpose.
        patch.setenv("SIGN_DATASETS_MAX_FAILED_SHARE", "0.5")
        yield


# --- building and reading the shards ------------------------------------------------

def build(name: str, root: Path, mode: str | None = None, download_dir: Path | None = None):
    config = tfds.download.DownloadConfig()
    if mode is not None:
        config = tfds.download.DownloadConfig(
            beam_options=beam_lib.pipeline_options(OPTIONS.format(mode=mode)))
    builder = tfds.builder(name, data_dir=str(root / "data"))
    builder.download_and_prepare(download_dir=str(download_dir or root / "downloads"),
                                 download_config=config)
    return builder


def shard_records(builder, split: str) -> list[bytes]:
    """Every serialized example of a split, shards in order.

    TFDS orders a split by the hash of each example's key, locally and under
    Beam alike; only the cut into shards may differ. So equal sequences mean
    the same examples under the same keys, byte for byte.
    """
    import tensorflow as tf
    files = sorted(Path(builder.data_dir).glob(f"*-{split}.tfrecord-*"))
    assert files, f"no shards of {split} in {builder.data_dir}"
    return [record.numpy() for record in tf.data.TFRecordDataset([str(f) for f in files])]


def metadata(builder) -> dict:
    """The builder's metadata as stored, the quality report included."""
    found = json.loads(json.dumps(dict(builder.info.metadata)))
    assert "quality" in found, builder.info.full_name
    return found


@pytest.fixture(scope="module")
def local_builds(env, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("local")
    return {name: build(name, root / name.replace("/", "-")) for name, _ in CASES}


@pytest.mark.parametrize("name,mode", CASES, ids=[f"{n}-{m}" for n, m in CASES])
def test_beam_build_equals_local_build(name, mode, local_builds, tmp_path):
    local = local_builds[name]
    on_beam = build(name, tmp_path, mode)
    assert set(on_beam.info.splits) == set(local.info.splits)
    for split in local.info.splits:
        records = shard_records(local, split)
        assert shard_records(on_beam, split) == records
        assert on_beam.info.splits[split].num_examples == len(records) > 0
    assert metadata(on_beam) == metadata(local)
    cleaning = metadata(local)["cleaning"]
    for split, reasons in EXPECTED_DROPS.get(name, {}).items():
        assert reasons <= set(cleaning[split]["drops"]), cleaning[split]
        assert all(cleaning[split]["examples"][reason] for reason in reasons)


def test_beam_refuses_to_drop_near_leakage_in_one_line(env, tmp_path):
    """Dropping test's near copies of train needs all of train's hashes
    before test's examples: a local build does it, Beam says so."""
    with pytest.raises(SourceError, match="near copy in train is done by a local build only"):
        build("sign_language_img/28x28_no_near_leakage", tmp_path, "in_memory")


def test_beam_counts_resizes_and_leakage_as_the_local_path(local_builds):
    """The extras beside the report: these inputs hold resized images and leaks."""
    assert metadata(local_builds["sign_mnist_json"])["resized"] == {"train": 2}  # one repeated
    assert metadata(local_builds["sign_mnist_base64"])["resized"] == {"train": 1}
    leakage = metadata(local_builds["sign_language_img/28x28"])["leakage"]
    assert leakage["count"] == 2 and len(leakage["examples"]) == 2


def test_url_cache_is_kept_across_beam_workers(env, dirty_source, tmp_path, monkeypatch):
    """A second Beam build with the same download dir fetches nothing: the
    served images can be gone and the dataset is the same."""
    from sign_datasets.replica import ReplicaServer

    downloads = tmp_path / "downloads"
    images = dirty_source / "img_mnist"
    hidden = dirty_source / "img_mnist_hidden"
    with ReplicaServer(dirty_source, port=0) as server:
        monkeypatch.setenv("SIGN_DATASETS_SOURCE", server.base_url)
        first = build("sign_mnist_json", tmp_path / "first", "multi_threading", downloads)
        images.rename(hidden)
        try:
            second = build("sign_mnist_json", tmp_path / "second", "multi_threading", downloads)
        finally:
            hidden.rename(images)
    records = shard_records(first, "train")
    assert len(records) == metadata(first)["cleaning"]["train"]["kept"] > 0
    assert shard_records(second, "train") == records
    assert metadata(second) == metadata(first)


# --- byte ranges of a CSV ------------------------------------------------------------

def flatten(chunks) -> list:
    """(line number, bytes) of every line and the place of every dropped one."""
    out = []
    for chunk in chunks:
        out.extend([("dropped", chunk.where)] if isinstance(chunk, csv_pixels.Dropped) else chunk)
    return out


def test_byte_ranges_give_every_line_once_numbered_as_the_whole_file(dirty_source):
    with zipfile.ZipFile(dirty_source / DATA_ZIP) as zf:
        data = zf.read(CSV_MEMBER)
    whole = flatten(csv_pixels.iter_chunks(io.BytesIO(data), "f", chunk_rows=50))
    assert ("dropped", "f:41") in whole  # the overlong line, skipped in pieces
    start = csv_pixels.read_header(io.BytesIO(data), "f")
    rng = random.Random(0)
    for size in (1, 997, 3000, 100_000, 1_300_000, len(data)):
        pieces = []
        for byte_range in csv_lines.byte_ranges(start, len(data), size + rng.randrange(50)):
            pieces += flatten(csv_lines.iter_range_chunks(io.BytesIO(data), "f", *byte_range,
                                                           chunk_rows=50))
        assert sorted(pieces, key=str) == sorted(whole, key=str), size


# --- both command lines ---------------------------------------------------------------

def run(args: list[str], **env) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, text=True, cwd=REPO, timeout=600,
                            env=quiet_env(**env))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result


def test_tfds_build_with_beam_pipeline_options(dirty_source, local_builds, tmp_path):
    tfds_cli = Path(sys.executable).parent / "tfds"
    run([str(tfds_cli), "build", "--imports", "sign_datasets", "sign_mnist_csv/dirty",
         f"--data_dir={tmp_path / 'data'}", f"--download_dir={tmp_path / 'downloads'}",
         "--beam_pipeline_options=" + OPTIONS.format(mode="multi_processing")],
        SIGN_DATASETS_SOURCE=str(dirty_source), SIGN_DATASETS_BEAM_RANGE_BYTES=RANGE_BYTES)
    built = tfds.builder("sign_mnist_csv/dirty", data_dir=str(tmp_path / "data"))
    local = local_builds["sign_mnist_csv/dirty"]
    for split in ("train", "test"):
        assert shard_records(built, split) == shard_records(local, split)
    assert metadata(built) == metadata(local)


def test_sign_datasets_build_with_beam(dirty_source, local_builds, tmp_path):
    result = run([sys.executable, "-m", "sign_datasets", "build", "sign_mnist_base64",
                  "tom_and_jerry/native", "--data-dir", str(tmp_path),
                  "--beam", OPTIONS.format(mode="multi_processing")],
                 SIGN_DATASETS_SOURCE=str(dirty_source))
    assert "unknown_label=1" in result.stdout
    for name in ("sign_mnist_base64", "tom_and_jerry/native"):
        built = tfds.builder(name, data_dir=str(tmp_path))
        local = local_builds[name]
        for split in local.info.splits:
            assert shard_records(built, split) == shard_records(local, split)
        assert metadata(built) == metadata(local)


# --- without apache-beam -----------------------------------------------------------------

NO_BEAM = """
import sys
sys.modules["apache_beam"] = None  # any import of it now fails
import sign_datasets
import tensorflow_datasets as tfds
builder = tfds.builder("sign_mnist_base64", data_dir=sys.argv[1])
builder.download_and_prepare()
print("examples", len(list(builder.as_dataset(split="train"))))
print("report", builder.info.metadata["cleaning"]["train"]["kept"])
from sign_datasets.cli.commands import main
print("cli", main(["build", "sign_mnist_base64", "--data-dir", sys.argv[1],
                   "--beam", "runner=DirectRunner"]))
assert "apache_beam" not in sys.modules or sys.modules["apache_beam"] is None
"""


def test_library_imports_builds_and_reads_without_beam(dirty_source, tmp_path):
    result = run([sys.executable, "-c", NO_BEAM, str(tmp_path)],
                 SIGN_DATASETS_SOURCE=str(dirty_source))
    assert "examples 3" in result.stdout and "report 3" in result.stdout
    assert "cli 2" in result.stdout
    assert "sign-datasets[beam]" in result.stderr


def test_empty_split_under_beam_names_its_reasons(tmp_path, monkeypatch):
    from sign_datasets.core.cleaning import SourceError

    source = tmp_path / "bucket"
    source.mkdir()
    with zipfile.ZipFile(source / DATA_ZIP, "w") as zf:
        zf.writestr(BASE64_MEMBER, json.dumps({"j": "!!!", "b": "@@@"}))
    monkeypatch.setenv("SIGN_DATASETS_SOURCE", str(source))
    with pytest.raises(SourceError, match=r"all 2 records of the train split were dropped.*"
                                          r"bad_base64=1.*unknown_label=1"):
        build("sign_mnist_base64", tmp_path, "in_memory")


def test_pipeline_options_are_read_as_tfds_build_reads_them():
    from apache_beam.options.pipeline_options import DirectOptions, StandardOptions
    options = beam_lib.pipeline_options(
        "runner=DirectRunner, direct_num_workers=2,--direct_running_mode=multi_threading")
    assert options.view_as(StandardOptions).runner == "DirectRunner"
    assert options.view_as(DirectOptions).direct_num_workers == 2
    assert options.view_as(DirectOptions).direct_running_mode == "multi_threading"
    with pytest.raises(ValueError, match="empty Beam options"):
        beam_lib.pipeline_options(" , ")
