"""Fetching many small files named by URLs in untrusted source files.

A data.json may list thousands of image URLs, and anyone who can edit it
chooses where our machine connects. So every URL, and every redirect hop,
passes a `UrlPolicy` first: only http(s) on the active source's origin (or
hosts the user allowed), file:// only beneath a local source, never cloud
metadata or link-local addresses unless explicitly allowed.

Speed comes from one pooled `requests.Session` shared by a thread pool: the
work is waiting on the network, which threads do well. The session is set up
as usual (an HTTPAdapter with urllib3's Retry, no proxies from the
environment), but each GET goes straight to the adapter's urllib3 pool:
requests' own per-call work (preparing the request, merging settings,
cookies, hooks) cost more CPU than the rest of a fetch together, and with
hundreds of URLs a second that CPU, not the network, bounds the speed
(docs/BENCHMARKS.md, "Fetcher"). Every failure a single
URL can have (404, 5xx after retries, timeout, oversized body, refused URL)
comes back as a `FetchResult` with a named reason, never as an exception, so
a builder can count it as a drop. Results come back in input order whatever
the thread timing, which keeps builds deterministic.

Bodies are kept in a cache under the download dir (`url_cache`: small ones
in pack files, large ones in a file each, written as a temporary file and
renamed), so a rebuild fetches nothing and an interrupted build resumes
where it stopped.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import ipaddress
import os
import re
import secrets
import socket
import time
import urllib.parse
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, TypeVar

import requests
import urllib3
from requests.adapters import HTTPAdapter
from tqdm import tqdm
from urllib3.util.retry import Retry

from sign_datasets import sources, url_cache
from sign_datasets.cleaning import SourceError

T = TypeVar("T")

WORKERS_ENV = "SIGN_DATASETS_FETCH_WORKERS"
TIMEOUT_ENV = "SIGN_DATASETS_FETCH_TIMEOUT"
RETRIES_ENV = "SIGN_DATASETS_FETCH_RETRIES"
BACKOFF_ENV = "SIGN_DATASETS_FETCH_BACKOFF"
MAX_BYTES_ENV = "SIGN_DATASETS_FETCH_MAX_BYTES"
ALLOWED_HOSTS_ENV = "SIGN_DATASETS_ALLOWED_HOSTS"
MAX_FAILED_SHARE_ENV = "SIGN_DATASETS_MAX_FAILED_SHARE"

# Drop reasons: one per way a single URL can fail.
NOT_FOUND = "not_found"
SERVER_ERROR = "server_error"
RATE_LIMITED = "rate_limited"
HTTP_ERROR = "http_error"
TIMEOUT = "timeout"
TOO_LARGE = "response_too_large"
REFUSED = "refused_url"
CONNECTION_FAILED = "connection_failed"
TOO_MANY_REDIRECTS = "too_many_redirects"

# Browsers stop near 2,000 characters; a longer "URL" in a data file is junk
# or an attempt to bloat logs and reports.
MAX_URL_CHARS = 4096
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_FAILED_SHARE = 0.10
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
CACHE_FOLDER = "sign_datasets_fetch"
_STREAM_CHUNK = 64 * 1024
# Bodies up to this size are held in memory, kept in a pack of the URL cache
# and travel with their result; the window of results in flight times this
# bounds what that costs. Larger ones stream to a file of their own.
_KEEP_IN_MEMORY = 256 * 1024
_UNSAFE_URL_CHARACTER = re.compile(r"[\x00-\x20\x7f]")

# Names that cloud VMs resolve to their instance-metadata service, which
# hands out credentials; a data file must not be able to point us there.
_METADATA_NAMES = frozenset({
    "metadata", "metadata.google.internal", "metadata.goog", "instance-data",
    "instance-data.ec2.internal", "metadata.azure.com",
})
_METADATA_ADDRESSES = frozenset({
    ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("169.254.170.2"),
    ipaddress.ip_address("100.100.100.200"), ipaddress.ip_address("fd00:ec2::254"),
})


class FetchConfigError(sources.SourceConfigError):
    """A fetch setting (environment variable or argument) is unusable."""


# --- settings -------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class FetchSettings:
    """How hard and how wide to fetch. `from_env` reads the overrides users set."""

    workers: int = 16
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    # requests' read timeout bounds each socket read, not the whole body: a
    # server trickling a byte a second would never trip it.
    total_timeout: float = 300.0
    retries: int = 5
    backoff_factor: float = 0.5
    backoff_max: float = 30.0
    # A hostile Retry-After of a day must not stall the build for a day.
    retry_after_max: int = 60
    max_bytes: int = DEFAULT_MAX_BYTES
    max_redirects: int = 5
    allowed_hosts: tuple[str, ...] = ()
    # None: a bar only when stderr is a terminal (tqdm's rule), so logs stay clean.
    progress: bool | None = None

    def __post_init__(self):
        if self.workers < 1:
            raise FetchConfigError(f"workers must be at least 1, got {self.workers}")
        for name in ("connect_timeout", "read_timeout", "total_timeout"):
            if not getattr(self, name) > 0:
                raise FetchConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.retries < 0 or self.max_redirects < 0 or self.backoff_factor < 0:
            raise FetchConfigError("retries, max_redirects and backoff_factor must be >= 0")
        if self.max_bytes < 1:
            raise FetchConfigError(f"max_bytes must be positive, got {self.max_bytes}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "FetchSettings":
        """Defaults, then SIGN_DATASETS_FETCH_* / SIGN_DATASETS_ALLOWED_HOSTS, then `overrides`."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if raw := env.get(WORKERS_ENV, "").strip():
            values["workers"] = _parse_number(WORKERS_ENV, raw, int)
        if raw := env.get(TIMEOUT_ENV, "").strip():
            # "5" sets both; "5,30" sets connect then read.
            parts = [_parse_number(TIMEOUT_ENV, p, float) for p in raw.split(",")]
            if len(parts) not in (1, 2):
                raise FetchConfigError(f"{TIMEOUT_ENV}={raw!r}: use SECONDS or CONNECT,READ")
            values["connect_timeout"], values["read_timeout"] = parts[0], parts[-1]
        if raw := env.get(RETRIES_ENV, "").strip():
            values["retries"] = _parse_number(RETRIES_ENV, raw, int)
        if raw := env.get(BACKOFF_ENV, "").strip():
            values["backoff_factor"] = _parse_number(BACKOFF_ENV, raw, float)
        if raw := env.get(MAX_BYTES_ENV, "").strip():
            values["max_bytes"] = _parse_number(MAX_BYTES_ENV, raw, int)
        if raw := env.get(ALLOWED_HOSTS_ENV, "").strip():
            values["allowed_hosts"] = tuple(h.strip() for h in raw.split(",") if h.strip())
        values.update(overrides)
        return cls(**values)


