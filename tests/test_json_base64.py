"""sign_mnist_json and sign_mnist_base64: their readers, and real TFDS builds
through the real download path (replica server on 127.0.0.1), with scripted
faults, refused URLs, the cache, the failure limit and the real course files.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from PIL import Image

from sign_datasets.core.cleaning import Dropped, SourceError, screen
from sign_datasets.io.failed_share import TooManyFailures
from sign_datasets.formats import base64_json, json_urls
from sign_datasets.replica import ReplicaServer

BUCKET = "https://storage.googleapis.com/platzi-tf2/"
JSON_MEMBER = "sign_mnist_json/data.json"
BASE64_MEMBER = "sign_mnist_base64/data.json"
JSON_SOURCE = "databasesLoadData.zip/" + JSON_MEMBER
# The 9 lines of the real file, in order (also the replica's at the default scale).
REAL_NAMES = ["29_B", "30_B", "95_B", "58_A", "50_A", "46_A", "3_C", "32_C", "2_C"]
LETTER_INDEX = {"A": 0, "B": 1, "C": 2}


# --- helpers ----------------------------------------------------------------------

def json_line(name: str, label: str | None = None) -> str:
    label = label if label is not None else name.rsplit("_", 1)[1].lower()
    return json.dumps({"content": f"{BUCKET}img_mnist/{name}.jpg", "label": label}) + "\n"


def write_source(folder: Path, members: dict[str, bytes], images_from: Path | None = None) -> Path:
    """A folder in the bucket's layout: databasesLoadData.zip (+ img_mnist/)."""
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / "databasesLoadData.zip", "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    if images_from is not None:
        shutil.copytree(images_from / "img_mnist", folder / "img_mnist")
    return folder


def build(name: str, data_dir: Path, download_dir: Path | None = None):
    import tensorflow_datasets as tfds

    import sign_datasets  # noqa: F401  (registers the builders)
    builder = tfds.builder(name, data_dir=str(data_dir))
    builder.download_and_prepare(download_dir=str(download_dir) if download_dir else None)
    return builder


def examples(builder) -> list[tuple[int, bytes]]:
    """(label, raw pixels) of every example, sorted: TFDS shuffles by key hash."""
    import tensorflow_datasets as tfds
    out = []
    for example in tfds.as_numpy(builder.as_dataset(split="train")):
        assert example["image"].shape == (28, 28, 1) and example["image"].dtype == np.uint8
        out.append((int(example["label"]), example["image"].tobytes()))
    return sorted(out)


def expected_from_jpegs(folder: Path, names: list[str]) -> list[tuple[int, bytes]]:
    """What the replica wrote, decoded here with PIL independently of the builder."""
    out = []
    for name in names:
        pixels = np.asarray(Image.open(folder / "img_mnist" / f"{name}.jpg").convert("L"))
        out.append((LETTER_INDEX[name[-1]], pixels[..., None].tobytes()))
    return sorted(out)


@pytest.fixture
def fast_fetch(monkeypatch):
    """Short timeouts and tiny backoff, so the failure paths take about a second."""
    for name, value in {"SIGN_DATASETS_FETCH_TIMEOUT": "0.5", "SIGN_DATASETS_FETCH_RETRIES": "1",
                        "SIGN_DATASETS_FETCH_BACKOFF": "0.01", "SIGN_DATASETS_FETCH_WORKERS": "4"}.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def server(replica_dir, monkeypatch):
    """A fresh server on the session replica, as the active source."""
    with ReplicaServer(replica_dir, port=0) as fresh:
        monkeypatch.setenv("SIGN_DATASETS_SOURCE", fresh.base_url)
        yield fresh


# --- json_urls reader ---------------------------------------------------------------

def read_urls(data: bytes) -> list[tuple[int, str, str]]:
    return [(r.line, r.url, r.label) for r in json_urls.read(io.BytesIO(data), "data.json")]


def test_json_lines_with_bom_blank_lines_and_crlf():
    data = b"\xef\xbb\xbf" + b'{"content": "u1", "label": "b"}\r\n\r\n  \n{"content": "u2","label":"A"}'
    assert read_urls(data) == [(1, "u1", "b"), (4, "u2", "A")]


def test_json_array_pretty_printed_keeps_line_numbers():
    data = b'\n[\n  {"content": "u1",\n   "label": "b"},\n\n  {"content": "u2", "label": "c"}\n]\n'
    assert read_urls(data) == [(3, "u1", "b"), (6, "u2", "c")]
    assert read_urls(b'[{"content": "u1", "label": "b"}]') == [(1, "u1", "b")]


