"""A small world for trust-boundary tests: secrets, roots, two servers, a watcher.

Layout under one base folder:

* ``sécret/`` and ``home/`` (HOME points there): outside every allowed root,
  each holding ``secret.csv``, ``secret.zip``, ``secret.json`` and ``secret.png``,
  valid-looking files that carry canaries (the text SECRET-CANARY, pixels of
  value 173);
* ``team/``: the catalog's folder (an allowed root): good files, and symlinks
  ``link.<ext>`` (to a secret file) and ``linkdir`` (to the secret folder);
* ``src/``: a SIGN_DATASETS_SOURCE folder with the same good files and links;
* ``ex/<n>/{data,downloads,tmp}``: one example's data, download and temp dirs.

Two loopback HTTP servers: the *allowed* one (serves the good files from
memory and redirects ``/r/<k>.<ext>`` to ``REDIRECTS[k]``) and the *forbidden*
one, which records every request and answers with secret bytes.

`Watcher` is a `sys.addaudithook` hook: while on, it records every open,
directory listing, file-system change, name lookup and connection of this
process (all threads but the servers'). It also stops any connection or
name lookup off loopback, so no example can reach another machine. Reads done
in C++ (tf.io.gfile) raise no audit event; the secret files' access times
(the file system is mounted relatime) and a scan of everything the build
wrote for the canaries catch those.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.server
import io
import ipaddress
import json
import os
import socket
import sys
import tempfile
import threading
import unicodedata
import urllib.parse
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

SECRET_NAME = "sécret"  # NFC; catalogs also spell it NFD and percent-encoded
CANARY = b"SECRET-CANARY"
SECRET_VALUE = 173
# What the forbidden server answers: the same files with their own canaries.
FORBIDDEN_CANARY = b"FORBIDDEN-CANARY"
FORBIDDEN_VALUE = 191


def canaries(text: bytes, value: int) -> tuple[bytes, ...]:
    """What a read of such a file leaves in a build's output or messages."""
    return text, b",".join([b"%d" % value] * 4), bytes([value]) * 4


CANARIES = canaries(CANARY, SECRET_VALUE)
FORBIDDEN_CANARIES = canaries(FORBIDDEN_CANARY, FORBIDDEN_VALUE)
HEADER = "label,pixel1,pixel2,pixel3,pixel4\n"
EXTENSIONS = ("csv", "zip", "json", "png")
SERVER_THREAD = "trust-server"


def png(value: int) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.full((2, 2), value, np.uint8), "L").save(out, "PNG")
    return out.getvalue()


def zip_bytes(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16)  # a symlink member
            archive.writestr(info, target)
    return out.getvalue()


def secret_files(canary: bytes = CANARY, value: int = SECRET_VALUE) -> dict[str, bytes]:
    text = canary.decode()
    return {
        "csv": (HEADER + f"0,{value},{value},{value},{value}\n{text},1,2,3,4\n").encode(),
        "zip": zip_bytes({"Train/a/s.png": png(value), "Test/b/t.png": png(value),
                          f"Train/{text}.txt": canary}),
        "json": json.dumps({"content": "good.png", "label": text}).encode() + b"\n",
        "png": png(value),
    }


def good_files() -> dict[str, bytes]:
    return {
        "csv": (HEADER + "0,10,20,30,40\n1,50,60,70,80\n0,10,20,30,40\nx,1,2,3,4\n").encode(),
        "zip": zip_bytes({"Train/a/1.png": png(20), "Train/b/2.png": png(40),
                          "Test/a/3.png": png(60), "Test/b/4.png": png(80),
                          "notes.txt": b"junk"}),
        "json": b"",  # written per example: the URLs are what the example is about
        "png": png(90),
    }


def evil_zip(secret: Path) -> bytes:
    """Image folders whose member names try to climb out, plus a symlink member."""
    return zip_bytes({"Train/a/ok.png": png(20), "Test/b/ok.png": png(80),
                      "Train/a/../../../../../../escaped_zip.png": png(30),
                      "/tmp/escaped_zip_abs.png": png(30),
                      "Train/../../escaped_zip_2.png": png(30)},
                     links={"Train/b/link.png": str(secret / "secret.png")})


# --- servers ---------------------------------------------------------------------------

class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.owner.answer(self)

    do_HEAD = do_GET


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def process_request(self, request, client_address):
        # Named threads: the watcher ignores what the servers do.
        thread = threading.Thread(target=self.process_request_thread,
                                  args=(request, client_address), name=SERVER_THREAD,
                                  daemon=True)
        thread.start()