def _parse_number(name: str, raw: str, kind: type) -> Any:
    try:
        return kind(raw)
    except ValueError:
        raise FetchConfigError(f"{name}={raw!r} is not a valid {kind.__name__}") from None


# --- which URLs may be fetched ------------------------------------------------

class Refused(Exception):
    """The policy refuses a URL; the message says why and how to allow it."""


@dataclasses.dataclass(frozen=True)
class _Origin:
    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


@functools.lru_cache(maxsize=1024)
def _canonical_host(host: str) -> str:
    """Lower-case name, or the canonical text of an IP address.

    The resolver also accepts legacy IPv4 spellings ("2852039166", "0xa9.254.0x..",
    "127.1"); without normalising them a blocked address slips through in
    another spelling.
    """
    host = host.strip().lower().rstrip(".")
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefx." for c in host):
        try:
            return str(ipaddress.IPv4Address(socket.inet_aton(host)))
        except OSError:
            pass
    return host


def _special_kind(host: str) -> str | None:
    """Why a host is dangerous to reach by default, or None."""
    if host in _METADATA_NAMES:
        return "cloud metadata endpoint"
    if host == "localhost" or host.endswith(".localhost"):
        return "loopback address"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address in _METADATA_ADDRESSES:
        return "cloud metadata endpoint"
    if address.is_link_local:
        return "link-local address"
    if address.is_loopback:
        return "loopback address"
    if address.is_unspecified or address.is_multicast:
        return "non-routable address"
    return None


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