def test_json_array_is_streamed_across_chunks():
    # Far more than one 64 KB read, so elements straddle chunk boundaries.
    lines = [json.dumps({"content": f"http://h/{i}.jpg", "label": "a"}) for i in range(3000)]
    data = ("[\n" + ",\n".join(lines) + "\n]\n").encode()
    records = read_urls(data)
    assert len(records) == 3000
    assert records[0] == (2, "http://h/0.jpg", "a") and records[-1] == (3001, "http://h/2999.jpg", "a")
    # json.dumps without indent: the whole array is one line of about 190 KB.
    compact = json.dumps([json.loads(line) for line in lines]).encode()
    assert len(read_urls(compact)) == 3000


def test_json_array_with_a_flood_of_blanks():
    # Blanks are let go as they are read, and line numbers still count them.
    data = (b'[{"content": "u1", "label": "b"},' + b" " * 300_000 + b"\n" * 1000
            + b'{"content": "u2", "label": "c"}]')
    assert read_urls(data) == [(1, "u1", "b"), (1001, "u2", "c")]


@pytest.mark.parametrize("data, message", [
    (b"", "holds no records"),
    (b"\n \n", "holds no records"),
    (b'{"content": "u1", "label": "b"}\nnot json\n', "data.json:2: not a JSON record"),
    (b'{"content": "u1", "label": "b"}\n[1, 2]\n', "data.json:2: found a JSON list"),
    (b'{"content": "u1"}\n', "data.json:1: 'label' missing or not text"),
    (b'{"content": 5, "label": "b"}\n', "data.json:1: 'content' missing or not text"),
    (b'{\n"content": "u1", "label": "b"}\n', "data.json:1: not a JSON record"),  # not JSON Lines
    (b'"just text"\n', "data.json:1: found a JSON text"),
    (b'[\n{"content": "u1", "label": "b"},\n5\n]', "data.json:3: found a JSON number"),
    (b'[\n{"content": "u1", "label": "b"}\n{"content": "u2", "label": "b"}]',
     "data.json:3: expected ',' or ']'"),
    (b'[\n{"content": "u1", "label": "b"},\n', "data.json:3: the JSON array is not closed"),
    (b'[{"content": "u1", "label": "b"}]\nextra', "data.json:2: text after the closing ']'"),
    (b'{"content": "u1", "label": "\xff"}\n', "data.json:1: not UTF-8"),
])
def test_json_anything_else_is_a_source_error_naming_the_line(data, message):
    with pytest.raises(SourceError) as error:
        read_urls(data)
    assert message in str(error.value)


def test_json_overlong_line_is_refused_without_reading_it_whole():
    data = (b'{"content": "u1", "label": "b"}\n{"content": "'
            + b"a" * (json_urls.MAX_RECORD_BYTES + 10) + b'"}\n')
    with pytest.raises(SourceError, match=r"data.json:2: line longer than"):
        read_urls(data)


@settings(max_examples=30, deadline=None)
@given(records=st.lists(st.tuples(st.text(min_size=1, max_size=30), st.sampled_from("abcXYj")),
                        min_size=1, max_size=20),
       as_array=st.booleans(), indent=st.sampled_from([None, 0, 2]))
def test_json_both_layouts_read_back_what_was_written(records, as_array, indent):
    objects = [{"content": url, "label": label} for url, label in records]
    if as_array:
        data = json.dumps(objects, indent=indent, ensure_ascii=False).encode("utf-8")
    else:
        data = "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objects).encode("utf-8")
    assert [(url, label) for _, url, label in read_urls(data)] == records


# --- base64_json reader and rules -------------------------------------------------------

