"""Many small files: the URLs a source file lists, fetched in parallel.

`Fetcher.fetch_all` runs one urllib3 pool (`http_client`) shared by a thread
pool, since the work is waiting on the network. Every URL, redirect hop and
connected socket passes the URL policy (`url_policy`). Every failure a
single URL can have (404, 5xx after retries, timeout, oversized body,
refused URL) comes back as a `FetchResult` with a named reason, never as an
exception, so a builder can count it as a drop; results come back in input
order, which keeps builds deterministic. Bodies are kept in a cache under
the download dir (`url_cache`), so a rebuild fetches nothing.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import socket
import time
import urllib.parse
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

import urllib3
from tqdm import tqdm

from sign_datasets.io import sources
from sign_datasets.io import remote_files, url_cache
from sign_datasets.io.fetch_settings import FetchSettings
from sign_datasets.io.http_client import WATCHDOG, BoundedRetry, DeadlineTimeout, PolicyPoolManager
from sign_datasets.io.url_policy import DATA, Refused, UrlPolicy, cut_url

T = TypeVar("T")

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

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# read1 returns what one socket read brings, at most this much: the deadline
# is checked after every read, however slowly the bytes come.
_STREAM_CHUNK = 64 * 1024
# Bodies up to this size are held in memory, kept in a pack of the URL cache
# and travel with their result; the window of results in flight times this
# bounds what that costs. Larger ones stream to a file of their own.
_KEEP_IN_MEMORY = 256 * 1024


@dataclasses.dataclass(frozen=True)
class FetchResult:
    """What became of one URL: a file holding the body, or a named failure."""

    url: str
    # A local Path, or a URL string under a remote download dir (remote_files).
    path: Path | str | None = None
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
            raise ValueError(f"{cut_url(self.url)} was not fetched: {self.reason} {self.detail}")
        return remote_files.read_bytes(self.path)


def _chain(error: BaseException) -> Iterator[BaseException]:
    """An exception and everything it wraps (urllib3 nests causes in args and .reason)."""
    seen: set[int] = set()
    stack: list[Any] = [error]
    while stack:
        current = stack.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack.extend(current.args)
        stack.extend([getattr(current, "reason", None), current.__cause__, current.__context__])


def _timed_out(error: BaseException) -> bool:
    """Whether a urllib3 error chain was caused by a timeout.

    urllib3 wraps timeouts differently depending on whether they happened
    while connecting, before the headers, after retries ran out or while
    streaming the body; the cause is somewhere in the chain.
    """
    for current in _chain(error):
        if isinstance(current, urllib3.exceptions.NewConnectionError):
            return False  # a refused connection, not a slow one
        if isinstance(current, (urllib3.exceptions.TimeoutError, socket.timeout)):
            return True
    return False


def _describe(error: BaseException) -> str:
    """What kind of failure a urllib3 error is, without repeating what the
    server sent (a bad status line or chunk header echoes its bytes)."""
    names = list(dict.fromkeys(type(e).__name__ for e in _chain(error)))
    causes = [e.strerror for e in _chain(error) if isinstance(e, OSError) and e.strerror]
    return " < ".join(names[:4]) + (f" ({causes[0]})" if causes else "")


class Fetcher:
    """Fetches URLs through one policy-checked pool and a cache; see the module doc.

    cache_dir: where bodies are kept (a builder passes a folder under its
    download dir; gs:// and other remote folders are reached through
    TensorFlow's file system, `remote_files`). source: the base URL or file:// URL whose origin is
    allowed (default: the active SIGN_DATASETS_SOURCE). scope: DATA for URLs
    found in source files, CATALOG for locations a catalog names.
    """

    def __init__(self, cache_dir, settings: FetchSettings | None = None, source: str | None = None,
                 scope: str = DATA):
        self.settings = settings or FetchSettings.from_env()
        self.policy = UrlPolicy(sources.source_base(source), self.settings.allowed_hosts, scope)
        self.cache_dir = remote_files.as_path(cache_dir)
        s = self.settings
        self._retry = BoundedRetry(
            total=s.retries, connect=s.retries, read=s.retries, status=s.retries,
            allowed_methods=frozenset({"GET"}), status_forcelist=RETRY_STATUSES,
            backoff_factor=s.backoff_factor, backoff_max=s.backoff_max,
            retry_after_max=s.retry_after_max, respect_retry_after_header=True,
            # The last 5xx comes back as a response, so it is classified like any status.
            raise_on_status=False,
            # We follow redirects ourselves, re-checking each hop with the policy.
            redirect=False,
        )
        # urllib3 alone: requests' per-call work (preparing, merging settings,
        # hooks) cost more CPU than the rest of a small fetch (docs/BENCHMARKS.md,
        # "Fetcher"). A PoolManager reads no proxy settings from the
        # environment, which would bypass the policy.
        self._pool = PolicyPoolManager(
            self.policy, num_pools=4, maxsize=s.workers, retries=self._retry,
            headers={"User-Agent": "sign-datasets-fetcher",
                     # Images gain nothing from transfer compression, and an
                     # identity body is what the size cap measures.
                     "Accept-Encoding": "identity"},
            **_ca_bundle())
        self._made_folders: set[str] = set()
        self._cache = url_cache.open_cache(self.cache_dir)

    def close(self) -> None:
        self._pool.clear()
        # What this fetcher added to a remote cache becomes visible to other
        # workers (and survives this process) now, not at exit.
        self._cache.flush()

    def __enter__(self) -> "Fetcher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- one URL -----------------------------------------------------------

    def cache_path(self, url: str) -> Path | str:
        """The file of a body too large for the packs."""
        digest = url_cache.url_key(url).hex()
        # 16 folders: a million URLs make 62,500 files each, which ext4 and
        # friends index well, while a small fetch does not pay a mkdir (about
        # 0.3 ms here) for almost every URL, as 256 folders would.
        return remote_files.join(self.cache_dir, digest[:1], digest)

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
        if remote_files.is_file(cached):
            return FetchResult(url, cached, from_cache=True)
        return self._download(url, cached, keep_small=True)

    def download_file(self, url: str, target: Path | str) -> FetchResult:
        """Streams one http(s) URL into `target` (temporary file, then an
        atomic rename), whatever its size up to the cap; a result, never an
        exception, as `fetch`."""
        try:
            local = self.policy.check(url)
        except Refused as refused:
            return FetchResult(url, reason=REFUSED, detail=str(refused))
        if local is not None or not url.lower().startswith(("http:", "https:")):
            return FetchResult(url, reason=REFUSED, detail="not an http(s) URL")
        return self._download(url, target, keep_small=False)

    def _local(self, url: str, path: Path) -> FetchResult:
        if not path.is_file():
            return FetchResult(url, reason=NOT_FOUND, detail=f"no file {path}")
        size = path.stat().st_size
        if size > self.settings.max_bytes:
            return FetchResult(url, reason=TOO_LARGE,
                               detail=f"{size} bytes, over the {self.settings.max_bytes}-byte cap")
        return FetchResult(url, path)

    def _download(self, url: str, target: Path | str, keep_small: bool) -> FetchResult:
        deadline = time.monotonic() + self.settings.total_timeout
        with WATCHDOG.deadline(deadline) as watch:
            try:
                return self._follow(url, target, keep_small, deadline)
            except Refused as refused:
                return FetchResult(url, reason=REFUSED, detail=str(refused))
            except urllib3.exceptions.HTTPError as error:
                # Requests go through urllib3 alone: its errors are all there is.
                # (Retries spent on statuses come back as the last response, since
                # raise_on_status is off, and are classified by their status.)
                if watch.expired or time.monotonic() >= deadline:
                    return self._too_slow(url)
                reason = TIMEOUT if _timed_out(error) else CONNECTION_FAILED
                return FetchResult(url, reason=reason, detail=_describe(error))

    def _too_slow(self, url: str) -> FetchResult:
        return FetchResult(url, reason=TIMEOUT,
                           detail=f"not complete in {self.settings.total_timeout:g} s")

    def _follow(self, url: str, target: Path | str, keep_small: bool,
                deadline: float) -> FetchResult:
        """GETs `url`, following redirects that pass the policy, and stores the body."""
        s = self.settings
        retry = self._retry.new()
        retry.deadline = deadline
        # Every attempt of every hop gets what is left of the one deadline.
        timeout = DeadlineTimeout(s.connect_timeout, s.read_timeout, deadline)
        current = url
        for hop in range(s.max_redirects + 1):
            if time.monotonic() >= deadline:
                return self._too_slow(url)
            response = self._pool.urlopen("GET", current, retries=retry, redirect=False,
                                          timeout=timeout, preload_content=False)
            try:
                if response.status in _REDIRECT_STATUSES and "location" in response.headers:
                    target_url = urllib.parse.urljoin(current, response.headers["location"])
                    if hop == s.max_redirects:
                        return FetchResult(url, reason=TOO_MANY_REDIRECTS,
                                           detail=f"more than {s.max_redirects} redirects")
                    refusal = self._redirect_refusal(current, target_url)
                    if refusal:
                        return FetchResult(url, reason=REFUSED, detail=refusal)
                    current = target_url
                    continue
                if response.status != 200:
                    return FetchResult(url, reason=_status_reason(response.status),
                                       detail=f"HTTP {response.status} from {cut_url(current)}")
                return self._store(url, response, target, deadline, keep_small)
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
            return f"redirect from {cut_url(current)} to a non-http URL {cut_url(target)}"
        if current.lower().startswith("https:") and target.lower().startswith("http:"):
            return f"redirect from https down to http: {cut_url(target)}"
        try:
            self.policy.check(target)
        except Refused as refused:
            return f"redirect to {cut_url(target)}: {refused}"
        return ""

    def _store(self, url: str, response: urllib3.BaseHTTPResponse, target: Path | str,
               deadline: float, keep_small: bool) -> FetchResult:
        cap = self.settings.max_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            # Refused before reading a byte of the body.
            return FetchResult(url, reason=TOO_LARGE,
                               detail=f"Content-Length {declared}, over the {cap}-byte cap")
        chunks: list[bytes] = []
        size = 0
        file = None
        try:
            while chunk := response.read1(_STREAM_CHUNK, decode_content=False):
                size += len(chunk)
                if size > cap:
                    return FetchResult(url, reason=TOO_LARGE, detail=f"body over the {cap}-byte cap")
                if time.monotonic() > deadline:
                    return self._too_slow(url)
                if file is None and keep_small and size <= _KEEP_IN_MEMORY:
                    chunks.append(chunk)
                    continue
                if file is None:
                    file = self._new_file(target)
                    for held in chunks:
                        file.write(held)
                    chunks = []
                file.write(chunk)
            # The watchdog ends a body at the deadline by shutting the socket,
            # which reads as an ordinary end: a cut body must not be stored.
            if time.monotonic() >= deadline:
                return self._too_slow(url)
            if declared.isdigit() and size != int(declared):
                return FetchResult(url, reason=CONNECTION_FAILED,
                                   detail=f"the body ended after {size} of the {declared} bytes "
                                          "its Content-Length announced")
            if file is None and keep_small:
                body = b"".join(chunks)
                self._cache.put(url, body)
                return FetchResult(url, data=body)
            if file is None:  # an empty body
                file = self._new_file(target)
            file.commit()
            return FetchResult(url, target)
        finally:
            if file is not None:
                file.discard()

    def _new_file(self, target: Path | str) -> remote_files.NewFile:
        # A unique temporary name in the same folder, renamed into place
        # (remote_files.NewFile): the cache never holds a partial body.
        folder = os.fspath(remote_files.parent(target))
        made = folder in self._made_folders
        self._made_folders.add(folder)
        return remote_files.NewFile(target, make_folder=not made)

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


def _ca_bundle() -> dict:
    """certifi's CA bundle when installed (requests used it, so HTTPS hosts
    that worked before keep working); else the system's."""
    try:
        import certifi
    except ImportError:
        return {}
    return {"ca_certs": certifi.where()}