class UrlPolicy:
    """Decides which URLs may be fetched.

    Allowed: http(s) on the origin (scheme, host, port) of the active source;
    hosts listed in `allowed_hosts` ("host" for any port or "host:port");
    file:// beneath the source folder when the source is local. Everything
    else is refused, so a data file cannot make us reach cloud metadata,
    link-local or other loopback services, or read local files.
    """

    def __init__(self, source_base: str, allowed_hosts: Iterable[str] = ()):
        self.source_base = source_base
        parts = urllib.parse.urlsplit(source_base)
        self.local_root: Path | None = None
        self.source_origin: _Origin | None = None
        if parts.scheme == "file":
            self.local_root = Path(urllib.parse.unquote(parts.path)).resolve()
        else:
            self.source_origin = _Origin(parts.scheme, _canonical_host(parts.hostname or ""),
                                         parts.port or _default_port(parts.scheme))
        self.allowed: set[tuple[str, int | None]] = set()
        for entry in allowed_hosts:
            self.allowed.add(self._parse_allowed(entry))

    @staticmethod
    def _parse_allowed(entry: str) -> tuple[str, int | None]:
        parsed = urllib.parse.urlsplit("//" + entry.strip())
        try:
            port = parsed.port
        except ValueError:
            raise FetchConfigError(f"{ALLOWED_HOSTS_ENV}: bad port in {entry!r}") from None
        if not parsed.hostname or parsed.path or parsed.username:
            raise FetchConfigError(
                f"{ALLOWED_HOSTS_ENV}: {entry!r} is not HOST or HOST:PORT (comma-separated)")
        return _canonical_host(parsed.hostname), port

    def check(self, url: str) -> Path | None:
        """Returns the local path for an allowed file:// URL, None for an
        allowed http(s) URL; raises `Refused` otherwise."""
        if len(url) > MAX_URL_CHARS:
            raise Refused(f"URL longer than {MAX_URL_CHARS} characters")
        if _UNSAFE_URL_CHARACTER.search(url):
            raise Refused("URL contains spaces or control characters")
        try:
            parts = urllib.parse.urlsplit(url)
            port = parts.port
        except ValueError as error:
            raise Refused(f"malformed URL ({error})") from None
        scheme = parts.scheme.lower()
        if scheme == "file":
            return self._check_file(parts)
        if scheme not in ("http", "https"):
            raise Refused(f"scheme {scheme or '(none)'!r} is not fetched; only http and https "
                          "(and file:// beneath a local SIGN_DATASETS_SOURCE)")
        if parts.username is not None or parts.password is not None:
            raise Refused("URL carries credentials (user@host)")
        if not parts.hostname:
            raise Refused("URL has no host")
        origin = _Origin(scheme, _canonical_host(parts.hostname), port or _default_port(scheme))
        if origin == self.source_origin:
            return None
        if (origin.host, None) in self.allowed or (origin.host, origin.port) in self.allowed:
            return None
        kind = _special_kind(origin.host)
        where = f"{origin.host} port {origin.port}"
        if kind:
            raise Refused(f"{kind} {where} is not the source ({self._source_text()}); "
                          f"only an exact {ALLOWED_HOSTS_ENV} entry allows it")
        raise Refused(f"host {where} is not the source's ({self._source_text()}); "
                      f"add it to {ALLOWED_HOSTS_ENV} to fetch from it")

    def _source_text(self) -> str:
        return str(self.source_origin) if self.source_origin else f"folder {self.local_root}"

    def _check_file(self, parts: urllib.parse.SplitResult) -> Path:
        if self.local_root is None:
            raise Refused("file:// URLs are read only when SIGN_DATASETS_SOURCE is a local "
                          f"folder; the source is {self.source_base}")
        if parts.netloc not in ("", "localhost"):
            raise Refused(f"file:// URL names another machine ({parts.netloc})")
        # resolve() follows symlinks and '..', so a link out of the folder is caught too.
        path = Path(urllib.parse.unquote(parts.path)).resolve()
        if not path.is_relative_to(self.local_root):
            raise Refused(f"{path} is outside the source folder {self.local_root}")
        return path


# --- results --------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class FetchResult:
    """What became of one URL: a file holding the body, or a named failure."""

    url: str
    path: Path | None = None
    reason: str | None = None
    detail: str = ""
    from_cache: bool = False
    # A small body just fetched is handed over as well, saving a re-read.
    data: bytes | None = dataclasses.field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.reason is None

    def read_bytes(self) -> bytes:
        if self.data is not None:
            return self.data
        if self.path is None:
            raise ValueError(f"{self.url} was not fetched: {self.reason} {self.detail}")
        return self.path.read_bytes()


class _BoundedRetry(Retry):
    """urllib3's Retry, tolerant of a malformed Retry-After header.

    Stock urllib3 raises InvalidHeader for e.g. "Retry-After: soon", which
    would end the fetch with an exception instead of a backoff and a retry.
    """

    def get_retry_after(self, response):
        try:
            return super().get_retry_after(response)
        except urllib3.exceptions.InvalidHeader:
            return None


