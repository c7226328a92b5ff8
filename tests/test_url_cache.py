"""The fetcher's URL cache: packs shared by processes, torn and damaged
records, a folder cleared under a running process, and a fetch killed
halfway that the next one resumes. Other processes are real forked ones;
a new `UrlCache` object is what a new process reads from the folder."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest

from sign_datasets.io import url_cache
from sign_datasets.io.fetch_settings import FetchSettings
from sign_datasets.io.fetcher import Fetcher
from sign_datasets.replica import ReplicaServer, json_entries
from sign_datasets.io.url_cache import PACKS, UrlCache

BODIES = {f"http://example.test/{i}.jpg": os.urandom(100 + 37 * i) for i in range(20)}


def fill(folder: Path, bodies: dict[str, bytes]) -> UrlCache:
    cache = UrlCache(folder)
    for url, body in bodies.items():
        cache.put(url, body)
    cache.close()
    return cache


def packs(folder: Path) -> list[Path]:
    return sorted((folder / PACKS).iterdir())


def test_what_one_writer_put_a_new_reader_gets(tmp_path):
    fill(tmp_path, BODIES)
    reader = UrlCache(tmp_path)
    assert len(reader) == len(BODIES) and len(packs(tmp_path)) == 1
    assert all(reader.get(url) == body for url, body in BODIES.items())
    assert reader.get("http://example.test/absent.jpg") is None


def test_a_torn_last_record_is_ignored_and_the_rest_kept(tmp_path):
    fill(tmp_path, BODIES)
    [pack] = packs(tmp_path)
    with open(pack, "r+b") as stream:  # what a process killed mid-write leaves
        stream.truncate(pack.stat().st_size - 10)
    reader = UrlCache(tmp_path)
    urls = list(BODIES)
    assert len(reader) == len(BODIES) - 1
    assert reader.get(urls[-1]) is None
    assert all(reader.get(url) == BODIES[url] for url in urls[:-1])


def test_a_damaged_body_counts_as_absent(tmp_path):
    fill(tmp_path, BODIES)
    [pack] = packs(tmp_path)
    data = bytearray(pack.read_bytes())
    first = BODIES[next(iter(BODIES))]
    at = data.index(first)
    data[at + 5] ^= 0xFF
    pack.write_bytes(bytes(data))
    reader = UrlCache(tmp_path)
    assert reader.get(next(iter(BODIES))) is None
    assert len(reader) == len(BODIES) - 1  # forgotten, so it is fetched again
    assert all(reader.get(url) == body for url, body in list(BODIES.items())[1:])


def test_garbage_in_the_packs_folder_is_not_a_record(tmp_path):
    (tmp_path / PACKS).mkdir()
    (tmp_path / PACKS / "0-junk.pack").write_bytes(b"not a pack at all" * 10)
    fill(tmp_path, dict(list(BODIES.items())[:3]))
    assert len(UrlCache(tmp_path)) == 3


def _put_from_child(folder: str, items: list[tuple[str, bytes]]) -> None:
    cache = url_cache.open_cache(folder)  # inherited from the parent through fork
    for url, body in items:
        cache.put(url, body)


def test_forked_processes_write_packs_of_their_own(tmp_path):
    parent = url_cache.open_cache(tmp_path)
    parent.put("http://example.test/parent.jpg", b"parent")
    items = list(BODIES.items())
    context = multiprocessing.get_context("fork")
    children = [context.Process(target=_put_from_child, args=(str(tmp_path), items[i::3]))
                for i in range(3)]
    for child in children:
        child.start()
    parent.put("http://example.test/parent2.jpg", b"parent2")
    for child in children:
        child.join(30)
        assert child.exitcode == 0
    assert len(packs(tmp_path)) == 4
    assert parent.get("http://example.test/3.jpg") is None  # not looked for yet
    parent.refresh()
    fresh = UrlCache(tmp_path)
    for reader in (parent, fresh):
        assert len(reader) == len(BODIES) + 2
        assert all(reader.get(url) == body for url, body in BODIES.items())
        assert reader.get("http://example.test/parent2.jpg") == b"parent2"


def test_a_folder_cleared_under_a_running_process_gets_a_new_pack(tmp_path):
    cache = url_cache.open_cache(tmp_path / "cache")
    cache.put("http://example.test/a.jpg", b"a")
    for pack in packs(tmp_path / "cache"):
        pack.unlink()
    cache = url_cache.open_cache(tmp_path / "cache")
    assert cache.get("http://example.test/a.jpg") is None
    cache.put("http://example.test/b.jpg", b"b")
    assert UrlCache(tmp_path / "cache").get("http://example.test/b.jpg") == b"b"


# --- a fetch killed halfway ----------------------------------------------------------

def _fetch_slowly(cache: str, source: str, urls: list[str]) -> None:
    settings = FetchSettings(workers=1, progress=False, connect_timeout=2, read_timeout=5)
    with Fetcher(cache, settings, source=source) as fetcher:
        for _ in fetcher.fetch_all(urls):
            pass


@pytest.fixture
def slow_server(replica_dir):
    with ReplicaServer(replica_dir, port=0, latency=0.1) as running:
        yield running


def test_a_fetch_killed_halfway_resumes_where_it_stopped(slow_server, replica_dir,
                                                         replica_manifest, tmp_path):
    paths = [f"img_mnist/{n}_{letter}.jpg" for n, letter in json_entries(replica_manifest["scale"])]
    urls = [slow_server.url(p) for p in paths]
    cache = tmp_path / "cache"
    child = multiprocessing.get_context("fork").Process(
        target=_fetch_slowly, args=(str(cache), slow_server.base_url, urls))
    child.start()
    deadline = time.monotonic() + 30
    while slow_server.request_count < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    child.join(10)
    assert child.exitcode == -signal.SIGKILL
    kept = UrlCache(cache)
    assert 3 <= len(kept) < len(urls)  # the one in flight may or may not have landed
    slow_server.reset_counts()

    with Fetcher(cache, FetchSettings(workers=4, progress=False), source=slow_server.base_url) as fetcher:
        results = [result for _, result in fetcher.fetch_all(urls)]
    assert [r.read_bytes() for r in results] == [(replica_dir / p).read_bytes() for p in paths]
    assert sum(r.from_cache for r in results) == len(kept)
    assert slow_server.request_count == len(urls) - len(kept)
    assert all(slow_server.count_for(p) == (0 if kept.get(u) else 1) for p, u in zip(paths, urls))
