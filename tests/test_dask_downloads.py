"""The download dir's URL cache on a file system other than the local one
(issue 19): cluster workers on other machines share it in a bucket. Tested
on TensorFlow's ram:// file system, which the same tf.io.gfile calls reach
as gs://; a new `UrlCache` object is what another worker reads."""

from __future__ import annotations

import os

import pytest

from sign_datasets.io import downloads, url_cache
from sign_datasets.io.url_cache import PACKS, UrlCache

pytest.importorskip("tensorflow")


@pytest.fixture
def ram_dir(request) -> str:
    import tensorflow as tf

    folder = f"ram://{request.node.name}-{os.getpid()}/downloads"
    yield folder
    if tf.io.gfile.exists(folder):
        tf.io.gfile.rmtree(folder)


def test_cache_of_a_remote_download_dir_is_shared(ram_dir):
    import tensorflow as tf

    folder = downloads.download_cache_dir(ram_dir)
    assert folder == f"{ram_dir}/{downloads.CACHE_FOLDER}"
    bodies = {f"https://example.com/{n}.jpg": os.urandom(100 + n) for n in range(50)}
    writer = UrlCache(folder)
    for url, body in bodies.items():
        writer.put(url, body)
    assert all(writer.get(url) == body for url, body in bodies.items())  # before any write
    assert not tf.io.gfile.exists(f"{folder}/{PACKS}")  # gathered in memory
    writer.close()
    assert len(tf.io.gfile.listdir(f"{folder}/{PACKS}")) == 1  # one object for all
    reader = UrlCache(folder)  # another worker
    assert len(reader) == 50
    assert all(reader.get(url) == body for url, body in bodies.items())
    assert reader.get("https://example.com/other.jpg") is None


def test_reopening_writes_what_the_last_batch_fetched(ram_dir):
    """The fetcher opens the cache per batch: each opening writes the
    records the previous batch added, so other workers see them."""
    folder = downloads.download_cache_dir(ram_dir)
    url_cache.open_cache(folder).put("https://example.com/a.jpg", b"a" * 10)
    url_cache.open_cache(folder).put("https://example.com/b.jpg", b"b" * 10)
    other = UrlCache(folder)
    assert other.get("https://example.com/a.jpg") == b"a" * 10
    assert other.get("https://example.com/b.jpg") is None  # still in the writer's memory
    url_cache.open_cache(folder).close()
    other.refresh()
    assert other.get("https://example.com/b.jpg") == b"b" * 10


def test_a_damaged_remote_record_is_fetched_again(ram_dir):
    import tensorflow as tf

    folder = downloads.download_cache_dir(ram_dir)
    writer = UrlCache(folder)
    writer.put("https://example.com/a.jpg", b"x" * 64)
    writer.close()
    (pack,) = tf.io.gfile.listdir(f"{folder}/{PACKS}")
    path = f"{folder}/{PACKS}/{pack}"
    with tf.io.gfile.GFile(path, "rb") as stream:
        data = bytearray(stream.read())
    data[-1] ^= 0xFF
    tf.io.gfile.remove(path)  # ram:// appends to a file opened "wb"
    with tf.io.gfile.GFile(path, "wb") as stream:
        stream.write(bytes(data))
    assert UrlCache(folder).get("https://example.com/a.jpg") is None


def test_a_local_download_dir_keeps_its_appending_packs(tmp_path):
    assert downloads.download_cache_dir(tmp_path) == tmp_path / downloads.CACHE_FOLDER
    cache = UrlCache(downloads.download_cache_dir(tmp_path))
    cache.put("https://example.com/a.jpg", b"a")
    assert len(list((tmp_path / downloads.CACHE_FOLDER / PACKS).iterdir())) == 1  # written at once
    assert not url_cache.is_remote(tmp_path) and url_cache.is_remote("gs://bucket/downloads")