def _timed_out(error: BaseException) -> bool:
    """Whether a urllib3 error chain was caused by a timeout.

    urllib3 wraps timeouts differently depending on whether they happened
    while connecting, before the headers, after retries ran out or while
    streaming the body; the cause is somewhere in the chain.
    """
    seen: set[int] = set()
    stack: list[Any] = [error]
    while stack:
        current = stack.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, urllib3.exceptions.NewConnectionError):
            continue  # a refused connection, not a slow one
        if isinstance(current, (urllib3.exceptions.TimeoutError, socket.timeout)):
            return True
        stack.extend(current.args)
        stack.extend([getattr(current, "reason", None), current.__cause__, current.__context__])
    return False


class Fetcher:
    """Fetches URLs through one pooled session and a cache; see the module doc.

    cache_dir: where bodies are kept (a builder passes a folder under its
    download dir). source: the base URL or file:// URL whose origin is
    allowed (default: the active SIGN_DATASETS_SOURCE).
    """

    def __init__(self, cache_dir, settings: FetchSettings | None = None, source: str | None = None):
        self.settings = settings or FetchSettings.from_env()
        self.policy = UrlPolicy(sources.source_base(source), self.settings.allowed_hosts)
        self.cache_dir = Path(cache_dir)
        self._session = self._new_session()
        adapter = self._session.get_adapter("http://")
        # The session's own pool and Retry, used without requests' per-call layer.
        self._pool: urllib3.PoolManager = adapter.poolmanager
        self._retry: Retry = adapter.max_retries
        self._timeout = urllib3.Timeout(connect=self.settings.connect_timeout,
                                        read=self.settings.read_timeout)
        self._headers = dict(self._session.headers)
        self._made_folders: set[str] = set()
        self._cache = url_cache.open_cache(self.cache_dir)

    def _new_session(self) -> requests.Session:
        s = self.settings
        retry = _BoundedRetry(
            total=s.retries, connect=s.retries, read=s.retries, status=s.retries,
            allowed_methods=frozenset({"GET"}), status_forcelist=RETRY_STATUSES,
            backoff_factor=s.backoff_factor, backoff_max=s.backoff_max,
            retry_after_max=s.retry_after_max, respect_retry_after_header=True,
            # The last 5xx comes back as a response, so it is classified like any status.
            raise_on_status=False,
            # We follow redirects ourselves, re-checking each hop with the policy.
            redirect=False,
        )
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=s.workers, max_retries=retry)
        session = requests.Session()
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers.update({
            "User-Agent": "sign-datasets-fetcher",
            # Images gain nothing from transfer compression, and an identity
            # body is what the size cap measures.
            "Accept-Encoding": "identity",
        })
        # Proxy settings from the environment would bypass the host policy.
        session.trust_env = False
        return session

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> "Fetcher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- one URL -----------------------------------------------------------

    def cache_path(self, url: str) -> Path:
        """The file of a body too large for the packs."""
        digest = url_cache.url_key(url).hex()
        # 16 folders: a million URLs make 62,500 files each, which ext4 and
        # friends index well, while a small fetch does not pay a mkdir (about
        # 0.3 ms here) for almost every URL, as 256 folders would.
        return self.cache_dir / digest[:1] / digest

    def fetch(self, url: str) -> FetchResult:
        """Fetches one URL; every per-URL failure is a result, never an exception.

        Exceptions that do escape (a full disk under the cache) are problems
        of this machine, not of the URL, and must stop the build.
        """
        try:
            local = self.policy.check(url)
        except Refused as refused:
            return FetchResult(url, reason=REFUSED, detail=str(refused))
        if local is not None:
            return self._local(url, local)
        body = self._cache.get(url)
        if body is not None:
            return FetchResult(url, data=body, from_cache=True)
        cached = self.cache_path(url)
        if cached.is_file():
            return FetchResult(url, cached, from_cache=True)
        try:
            return self._download(url, cached)
        except urllib3.exceptions.HTTPError as error:
            # Requests go through urllib3 alone: its errors are all there is.
            # (Retries spent on statuses come back as the last response, since
            # raise_on_status is off, and are classified by their status.)
            reason = TIMEOUT if _timed_out(error) else CONNECTION_FAILED
            return FetchResult(url, reason=reason, detail=_short(error))

    def _local(self, url: str, path: Path) -> FetchResult:
        if not path.is_file():
            return FetchResult(url, reason=NOT_FOUND, detail=f"no file {path}")
        size = path.stat().st_size
        if size > self.settings.max_bytes:
            return FetchResult(url, reason=TOO_LARGE,
                               detail=f"{size} bytes, over the {self.settings.max_bytes}-byte cap")
        return FetchResult(url, path)

    def _download(self, url: str, cached: Path) -> FetchResult:
        s = self.settings
        deadline = time.monotonic() + s.total_timeout
        current = url
        for hop in range(s.max_redirects + 1):
            response = self._pool.urlopen("GET", current, headers=self._headers,
                                          retries=self._retry, redirect=False,
                                          timeout=self._timeout, preload_content=False)
            try:
                if response.status in _REDIRECT_STATUSES and "location" in response.headers:
                    target = urllib.parse.urljoin(current, response.headers["location"])
                    if hop == s.max_redirects:
                        return FetchResult(url, reason=TOO_MANY_REDIRECTS,
                                           detail=f"more than {s.max_redirects} redirects")
                    refusal = self._redirect_refusal(current, target)
                    if refusal:
                        return FetchResult(url, reason=REFUSED, detail=refusal)
                    current = target
                    continue
                if response.status != 200:
                    return FetchResult(url, reason=_status_reason(response.status),
                                       detail=f"HTTP {response.status} from {current}")
                return self._store(url, response, cached, deadline)
            finally:
                # A connection goes back to the pool for the next URL only
                # once its body was read to the end; with a body left unread
                # (an error status, a refusal) it would answer the next GET
                # with stale bytes, so it is closed instead.
                if not response.isclosed():
                    response.close()
                response.release_conn()
        raise AssertionError("unreachable: the loop returns on its last hop")

    def _redirect_refusal(self, current: str, target: str) -> str:
        if urllib.parse.urlsplit(target).scheme.lower() not in ("http", "https"):
            return f"redirect from {current} to a non-http URL {target[:200]}"
        if current.lower().startswith("https:") and target.lower().startswith("http:"):
            return f"redirect from https down to http: {target[:200]}"
        try:
            self.policy.check(target)
        except Refused as refused:
            return f"redirect to {target[:200]}: {refused}"
        return ""

    def _store(self, url: str, response: urllib3.BaseHTTPResponse, cached: Path,
               deadline: float) -> FetchResult:
        cap = self.settings.max_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            # Refused before reading a byte of the body.
            return FetchResult(url, reason=TOO_LARGE,
                               detail=f"Content-Length {declared}, over the {cap}-byte cap")
        chunks: list[bytes] = []
        size = 0
        descriptor, partial = None, ""
        try:
            for chunk in response.stream(_STREAM_CHUNK, decode_content=False):
                size += len(chunk)
                if size > cap:
                    return FetchResult(url, reason=TOO_LARGE, detail=f"body over the {cap}-byte cap")
                if time.monotonic() > deadline:
                    return FetchResult(url, reason=TIMEOUT,
                                       detail=f"body not complete in {self.settings.total_timeout} s")
                if descriptor is None and size <= _KEEP_IN_MEMORY:
                    chunks.append(chunk)
                    continue
                if descriptor is None:
                    descriptor, partial = self._open_partial(cached)
                    for held in chunks:
                        os.write(descriptor, held)
                    chunks = []
                os.write(descriptor, chunk)
            if descriptor is None:
                body = b"".join(chunks)
                self._cache.put(url, body)
                return FetchResult(url, data=body)
            os.close(descriptor)
            descriptor = None
            os.replace(partial, cached)
            partial = ""  # stored: nothing left to clean up
            return FetchResult(url, cached)
        finally:
            if descriptor is not None:
                os.close(descriptor)
            if partial:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(partial)

    def _open_partial(self, cached: Path) -> tuple[int, str]:
        folder = str(cached.parent)
        if folder not in self._made_folders:
            cached.parent.mkdir(parents=True, exist_ok=True)
            self._made_folders.add(folder)
        # A unique temporary name in the same folder: concurrent builds
        # sharing a download dir never write into each other's file, and the
        # rename is atomic, so the cache never holds a partial body.
        partial = f"{cached}.{secrets.token_hex(6)}.part"
        return os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644), partial

    # --- many URLs ---------------------------------------------------------

    def fetch_all(self, items: Iterable[T], url_of: Callable[[T], str | None] | None = None,
                  desc: str = "fetching") -> Iterator[tuple[T, FetchResult | None]]:
        """Yields (item, result) in the order of `items`, fetching in parallel.

        `url_of(item)` gives the URL; None means "do not fetch this one" and
        yields (item, None), so records dropped earlier keep their place.
        Items are consumed lazily: only a bounded window is in flight.
        """
        url_of = url_of or (lambda item: item)  # type: ignore[assignment,return-value]
        total = len(items) if hasattr(items, "__len__") else None  # type: ignore[arg-type]
        # A deep window lets a few slow URLs at the head not starve the other
        # threads; results hold a path and at most _KEEP_IN_MEMORY bytes, so
        # even a full window of them stays small.
        window = max(64, 8 * self.settings.workers)
        pool = ThreadPoolExecutor(max_workers=self.settings.workers,
                                  thread_name_prefix="sign-datasets-fetch")
        bar = tqdm(total=total, desc=desc, unit="url", leave=False,
                   disable=None if self.settings.progress is None else not self.settings.progress)
        pending: collections.deque[tuple[T, Future | None]] = collections.deque()
        try:
            for item in items:
                url = url_of(item)
                pending.append((item, None if url is None else pool.submit(self.fetch, url)))
                while pending and (len(pending) >= window or _settled(pending[0][1])):
                    yield _take(pending, bar)
            while pending:
                yield _take(pending, bar)
        finally:
            for _, future in pending:
                if future is not None:
                    future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
            bar.close()


