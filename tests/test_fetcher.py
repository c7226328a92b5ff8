"""The fetcher against real HTTP servers on 127.0.0.1: retries, timeouts,
size caps, the URL policy, redirects, the cache and result order.

The replica server plays the bucket with scripted faults. Redirects, chunked
bodies and truncated bodies are answered by a small scripted server below,
also a real one, because the replica server does not produce them.
"""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sign_datasets.io.failed_share import TooManyFailures, check_failed_share, max_failed_share
from sign_datasets.io.fetch_settings import FetchSettings
from sign_datasets.io.fetcher import (
    CONNECTION_FAILED,
    HTTP_ERROR,
    NOT_FOUND,
    RATE_LIMITED,
    REFUSED,
    SERVER_ERROR,
    TIMEOUT,
    TOO_LARGE,
    TOO_MANY_REDIRECTS,
    Fetcher,
)
from sign_datasets.io.settings import FetchConfigError
from sign_datasets.io.url_policy import Refused, UrlPolicy
from sign_datasets.replica import ReplicaServer, json_entries
from sign_datasets.io.url_cache import UrlCache

# Short timeouts and tiny backoff keep the failure paths fast.
FAST = dict(workers=4, connect_timeout=0.5, read_timeout=0.5, retries=2, backoff_factor=0.01,
            progress=False)


@pytest.fixture
def server(replica_dir):
    """A fresh server per test, so faults and request logs never leak between tests."""
    with ReplicaServer(replica_dir, port=0) as fresh:
        yield fresh


@pytest.fixture
def image_paths(replica_manifest) -> list[str]:
    return [f"img_mnist/{n}_{letter}.jpg" for n, letter in json_entries(replica_manifest["scale"])]


def make_fetcher(tmp_path: Path, source: str, **settings) -> Fetcher:
    return Fetcher(tmp_path / "cache", FetchSettings(**{**FAST, **settings}), source=source)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- a scripted server for what the replica server does not do -------------------

class _ScriptedHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        owner: ScriptedServer = self.server.owner  # type: ignore[attr-defined]
        with owner.lock:
            owner.paths.append(self.path)
        if self.path in owner.redirects:
            self.send_response(302)
            self.send_header("Location", owner.redirects[self.path])
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/chunked":
            # No Content-Length: only counting the streamed bytes can stop it.
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            block = b"x" * 4096
            try:
                for _ in range(64):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.close_connection = True
        elif self.path == "/truncated":
            # Promises 1000 bytes, sends 10 and hangs up.
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.close_connection = True
        elif self.path == "/ok":
            self.send_response(200)
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"hello")
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()


class ScriptedServer:
    def __init__(self):
        self.redirects: dict[str, str] = {}
        self.paths: list[str] = []
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _ScriptedHandler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def scripted():
    with ScriptedServer() as running:
        yield running


# --- fetching, order and retries ------------------------------------------------

def test_results_come_back_in_input_order_with_the_served_bytes(server, replica_dir, image_paths, tmp_path):
    # The first URLs answer last, so completion order is the reverse of input order.
    for i, path in enumerate(image_paths[:4]):
        server.set_fault(path, delay=0.2 - 0.05 * i)
    urls = [server.url(p) for p in image_paths]
    with make_fetcher(tmp_path, server.base_url, workers=8) as fetcher:
        results = list(fetcher.fetch_all(urls))
    assert [item for item, _ in results] == urls
    assert [result.url for _, result in results] == urls
    for path, (_, result) in zip(image_paths, results):
        assert result.ok and not result.from_cache
        assert result.read_bytes() == (replica_dir / path).read_bytes()
    assert [server.count_for(p) for p in image_paths] == [1] * len(image_paths)


def test_503_then_success_is_retried_and_retry_after_honoured(server, replica_dir, image_paths, tmp_path):
    path = image_paths[0]
    server.set_fault(path, fail_times=1, status=503, retry_after=1)
    with make_fetcher(tmp_path, server.base_url) as fetcher:
        started = time.monotonic()
        result = fetcher.fetch(server.url(path))
        elapsed = time.monotonic() - started
    assert result.ok, result
    assert result.read_bytes() == (replica_dir / path).read_bytes()
    assert server.count_for(path) == 2
    # urllib3 retries a first failure at once unless Retry-After says otherwise.
    assert elapsed >= 0.9


