"""One URL policy for every request of the project, and time limits that hold.

Real servers on 127.0.0.1 started here (http.server in a thread), real
builds: data.json images (the fetcher), bucket objects (a course builder),
catalog source URLs (a catalog build) and `sign-datasets new --source URL`.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sign_datasets.io import downloads, fetch_settings, sources
from sign_datasets.io.downloads import SourceDownloadError
from sign_datasets.io.fetch_settings import FetchSettings
from sign_datasets.io.fetcher import REFUSED, SERVER_ERROR, TIMEOUT, Fetcher
from sign_datasets.io.settings import FetchConfigError
from sign_datasets.io.url_policy import CATALOG, DATA, Refused, RefusedAddress, UrlPolicy

FAST = dict(workers=2, connect_timeout=0.5, read_timeout=0.5, retries=1, backoff_factor=0.01,
            progress=False)
PIXELS = 64


# --- a server of the test's own -----------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        owner: Server = self.server.owner  # type: ignore[attr-defined]
        with owner.lock:
            owner.paths.append(self.path)
        action = owner.routes.get(self.path)
        try:
            if action is None:
                self._send(404, b"")
            elif isinstance(action, bytes):
                self._send(200, action)
            else:
                action(self)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _send(self, status: int, body: bytes, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)


class Server:
    """Serves `routes`: path -> bytes (200), a URL to redirect to ("-> URL") or
    a callable(handler); counts every request by path."""

    def __init__(self):
        self.routes: dict = {}
        self.paths: list[str] = []
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def redirect(self, path: str, to: str) -> None:
        self.routes[path] = lambda h: h._send(302, b"", Location=to)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def origin():
    with Server() as running:
        yield running


@pytest.fixture
def other():
    """A second loopback server: a host the policy refuses unless allowed."""
    with Server() as running:
        yield running


@pytest.fixture
def env(monkeypatch):
    for name in ("SIGN_DATASETS_SOURCE", "SIGN_DATASETS_ALLOWED_HOSTS", "SIGN_DATASETS_CATALOG",
                 "SIGN_DATASETS_SOURCE_TIMEOUT", "SIGN_DATASETS_SOURCE_MAX_BYTES"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {"SIGN_DATASETS_FETCH_TIMEOUT": "0.5", "SIGN_DATASETS_FETCH_RETRIES": "1",
                        "SIGN_DATASETS_FETCH_BACKOFF": "0.01"}.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def shapes_csv(rows: int = 4) -> bytes:
    header = ",".join(["label"] + [f"pixel{i}" for i in range(1, PIXELS + 1)])
    lines = [",".join([str(i % 2)] + [str((i * 7 + j) % 256) for j in range(PIXELS)])
             for i in range(rows)]
    return ("\n".join([header] + lines) + "\n").encode()


def catalog_entry(name: str, location: str, sha256: str | None = None) -> str:
    sha = f', sha256 = "{sha256}"' if sha256 else ""
    return f"""