def _settled(future: Future | None) -> bool:
    return future is None or future.done()


def _take(pending: collections.deque, bar) -> tuple[Any, FetchResult | None]:
    item, future = pending.popleft()
    result = None if future is None else future.result()
    bar.update(1)
    return item, result


def _status_reason(status: int) -> str:
    if status in (404, 410):
        return NOT_FOUND
    if status == 429:
        return RATE_LIMITED
    if 500 <= status <= 599:
        return SERVER_ERROR
    return HTTP_ERROR


def _short(error: BaseException, limit: int = 300) -> str:
    text = f"{type(error).__name__}: {error}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def download_cache_dir(download_dir) -> Path:
    """Where a builder keeps fetched bodies: beside TFDS's own downloads, so
    `--download_dir` and clean-ups treat them alike."""
    return Path(os.fspath(download_dir)) / CACHE_FOLDER


# --- when too many records fail ------------------------------------------------

class TooManyFailures(SourceError):
    """More records of a split failed than the allowed share."""


def max_failed_share(configured: float = DEFAULT_MAX_FAILED_SHARE,
                     environ: Mapping[str, str] | None = None) -> float:
    """The builder's configured share, unless SIGN_DATASETS_MAX_FAILED_SHARE overrides it."""
    env = os.environ if environ is None else environ
    raw = env.get(MAX_FAILED_SHARE_ENV, "").strip()
    share = _parse_number(MAX_FAILED_SHARE_ENV, raw, float) if raw else float(configured)
    if not 0.0 <= share <= 1.0:
        raise FetchConfigError(f"the share of failed records allowed must be within 0..1, got {share}")
    return share