def test_429_then_success_is_retried(server, image_paths, tmp_path):
    path = image_paths[1]
    server.set_fault(path, fail_times=2, status=429)
    with make_fetcher(tmp_path, server.base_url) as fetcher:
        assert fetcher.fetch(server.url(path)).ok
    assert server.count_for(path) == 3


def test_huge_or_malformed_retry_after_does_not_stall_or_crash(server, image_paths, tmp_path):
    huge, malformed = image_paths[2], image_paths[3]
    server.set_fault(huge, fail_times=1, status=503, retry_after=86400)
    server.set_fault(malformed, fail_times=1, status=503, retry_after="soon")
    with make_fetcher(tmp_path, server.base_url, retry_after_max=0) as fetcher:
        started = time.monotonic()
        assert fetcher.fetch(server.url(huge)).ok
        assert fetcher.fetch(server.url(malformed)).ok
        assert time.monotonic() - started < 5
    assert (server.count_for(huge), server.count_for(malformed)) == (2, 2)


def test_each_failure_has_its_reason_and_request_count(server, image_paths, tmp_path):
    missing, broken, forbidden, slow, big, limited = image_paths[:6]
    server.set_fault(missing, permanent_status=404)
    server.set_fault(broken, permanent_status=503)
    server.set_fault(forbidden, permanent_status=403)
    server.set_fault(slow, delay=1.0)
    server.set_fault(big, body_size=5000)
    server.set_fault(limited, permanent_status=429)
    with make_fetcher(tmp_path, server.base_url, retries=1, max_bytes=4000) as fetcher:
        reasons = {p: fetcher.fetch(server.url(p)).reason
                   for p in (missing, broken, forbidden, slow, big, limited)}
    assert reasons == {missing: NOT_FOUND, broken: SERVER_ERROR, forbidden: HTTP_ERROR,
                       slow: TIMEOUT, big: TOO_LARGE, limited: RATE_LIMITED}
    # Only what can heal is retried: 5xx, 429 and timeouts; a 404, a 403
    # and an oversized body are asked for once.
    assert {p: server.count_for(p) for p in reasons} == {
        missing: 1, broken: 2, forbidden: 1, slow: 2, big: 1, limited: 2}
    # Failures leave nothing in the cache, so a later run asks again.
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


def test_connection_refused_is_a_named_failure(tmp_path, server):
    port = closed_port()
    url = f"http://127.0.0.1:{port}/img_mnist/29_B.jpg"
    with make_fetcher(tmp_path, server.base_url, retries=1,
                      allowed_hosts=(f"127.0.0.1:{port}",)) as fetcher:
        result = fetcher.fetch(url)
    assert result.reason == CONNECTION_FAILED


def test_streamed_body_over_the_cap_is_cut_off(scripted, tmp_path):
    with make_fetcher(tmp_path, scripted.base_url, max_bytes=10_000) as fetcher:
        result = fetcher.fetch(scripted.base_url + "chunked")
    assert result.reason == TOO_LARGE
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


def test_truncated_body_is_not_cached(scripted, tmp_path):
    with make_fetcher(tmp_path, scripted.base_url, retries=0) as fetcher:
        result = fetcher.fetch(scripted.base_url + "truncated")
    assert result.reason == CONNECTION_FAILED
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


# --- redirects ------------------------------------------------------------------

def test_redirects_within_the_source_are_followed(scripted, tmp_path):
    scripted.redirects.update({"/a": "/b", "/b": scripted.base_url + "ok"})
    with make_fetcher(tmp_path, scripted.base_url) as fetcher:
        result = fetcher.fetch(scripted.base_url + "a")
    assert result.ok and result.read_bytes() == b"hello"
    assert scripted.paths == ["/a", "/b", "/ok"]


def test_redirect_loops_are_bounded(scripted, tmp_path):
    scripted.redirects.update({"/loop": "/loop"})
    with make_fetcher(tmp_path, scripted.base_url, max_redirects=3) as fetcher:
        result = fetcher.fetch(scripted.base_url + "loop")
    assert result.reason == TOO_MANY_REDIRECTS
    assert scripted.paths == ["/loop"] * 4


