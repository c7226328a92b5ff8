"""A scripted HTTP server on 127.0.0.1 of the tests' own (http.server in a
thread), its fixtures (`origin`, `other`, `env`), a server action that
trickles its body, and the catalogs and builds the URL tests make.

Test modules that use the fixtures name this module in `pytest_plugins`.
"""

from __future__ import annotations

import hashlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

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


def trickle_body(handler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", "1000")
    handler.end_headers()
    for _ in range(1000):
        handler.wfile.write(b"x")
        handler.wfile.flush()
        time.sleep(0.1)
