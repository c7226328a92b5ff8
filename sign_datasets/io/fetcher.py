"""Every network request of the project, behind one URL policy.

Whoever edits a catalog, a data.json or runs a server on the other end
chooses where our machine would connect. So every URL, every redirect hop
and every connected socket passes a `UrlPolicy`, in one of two scopes:

- DATA: URLs found inside source files (data.json's images). Only the
  active source's origin and hosts in SIGN_DATASETS_ALLOWED_HOSTS.
- CATALOG: locations a catalog names (source URLs, bucket objects,
  `sign-datasets new --source`). Any public http(s) host; loopback,
  private, link-local, cloud-metadata, unspecified and multicast addresses
  only when they are the source's origin or an allowed host; gs:// only for
  buckets listed as `gs://BUCKET`.

Always refused: credentials in a URL, other schemes, over-long URLs, control
characters, a redirect from https down to http. The address a socket
actually connects to is checked again right after connecting, so a name
that resolves to a refused address (DNS rebinding, /etc/hosts) is refused
too. Each URL has a total deadline covering connect, redirects, retries and
a body that trickles in (a watchdog shuts the socket down when it passes).

Many small files (`Fetcher.fetch_all`): one urllib3 pool shared by a
thread pool, since the work is waiting on the network. Every failure a
single URL can have (404, 5xx after retries, timeout, oversized body,
refused URL) comes back as a `FetchResult` with a named reason, never as an
exception, so a builder can count it as a drop; results come back in input
order, which keeps builds deterministic. Bodies are kept in a cache under
the download dir (`url_cache`), so a rebuild fetches nothing.

Source files (`download_source`): streamed once into the download dir
(a temporary file renamed into place) with their own size cap and time
limit, and reused by later builds; local files are read where they are.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import hashlib
import heapq
import ipaddress
import math
import os
import re
import secrets
import socket
import threading
import time
import urllib.parse
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, TypeVar

import urllib3
from tqdm import tqdm
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util.retry import Retry

from sign_datasets.io import sources
from sign_datasets.io import url_cache
from sign_datasets.core.cleaning import MissingSource, SourceError

T = TypeVar("T")

WORKERS_ENV = "SIGN_DATASETS_FETCH_WORKERS"
TIMEOUT_ENV = "SIGN_DATASETS_FETCH_TIMEOUT"
RETRIES_ENV = "SIGN_DATASETS_FETCH_RETRIES"
BACKOFF_ENV = "SIGN_DATASETS_FETCH_BACKOFF"
MAX_BYTES_ENV = "SIGN_DATASETS_FETCH_MAX_BYTES"
ALLOWED_HOSTS_ENV = "SIGN_DATASETS_ALLOWED_HOSTS"
MAX_FAILED_SHARE_ENV = "SIGN_DATASETS_MAX_FAILED_SHARE"
SOURCE_MAX_BYTES_ENV = "SIGN_DATASETS_SOURCE_MAX_BYTES"
SOURCE_TIMEOUT_ENV = "SIGN_DATASETS_SOURCE_TIMEOUT"

# The two scopes of the policy (see the module doc).
DATA = "data"
CATALOG = "catalog"

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
# How much of a URL a message repeats.
URL_IN_MESSAGES = 200
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
# The largest object of the course bucket is 548 MB; a team's zip may be larger.
DEFAULT_SOURCE_MAX_BYTES = 8 * 1024 ** 3
DEFAULT_SOURCE_TIMEOUT = 3600.0
DEFAULT_MAX_FAILED_SHARE = 0.10
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
CACHE_FOLDER = "sign_datasets_fetch"
SOURCES_FOLDER = sources.DOWNLOADS_FOLDER
# read1 returns what one socket read brings, at most this much: the deadline
# is checked after every read, however slowly the bytes come.
_STREAM_CHUNK = 64 * 1024
# Bodies up to this size are held in memory, kept in a pack of the URL cache
# and travel with their result; the window of results in flight times this
# bounds what that costs. Larger ones stream to a file of their own.
_KEEP_IN_MEMORY = 256 * 1024
_UNSAFE_URL_CHARACTER = re.compile(r"[\x00-\x20\x7f]")
# What of a URL's last path segment may become part of a file name.
_UNSAFE_NAME_CHARACTER = re.compile(r"[^A-Za-z0-9._-]")
_GS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")

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
# Kinds only an allowed address itself opens, never an allowed name that
# happens to resolve to them.
_NAMED_ADDRESS_ONLY = frozenset({"cloud metadata endpoint", "link-local address"})


class FetchConfigError(sources.SourceConfigError):
    """A fetch setting (environment variable or argument) is unusable."""


_CREDENTIALS = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")


def cut_url(url: str) -> str:
    """A URL as messages repeat it: credentials hidden, at most URL_IN_MESSAGES characters."""
    url = _CREDENTIALS.sub(r"\1***@", url)
    return url if len(url) <= URL_IN_MESSAGES else url[:URL_IN_MESSAGES - 3] + "..."


# --- settings -------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class FetchSettings:
    """How hard and how wide to fetch. `from_env` reads the overrides users set."""

    workers: int = 16
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    # The read timeout bounds each socket read, not the whole exchange: a
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
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise FetchConfigError(f"{name} must be a positive number of seconds, got {value}")
        if self.retries < 0 or self.max_redirects < 0 or not self.backoff_factor >= 0:
            raise FetchConfigError("retries, max_redirects and backoff_factor must be >= 0")
        if self.max_bytes < 1:
            raise FetchConfigError(f"max_bytes must be positive, got {self.max_bytes}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "FetchSettings":
        """Defaults, then SIGN_DATASETS_FETCH_* / SIGN_DATASETS_ALLOWED_HOSTS, then `overrides`.

        A bad value raises FetchConfigError naming the variable and the value.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if (raw := env.get(WORKERS_ENV)) is not None:
            values["workers"] = _parse_number(WORKERS_ENV, raw, int, minimum=1, inclusive=True)
        if (raw := env.get(TIMEOUT_ENV)) is not None:
            # "5" sets both; "5,30" sets connect then read.
            parts = raw.split(",")
            if len(parts) not in (1, 2):
                raise FetchConfigError(f"{TIMEOUT_ENV}={raw!r}: use SECONDS or CONNECT,READ "
                                       "(positive numbers of seconds)")
            parts = [_parse_number(TIMEOUT_ENV, p, float, minimum=0, whole=raw) for p in parts]
            values["connect_timeout"], values["read_timeout"] = parts[0], parts[-1]
        if (raw := env.get(RETRIES_ENV)) is not None:
            values["retries"] = _parse_number(RETRIES_ENV, raw, int, minimum=0, inclusive=True)
        if (raw := env.get(BACKOFF_ENV)) is not None:
            values["backoff_factor"] = _parse_number(BACKOFF_ENV, raw, float, minimum=0,
                                                     inclusive=True)
        if (raw := env.get(MAX_BYTES_ENV)) is not None:
            values["max_bytes"] = _parse_number(MAX_BYTES_ENV, raw, int, minimum=1, inclusive=True)
        if raw := env.get(ALLOWED_HOSTS_ENV, "").strip():
            hosts = tuple(h.strip() for h in raw.split(",") if h.strip())
            for host in hosts:
                _parse_allowed(host)  # refused here, naming the variable
            values["allowed_hosts"] = hosts
        values.update(overrides)
        return cls(**values)