def check_failed_share(report: Mapping, limit: float, what: str) -> None:
    """Raises `TooManyFailures` when more than `limit` of the records were dropped.

    `report` is a SplitReport.to_dict(). Raised at the end of a split's
    generator, it stops TFDS before anything is published, instead of
    shipping a dataset with a hole nobody asked for.
    """
    records, dropped = int(report["records"]), int(report["dropped"])
    if records == 0 or dropped / records <= limit:
        return
    lines = [f"{what}: {dropped} of {records} records failed ({dropped / records:.1%}), more than "
             f"the {limit:.0%} allowed, so the build stopped and nothing was written."]
    for reason, count in sorted(report["drops"].items(), key=lambda kv: (-kv[1], kv[0])):
        first = report.get("examples", {}).get(reason, [])[:3]
        lines.append(f"  {reason}: {count}" + (f" (first: {'; '.join(first)})" if first else ""))
    if REFUSED in report["drops"]:
        lines.append(f"URLs outside the source are refused on purpose; list hosts you trust in "
                     f"{ALLOWED_HOSTS_ENV} (comma-separated HOST or HOST:PORT) to fetch them.")
    lines.append(f"Fetched files are cached, so a rerun retries only the failures. If a partial "
                 f"dataset is acceptable, raise the limit, e.g. {MAX_FAILED_SHARE_ENV}=0.5.")
    raise TooManyFailures("\n".join(lines))