def jpeg_b64(value: int = 100, size: int = 28) -> str:
    buffer = io.BytesIO()
    Image.fromarray(np.full((size, size), value, np.uint8)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def entries(data: bytes) -> list[base64_json.Base64Entry]:
    return list(base64_json.read(io.BytesIO(data), "b.json"))


def screened(data: bytes) -> list:
    return [screen(e, base64_json.entry_rules()) for e in entries(data)]


def test_base64_every_accepted_layout():
    image = jpeg_b64()
    layouts = {
        "object": json.dumps({"b": image, "c": image}, indent=2),
        "list": json.dumps([{"b": image}, {"c": image}]),
        "json lines": json.dumps({"b": image}) + "\n\n" + json.dumps({"c": image}) + "\n",
        "records": json.dumps([{"label": "b", "image": image}, {"image": image, "label": "C"}]),
    }
    for layout, text in layouts.items():
        kept = screened(text.encode())
        assert [type(e) for e in kept] == [base64_json.Base64Entry] * 2, layout
        assert [e.label_index for e in kept] == [1, 2], layout
        assert kept[0].pixels.shape == (28, 28, 1) and int(kept[0].pixels[0, 0, 0]) == 100


def test_base64_entries_name_their_line_and_number_and_keep_equal_keys():
    text = '{\n  "b": "%s",\n  "b": "%s"\n}\n{"j": "x"}' % (jpeg_b64(1), jpeg_b64(2))
    found = entries(text.encode())
    assert [e.where for e in found] == ["b.json:2 entry 1 label 'b'", "b.json:3 entry 2 label 'b'",
                                        "b.json:5 entry 3 label 'j'"]
    out = [screen(e, base64_json.entry_rules()) for e in found]
    # json.loads would have kept only the second "b".
    assert [int(e.pixels[0, 0, 0]) for e in out[:2]] == [1, 2]
    assert isinstance(out[2], Dropped) and out[2].reason == "unknown_label"


def test_base64_invalid_entries_are_named_drops():
    image = jpeg_b64()
    text = json.dumps([
        {"j": image}, {"b": "@@@"}, {"b": base64.b64encode(b"not an image").decode()},
        {"b": 42}, {"b": "data:image/png," + image}, {"image": image}, {"B": ""},
        {"b": base64.b64encode(b"\xff\xd8\xff\xe0 truncated jpeg").decode()},
    ])
    drops = screened(text.encode())
    assert [(d.reason, d.where) for d in drops] == [
        ("unknown_label", "b.json:1 entry 1 label 'j'"),
        ("bad_base64", "b.json:1 entry 2 label 'b'"),
        ("not_an_image", "b.json:1 entry 3 label 'b'"),
        ("bad_base64", "b.json:1 entry 4 label 'b'"),
        ("bad_base64", "b.json:1 entry 5 label 'b'"),
        # Without a "label" key it is no record: the image of a class "image".
        ("unknown_label", "b.json:1 entry 6 label 'image'"),
        ("bad_base64", "b.json:1 entry 7 label 'B'"),
        ("corrupt_image", "b.json:1 entry 8 label 'b'"),
    ]


def test_base64_other_sizes_are_resized_and_flagged():
    kept = screened(json.dumps({"b": jpeg_b64(50, 56), "c": jpeg_b64(60)}).encode())
    assert [e.pixels.shape for e in kept] == [(28, 28, 1)] * 2
    assert [e.resized for e in kept] == [True, False]
    assert int(kept[0].pixels[5, 5, 0]) == 50


def test_base64_size_bounds():
    with pytest.raises(SourceError, match="larger than 100 bytes"):
        list(base64_json.read(io.BytesIO(b" " * 101), "b.json", max_bytes=100))
    with pytest.raises(Dropped) as dropped:
        base64_json.decode_base64_text("QUJD" * 100, "b.json:1", max_bytes=30)
    assert dropped.value.reason == "payload_too_large"


@pytest.mark.parametrize("data, message", [
    (b"", "holds no label/image entries"),
    (b"{}", "holds no label/image entries"),
    (b'"text"', "b.json:1: found text"),
    (b"[1]", "b.json:1: element 1 of the list is number"),
    (b'{"b": "x"', "b.json:1: expected ',' or '}' in the object, found the end of the file"),
    (b'{"b" "x"}', "b.json:1: expected ':'"),
    (b'{\n"b": "x",\n}', "b.json:3: expected a quoted label"),
    (b'{"label": "b", "image": "x", "image": "y"}', "a record with 2 'image' fields"),
    (b'{"b": "x"}\n{"b": tru}', "b.json:2: not valid JSON"),
])
def test_base64_other_structures_are_source_errors(data, message):
    with pytest.raises(SourceError) as error:
        entries(data)
    assert message in str(error.value)


@settings(max_examples=60, deadline=None)
@given(payload=st.binary(min_size=1, max_size=200), data=st.data())
def test_base64_text_as_people_paste_it(payload, data):
    text = base64.b64encode(payload).decode()
    if data.draw(st.booleans(), "url-safe"):
        text = base64.urlsafe_b64encode(payload).decode()
    if data.draw(st.booleans(), "no padding"):
        text = text.rstrip("=")
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=5), "line breaks"))
    pieces = [text[a:b] for a, b in zip([0] + cuts, cuts + [len(text)])]
    text = data.draw(st.sampled_from(["\n", "\r\n", " ", "\t"]), "separator").join(pieces)
    if data.draw(st.booleans(), "data uri"):
        text = "data:image/jpeg;base64," + text
    assert base64_json.decode_base64_text(text) == payload


