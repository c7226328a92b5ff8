"""A download dir on a file system other than the local one (issue 19):
cluster workers on other machines read the downloaded sources and the URL
cache from a bucket. Tested on TensorFlow's ram:// file system, reached
through the same tf.io.gfile calls as gs://, against the replica served on
loopback: a build whose downloads live there equals, byte for byte, a build
with a local download dir, and writes no download to the local disk.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

tf = pytest.importorskip("tensorflow")
tfds = pytest.importorskip("tensorflow_datasets")

import sign_datasets  # noqa: E402,F401  (registers the builders)
from sign_datasets.core.cleaning import SourceError  # noqa: E402
from sign_datasets.io import downloads, guards, sources  # noqa: E402
from sign_datasets.io.fetch_settings import SOURCE_MAX_BYTES_ENV  # noqa: E402
from sign_datasets.io.fetcher import Fetcher  # noqa: E402

# One of each reader: a CSV in a zip, URLs fetched through the URL cache,
# base64 in JSON, a zip of image folders (a catalog-declared builder).
DATASETS = ["sign_mnist_csv/dirty", "sign_mnist_json", "sign_mnist_base64",
            "sign_language_img/28x28"]


@pytest.fixture(scope="module", autouse=True)
def epath_knows_ram():
    """TFDS makes its download manager's folder with etils.epath, which
    knows gs://, s3://, az:// and hf:// only; with TensorFlow installed it
    reaches gs:// through tf.io.gfile (its tf_backend). ram:// is added to
    the same tables so that epath reaches it the same way."""
    from etils.epath import backend, gpath, register

    saved = (gpath._URI_PREFIXES, gpath._URI_SCHEMES)
    gpath._URI_PREFIXES = saved[0] + ("ram://",)
    gpath._URI_SCHEMES = saved[1] | {"ram"}
    gpath._URI_MAP_ROOT["ram://"] = "/ram/"
    gpath._PREFIX_TO_BACKEND["ram"] = backend.tf_backend
    register._URI_PREFIXES_TO_CLS["ram://"] = gpath.PosixGPath
    yield
    gpath._URI_PREFIXES, gpath._URI_SCHEMES = saved
    del gpath._URI_MAP_ROOT["ram://"], gpath._PREFIX_TO_BACKEND["ram"]
    del register._URI_PREFIXES_TO_CLS["ram://"]


@pytest.fixture
def ram_dir(request) -> str:
    folder = f"ram://{request.node.name.replace('/', '-')}-{os.getpid()}/downloads"
    yield folder
    if tf.io.gfile.exists(folder):
        tf.io.gfile.rmtree(folder)


def build(name: str, data_dir: Path, download_dir: str, beam_options: str | None = None):
    config = tfds.download.DownloadConfig()
    if beam_options is not None:
        from sign_datasets.generate import beam as beam_lib
        config = tfds.download.DownloadConfig(beam_options=beam_lib.pipeline_options(beam_options))
    builder = tfds.builder(name, data_dir=str(data_dir))
    builder.download_and_prepare(download_dir=download_dir, download_config=config)
    return builder


def shards(builder) -> dict[str, bytes]:
    """{file name: bytes} of every shard of the build."""
    files = sorted(Path(builder.data_dir).glob("*.tfrecord-*"))
    assert files, builder.data_dir
    return {file.name: file.read_bytes() for file in files}


def remote_files_under(folder: str) -> list[str]:
    return sorted(f"{top}/{name}"[len(folder) + 1:] for top, _, names in tf.io.gfile.walk(folder)
                  for name in names)


@pytest.mark.parametrize("name", DATASETS)
def test_a_build_with_a_remote_download_dir_equals_a_local_one(name, source, ram_dir, tmp_path):
    local = build(name, tmp_path / "local", str(tmp_path / "downloads"))
    remote = build(name, tmp_path / "remote", ram_dir)
    assert shards(remote) == shards(local)
    assert remote.info.metadata["cleaning"] == local.info.metadata["cleaning"]
    assert json.dumps(dict(remote.info.metadata), sort_keys=True) == \
        json.dumps(dict(local.info.metadata), sort_keys=True)
    # The sources are on ram://, as the local build has them on disk...
    downloaded = sorted(p.name for p in (tmp_path / "downloads" / sources.DOWNLOADS_FOLDER).iterdir())
    assert downloaded
    assert sorted(tf.io.gfile.listdir(f"{ram_dir}/{sources.DOWNLOADS_FOLDER}")) == downloaded
    if name == "sign_mnist_json":  # ...and so are the fetched images
        assert any(path.startswith(f"{downloads.CACHE_FOLDER}/packs/")
                   for path in remote_files_under(ram_dir))
    # ...and the remote build wrote nothing on the local disk but its dataset.
    assert sorted(p.name for p in (tmp_path / "remote").iterdir()) == [name.split("/")[0]]
    assert not any(".part" in path for path in remote_files_under(ram_dir))


@pytest.mark.parametrize("name", ["sign_language_img/28x28", "sign_mnist_json"])
def test_a_beam_build_reads_its_sources_from_the_remote_download_dir(name, source, ram_dir,
                                                                     tmp_path):
    """What cluster workers do: open the downloaded zip (and the URL cache)
    in the download dir, and keep the splits' summaries there. ram:// lives
    in one process, so Beam runs in memory here; a bucket is what processes
    on other machines share."""
    pytest.importorskip("apache_beam")
    local = build(name, tmp_path / "local", str(tmp_path / "downloads"))
    on_beam = build(name, tmp_path / "beam", ram_dir, "runner=DirectRunner,"
                    "direct_running_mode=in_memory")
    assert on_beam.info.metadata["cleaning"] == local.info.metadata["cleaning"]
    for split in local.info.splits:
        records = [r.numpy() for r in tf.data.TFRecordDataset(
            sorted(str(f) for f in Path(local.data_dir).glob(f"*-{split}.tfrecord-*")))]
        assert [r.numpy() for r in tf.data.TFRecordDataset(
            sorted(str(f) for f in Path(on_beam.data_dir).glob(f"*-{split}.tfrecord-*")))] == records
    assert sorted(p.name for p in (tmp_path / "beam").iterdir()) == [name.split("/")[0]]


def test_a_source_over_the_size_cap_is_refused_as_from_a_local_dir(source, ram_dir, tmp_path,
                                                                     monkeypatch):
    """SIGN_DATASETS_SOURCE_MAX_BYTES bounds every source download: the one
    line is the same whichever file system the download dir is on, and no
    partial object is left behind."""
    monkeypatch.setenv(SOURCE_MAX_BYTES_ENV, "10000")
    errors = []
    for where, download_dir in (("local", str(tmp_path / "downloads")), ("remote", ram_dir)):
        with pytest.raises(SourceError) as refused:
            build("sign_mnist_base64", tmp_path / where, download_dir)
        errors.append(str(refused.value))
    assert errors[0] == errors[1]
    assert "over the 10000-byte cap" in errors[0] and SOURCE_MAX_BYTES_ENV in errors[0]
    assert "\n" not in errors[0]
    assert remote_files_under(ram_dir) == []


def test_a_remote_download_replaced_after_it_was_fetched_is_refused(source, ram_dir):
    """A bucket object has no inode: its size and modification time, pinned
    when the download returned it, must still hold when it is opened."""
    path = downloads.download_source(sources.object_url("sign-language-img.zip"), ram_dir)
    assert path.startswith(f"{ram_dir}/{sources.DOWNLOADS_FOLDER}/")
    with guards.open_source(path) as stream:
        assert stream.read(2) == b"PK"
    tf.io.gfile.remove(path)
    with tf.io.gfile.GFile(path, "wb") as stream:
        stream.write(b"PK" + b"\0" * 100)
    with pytest.raises(guards.SourceChanged, match="replaced by another object after it was "
                                                   "downloaded"):
        guards.open_source(path)


def test_a_large_fetched_body_is_kept_in_the_remote_cache(source, ram_dir):
    """Bodies too large for the packs are a file each, there too, written
    whole (a temporary name, then a rename) and read back by another worker."""
    url = sources.object_url("sign-language-img.zip")  # 0.45 MB, over the packs' 256 KB
    cache = downloads.download_cache_dir(ram_dir)
    with Fetcher(cache) as fetcher:
        first = fetcher.fetch(url)
        assert first.ok and not first.from_cache
        assert first.path == fetcher.cache_path(url) and tf.io.gfile.exists(first.path)
    with Fetcher(cache) as other:
        again = other.fetch(url)
    assert again.from_cache and again.read_bytes() == first.read_bytes()
    assert not any(".part" in path for path in remote_files_under(cache))