def test_each_redirect_hop_is_checked(scripted, replica_dir, tmp_path):
    with ReplicaServer(replica_dir, port=0) as other:
        scripted.redirects.update({
            "/to-metadata": "http://169.254.169.254/latest/meta-data/",
            "/to-other-port": other.url("img_mnist/29_B.jpg"),
            "/to-file": "file:///etc/passwd",
        })
        with make_fetcher(tmp_path, scripted.base_url) as fetcher:
            results = {p: fetcher.fetch(scripted.base_url + p) for p in
                       ("to-metadata", "to-other-port", "to-file")}
        assert other.requests == []
    assert {p: r.reason for p, r in results.items()} == dict.fromkeys(results, REFUSED)
    assert "cloud metadata" in results["to-metadata"].detail
    assert "loopback address" in results["to-other-port"].detail


# --- the URL policy -------------------------------------------------------------

SOURCE = "http://127.0.0.1:8000/"


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8000/img_mnist/29_B.jpg",
    "HTTP://127.0.0.1:8000/img_mnist/29_B.jpg",
    "http://127.1:8000/x.jpg",             # another spelling of the source's address
    "http://0x7f.0.0.1:8000/x.jpg",
])
def test_policy_allows_the_source_origin(url):
    assert UrlPolicy(SOURCE).check(url) is None


@pytest.mark.parametrize("url, why", [
    ("file:///etc/passwd", "only when SIGN_DATASETS_SOURCE is a local folder"),
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata endpoint"),
    ("http://2852039166/latest/meta-data/", "cloud metadata endpoint"),  # 169.254.169.254 as one number
    ("http://[::ffff:169.254.169.254]/", "cloud metadata endpoint"),
    ("http://metadata.google.internal/computeMetadata/v1/", "cloud metadata endpoint"),
    ("http://169.254.1.1/", "link-local address"),
    ("http://[fe80::1]/", "link-local address"),
    ("http://127.0.0.1:8001/img_mnist/29_B.jpg", "loopback address 127.0.0.1 port 8001"),
    ("http://localhost:8000/x.jpg", "loopback address"),
    ("https://127.0.0.1:8000/x.jpg", "loopback address"),  # same host, other scheme: other origin
    ("http://example.org/x.jpg", "host example.org port 80 is not the source's"),
    ("http://127.0.0.1:8000@169.254.169.254/", "credentials"),
    ("ftp://127.0.0.1:8000/x.jpg", "scheme 'ftp'"),
    ("gopher://127.0.0.1:8000/x", "scheme 'gopher'"),
    ("img_mnist/29_B.jpg", "scheme '(none)'"),
    ("http://127.0.0.1:8000/a b.jpg", "spaces or control characters"),
    ("http://127.0.0.1:99999/x.jpg", "malformed URL"),
    ("http://127.0.0.1:8000/" + "a" * 5000, "longer than"),
])
def test_policy_refuses(url, why):
    with pytest.raises(Refused) as refused:
        UrlPolicy(SOURCE).check(url)
    assert why in str(refused.value)


def test_allowed_hosts_setting(tmp_path):
    policy = UrlPolicy(SOURCE, allowed_hosts=["example.org", "cdn.example.net:8443", "169.254.169.254"])
    assert policy.check("https://example.org/x.jpg") is None
    assert policy.check("http://example.org:81/x.jpg") is None
    assert policy.check("https://cdn.example.net:8443/x.jpg") is None
    with pytest.raises(Refused):
        policy.check("https://cdn.example.net/x.jpg")
    # Only an exact entry opens a metadata address, never a default.
    assert policy.check("http://169.254.169.254/") is None
    with pytest.raises(FetchConfigError):
        UrlPolicy(SOURCE, allowed_hosts=["http://example.org/path"])