def _parse_number(name: str, raw: str, kind: type, minimum: float | None = None,
                  inclusive: bool = False, whole: str | None = None) -> Any:
    """`raw` as `kind`, or FetchConfigError naming the variable and its value."""
    what = {int: "a whole number", float: "a number"}[kind]
    bound = "" if minimum is None else f" {'>=' if inclusive else '>'} {minimum:g}"
    try:
        value = kind(raw.strip())
    except ValueError:
        value = None
    if value is None or (kind is float and not math.isfinite(value)) or (
            minimum is not None and (value < minimum if inclusive else value <= minimum)):
        raise FetchConfigError(f"{name}={(whole if whole is not None else raw)!r}: "
                               f"expected {what}{bound}; unset it to use the default")
    return value


# --- which URLs may be fetched ------------------------------------------------

class Refused(Exception):
    """The policy refuses a URL; the message says why and how to allow it."""


class RefusedAddress(Refused):
    """A connected socket's peer is an address the policy refuses."""


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


_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped ::ffff:a.b.c.d, compatible
    ::a.b.c.d, 6to4, Teredo's client, NAT64), which the network may well
    deliver to: [::a9fe:a9fe] must be judged as 169.254.169.254."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    value = int(address)
    if 1 < value < 1 << 32:
        return ipaddress.IPv4Address(value)
    if any(address in network for network in _NAT64):
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    return None