[[dataset]]
name = "{name}"
version = "1.0.0"
description = "Shapes."
format = "csv_pixels"
classes = ["circle", "square"]
image = {{ mode = "L", size = [8, 8] }}
sources = [{{ location = "{location}", split = "train"{sha} }}]
"""


def register(tmp_path: Path, text: str) -> Path:
    from sign_datasets.catalog import teams
    catalog = tmp_path / f"catalog-{hashlib.sha256(text.encode()).hexdigest()[:8]}.toml"
    catalog.write_text(text)
    teams.register_file(catalog)
    return catalog


def build(name: str, data_dir: Path, download_dir: Path):
    import tensorflow_datasets as tfds
    builder = tfds.builder(name, data_dir=str(data_dir))
    builder.download_and_prepare(download_dir=str(download_dir))
    return builder


# --- a redirect's second hop to a refused host, for each kind of request ----------------

def test_image_redirect_to_a_refused_host_is_refused(origin, other, tmp_path):
    other.routes["/img.png"] = b"not for us"
    origin.redirect("/a.png", "/b.png")
    origin.redirect("/b.png", other.base_url + "img.png")
    with Fetcher(tmp_path / "cache", FetchSettings(**FAST), source=origin.base_url) as fetch:
        result = fetch.fetch(origin.base_url + "a.png")
    assert result.reason == REFUSED
    assert f"redirect to {other.base_url}img.png" in result.detail
    assert "loopback address 127.0.0.1" in result.detail and "SIGN_DATASETS_ALLOWED_HOSTS" in result.detail
    assert origin.paths == ["/a.png", "/b.png"] and other.paths == []


def test_bucket_object_redirect_to_a_refused_host_is_refused(origin, other, env, tmp_path):
    import sign_datasets  # noqa: F401 - registers the course builders

    env.setenv("SIGN_DATASETS_SOURCE", origin.base_url)
    other.routes["/databasesLoadData.zip"] = b"PK"
    origin.redirect("/databasesLoadData.zip", "/moved.zip")
    origin.redirect("/moved.zip", other.base_url + "databasesLoadData.zip")
    with pytest.raises(SourceDownloadError) as refused:
        build("sign_mnist_csv/original", tmp_path / "data", tmp_path / "downloads")
    message = str(refused.value)
    assert message.startswith(f"{origin.base_url}databasesLoadData.zip: not downloaded (refused_url: "
                              f"redirect to {other.base_url}databasesLoadData.zip: loopback address")
    assert "SIGN_DATASETS_ALLOWED_HOSTS" in message
    assert origin.paths == ["/databasesLoadData.zip", "/moved.zip"] and other.paths == []


def test_catalog_source_redirect_to_a_refused_host_is_refused(origin, other, env, tmp_path):
    env.setenv("SIGN_DATASETS_SOURCE", origin.base_url)
    other.routes["/shapes.csv"] = shapes_csv()
    origin.redirect("/shapes.csv", "/moved.csv")
    origin.redirect("/moved.csv", other.base_url + "shapes.csv")
    catalog = register(tmp_path, catalog_entry("team_redirected", origin.base_url + "shapes.csv"))
    with pytest.raises(SourceDownloadError) as refused:
        build("team_redirected", tmp_path / "data", tmp_path / "downloads")
    message = str(refused.value)
    assert message.startswith(f"{catalog}: entry 'team_redirected': field 'sources[0].location': "
                              f"{origin.base_url}shapes.csv: not downloaded (refused_url: "
                              f"redirect to {other.base_url}shapes.csv: loopback address")
    assert origin.paths == ["/shapes.csv", "/moved.csv"] and other.paths == []
    assert not [p for p in (tmp_path / "downloads").rglob("*") if p.is_file()]


def test_new_source_redirect_to_a_refused_host_is_refused(origin, other, env, tmp_path, capsys):
    from sign_datasets.catalog import proposal

    env.setenv("SIGN_DATASETS_SOURCE", origin.base_url)
    other.routes["/shapes.csv"] = shapes_csv()
    origin.routes["/direct.csv"] = shapes_csv()
    origin.redirect("/shapes.csv", "/moved.csv")
    origin.redirect("/moved.csv", other.base_url + "shapes.csv")
    with pytest.raises(proposal.ProposalError) as refused:
        proposal.propose("team_new_redirect", "csv_pixels", origin.base_url + "shapes.csv",
                            tmp_path / "team.toml")
    assert f"redirect to {other.base_url}shapes.csv: loopback address" in str(refused.value)
    assert other.paths == []
    # Without the refused hop the same command downloads and proposes.
    text = proposal.propose("team_new_direct", "csv_pixels", origin.base_url + "direct.csv",
                               tmp_path / "team.toml")
    assert hashlib.sha256(shapes_csv()).hexdigest() in text and "size = [8, 8]" in text


def test_new_fetches_the_first_image_of_a_json_file_only_where_builds_may(origin, other, env,
                                                                         tmp_path):
    from sign_datasets.catalog import proposal

    env.setenv("SIGN_DATASETS_SOURCE", origin.base_url)
    other.routes["/0.png"] = b"not for us"
    listing = tmp_path / "urls.jsonl"
    listing.write_text(f'{{"content": "{other.base_url}0.png", "label": "cat"}}\n')
    text = proposal.propose("team_new_json", "json_urls", str(listing), tmp_path / "team.toml")
    assert "the first image could not be fetched (SourceDownloadError)" in text
    assert other.paths == []


# --- the catalog scope -------------------------------------------------------------------

def test_a_catalog_may_not_name_a_loopback_server_unless_allowed(origin, env, tmp_path):
    origin.routes["/shapes.csv"] = shapes_csv()
    register(tmp_path, catalog_entry("team_loopback", origin.base_url + "shapes.csv"))
    with pytest.raises(SourceDownloadError) as refused:
        build("team_loopback", tmp_path / "data", tmp_path / "downloads")
    assert f"loopback address 127.0.0.1 port {origin.port} is not the source" in str(refused.value)
    assert origin.paths == []
    env.setenv("SIGN_DATASETS_ALLOWED_HOSTS", f"127.0.0.1:{origin.port}")
    builder = build("team_loopback", tmp_path / "data", tmp_path / "downloads")
    assert builder.info.splits["train"].num_examples == 4


@pytest.mark.parametrize("url, why", [
    ("http://10.1.2.3/x.csv", "private address"),
    ("http://192.168.0.10/x.csv", "private address"),
    ("http://172.16.5.4/x.csv", "private address"),
    ("http://[fd12:3456::1]/x.csv", "private address"),
    ("http://127.0.0.1/x.csv", "loopback address"),
    ("http://[::1]/x.csv", "loopback address"),
    ("http://localhost/x.csv", "loopback address"),
    ("http://169.254.169.254/latest/", "cloud metadata endpoint"),
    ("http://metadata.google.internal/x", "cloud metadata endpoint"),
    ("http://169.254.3.4/x.csv", "link-local address"),
    ("http://[fe80::1]/x.csv", "link-local address"),
    ("http://0.0.0.0/x.csv", "non-routable address"),
    ("http://224.0.0.1/x.csv", "non-routable address"),
    ("http://0x0a.0.0.1/x.csv", "private address"),       # 10.0.0.1 in another spelling
    # IPv6 addresses that carry an IPv4 one, which NAT64, 6to4 or the kernel deliver to it.
    ("http://[::a9fe:a9fe]/x.csv", "cloud metadata endpoint"),          # IPv4-compatible
    ("http://[64:ff9b::a9fe:a9fe]/x.csv", "cloud metadata endpoint"),   # NAT64
    ("http://[2002:a9fe:a9fe::1]/x.csv", "cloud metadata endpoint"),    # 6to4
    ("http://[::7f00:1]/x.csv", "loopback address"),
    ("http://[::ffff:7f00:1]/x.csv", "loopback address"),               # IPv4-mapped
    ("http://user:secret@example.org/x.csv", "credentials"),
    ("ftp://example.org/x.csv", "scheme 'ftp'"),
    ("gs://someone-elses-bucket/x.zip", "add gs://someone-elses-bucket to SIGN_DATASETS_ALLOWED_HOSTS"),
    ("https://example.org/" + "a" * 5000, "longer than"),
    ("https://example.org/a\x01b", "control characters"),
])
def test_catalog_scope_refuses(url, why):
    with pytest.raises(Refused) as refused:
        UrlPolicy("https://storage.googleapis.com/platzi-tf2/", scope=CATALOG).check(url)
    assert why in str(refused.value)


def test_catalog_scope_allows_public_hosts_and_what_the_user_allows():
    policy = UrlPolicy("http://10.0.0.5:8000/", ["192.168.1.7", "gs://team-bucket"], scope=CATALOG)
    for url in ("https://example.org/x.csv", "http://93.184.216.34/x.csv",
                "http://10.0.0.5:8000/x.csv",         # the source's origin
                "http://192.168.1.7:9999/x.csv",      # an allowed host, any port
                "gs://team-bucket/pets.zip"):
        assert policy.check(url) is None, url
    with pytest.raises(Refused, match="gs://other-bucket"):
        policy.check("gs://other-bucket/pets.zip")
    # The data scope keeps to the source and the allowed hosts.
    with pytest.raises(Refused, match="add it to SIGN_DATASETS_ALLOWED_HOSTS"):
        UrlPolicy("http://10.0.0.5:8000/", scope=DATA).check("https://example.org/x.png")
    with pytest.raises(Refused, match="scheme 'gs'"):
        UrlPolicy("http://10.0.0.5:8000/", ["gs://team-bucket"], scope=DATA).check(
            "gs://team-bucket/pets.zip")


def test_gs_sources_are_refused_unless_the_bucket_is_allowed(env, tmp_path):
    catalog = register(tmp_path, catalog_entry("team_gs", "gs://team-bucket/shapes.csv"))
    with pytest.raises(SourceDownloadError) as refused:
        build("team_gs", tmp_path / "data", tmp_path / "downloads")
    message = str(refused.value)
    assert message.startswith(f"{catalog}: entry 'team_gs': field 'sources[0].location': "
                              "gs://team-bucket/shapes.csv: refused: gs://team-bucket is read with "
                              "this machine's cloud credentials")
    assert "add gs://team-bucket to SIGN_DATASETS_ALLOWED_HOSTS" in message
    env.setenv("SIGN_DATASETS_ALLOWED_HOSTS", "gs://other-bucket")
    with pytest.raises(SourceDownloadError, match="add gs://team-bucket to"):
        downloads.download_source("gs://team-bucket/shapes.csv", tmp_path / "downloads")


def test_credentials_in_a_url_are_refused_and_not_repeated(origin, env, tmp_path):
    env.setenv("SIGN_DATASETS_SOURCE", origin.base_url)
    origin.routes["/x.csv"] = shapes_csv()
    url = f"http://someone:hunter2@127.0.0.1:{origin.port}/x.csv"
    with pytest.raises(SourceDownloadError) as refused:
        downloads.download_source(url, tmp_path / "downloads")
    assert "credentials" in str(refused.value) and "hunter2" not in str(refused.value)
    # Nor in a redirect: the hop is refused before any request.
    origin.redirect("/to-creds", f"http://someone:hunter2@127.0.0.1:{origin.port}/x.csv")
    with Fetcher(tmp_path / "cache", FetchSettings(**FAST), source=origin.base_url) as fetch:
        result = fetch.fetch(origin.base_url + "to-creds")
    assert result.reason == REFUSED and "credentials" in result.detail
    assert "hunter2" not in result.detail
    assert origin.paths == ["/to-creds"]


def test_https_to_http_redirect_is_refused(tmp_path):
    with Fetcher(tmp_path / "cache", FetchSettings(**FAST), source="https://example.org/") as fetch:
        refusal = fetch._redirect_refusal("https://example.org/a", "http://example.org/b")
    assert "redirect from https down to http: http://example.org/b" in refusal


# --- the address actually connected to -------------------------------------------------

def _name_resolving_to_loopback() -> str | None:
    """A name of /etc/hosts (not spelled 'localhost') that resolves to loopback."""
    try:
        lines = Path("/etc/hosts").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split("#", 1)[0].split()
        for name in fields[1:]:
            if "localhost" in name.lower():
                continue
            try:
                found = {info[4][0] for info in socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)}
            except OSError:
                continue
            if found and found <= {"127.0.0.1", "::1"} | {f"127.0.{i}.1" for i in range(2)}:
                return name
    return None


def test_a_name_resolving_to_loopback_is_refused_at_connect_time(origin, env, tmp_path):
    name = _name_resolving_to_loopback()
    if name is None:
        pytest.skip("no name in /etc/hosts resolves to loopback here")
    origin.routes["/shapes.csv"] = shapes_csv()
    url = f"http://{name}:{origin.port}/shapes.csv"
    # The URL's text names no special address: only the socket shows it.
    assert UrlPolicy("https://storage.googleapis.com/platzi-tf2/", scope=CATALOG).check(url) is None
    with pytest.raises(SourceDownloadError) as refused:
        downloads.download_source(url, tmp_path / "downloads")
    message = str(refused.value)
    assert f"{name} port {origin.port} resolved to loopback address" in message
    assert "refused at connect time" in message and "SIGN_DATASETS_ALLOWED_HOSTS" in message
    assert origin.paths == []
    # The user may allow the name; then it is fetched.
    env.setenv("SIGN_DATASETS_ALLOWED_HOSTS", name)
    assert downloads.download_source(url, tmp_path / "downloads").read_bytes() == shapes_csv()
    assert origin.paths == ["/shapes.csv"]


def test_a_redirect_to_a_name_resolving_to_loopback_is_refused_for_images(origin, other, tmp_path):
    name = _name_resolving_to_loopback()
    if name is None:
        pytest.skip("no name in /etc/hosts resolves to loopback here")
    other.routes["/img.png"] = b"x"
    origin.redirect("/a.png", f"http://{name}:{other.port}/img.png")
    settings = FetchSettings(**FAST, allowed_hosts=(name,))
    # The data scope trusts the allowed name, even on loopback...
    with Fetcher(tmp_path / "cache", settings, source=origin.base_url) as fetch:
        assert fetch.fetch(origin.base_url + "a.png").read_bytes() == b"x"
    # ...but a peer check refuses a cloud-metadata address reached through it.
    policy = UrlPolicy(origin.base_url, [name])
    with pytest.raises(RefusedAddress, match="cloud metadata endpoint 169.254.169.254"):
        policy.check_peer("http", name, 80, ("169.254.169.254", 80))
    policy.check_peer("http", name, 80, ("127.0.0.1", 80))


# --- time limits -------------------------------------------------------------------------

def _trickle_body(handler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", "1000")
    handler.end_headers()
    for _ in range(1000):
        handler.wfile.write(b"x")
        handler.wfile.flush()
        time.sleep(0.1)


def _trickle_headers(handler) -> None:
    for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"y" * 1000:
        handler.wfile.write(bytes([byte]))
        handler.wfile.flush()
        time.sleep(0.1)


def _trickle_body_without_length(handler) -> None:
    # No Content-Length: the body ends when the connection closes, so a body
    # the deadline cut off looks like a complete one unless the time is checked.
    handler.send_response(200)
    handler.send_header("Connection", "close")
    handler.end_headers()
    for _ in range(1000):
        handler.wfile.write(b"label,pixel1\n0,1\n"[_ % 16:_ % 16 + 1])
        handler.wfile.flush()
        time.sleep(0.1)


def _trickle_short_answer(handler) -> None:
    # A whole, valid answer, whose headers alone outlast the deadline.
    for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello":
        handler.wfile.write(bytes([byte]))
        handler.wfile.flush()
        time.sleep(0.05)


@pytest.mark.parametrize("path, trickle", [("/body", _trickle_body), ("/headers", _trickle_headers),
                                           ("/nolength", _trickle_body_without_length),
                                           ("/short", _trickle_short_answer)])
def test_a_trickling_server_hits_the_total_timeout(origin, tmp_path, path, trickle):
    origin.routes[path] = trickle
    settings = FetchSettings(**{**FAST, "total_timeout": 1.0, "read_timeout": 0.5, "retries": 0})
    with Fetcher(tmp_path / "cache", settings, source=origin.base_url) as fetch:
        started = time.monotonic()
        result = fetch.fetch(origin.base_url + path.lstrip("/"))
        elapsed = time.monotonic() - started
    assert result.reason == TIMEOUT, result
    assert 0.9 <= elapsed < 1.0 + 0.5
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


def test_the_deadline_covers_retries_and_retry_after(origin, tmp_path):
    origin.routes["/busy"] = lambda h: h._send(503, b"TOPSECRET page", Retry_After="30")
    settings = FetchSettings(**{**FAST, "total_timeout": 1.0, "retries": 5})
    with Fetcher(tmp_path / "cache", settings, source=origin.base_url) as fetch:
        started = time.monotonic()
        result = fetch.fetch(origin.base_url + "busy")
        elapsed = time.monotonic() - started
    # The last 503, or the deadline met before it: either way within the limit.
    assert result.reason in (TIMEOUT, SERVER_ERROR) and elapsed < 1.5
    assert "TOPSECRET" not in result.detail


def test_a_source_download_has_its_own_time_limit(origin, env, tmp_path):
    env.setenv("SIGN_DATASETS_SOURCE", origin.base_url)
    env.setenv("SIGN_DATASETS_SOURCE_TIMEOUT", "1")
    origin.routes["/slow.csv"] = _trickle_body
    started = time.monotonic()
    with pytest.raises(SourceDownloadError) as slow:
        downloads.download_source(origin.base_url + "slow.csv", tmp_path / "downloads")
    assert time.monotonic() - started < 1.5
    assert "(timeout: not complete in 1 s); a slow server may need more time: raise " \
           "SIGN_DATASETS_SOURCE_TIMEOUT" in str(slow.value)
    assert not [p for p in (tmp_path / "downloads").rglob("*") if p.is_file()]


def test_a_source_download_has_its_own_size_cap(origin, env, tmp_path):
    env.setenv("SIGN_DATASETS_SOURCE", origin.base_url)
    env.setenv("SIGN_DATASETS_SOURCE_MAX_BYTES", "100")
    origin.routes["/big.csv"] = shapes_csv()
    with pytest.raises(SourceDownloadError, match=r"over the 100-byte cap\); .*SIGN_DATASETS_SOURCE_MAX_BYTES"):
        downloads.download_source(origin.base_url + "big.csv", tmp_path / "downloads")
    # The fetch cap of images does not apply to sources.
    env.delenv("SIGN_DATASETS_SOURCE_MAX_BYTES")
    env.setenv("SIGN_DATASETS_FETCH_MAX_BYTES", "100")
    path = downloads.download_source(origin.base_url + "big.csv", tmp_path / "downloads")
    assert path.read_bytes() == shapes_csv()


def test_errors_do_not_repeat_what_a_server_sent(origin, env, tmp_path):
    env.setenv("SIGN_DATASETS_SOURCE", origin.base_url)

    def bad_chunk(handler):
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        handler.wfile.write(b"TOPSECRET-TOKEN\r\n")
        handler.close_connection = True

    origin.routes["/chunk.csv"] = bad_chunk
    origin.routes["/error.csv"] = lambda h: h._send(500, b"TOPSECRET-TOKEN stack trace")
    for name in ("chunk.csv", "error.csv"):
        with pytest.raises(SourceDownloadError) as failed:
            downloads.download_source(origin.base_url + name, tmp_path / "downloads")
        assert "TOPSECRET" not in str(failed.value), str(failed.value)
        assert str(failed.value).startswith(origin.base_url + name)


# --- downloads are kept --------------------------------------------------------------------

def test_a_second_build_downloads_nothing(origin, env, tmp_path):
    env.setenv("SIGN_DATASETS_ALLOWED_HOSTS", f"127.0.0.1:{origin.port}")
    origin.routes["/shapes.csv"] = shapes_csv()
    sha = hashlib.sha256(shapes_csv()).hexdigest()
    register(tmp_path, catalog_entry("team_kept", origin.base_url + "shapes.csv", sha))
    download_dir = tmp_path / "downloads"
    first = build("team_kept", tmp_path / "first", download_dir)
    assert origin.paths == ["/shapes.csv"]
    second = build("team_kept", tmp_path / "second", download_dir)
    assert origin.paths == ["/shapes.csv"]
    assert first.info.splits["train"].num_examples == second.info.splits["train"].num_examples == 4
    (kept,) = [p for p in download_dir.rglob("*") if p.is_file()]
    assert kept.parent.name == sources.DOWNLOADS_FOLDER and kept.name.endswith("-shapes.csv")


def test_a_download_the_build_cannot_read_is_not_kept(origin, env, tmp_path):
    """An error page served with 200 once must not fail every later build."""
    from sign_datasets.core.cleaning import SourceError

    env.setenv("SIGN_DATASETS_ALLOWED_HOSTS", f"127.0.0.1:{origin.port}")
    origin.routes["/flaky.csv"] = b"<html><body>Quota exceeded, try later</body></html>"
    register(tmp_path, catalog_entry("team_flaky", origin.base_url + "flaky.csv"))
    with pytest.raises(SourceError, match="now removed, so the next build downloads it again"):
        build("team_flaky", tmp_path / "data", tmp_path / "downloads")
    assert not [p for p in (tmp_path / "downloads").rglob("*") if p.is_file()]
    origin.routes["/flaky.csv"] = shapes_csv()  # the server is mended
    built = build("team_flaky", tmp_path / "data", tmp_path / "downloads")
    assert built.info.splits["train"].num_examples == 4
    assert origin.paths == ["/flaky.csv", "/flaky.csv"]


def test_a_download_with_the_wrong_sha256_is_not_kept(origin, env, tmp_path):
    from sign_datasets.catalog.generated import ChecksumMismatch

    env.setenv("SIGN_DATASETS_ALLOWED_HOSTS", f"127.0.0.1:{origin.port}")
    origin.routes["/shapes.csv"] = shapes_csv()
    register(tmp_path, catalog_entry("team_wrong_sha", origin.base_url + "shapes.csv", "0" * 64))
    for attempt in (1, 2):
        with pytest.raises(ChecksumMismatch, match="sources\\[0\\].sha256.*the download was removed"):
            build("team_wrong_sha", tmp_path / "data", tmp_path / "downloads")
        assert len(origin.paths) == attempt  # downloaded anew, never trusted from before
    assert not [p for p in (tmp_path / "downloads").rglob("*") if p.is_file()]


def test_untrusted_url_text_never_steers_the_download_path(tmp_path):
    for url in ("http://example.org/../../etc/passwd", "http://example.org/%2e%2e%2f%2e%2e%2fx",
                "http://example.org/a/..%5c..%5cx", "http://example.org/", "http://example.org/.bashrc"):
        path = downloads.source_download_path(url, tmp_path)
        assert path.parent == tmp_path / sources.DOWNLOADS_FOLDER, url
        assert not path.name.split("-", 1)[1].startswith("."), url


# --- settings ------------------------------------------------------------------------------

@pytest.mark.parametrize("name, value", [
    ("SIGN_DATASETS_FETCH_WORKERS", "lots"), ("SIGN_DATASETS_FETCH_WORKERS", "0"),
    ("SIGN_DATASETS_FETCH_WORKERS", ""), ("SIGN_DATASETS_FETCH_TIMEOUT", "-1"),
    ("SIGN_DATASETS_FETCH_TIMEOUT", "nan"), ("SIGN_DATASETS_FETCH_TIMEOUT", "1,2,3"),
    ("SIGN_DATASETS_FETCH_RETRIES", "-2"), ("SIGN_DATASETS_FETCH_BACKOFF", "inf"),
    ("SIGN_DATASETS_FETCH_MAX_BYTES", "1e9"), ("SIGN_DATASETS_ALLOWED_HOSTS", "http://x.org/path"),
    ("SIGN_DATASETS_ALLOWED_HOSTS", "gs://Bad Bucket"), ("SIGN_DATASETS_SOURCE_MAX_BYTES", "-5"),
    ("SIGN_DATASETS_SOURCE_TIMEOUT", "0"),
])
def test_bad_settings_name_the_variable_and_value(name, value):
    with pytest.raises(FetchConfigError) as bad:
        fetch_settings.source_settings({name: value})
    message = str(bad.value)
    assert "\n" not in message and name in message and repr(value.strip())[1:-1] in message
