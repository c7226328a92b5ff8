"""Source files a catalog or the bucket names, downloaded once.

http(s) sources are streamed once into the download dir (a temporary file
renamed into place) with their own size cap and time limit
(`fetch_settings.source_settings`), and reused by later builds; gs://
objects are copied the same way; local files are read where they are.
A download dir on another file system (gs://, which cluster workers share)
is written and read through TensorFlow's file system (`remote_files`).
Every location passes the URL policy in scope CATALOG first. A build that
finds a fresh download unreadable removes it, so a bad copy is not reused.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
import urllib.parse
from pathlib import Path

from sign_datasets.core.cleaning import MissingSource, SourceError
from sign_datasets.io import guards, remote_files, sources, url_cache
from sign_datasets.io.fetch_settings import (
    SOURCE_MAX_BYTES_ENV, SOURCE_TIMEOUT_ENV, FetchSettings, source_settings,
)
from sign_datasets.io.fetcher import NOT_FOUND, REFUSED, TIMEOUT, TOO_LARGE, Fetcher
from sign_datasets.io.url_policy import CATALOG, Refused, UrlPolicy, cut_url

CACHE_FOLDER = "sign_datasets_fetch"
# What of a URL's last path segment may become part of a file name.
_UNSAFE_NAME_CHARACTER = re.compile(r"[^A-Za-z0-9._-]")


def download_cache_dir(download_dir) -> Path | str:
    """Where a builder keeps fetched bodies: beside TFDS's own downloads, so
    `--download_dir` and clean-ups treat them alike. A download dir on
    another file system (gs://, as cluster workers share it) stays a URL:
    the URL cache reaches it through TensorFlow's file system."""
    if url_cache.is_remote(download_dir):
        return f"{os.fspath(download_dir).rstrip('/')}/{CACHE_FOLDER}"
    return Path(os.fspath(download_dir)) / CACHE_FOLDER


class SourceDownloadError(SourceError):
    """A source file named by URL was refused or could not be downloaded."""


# What to do about each way a source download fails.
_SOURCE_HINTS = {
    REFUSED: "",
    TIMEOUT: f"a slow server may need more time: raise {SOURCE_TIMEOUT_ENV} (seconds)",
    TOO_LARGE: f"if the file is meant to be that large, raise {SOURCE_MAX_BYTES_ENV} (bytes)",
    NOT_FOUND: "check the location",
}


def source_download_path(url: str, download_dir) -> Path | str:
    """Where the download of `url` is kept: a name made of the URL's hash and
    its last path segment, reduced to safe characters (the URL is untrusted;
    nothing of it may steer the path). A URL string under a remote dir."""
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:32]
    return remote_files.join(download_dir, sources.DOWNLOADS_FOLDER,
                             f"{digest}-{safe_file_name(url)}")


def safe_file_name(url: str) -> str:
    """The last path segment of a URL, in letters, digits, '.', '_' and '-'
    only, never starting with '.', at most 80 characters."""
    name = urllib.parse.unquote(urllib.parse.urlsplit(url).path).rsplit("/", 1)[-1]
    return _UNSAFE_NAME_CHARACTER.sub("_", name).lstrip(".")[-80:] or "source"