def test_file_urls_only_beneath_a_local_source(tmp_path):
    root = tmp_path / "source"
    (root / "img_mnist").mkdir(parents=True)
    (root / "img_mnist" / "1_A.jpg").write_bytes(b"x")
    (tmp_path / "secret").write_text("no")
    (root / "img_mnist" / "link").symlink_to(tmp_path / "secret")
    policy = UrlPolicy(root.as_uri() + "/")
    assert policy.check((root / "img_mnist" / "1_A.jpg").as_uri()) == root / "img_mnist" / "1_A.jpg"
    for url, why in [
        ("file:///etc/passwd", "outside the source folder"),
        (root.as_uri() + "/img_mnist/../../secret", "outside the source folder"),
        ((root / "img_mnist" / "link").as_uri(), "outside the source folder"),
        ("file://otherhost" + str(root / "img_mnist" / "1_A.jpg"), "another machine"),
        ("http://127.0.0.1:8000/x.jpg", "not the source"),
    ]:
        with pytest.raises(Refused) as refused:
            policy.check(url)
        assert why in str(refused.value), url


def test_local_source_is_read_in_place(tmp_path):
    root = tmp_path / "source"
    (root / "img_mnist").mkdir(parents=True)
    (root / "img_mnist" / "1_A.jpg").write_bytes(b"small")
    (root / "img_mnist" / "big.jpg").write_bytes(b"x" * 2000)
    with Fetcher(tmp_path / "cache", FetchSettings(**{**FAST, "max_bytes": 1000}),
                 source=str(root)) as fetcher:
        ok, missing, big, outside = (fetcher.fetch(u) for u in (
            (root / "img_mnist" / "1_A.jpg").as_uri(), (root / "img_mnist" / "no.jpg").as_uri(),
            (root / "img_mnist" / "big.jpg").as_uri(), "file:///etc/passwd"))
    assert ok.read_bytes() == b"small" and ok.path == root / "img_mnist" / "1_A.jpg"
    assert (missing.reason, big.reason, outside.reason) == (NOT_FOUND, TOO_LARGE, REFUSED)
    assert not (tmp_path / "cache").exists()  # local files are not copied


# --- the cache ------------------------------------------------------------------

def test_second_run_fetches_nothing(server, image_paths, tmp_path):
    urls = [server.url(p) for p in image_paths]
    with make_fetcher(tmp_path, server.base_url) as fetcher:
        first = [r for _, r in fetcher.fetch_all(urls)]
    served = server.request_count
    with make_fetcher(tmp_path, server.base_url) as fetcher:
        second = [r for _, r in fetcher.fetch_all(urls)]
    assert server.request_count == served == len(urls)
    assert all(r.from_cache for r in second) and not any(r.from_cache for r in first)
    assert [r.read_bytes() for r in second] == [r.read_bytes() for r in first]
    # Small bodies share one pack; what a new process would read from it is
    # what was served, and no temporary file is left behind.
    files = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert [p.parent.name for p in files] == ["packs"]
    on_disk = UrlCache(tmp_path / "cache")
    assert len(on_disk) == len(urls)
    assert [on_disk.get(u) for u in urls] == [r.read_bytes() for r in first]


def test_a_body_too_large_for_memory_gets_a_file_of_its_own(server, image_paths, tmp_path):
    url = server.url(image_paths[0])
    server.set_fault(image_paths[0], body_size=300_000)
    with make_fetcher(tmp_path, server.base_url) as fetcher:
        first = fetcher.fetch(url)
        assert fetcher.cache_path(url).read_bytes() == bytes(300_000)
    with make_fetcher(tmp_path, server.base_url) as fetcher:
        second = fetcher.fetch(url)
    assert first.ok and second.from_cache and second.read_bytes() == bytes(300_000)
    assert server.count_for(image_paths[0]) == 1
    assert len(UrlCache(tmp_path / "cache")) == 0


def test_a_partial_file_from_an_interrupted_run_is_never_used(server, replica_dir, image_paths, tmp_path):
    url = server.url(image_paths[0])
    with make_fetcher(tmp_path, server.base_url) as fetcher:
        final = fetcher.cache_path(url)
        final.parent.mkdir(parents=True)
        # What a killed process leaves: a half-written temporary file.
        leftover = final.with_name(final.name + ".abc123.part")
        leftover.write_bytes(b"\xff\xd8 half a jpeg")
        result = fetcher.fetch(url)
    assert not result.from_cache
    assert result.read_bytes() == (replica_dir / image_paths[0]).read_bytes()
    assert server.count_for(image_paths[0]) == 1