# --- real course files ----------------------------------------------------------------

def test_real_json_file(real_bucket_copy):
    data = (real_bucket_copy / "databasesLoadData" / JSON_MEMBER).read_bytes()
    assert read_urls(data) == [(i + 1, f"{BUCKET}img_mnist/{name}.jpg", name[-1].lower())
                               for i, name in enumerate(REAL_NAMES)]


def test_real_base64_file(real_bucket_copy):
    data = (real_bucket_copy / "databasesLoadData" / BASE64_MEMBER).read_bytes()
    (entry,) = entries(data)
    assert (entry.label, entry.line, entry.number) == ("b", 2, 1)
    kept = screen(entry, base64_json.entry_rules())
    assert kept.label_index == 1 and kept.pixels.shape == (28, 28, 1) and not kept.resized


def test_real_base64_build_has_one_example(real_bucket_copy, tmp_path, monkeypatch):
    real = (real_bucket_copy / "databasesLoadData" / BASE64_MEMBER).read_bytes()
    folder = write_source(tmp_path / "source", {BASE64_MEMBER: real})
    monkeypatch.setenv("SIGN_DATASETS_SOURCE", str(folder))
    builder = build("sign_mnist_base64", tmp_path / "data")
    jpeg = base64.b64decode(json.loads(real)["b"])
    expected = np.asarray(Image.open(io.BytesIO(jpeg)).convert("L"))
    assert len(jpeg) == 498 and expected.shape == (28, 28)
    assert examples(builder) == [(1, expected[..., None].tobytes())]
    assert builder.info.metadata["cleaning"]["train"]["kept"] == 1


def test_real_json_build_with_replica_images(real_bucket_copy, replica_dir, tmp_path, monkeypatch):
    real = (real_bucket_copy / "databasesLoadData" / JSON_MEMBER).read_bytes()
    folder = write_source(tmp_path / "source", {JSON_MEMBER: real}, images_from=replica_dir)
    with ReplicaServer(folder, port=0) as served:
        monkeypatch.setenv("SIGN_DATASETS_SOURCE", served.base_url)
        builder = build("sign_mnist_json", tmp_path / "data")
    assert examples(builder) == expected_from_jpegs(replica_dir, REAL_NAMES)


# --- builds against the replica server --------------------------------------------------

def test_json_build_counts_each_failure_reason(server, replica_dir, tmp_path, monkeypatch, fast_fetch):
    server.set_fault("img_mnist/29_B.jpg", fail_times=1, status=503)   # healed by a retry
    server.set_fault("img_mnist/30_B.jpg", permanent_status=404)
    server.set_fault("img_mnist/95_B.jpg", delay=1.0)                  # read timeout is 0.5 s
    server.set_fault("img_mnist/58_A.jpg", body_size=60_000)           # cap below is 50,000
    server.set_fault("img_mnist/50_A.jpg", permanent_status=503)
    monkeypatch.setenv("SIGN_DATASETS_FETCH_MAX_BYTES", "50000")
    monkeypatch.setenv("SIGN_DATASETS_MAX_FAILED_SHARE", "0.5")
    builder = build("sign_mnist_json", tmp_path / "data")

    report = builder.info.metadata["cleaning"]["train"]
    assert (report["records"], report["kept"], report["dropped"]) == (9, 5, 4)
    assert report["drops"] == {"not_found": 1, "timeout": 1, "response_too_large": 1,
                               "server_error": 1}
    assert report["examples"] == {
        "not_found": [f"{JSON_SOURCE}:2 {BUCKET}img_mnist/30_B.jpg"],
        "timeout": [f"{JSON_SOURCE}:3 {BUCKET}img_mnist/95_B.jpg"],
        "response_too_large": [f"{JSON_SOURCE}:4 {BUCKET}img_mnist/58_A.jpg"],
        "server_error": [f"{JSON_SOURCE}:5 {BUCKET}img_mnist/50_A.jpg"],
    }
    assert builder.info.metadata["resized"] == {"train": 0}
    # One retry each for the 503s and the timeout; none for the 404 or the oversized body.
    assert {name: server.count_for(f"img_mnist/{name}.jpg") for name in REAL_NAMES} == {
        "29_B": 2, "30_B": 1, "95_B": 2, "58_A": 1, "50_A": 2,
        "46_A": 1, "3_C": 1, "32_C": 1, "2_C": 1}
    assert builder.info.splits["train"].num_examples == 5
    assert examples(builder) == expected_from_jpegs(replica_dir, ["29_B", "46_A", "3_C", "32_C", "2_C"])