class Server:
    """A loopback server that records (path, Authorization header) of every request."""

    def __init__(self, files: dict[str, bytes], redirects: dict[str, str] | None = None,
                 fallback: dict[str, bytes] | None = None):
        self.files, self.redirects, self.fallback = files, redirects or {}, fallback or {}
        self.requests: list[tuple[str, str | None]] = []
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, name=SERVER_THREAD,
                                        daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> "Server":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, handler: _Handler) -> None:
        self.requests.append((handler.path, handler.headers.get("Authorization")))
        path = urllib.parse.urlsplit(handler.path).path
        if path in self.redirects:
            handler.send_response(302)
            handler.send_header("Location", self.redirects[path])
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        body = self.files.get(path)
        if body is None:
            body = self.fallback.get(path.rsplit(".", 1)[-1])
        if body is None:
            handler.send_error(404)
            return
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if handler.command == "GET":
            handler.wfile.write(body)


# --- the watcher -------------------------------------------------------------------------

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
# event -> (index of the path written, ...) for events that change the file system
_CHANGES = {"os.mkdir": (0,), "os.rename": (0, 1), "os.symlink": (1,), "os.link": (1,),
            "os.remove": (0,), "os.rmdir": (0,), "os.truncate": (0,), "os.chmod": (0,),
            "os.utime": (0,), "shutil.copyfile": (1,), "shutil.copytree": (1,),
            "shutil.move": (0, 1), "shutil.rmtree": (0,), "shutil.copymode": (1,),
            "shutil.copystat": (1,)}


def _text(path) -> str | None:
    if isinstance(path, int) or path is None:
        return None
    try:
        return os.fsdecode(path)
    except TypeError:
        return None


def is_loopback(host: str) -> bool:
    host = host.strip("[]").split("%")[0]
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_loopback


class OffLoopback(Exception):
    """Raised into a lookup or connection off loopback. Not an OSError on
    purpose: urllib3 would retry one (TFDS's downloads, ten times with backoff)."""


@dataclasses.dataclass
class Seen:
    reads: list[str] = dataclasses.field(default_factory=list)      # absolute, as opened
    listings: list[str] = dataclasses.field(default_factory=list)
    writes: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (event, path)
    connects: list[tuple[str, int]] = dataclasses.field(default_factory=list)
    off_loopback: list[str] = dataclasses.field(default_factory=list)


class Watcher:
    """One audit hook for the whole process (hooks cannot be removed); it
    records only between `start()` and `stop()`."""

    _installed: "Watcher | None" = None

    @classmethod
    def get(cls) -> "Watcher":
        if cls._installed is None:
            cls._installed = cls()
            sys.addaudithook(cls._installed._hook)
        return cls._installed

    def __init__(self):
        self.seen: Seen | None = None

    def start(self) -> Seen:
        self.seen = Seen()
        return self.seen

    def stop(self) -> None:
        self.seen = None

    def _hook(self, event: str, args: tuple) -> None:
        seen = self.seen
        if seen is None or threading.current_thread().name == SERVER_THREAD:
            return
        if event == "open":
            self._open(seen, args)
        elif event in ("os.listdir", "os.scandir"):
            path = _text(args[0]) if args else None
            seen.listings.append(os.path.abspath(path or "."))
        elif event in _CHANGES:
            for index in _CHANGES[event]:
                path = _text(args[index]) if len(args) > index else None
                if path is not None:
                    seen.writes.append((event, os.path.abspath(path)))
        elif event == "socket.getaddrinfo":
            self._lookup(seen, args[0])
        elif event == "socket.gethostbyname":
            self._lookup(seen, args[0])
        elif event == "socket.connect":
            self._connect(seen, args[1])

    @staticmethod
    def _open(seen: Seen, args: tuple) -> None:
        path = _text(args[0])
        if path is None:
            return
        path = os.path.abspath(path)
        mode, flags = args[1], args[2]
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or \
            (isinstance(flags, int) and flags & _WRITE_FLAGS)
        if writes:
            seen.writes.append(("open", path))
        else:
            seen.reads.append(path)

    @staticmethod
    def _lookup(seen: Seen, host) -> None:
        host = os.fsdecode(host) if isinstance(host, (bytes, str)) else None
        if host is None or is_loopback(host):
            return
        seen.off_loopback.append(f"name lookup {host!r}")
        raise OffLoopback(f"test: no name lookups off loopback ({host})")

    @staticmethod
    def _connect(seen: Seen, address) -> None:
        if not isinstance(address, tuple):
            return  # a Unix socket
        host, port = str(address[0]), int(address[1])
        seen.connects.append((host, port))
        if not is_loopback(host):
            seen.off_loopback.append(f"connect {host}:{port}")
            raise OffLoopback(f"test: no connections off loopback ({host})")


# --- the world -----------------------------------------------------------------------------

