"""Time limits that hold (io/http_client.py, through the fetcher): a server
that trickles its headers or body, or answers 503 with a long Retry-After,
meets the total deadline. Real servers on 127.0.0.1 started here.
"""

from __future__ import annotations

import time

import pytest

from sign_datasets.io.fetch_settings import FetchSettings
from sign_datasets.io.fetcher import SERVER_ERROR, TIMEOUT, Fetcher

from loopback_http import FAST, trickle_body

pytest_plugins = ("loopback_http",)


# --- time limits -------------------------------------------------------------------------

def trickle_headers(handler) -> None:
    for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"y" * 1000:
        handler.wfile.write(bytes([byte]))
        handler.wfile.flush()
        time.sleep(0.1)


def trickle_body_without_length(handler) -> None:
    # No Content-Length: the body ends when the connection closes, so a body
    # the deadline cut off looks like a complete one unless the time is checked.
    handler.send_response(200)
    handler.send_header("Connection", "close")
    handler.end_headers()
    for _ in range(1000):
        handler.wfile.write(b"label,pixel1\n0,1\n"[_ % 16:_ % 16 + 1])
        handler.wfile.flush()
        time.sleep(0.1)


def trickle_short_answer(handler) -> None:
    # A whole, valid answer, whose headers alone outlast the deadline.
    for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello":
        handler.wfile.write(bytes([byte]))
        handler.wfile.flush()
        time.sleep(0.05)


@pytest.mark.parametrize("path, trickle", [("/body", trickle_body), ("/headers", trickle_headers),
                                           ("/nolength", trickle_body_without_length),
                                           ("/short", trickle_short_answer)])
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