def test_json_build_refuses_urls_outside_the_source(replica_dir, tmp_path, monkeypatch):
    with ReplicaServer(replica_dir, port=0) as other:
        other_url = other.url("img_mnist/29_B.jpg")
        lines = [json_line(name) for name in REAL_NAMES] + [
            json.dumps({"content": "file:///etc/passwd", "label": "a"}) + "\n",
            json.dumps({"content": "http://169.254.169.254/latest/meta-data/", "label": "b"}) + "\n",
            json.dumps({"content": other_url, "label": "b"}) + "\n",
        ]
        folder = write_source(tmp_path / "source", {JSON_MEMBER: "".join(lines).encode()},
                              images_from=replica_dir)
        with ReplicaServer(folder, port=0) as served:
            monkeypatch.setenv("SIGN_DATASETS_SOURCE", served.base_url)
            monkeypatch.setenv("SIGN_DATASETS_MAX_FAILED_SHARE", "0.3")
            builder = build("sign_mnist_json", tmp_path / "data")
        assert other.requests == []
    report = builder.info.metadata["cleaning"]["train"]
    assert (report["records"], report["kept"], report["drops"]) == (12, 9, {"refused_url": 3})
    assert report["examples"]["refused_url"] == [
        f"{JSON_SOURCE}:10 file:///etc/passwd",
        f"{JSON_SOURCE}:11 http://169.254.169.254/latest/meta-data/",
        f"{JSON_SOURCE}:12 {other_url}",
    ]
    assert sorted(path for _, path, _ in served.requests) == sorted(
        ["databasesLoadData.zip"] + [f"img_mnist/{name}.jpg" for name in REAL_NAMES])


def shard_bytes(builder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(Path(builder.data_dir).glob("*.tfrecord*"))}


def test_second_build_fetches_nothing_and_writes_the_same_bytes(server, tmp_path, monkeypatch):
    downloads = tmp_path / "downloads"
    first = build("sign_mnist_json", tmp_path / "first", downloads)
    served = server.request_count
    assert served == 1 + len(REAL_NAMES)  # the zip, then each image once
    second = build("sign_mnist_json", tmp_path / "second", downloads)
    assert server.request_count == served
    # A cold build on one thread writes the same bytes as the 16-thread one:
    # keys and order never depend on which fetch finished first.
    monkeypatch.setenv("SIGN_DATASETS_FETCH_WORKERS", "1")
    sequential = build("sign_mnist_json", tmp_path / "third", tmp_path / "other-downloads")
    assert server.request_count == 2 * served
    assert shard_bytes(first) and shard_bytes(first) == shard_bytes(second) == shard_bytes(sequential)


def test_too_many_failures_stop_the_build_and_a_rerun_fetches_only_those(server, tmp_path, fast_fetch):
    import tensorflow_datasets as tfds
    downloads = tmp_path / "downloads"
    for name in ("30_B", "58_A"):
        server.set_fault(f"img_mnist/{name}.jpg", permanent_status=404)
    with pytest.raises(TooManyFailures) as stopped:
        build("sign_mnist_json", tmp_path / "data", downloads)
    message = str(stopped.value)
    assert "2 of 9 records failed (22.2%), more than the 10% allowed" in message
    assert f"not_found: 2 (first: {JSON_SOURCE}:2 {BUCKET}img_mnist/30_B.jpg; " in message
    assert not tfds.builder("sign_mnist_json", data_dir=str(tmp_path / "data")).is_prepared()

    server.clear_faults()
    server.reset_counts()
    builder = build("sign_mnist_json", tmp_path / "data", downloads)
    assert builder.info.splits["train"].num_examples == 9
    # The zip and the seven images fetched before the stop come from the cache.
    assert sorted(path for _, path, _ in server.requests) == ["img_mnist/30_B.jpg", "img_mnist/58_A.jpg"]


def test_base64_build_against_the_replica(source, replica_dir, tmp_path):
    builder = build("sign_mnist_base64", tmp_path / "data")
    with zipfile.ZipFile(replica_dir / "databasesLoadData.zip") as zf:
        written = json.loads(zf.read(BASE64_MEMBER))
    pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(written["b"]))).convert("L"))
    assert examples(builder) == [(1, pixels[..., None].tobytes())]
    assert builder.info.metadata["cleaning"]["train"] == {
        "records": 1, "kept": 1, "dropped": 0, "drops": {}, "examples": {}}
    assert builder.info.metadata["resized"] == {"train": 0}


def test_both_builders_are_in_the_catalog_the_demo_builds():
    from sign_datasets.catalog import registry
    assert {"sign_mnist_json/default", "sign_mnist_base64"} <= set(registry.all_dataset_names())