class World:
    """Everything of the module docstring, made once per test module."""

    def __init__(self, base: Path):
        self.base = base.resolve()
        self.secret = self.base / SECRET_NAME
        self.home = self.base / "home"
        self.root = self.base / "team"
        self.src = self.base / "src"
        self.counter = 0
        good = good_files()
        for folder in (self.secret, self.home):
            folder.mkdir(parents=True)
            for ext, data in secret_files().items():
                (folder / f"secret.{ext}").write_bytes(data)
        for folder in (self.root, self.src):
            folder.mkdir()
            for ext, data in good.items():
                (folder / f"good.{ext}").write_bytes(data)
                (folder / f"link.{ext}").symlink_to(self.secret / f"secret.{ext}")
            (folder / "linkdir").symlink_to(self.secret, target_is_directory=True)
            (folder / "evil.zip").write_bytes(evil_zip(self.secret))
            (folder / "csvs.zip").write_bytes(zip_bytes({"train.csv": good["csv"]}))
        served = {f"/good.{ext}": data for ext, data in good.items()}
        served["/evil.zip"] = evil_zip(self.secret)
        served["/csvs.zip"] = zip_bytes({"train.csv": good["csv"]})
        forbidden = secret_files(FORBIDDEN_CANARY, FORBIDDEN_VALUE)
        self.forbidden = Server({}, fallback=forbidden).start()
        self.allowed = Server(served).start()
        self.allowed.redirects = {
            f"/r/{k}.{ext}": self.fill(target, ext)
            for k, target in enumerate(REDIRECT_TARGETS) for ext in EXTENSIONS}

    def close(self) -> None:
        self.allowed.stop()
        self.forbidden.stop()

    @property
    def secrets(self) -> tuple[Path, ...]:
        return self.secret, self.home

    def fill(self, template: str, ext: str, base_url: str = "") -> str:
        """A template's text with this world's paths and ports."""
        quoted = urllib.parse.quote(str(self.secret))
        values = {"{SECRET}": str(self.secret), "{SECRETQ}": quoted,
                  "{SECRET_NFD}": unicodedata.normalize("NFD", str(self.secret)),
                  "{NFD}": unicodedata.normalize("NFD", SECRET_NAME),
                  "{ROOT}": str(self.root), "{SRC}": str(self.src), "{BASE}": base_url,
                  "{A}": str(self.allowed.port), "{F}": str(self.forbidden.port), "{X}": ext}
        for key, value in values.items():
            template = template.replace(key, value)
        return template

    def secret_times(self) -> dict[Path, float]:
        """Sets every secret file's and folder's access time behind its change
        time, so that any read, in any language, moves it (relatime)."""
        times = {}
        for folder in self.secrets:
            for path in [folder, *folder.iterdir()]:
                stat = path.stat()
                os.utime(path, ns=(stat.st_mtime_ns - 10**12, stat.st_mtime_ns))
                times[path] = path.stat().st_atime
        return times

    def secrets_touched(self, before: dict[Path, float]) -> list[str]:
        return sorted(str(p) for p, atime in before.items() if p.stat().st_atime != atime)

    def new_example_dirs(self) -> tuple[int, Path]:
        self.counter += 1
        folder = self.base / "ex" / str(self.counter)
        for name in ("data", "downloads", "tmp"):
            (folder / name).mkdir(parents=True)
        return self.counter, folder

    def tree(self) -> set[str]:
        """Every name under the base folder (links not followed), examples' own dirs aside."""
        names = set()
        for folder, dirs, files in os.walk(self.base):
            for name in dirs + files:
                names.add(os.path.join(folder, name))
        return {n for n in names if not n.startswith(str(self.base / "ex") + "/")
                or n.count("/") <= str(self.base / "ex").count("/") + 2}


# Where the allowed server's /r/<k>.<ext> points.
REDIRECT_TARGETS = (
    "http://127.0.0.1:{F}/secret.{X}",
    "http://2130706433:{F}/secret.{X}",
    "http://[::ffff:127.0.0.1]:{F}/secret.{X}",
    "//127.0.0.1:{F}/secret.{X}",
    "file://{SECRET}/secret.{X}",
    "http://u:p@127.0.0.1:{A}/good.{X}",
    "http://169.254.169.254/latest/meta-data/",
    "/r/0.{X}",
)


@contextlib.contextmanager
def environment(values: dict[str, str | None]):
    saved = {name: os.environ.get(name) for name in values}
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def temp_dir(path: Path):
    """Python's temp dir for the duration (TMPDIR alone is read once per process)."""
    saved = tempfile.tempdir
    tempfile.tempdir = str(path)
    try:
        with environment({"TMPDIR": str(path)}):
            yield
    finally:
        tempfile.tempdir = saved
