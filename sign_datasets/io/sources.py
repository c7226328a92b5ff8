"""Where the course's objects come from.

Real users download from the public bucket. `SIGN_DATASETS_SOURCE` (or our
CLI's `--source`) swaps that base for another http(s) base URL, a `file://`
URL or a local folder: the offline replica, a mirror, a shared disk. The swap
also applies to URLs written inside source files (data.json lists bucket URLs).
Whoever builds sets it, so its origin is trusted by the URL policy
(`url_policy.UrlPolicy`); objects of a local source are read where they are.
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path

BUCKET_URL = "https://storage.googleapis.com/platzi-tf2/"
SOURCE_ENV = "SIGN_DATASETS_SOURCE"


class SourceConfigError(ValueError):
    pass


def source_base(override: str | None = None) -> str:
    """The base every object name is resolved against, always ending in '/'.

    Local folders come back as `file://` URLs so callers handle one form.
    """
    raw = override if override is not None else os.environ.get(SOURCE_ENV, "")
    raw = raw.strip()
    if not raw:
        return BUCKET_URL
    scheme = urllib.parse.urlsplit(raw).scheme.lower()
    if scheme in ("http", "https"):
        return raw if raw.endswith("/") else raw + "/"
    if scheme == "file":
        path = Path(urllib.parse.unquote(urllib.parse.urlsplit(raw).path))
    elif scheme and len(scheme) > 1:  # a drive letter is not a scheme
        raise SourceConfigError(
            f"{SOURCE_ENV}={raw!r}: unsupported scheme {scheme!r}; use an http(s) "
            "base URL, a file:// URL or a local folder")
    else:
        path = Path(raw).expanduser()
    path = path.resolve()
    if not path.is_dir():
        raise SourceConfigError(
            f"{SOURCE_ENV}={raw!r}: folder {path} does not exist; make one with "
            "`sign-datasets replica make DIR` or point at the bucket's URL")
    return path.as_uri() + "/"


def object_url(name: str, base: str | None = None) -> str:
    """The URL of one bucket object, e.g. 'databasesLoadData.zip'."""
    return (base or source_base()) + name.lstrip("/")


def rebase_url(url: str, base: str | None = None) -> str:
    """Moves a URL that points into the real bucket onto the active source.

    URLs elsewhere are returned unchanged; whether they may be fetched is the
    fetcher's decision, not ours.
    """
    base = base or source_base()
    for bucket in (BUCKET_URL, BUCKET_URL.replace("https://", "http://", 1)):
        if url.startswith(bucket):
            return base + url[len(bucket):]
    return url


def local_path(url: str) -> Path | None:
    """The filesystem path behind a file:// URL, or None for remote URLs."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "file":
        return None
    return Path(urllib.parse.unquote(parts.path))


# The folder of a download dir where downloaded source files are kept, each
# named '<hash of its URL>-<its own file name>' (downloads.source_download_path).
DOWNLOADS_FOLDER = "sign_datasets_sources"


def downloaded_name(path) -> str | None:
    """The object's own file name when `path` is one of our downloads (which a
    rebuild fetches again once deleted); None for a file a catalog names."""
    path = Path(os.fspath(path))
    if path.parent.name != DOWNLOADS_FOLDER:
        return None
    return path.name.split("-", 1)[-1]