def _address_kind(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why an address is dangerous to reach by default, or None if it is public."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return _address_kind(embedded)
    if address in _METADATA_ADDRESSES:
        return "cloud metadata endpoint"
    if address.is_link_local:
        return "link-local address"
    if address.is_loopback:
        return "loopback address"
    if address.is_unspecified or address.is_multicast:
        return "non-routable address"
    if address.is_private:
        return "private address"
    if not address.is_global:
        return "non-public address"
    return None


def _special_kind(host: str) -> str | None:
    """Why a (canonical) host is dangerous to reach by default, or None."""
    if host in _METADATA_NAMES:
        return "cloud metadata endpoint"
    if host == "localhost" or host.endswith(".localhost"):
        return "loopback address"
    try:
        return _address_kind(ipaddress.ip_address(host))
    except ValueError:
        return None


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _parse_allowed(entry: str) -> tuple[str, int | None] | str:
    """One SIGN_DATASETS_ALLOWED_HOSTS entry: (host, port or None), or a gs:// bucket name."""
    entry = entry.strip()
    if entry.lower().startswith("gs://"):
        bucket = entry[5:].rstrip("/")
        if not _GS_BUCKET.match(bucket):
            raise FetchConfigError(f"{ALLOWED_HOSTS_ENV}={entry!r}: not a bucket name "
                                   "(gs://BUCKET, lowercase letters, digits, '-', '_', '.')")
        return bucket
    parsed = urllib.parse.urlsplit("//" + entry)
    try:
        port = parsed.port
    except ValueError:
        raise FetchConfigError(f"{ALLOWED_HOSTS_ENV}: bad port in {entry!r}") from None
    if not parsed.hostname or parsed.path or parsed.username or parsed.query or parsed.fragment \
            or _UNSAFE_URL_CHARACTER.search(entry):
        raise FetchConfigError(
            f"{ALLOWED_HOSTS_ENV}: {entry!r} is not HOST, HOST:PORT or gs://BUCKET (comma-separated)")
    return _canonical_host(parsed.hostname), port


class UrlPolicy:
    """Decides which URLs may be fetched and which addresses connected to.

    Trusted without question: the origin (scheme, host, port) of the active
    source and hosts listed in `allowed_hosts` ("host" for any port,
    "host:port"); file:// beneath the source folder when the source is
    local. Beyond that, scope DATA refuses every other host, and scope
    CATALOG allows public hosts only (see the module doc). gs:// is read only
    in scope CATALOG, for buckets listed as "gs://BUCKET".
    """

    def __init__(self, source_base: str, allowed_hosts: Iterable[str] = (), scope: str = DATA):
        if scope not in (DATA, CATALOG):
            raise ValueError(f"scope must be {DATA!r} or {CATALOG!r}, got {scope!r}")
        self.scope = scope
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
        self.buckets: set[str] = set()
        for entry in allowed_hosts:
            parsed = _parse_allowed(entry)
            if isinstance(parsed, str):
                self.buckets.add(parsed)
            else:
                self.allowed.add(parsed)

    def trusted(self, scheme: str, host: str, port: int) -> bool:
        """Whether the user named this origin: the source's, or an allowed host."""
        host = _canonical_host(host)
        return (_Origin(scheme, host, port) == self.source_origin
                or (host, None) in self.allowed or (host, port) in self.allowed)

    def check(self, url: str) -> Path | None:
        """Returns the local path for an allowed file:// URL, None for an
        allowed http(s) (or gs://) URL; raises `Refused` otherwise."""
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
        if scheme == "gs" and self.scope == CATALOG:
            return self._check_bucket(parts)
        if scheme not in ("http", "https"):
            raise Refused(f"scheme {scheme or '(none)'!r} is not fetched; only http and https "
                          "(and file:// beneath a local SIGN_DATASETS_SOURCE)")
        if parts.username is not None or parts.password is not None:
            raise Refused("URL carries credentials (user@host); pass none in URLs")
        if not parts.hostname:
            raise Refused("URL has no host")
        origin = _Origin(scheme, _canonical_host(parts.hostname), port or _default_port(scheme))
        if self.trusted(origin.scheme, origin.host, origin.port):
            return None
        kind = _special_kind(origin.host)
        where = f"{origin.host} port {origin.port}"
        if kind:
            raise Refused(f"{kind} {where} is not the source ({self._source_text()}); "
                          f"only an exact {ALLOWED_HOSTS_ENV} entry allows it")
        if self.scope == CATALOG:
            return None
        raise Refused(f"host {where} is not the source's ({self._source_text()}); "
                      f"add it to {ALLOWED_HOSTS_ENV} to fetch from it")

    def check_peer(self, scheme: str, host: str, port: int, peer: tuple) -> None:
        """Raises RefusedAddress when a socket connected for host:port reached
        an address the policy refuses (a name resolving to loopback, to the
        metadata service...)."""
        try:
            address = ipaddress.ip_address(str(peer[0]).split("%", 1)[0])
        except ValueError:
            return  # not an IP socket (never for http)
        kind = _address_kind(address)
        if kind is None:
            return
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if self.trusted(scheme, address.compressed, port):
            return
        if kind not in _NAMED_ADDRESS_ONLY and self.trusted(scheme, host, port):
            return
        raise RefusedAddress(
            f"{host} port {port} resolved to {kind} {address.compressed}; refused at connect "
            f"time; only the source's origin or an exact {ALLOWED_HOSTS_ENV} entry allows it")

    def _source_text(self) -> str:
        return str(self.source_origin) if self.source_origin else f"folder {self.local_root}"

    def _check_bucket(self, parts: urllib.parse.SplitResult) -> None:
        bucket = parts.netloc.lower()
        if bucket not in self.buckets:
            raise Refused(f"gs://{bucket} is read with this machine's cloud credentials, so a "
                          f"catalog may not choose it; add gs://{bucket} to {ALLOWED_HOSTS_ENV} "
                          "to read it")
        return None

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


# --- time limits that hold ------------------------------------------------------

class _Watchdog:
    """Shuts down the sockets of a request whose deadline passed.

    Socket timeouts bound each read, not a whole exchange: a server sending
    its headers or body a byte at a time never trips them. One thread per
    process keeps the deadlines of all requests in flight; on expiry it
    shuts the request's sockets down, so the blocked read returns at once.
    """

    def __init__(self):
        self._lock = threading.Condition()
        self._heap: list[tuple[float, int, _Watch]] = []
        self._pid = -1
        self._local = threading.local()

    @contextlib.contextmanager
    def deadline(self, deadline: float) -> Iterator["_Watch"]:
        """Sockets watched in this thread, until the block ends, stop at `deadline`."""
        watch = _Watch(deadline)
        with self._lock:
            self._start()
            # Requests that ended leave at the top here, without waking the thread.
            while self._heap and self._heap[0][2].done:
                heapq.heappop(self._heap)
            heapq.heappush(self._heap, (deadline, id(watch), watch))
            if self._heap[0][2] is watch:  # the thread sleeps until a later deadline
                self._lock.notify()
        previous = getattr(self._local, "watch", None)
        self._local.watch = watch
        try:
            yield watch
        finally:
            self._local.watch = previous
            watch.finish()

    def watch(self, sock) -> None:
        """Called by our connections with each socket they use."""
        current = getattr(self._local, "watch", None)
        if current is not None and sock is not None:
            current.add(sock)

    def current_deadline(self) -> float | None:
        current = getattr(self._local, "watch", None)
        return None if current is None else current.deadline

    def _start(self) -> None:
        # After a fork the thread is gone; the child starts its own.
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._heap = []
            threading.Thread(target=self._run, name="sign-datasets-deadlines", daemon=True).start()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._heap:
                    self._lock.wait()
                deadline, _, watch = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0 and not watch.done:
                    self._lock.wait(wait)
                    continue
                heapq.heappop(self._heap)
            watch.expire()


class _Watch:
    def __init__(self, deadline: float):
        self.deadline = deadline
        self.done = False
        self.expired = False
        self._socks: list = []
        self._lock = threading.Lock()

    def add(self, sock) -> None:
        with self._lock:
            if self.expired:
                _shutdown(sock)
            elif not self.done:
                self._socks.append(sock)

    def finish(self) -> None:
        with self._lock:
            self.done = True
            self._socks = []

    def expire(self) -> None:
        with self._lock:
            if self.done:
                return
            self.expired = True
            for sock in self._socks:
                _shutdown(sock)


def _shutdown(sock) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


_WATCHDOG = _Watchdog()


class _DeadlineTimeout(urllib3.Timeout):
    """A Timeout whose total is what is left of a deadline whenever urllib3
    takes a copy for an attempt: retries and redirects share one budget."""

    def __init__(self, connect, read, deadline: float):
        self.deadline = deadline
        remaining = max(deadline - time.monotonic(), 0.001)
        super().__init__(connect=connect, read=read, total=remaining)

    def clone(self) -> "_DeadlineTimeout":
        return _DeadlineTimeout(self._connect, self._read, self.deadline)


class _BoundedRetry(Retry):
    """urllib3's Retry, tolerant of a malformed Retry-After header, and
    never sleeping or retrying past the request's deadline.

    Stock urllib3 raises InvalidHeader for e.g. "Retry-After: soon", which
    would end the fetch with an exception instead of a backoff and a retry.
    """

    deadline: float | None = None

    def new(self, **kw):
        retry = super().new(**kw)
        retry.deadline = self.deadline
        return retry

    def get_retry_after(self, response):
        try:
            return super().get_retry_after(response)
        except urllib3.exceptions.InvalidHeader:
            return None

    def is_exhausted(self) -> bool:
        return super().is_exhausted() or (
            self.deadline is not None and time.monotonic() >= self.deadline)

    def sleep(self, response=None) -> None:
        if self.deadline is None:
            return super().sleep(response)
        wait = self.get_retry_after(response) if self.respect_retry_after_header and response \
            else None
        if not wait:
            wait = self.get_backoff_time()
        time.sleep(max(0.0, min(wait, self.deadline - time.monotonic())))


class _CheckedConnection:
    """Checks the address a new socket reached, and hands its sockets to the
    watchdog. Mixed into urllib3's HTTP and HTTPS connections."""

    def __init__(self, *args, peer_check: Callable | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._peer_check = peer_check

    def _new_conn(self):
        sock = super()._new_conn()
        if self._peer_check is not None:
            try:
                self._peer_check(self.host, self.port, sock.getpeername())
            except Refused:
                sock.close()
                raise
        _WATCHDOG.watch(sock)
        return sock

    def connect(self):
        super().connect()
        # TLS wraps the socket in a new object: that one is what reads.
        _WATCHDOG.watch(self.sock)

    def request(self, *args, **kwargs):
        # A pooled connection's socket joins the current request's watch too.
        _WATCHDOG.watch(self.sock)
        return super().request(*args, **kwargs)


class _CheckedHTTPConnection(_CheckedConnection, HTTPConnection):
    pass


class _CheckedHTTPSConnection(_CheckedConnection, HTTPSConnection):
    pass


class _CheckedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _CheckedHTTPConnection


class _CheckedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _CheckedHTTPSConnection


class _PolicyPoolManager(urllib3.PoolManager):
    """A PoolManager whose connections check their peer with `policy`."""

    def __init__(self, policy: UrlPolicy, **kwargs):
        super().__init__(**kwargs)
        self.policy = policy
        self.pool_classes_by_scheme = {"http": _CheckedHTTPPool, "https": _CheckedHTTPSPool}

    def _new_pool(self, scheme, host, port, request_context=None):
        pool = super()._new_pool(scheme, host, port, request_context)
        pool.conn_kw["peer_check"] = functools.partial(self.policy.check_peer, scheme)
        return pool


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
            raise ValueError(f"{cut_url(self.url)} was not fetched: {self.reason} {self.detail}")
        return self.path.read_bytes()


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
    download dir). source: the base URL or file:// URL whose origin is
    allowed (default: the active SIGN_DATASETS_SOURCE). scope: DATA for URLs
    found in source files, CATALOG for locations a catalog names.
    """

    def __init__(self, cache_dir, settings: FetchSettings | None = None, source: str | None = None,
                 scope: str = DATA):
        self.settings = settings or FetchSettings.from_env()
        self.policy = UrlPolicy(sources.source_base(source), self.settings.allowed_hosts, scope)
        self.cache_dir = Path(cache_dir)
        s = self.settings
        self._retry = _BoundedRetry(
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
        self._pool = _PolicyPoolManager(
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
        return self._download(url, cached, keep_small=True)

    def download_file(self, url: str, target: Path) -> FetchResult:
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

    def _download(self, url: str, target: Path, keep_small: bool) -> FetchResult:
        deadline = time.monotonic() + self.settings.total_timeout
        with _WATCHDOG.deadline(deadline) as watch:
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

    def _follow(self, url: str, target: Path, keep_small: bool, deadline: float) -> FetchResult:
        """GETs `url`, following redirects that pass the policy, and stores the body."""
        s = self.settings
        retry = self._retry.new()
        retry.deadline = deadline
        # Every attempt of every hop gets what is left of the one deadline.
        timeout = _DeadlineTimeout(s.connect_timeout, s.read_timeout, deadline)
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

    def _store(self, url: str, response: urllib3.BaseHTTPResponse, target: Path,
               deadline: float, keep_small: bool) -> FetchResult:
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
            while chunk := response.read1(_STREAM_CHUNK, decode_content=False):
                size += len(chunk)
                if size > cap:
                    return FetchResult(url, reason=TOO_LARGE, detail=f"body over the {cap}-byte cap")
                if time.monotonic() > deadline:
                    return self._too_slow(url)
                if descriptor is None and keep_small and size <= _KEEP_IN_MEMORY:
                    chunks.append(chunk)
                    continue
                if descriptor is None:
                    descriptor, partial = self._open_partial(target)
                    for held in chunks:
                        os.write(descriptor, held)
                    chunks = []
                _write_all(descriptor, chunk)
            # The watchdog ends a body at the deadline by shutting the socket,
            # which reads as an ordinary end: a cut body must not be stored.
            if time.monotonic() >= deadline:
                return self._too_slow(url)
            if declared.isdigit() and size != int(declared):
                return FetchResult(url, reason=CONNECTION_FAILED,
                                   detail=f"the body ended after {size} of the {declared} bytes "
                                          "its Content-Length announced")
            if descriptor is None and keep_small:
                body = b"".join(chunks)
                self._cache.put(url, body)
                return FetchResult(url, data=body)
            if descriptor is None:  # an empty body
                descriptor, partial = self._open_partial(target)
            os.close(descriptor)
            descriptor = None
            os.replace(partial, target)
            partial = ""  # stored: nothing left to clean up
            return FetchResult(url, target)
        finally:
            if descriptor is not None:
                os.close(descriptor)
            if partial:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(partial)

    def _open_partial(self, target: Path) -> tuple[int, str]:
        folder = str(target.parent)
        if folder not in self._made_folders:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._made_folders.add(folder)
        # A unique temporary name in the same folder: concurrent builds
        # sharing a download dir never write into each other's file, and the
        # rename is atomic, so the cache never holds a partial body.
        partial = f"{target}.{secrets.token_hex(6)}.part"
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
    # One line, as every error of a build: the failures by reason, then what to do.
    failures = []
    for reason, count in sorted(report["drops"].items(), key=lambda kv: (-kv[1], kv[0])):
        first = report.get("examples", {}).get(reason, [])[:3]
        failures.append(f"{reason}: {count}" + (f" (first: {'; '.join(first)})" if first else ""))
    parts = [f"{what}: {dropped} of {records} records failed ({dropped / records:.1%}), more than "
             f"the {limit:.0%} allowed, so the build stopped and nothing was written: "
             + ", ".join(failures) + "."]
    if REFUSED in report["drops"]:
        parts.append(f"URLs outside the source are refused on purpose; list hosts you trust in "
                     f"{ALLOWED_HOSTS_ENV} (comma-separated HOST or HOST:PORT) to fetch them.")
    parts.append(f"Fetched files are cached, so a rerun retries only the failures; if a partial "
                 f"dataset is acceptable, raise the limit, e.g. {MAX_FAILED_SHARE_ENV}=0.5.")
    raise TooManyFailures(" ".join(parts))


def _write_all(descriptor: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view):]


def _ca_bundle() -> dict:
    """certifi's CA bundle when installed (requests used it, so HTTPS hosts
    that worked before keep working); else the system's."""
    try:
        import certifi
    except ImportError:
        return {}
    return {"ca_certs": certifi.where()}