def test_closing_early_cancels_the_rest(server, image_paths, tmp_path):
    for path in image_paths:
        server.set_fault(path, delay=0.3)
    urls = [server.url(p) for p in image_paths]
    with make_fetcher(tmp_path, server.base_url, workers=2) as fetcher:
        started = time.monotonic()
        results = fetcher.fetch_all(urls)
        next(results)
        results.close()
        elapsed = time.monotonic() - started
    # All nine one after the other on two threads would take 1.5 s.
    assert elapsed < 1.2
    assert server.request_count < len(urls)


def test_items_without_url_keep_their_place(server, image_paths, tmp_path):
    items = [image_paths[0], None, image_paths[1]]
    with make_fetcher(tmp_path, server.base_url) as fetcher:
        out = list(fetcher.fetch_all(items, url_of=lambda p: p and server.url(p)))
    assert [item for item, _ in out] == items
    assert out[1][1] is None and out[0][1].ok and out[2][1].ok
    assert server.request_count == 2


# --- settings -------------------------------------------------------------------

def test_settings_from_environment():
    env = {"SIGN_DATASETS_FETCH_WORKERS": "3", "SIGN_DATASETS_FETCH_TIMEOUT": "1.5,4",
           "SIGN_DATASETS_FETCH_RETRIES": "0", "SIGN_DATASETS_FETCH_BACKOFF": "0.1",
           "SIGN_DATASETS_FETCH_MAX_BYTES": "1000",
           "SIGN_DATASETS_ALLOWED_HOSTS": "example.org, cdn.example.net:8443"}
    settings = FetchSettings.from_env(env)
    assert (settings.workers, settings.connect_timeout, settings.read_timeout, settings.retries,
            settings.backoff_factor, settings.max_bytes) == (3, 1.5, 4.0, 0, 0.1, 1000)
    assert settings.allowed_hosts == ("example.org", "cdn.example.net:8443")
    assert FetchSettings.from_env({}).workers == 16
    assert FetchSettings.from_env({}).max_bytes == 20 * 1024 * 1024
    for name, bad in [("SIGN_DATASETS_FETCH_WORKERS", "many"), ("SIGN_DATASETS_FETCH_WORKERS", "0"),
                      ("SIGN_DATASETS_FETCH_TIMEOUT", "1,2,3"), ("SIGN_DATASETS_FETCH_TIMEOUT", "-1")]:
        with pytest.raises(FetchConfigError, match="SIGN_DATASETS_FETCH|must be"):
            FetchSettings.from_env({name: bad})


def test_failed_share_limit():
    assert max_failed_share(0.1, {}) == 0.1
    assert max_failed_share(0.1, {"SIGN_DATASETS_MAX_FAILED_SHARE": "0.5"}) == 0.5
    with pytest.raises(FetchConfigError):
        max_failed_share(0.1, {"SIGN_DATASETS_MAX_FAILED_SHARE": "2"})
    report = {"records": 10, "kept": 9, "dropped": 1, "drops": {"not_found": 1},
              "examples": {"not_found": ["data.json:3 http://x/a.jpg"]}}
    check_failed_share(report, 0.1, "data.json")  # exactly the limit is allowed
    with pytest.raises(TooManyFailures) as stopped:
        check_failed_share({**report, "kept": 8, "dropped": 2, "drops": {"not_found": 2}},
                           0.1, "data.json")
    message = str(stopped.value)
    assert "2 of 10 records failed (20.0%)" in message
    assert "\n" not in message  # one line, as every build error
    assert "not_found: 2 (first: data.json:3 http://x/a.jpg)" in message
    assert "SIGN_DATASETS_MAX_FAILED_SHARE" in message
    assert "SIGN_DATASETS_ALLOWED_HOSTS" not in message
    with pytest.raises(TooManyFailures, match="list hosts you trust in SIGN_DATASETS_ALLOWED_HOSTS"):
        check_failed_share({**report, "kept": 5, "dropped": 5, "drops": {"refused_url": 5}},
                           0.1, "data.json")
