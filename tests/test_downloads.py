"""Source downloads (io/downloads.py): their own time limit and size cap,
errors that never repeat what a server sent, downloads kept for the next
build unless the build cannot read them or their sha256 is wrong, and a
download path that URL text never steers. Real servers on 127.0.0.1 started
here, real catalog builds.
"""

from __future__ import annotations

import hashlib
import time

import pytest

from sign_datasets.io import downloads, sources
from sign_datasets.io.downloads import SourceDownloadError

from loopback_http import build, catalog_entry, register, shapes_csv, trickle_body

pytest_plugins = ("loopback_http",)


# --- limits --------------------------------------------------------------------------------

def test_a_source_download_has_its_own_time_limit(origin, env, tmp_path):
    env.setenv("SIGN_DATASETS_SOURCE", origin.base_url)
    env.setenv("SIGN_DATASETS_SOURCE_TIMEOUT", "1")
    origin.routes["/slow.csv"] = trickle_body
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