# --- source files -------------------------------------------------------------------

class SourceDownloadError(SourceError):
    """A source file named by URL was refused or could not be downloaded."""


# What to do about each way a source download fails.
_SOURCE_HINTS = {
    REFUSED: "",
    TIMEOUT: f"a slow server may need more time: raise {SOURCE_TIMEOUT_ENV} (seconds)",
    TOO_LARGE: f"if the file is meant to be that large, raise {SOURCE_MAX_BYTES_ENV} (bytes)",
    NOT_FOUND: "check the location",
}


def source_settings(environ: Mapping[str, str] | None = None) -> FetchSettings:
    """The fetch settings of source files: their own size cap and total time
    limit (SIGN_DATASETS_SOURCE_MAX_BYTES, SIGN_DATASETS_SOURCE_TIMEOUT)."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {"max_bytes": DEFAULT_SOURCE_MAX_BYTES,
                              "total_timeout": DEFAULT_SOURCE_TIMEOUT, "workers": 1}
    if (raw := env.get(SOURCE_MAX_BYTES_ENV)) is not None:
        values["max_bytes"] = _parse_number(SOURCE_MAX_BYTES_ENV, raw, int, minimum=1,
                                             inclusive=True)
    if (raw := env.get(SOURCE_TIMEOUT_ENV)) is not None:
        values["total_timeout"] = _parse_number(SOURCE_TIMEOUT_ENV, raw, float, minimum=0)
    return FetchSettings.from_env(env, **values)


def source_download_path(url: str, download_dir) -> Path:
    """Where the download of `url` is kept: a name made of the URL's hash and
    its last path segment, reduced to safe characters (the URL is untrusted;
    nothing of it may steer the path)."""
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:32]
    return Path(os.fspath(download_dir)) / SOURCES_FOLDER / f"{digest}-{safe_file_name(url)}"


def safe_file_name(url: str) -> str:
    """The last path segment of a URL, in letters, digits, '.', '_' and '-'
    only, never starting with '.', at most 80 characters."""
    name = urllib.parse.unquote(urllib.parse.urlsplit(url).path).rsplit("/", 1)[-1]
    return _UNSAFE_NAME_CHARACTER.sub("_", name).lstrip(".")[-80:] or "source"


def download_source(url: str, download_dir, settings: FetchSettings | None = None,
                    source: str | None = None) -> Path:
    """The local file of a source a catalog or the bucket names.

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
    if target.is_file():
        return target
    if url.lower().startswith("gs:"):
        _copy_from_bucket(url, target, settings)
    else:
        with Fetcher(download_cache_dir(download_dir), settings, source, CATALOG) as fetch:
            result = fetch.download_file(url, target)
        if not result.ok:
            hint = _SOURCE_HINTS.get(result.reason, "check the server; a rerun tries again")
            raise SourceDownloadError(f"{cut_url(url)}: not downloaded ({result.reason}: "
                                      f"{result.detail})" + (f"; {hint}" if hint else ""))
    _FRESH_DOWNLOADS.append((target, Path(os.fspath(download_dir))))
    return target


