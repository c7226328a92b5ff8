"""Which URLs may be fetched and which addresses connected to: one policy
for every network request of the project.

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
actually connects to is checked again right after connecting
(`http_client`), so a name that resolves to a refused address (DNS
rebinding, /etc/hosts) is refused too.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import re
import socket
import urllib.parse
from pathlib import Path
from typing import Iterable

from sign_datasets.io.settings import FetchConfigError

ALLOWED_HOSTS_ENV = "SIGN_DATASETS_ALLOWED_HOSTS"

# The two scopes of the policy (see the module doc).
DATA = "data"
CATALOG = "catalog"

# Browsers stop near 2,000 characters; a longer "URL" in a data file is junk
# or an attempt to bloat logs and reports.
MAX_URL_CHARS = 4096
# How much of a URL a message repeats.
URL_IN_MESSAGES = 200

_UNSAFE_URL_CHARACTER = re.compile(r"[\x00-\x20\x7f]")
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


_CREDENTIALS = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")


def cut_url(url: str) -> str:
    """A URL as messages repeat it: credentials hidden, at most URL_IN_MESSAGES characters."""
    url = _CREDENTIALS.sub(r"\1***@", url)
    return url if len(url) <= URL_IN_MESSAGES else url[:URL_IN_MESSAGES - 3] + "..."


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


def parse_allowed(entry: str) -> tuple[str, int | None] | str:
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
            parsed = parse_allowed(entry)
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
