"""A loopback HTTP server that plays the course bucket from a replica folder.

Download code is tested against it with real sockets: it can add latency,
fail a seeded share of requests, and script faults per object (503 then
success, permanent 404, slow answers, oversized bodies).
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

_CONTENT_TYPES = {
    ".zip": "application/zip",
    ".json": "application/json",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".csv": "text/csv",
}
_CHUNK = 1 << 16
_MAX_HEADERS = 100
_MAX_HEADER_LINE = 65536


@dataclass
class _Fault:
    fail_times: int = 0
    status: int = 503
    retry_after: float | int | str | None = None
    permanent_status: int | None = None
    delay: float | None = None
    body_size: int | None = None
    seen: int = 0


def _object_path(raw: str) -> str:
    """Request target or caller's path -> object name as in the bucket
    ("img_mnist/29_B.jpg"): no query, no leading slash, percent-decoded."""
    return unquote(urlsplit(raw).path).lstrip("/")


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"
    # Without TCP_NODELAY a kept-alive client can wait for the delayed ACK
    # (~40 ms) between two sends of one answer.
    disable_nagle_algorithm = True
    # Buffered: an answer's headers and a small body leave in one send when
    # the request is done (the bytes on the wire are the same). Fewer system
    # calls on both sides is what a server of many small files gains most from.
    wbufsize = _CHUNK
    # Idle keep-alive connections must not pin threads forever.
    timeout = 10

    def log_message(self, format, *args):  # noqa: A002 - signature of the base class
        pass

    def date_time_string(self, timestamp=None):
        # Formatting the Date header took a tenth of the server's CPU per
        # request; it changes once a second.
        if timestamp is not None:
            return super().date_time_string(timestamp)
        now = int(time.time())
        cached = _Handler._date
        if cached[0] != now:
            cached = _Handler._date = (now, super().date_time_string(now))
        return cached[1]

    _date: tuple[int, str] = (0, "")

    def parse_request(self):
        """The request line and headers of an HTTP/1.x GET or HEAD.

        The base class parses headers with the email package, which took a
        third of this server's CPU per request; on loopback that CPU is taken
        from the client being measured. Headers end up in a dict keyed by
        lower-case name.
        """
        self.command, self.request_version = None, self.default_request_version
        self.close_connection = True
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = self.requestline.split()
        if len(words) != 3 or words[2] not in ("HTTP/1.0", "HTTP/1.1"):
            self.request_version = "HTTP/1.0"  # an answer with a status line
            self.send_error(400, f"Bad request line {self.requestline[:200]!r}")
            return False
        self.command, self.path, self.request_version = words
        headers: dict[str, str] = {}
        for _ in range(_MAX_HEADERS):
            line = self.rfile.readline(_MAX_HEADER_LINE + 1)
            if len(line) > _MAX_HEADER_LINE:
                self.send_error(431, "Header line too long")
                return False
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = str(line, "iso-8859-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        else:
            self.send_error(431, "Too many headers")
            return False
        self.headers = headers
        connection = headers.get("connection", "").lower()
        self.close_connection = connection == "close" or (
            self.request_version == "HTTP/1.0" and connection != "keep-alive")
        return True

    def do_GET(self):
        self.server.owner._answer(self, head=False)

    def do_HEAD(self):
        self.server.owner._answer(self, head=True)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog of 5 drops bursts of parallel connects,
    # which then wait a full second for the SYN retry.
    request_queue_size = 128
    owner: "ReplicaServer"

    def process_request(self, request, client_address):
        self.owner._track(request, True)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        self.owner._track(request, False)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        # Clients that hang up mid-body (size caps, timeouts) are expected
        # in tests; a traceback on stderr would only be noise.
        pass


class ReplicaServer:
    """Serves the files under `root` on http://127.0.0.1:PORT/.

    latency: seconds slept before every answer. fail_rate: share of requests
    answered 503, drawn from random.Random(seed) once per request in arrival
    order, so a sequential client sees the same failures every run.
    """

    def __init__(self, root, port: int = 0, latency: float = 0.0, fail_rate: float = 0.0, seed: int = 0):
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise FileNotFoundError(f"replica folder not found: {self.root}")
        if not 0.0 <= fail_rate <= 1.0:
            raise ValueError("fail_rate must be within 0..1")
        self._port = port
        self.latency = float(latency)
        self.fail_rate = float(fail_rate)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._requests: list[tuple[str, str, int]] = []
        self._count = 0
        self._per_path: dict[str, int] = {}
        self._faults: dict[str, _Fault] = {}
        self._resolved: dict[str, Path] = {}
        self._open: set[socket.socket] = set()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------- lifecycle --

    def start(self) -> "ReplicaServer":
        if self._httpd is not None:
            return self
        httpd = _Server(("127.0.0.1", self._port), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="replica-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        # Keep-alive connections would otherwise hold their threads until the
        # handler timeout.
        with self._lock:
            sockets = list(self._open)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "ReplicaServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def url(self, object_path: str) -> str:
        return self.base_url + object_path.lstrip("/")

    # -------------------------------------------------------- observation --

    @property
    def request_count(self) -> int:
        with self._lock:
            return self._count

    @property
    def requests(self) -> list[tuple[str, str, int]]:
        """(method, object path, status) in the order requests arrived."""
        with self._lock:
            return list(self._requests)

    def count_for(self, path: str) -> int:
        with self._lock:
            return self._per_path.get(_object_path(path), 0)

    def reset_counts(self) -> None:
        with self._lock:
            self._requests.clear()
            self._count = 0
            self._per_path.clear()

    # -------------------------------------------------------------- faults --

    def set_fault(self, path: str, *, fail_times: int = 0, status: int = 503, retry_after=None,
                  permanent_status: int | None = None, delay: float | None = None,
                  body_size: int | None = None) -> None:
        with self._lock:
            self._faults[_object_path(path)] = _Fault(
                fail_times=int(fail_times), status=int(status), retry_after=retry_after,
                permanent_status=permanent_status, delay=delay, body_size=body_size,
            )

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    # ------------------------------------------------------------ serving --

    def _track(self, sock, opened: bool) -> None:
        with self._lock:
            if opened:
                self._open.add(sock)
            else:
                self._open.discard(sock)

    def _resolve(self, obj: str) -> tuple[int, Path | None]:
        target = self._resolved.get(obj)
        if target is None:
            if "\x00" in obj or "\\" in obj:
                return 400, None
            parts = obj.split("/")
            if any(p in ("..", ".") for p in parts):
                return 403, None
            target = (self.root / obj).resolve()
            if target != self.root and self.root not in target.parents:
                return 403, None  # a symlink pointing out of the folder
            # Resolving walks every folder of the path (an lstat each): it was
            # the largest share of the server's CPU per request, and the CPU
            # it spends is taken from the client being measured on loopback.
            self._resolved[obj] = target
        if not obj or not os.path.isfile(target):
            return 404, None
        return 200, target

    def _answer(self, handler: _Handler, head: bool) -> None:
        obj = _object_path(handler.path)
        file_status, path = self._resolve(obj)
        retry_after = None
        with self._lock:
            self._count += 1
            self._per_path[obj] = self._per_path.get(obj, 0) + 1
            # Drawn for every request, so the n-th request's fate does not
            # depend on which paths carry scripted faults.
            random_fail = self._rng.random() < self.fail_rate
            fault = self._faults.get(obj)
            delay = 0.0
            body_size = None
            if fault is not None:
                fault.seen += 1
                delay = fault.delay or 0.0
            if fault is not None and fault.permanent_status is not None:
                status = fault.permanent_status
            elif fault is not None and fault.seen <= fault.fail_times:
                status, retry_after = fault.status, fault.retry_after
            elif random_fail:
                status = 503
            elif fault is not None and fault.body_size is not None:
                status, body_size = 200, fault.body_size
            else:
                status = file_status
            if status == 200 and body_size is None and path is None:
                status = 404  # a scripted "200" for a file that is not there
            # Recorded on arrival, before any sleep, so the list keeps the
            # order in which requests came in.
            self._requests.append((handler.command, obj, status))

        sleep = self.latency + delay
        if sleep > 0:
            time.sleep(sleep)
        if status != 200:
            self._send_error(handler, status, head, retry_after)
        elif body_size is not None:
            self._send_zeros(handler, int(body_size), head, obj)
        else:
            self._send_file(handler, path, head)

    @staticmethod
    def _send_error(handler: _Handler, status: int, head: bool, retry_after) -> None:
        body = f"{status} {handler.responses.get(status, ('',))[0]}\n".encode("ascii", "replace")
        handler.send_response(status)
        handler.send_header("Content-Type", "text/plain; charset=utf-8")
        handler.send_header("Content-Length", str(len(body)))
        if retry_after is not None:
            handler.send_header("Retry-After", str(retry_after))
        handler.end_headers()
        if not head:
            handler.wfile.write(body)

    @staticmethod
    def _send_zeros(handler: _Handler, size: int, head: bool, obj: str) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", _CONTENT_TYPES.get(Path(obj).suffix.lower(), "application/octet-stream"))
        handler.send_header("Content-Length", str(size))
        handler.end_headers()
        if head:
            return
        block = bytes(min(size, _CHUNK))
        left = size
        try:
            while left > 0:
                n = min(left, _CHUNK)
                handler.wfile.write(block[:n])
                left -= n
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True

    @staticmethod
    def _send_file(handler: _Handler, path: Path, head: bool) -> None:
        with open(path, "rb", buffering=0) as f:
            size = os.fstat(f.fileno()).st_size
            handler.send_response(200)
            handler.send_header("Content-Type", _CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream"))
            handler.send_header("Content-Length", str(size))
            handler.end_headers()
            if head:
                return
            try:
                while block := f.read(_CHUNK):
                    handler.wfile.write(block)
            except (BrokenPipeError, ConnectionResetError):
                handler.close_connection = True