# Sources downloaded by the build running in this process, until it ends:
# a build that finds one unreadable removes it (`discard_fresh_downloads`), so
# an error page or a cut file served once is not reused by every later build.
_FRESH_DOWNLOADS: list[tuple[Path, Path]] = []


def forget_fresh_downloads() -> None:
    """A build starts or succeeded: what it downloaded is kept for later builds."""
    _FRESH_DOWNLOADS.clear()


def discard_fresh_downloads() -> list[Path]:
    """A build failed on its sources: removes what it downloaded; the files removed."""
    removed = [path for path, folder in _FRESH_DOWNLOADS if discard_download(path, folder)]
    _FRESH_DOWNLOADS.clear()
    return removed


def _copy_from_bucket(url: str, target: Path, settings: FetchSettings) -> None:
    """Copies an allowed gs:// object through TensorFlow's file system (the
    machine's own credentials), with the same cap and time limit."""
    import tensorflow as tf

    deadline = time.monotonic() + settings.total_timeout
    try:
        size = tf.io.gfile.stat(url).length
    except tf.errors.OpError as error:
        raise SourceDownloadError(f"{cut_url(url)}: not readable ({type(error).__name__})") from None
    if size > settings.max_bytes:
        raise SourceDownloadError(f"{cut_url(url)}: {size} bytes, over the {settings.max_bytes}-"
                                  f"byte cap; {_SOURCE_HINTS[TOO_LARGE]}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = f"{target}.{secrets.token_hex(6)}.part"
    try:
        with tf.io.gfile.GFile(url, "rb") as stream, open(partial, "xb") as out:
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
        os.replace(partial, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)


def fetch_one(url: str) -> bytes:
    """The body of one URL found in a source file (scope DATA, as builds
    fetch it), kept nowhere; raises SourceDownloadError naming the URL."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder, Fetcher(folder) as fetch:
        result = fetch.fetch(url)
        if not result.ok:
            raise SourceDownloadError(f"{cut_url(url)}: not fetched ({result.reason}: "
                                      f"{result.detail})")
        return result.read_bytes()


def discard_download(path: Path, download_dir) -> bool:
    """Removes a downloaded source (one whose bytes proved wrong), so the
    next build downloads it again; never a file outside the download folder."""
    folder = Path(os.fspath(download_dir)) / SOURCES_FOLDER
    if Path(path).parent != folder:
        return False
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    return True