def download_source(url: str, download_dir, settings: FetchSettings | None = None,
                    source: str | None = None) -> Path | str:
    """The file of a source a catalog or the bucket names (a URL string
    under a remote download dir, which `guards.open_source` opens).

    file:// URLs (a local SIGN_DATASETS_SOURCE) are read where they are.
    http(s) and gs:// URLs pass the policy in scope CATALOG and are streamed
    once into `download_dir`; a later build reuses the file and sends no
    request. Raises SourceDownloadError with one line naming the URL, what
    went wrong and what to do.
    """
    settings = settings or source_settings()
    policy = UrlPolicy(sources.source_base(source), settings.allowed_hosts, CATALOG)
    try:
        local = policy.check(url)
    except Refused as refused:
        raise SourceDownloadError(f"{cut_url(url)}: refused: {refused}") from None
    if local is not None:
        if not local.is_file():
            raise MissingSource(f"{cut_url(url)}: no file {local}")
        return local
    target = source_download_path(url, download_dir)
    if remote_files.is_file(target):
        return guards.pinned_remote(target)
    if url.lower().startswith("gs:"):
        _copy_from_bucket(url, target, settings)
    else:
        with Fetcher(download_cache_dir(download_dir), settings, source, CATALOG) as fetch:
            result = fetch.download_file(url, target)
        if not result.ok:
            hint = _SOURCE_HINTS.get(result.reason, "check the server; a rerun tries again")
            raise SourceDownloadError(f"{cut_url(url)}: not downloaded ({result.reason}: "
                                      f"{result.detail})" + (f"; {hint}" if hint else ""))
    _FRESH_DOWNLOADS.append((target, download_dir))
    return guards.pinned_remote(target)


# Sources downloaded by the build running in this process, until it ends:
# a build that finds one unreadable removes it (`discard_fresh_downloads`), so
# an error page or a cut file served once is not reused by every later build.
_FRESH_DOWNLOADS: list[tuple[Path | str, Path | str]] = []


def forget_fresh_downloads() -> None:
    """A build starts or succeeded: what it downloaded is kept for later builds."""
    _FRESH_DOWNLOADS.clear()


def discard_fresh_downloads() -> list[Path | str]:
    """A build failed on its sources: removes what it downloaded; the files removed."""
    removed = [path for path, folder in _FRESH_DOWNLOADS if discard_download(path, folder)]
    _FRESH_DOWNLOADS.clear()
    return removed


def _copy_from_bucket(url: str, target: Path | str, settings: FetchSettings) -> None:
    """Copies an allowed gs:// object through TensorFlow's file system (the
    machine's own credentials), with the same cap and time limit."""
    tf = url_cache.tensorflow()
    deadline = time.monotonic() + settings.total_timeout
    try:
        size = tf.io.gfile.stat(url).length
    except tf.errors.OpError as error:
        raise SourceDownloadError(f"{cut_url(url)}: not readable ({type(error).__name__})") from None
    if size > settings.max_bytes:
        raise SourceDownloadError(f"{cut_url(url)}: {size} bytes, over the {settings.max_bytes}-"
                                  f"byte cap; {_SOURCE_HINTS[TOO_LARGE]}")
    with tf.io.gfile.GFile(url, "rb") as stream, remote_files.new_file(target) as out:
        copied = 0
        while chunk := stream.read(1 << 20):
            copied += len(chunk)
            if copied > settings.max_bytes:
                raise SourceDownloadError(f"{cut_url(url)}: over the {settings.max_bytes}-byte "
                                          f"cap; {_SOURCE_HINTS[TOO_LARGE]}")
            if time.monotonic() > deadline:
                raise SourceDownloadError(
                    f"{cut_url(url)}: not complete in {settings.total_timeout:g} s; "
                    f"{_SOURCE_HINTS[TIMEOUT]}")
            out.write(chunk)


def fetch_one(url: str) -> bytes:
    """The body of one URL found in a source file (scope DATA, as builds
    fetch it), kept nowhere; raises SourceDownloadError naming the URL."""
    with tempfile.TemporaryDirectory() as folder, Fetcher(folder) as fetch:
        result = fetch.fetch(url)
        if not result.ok:
            raise SourceDownloadError(f"{cut_url(url)}: not fetched ({result.reason}: "
                                      f"{result.detail})")
        return result.read_bytes()


def discard_download(path, download_dir) -> bool:
    """Removes a downloaded source (one whose bytes proved wrong), so the
    next build downloads it again; never a file outside the download folder."""
    folder = remote_files.join(download_dir, sources.DOWNLOADS_FOLDER)
    if remote_files.parent(remote_files.as_path(path)) != folder:
        return False
    remote_files.remove(path)
    return True
