"""The urllib3 pieces the fetcher is built of: time limits that hold, and
connections that check where they connected.

Each URL has a total deadline covering connect, redirects, retries and a
body that trickles in: `DeadlineTimeout` and `BoundedRetry` give every
attempt what is left of it, and a watchdog shuts the socket down when it
passes. `PolicyPoolManager`'s connections check the address a socket
actually reached against the URL policy right after connecting.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import os
import socket
import threading
import time
from typing import Callable, Iterator

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util.retry import Retry

from sign_datasets.io.url_policy import Refused, UrlPolicy


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


WATCHDOG = _Watchdog()


class DeadlineTimeout(urllib3.Timeout):
    """A Timeout whose total is what is left of a deadline whenever urllib3
    takes a copy for an attempt: retries and redirects share one budget."""

    def __init__(self, connect, read, deadline: float):
        self.deadline = deadline
        remaining = max(deadline - time.monotonic(), 0.001)
        super().__init__(connect=connect, read=read, total=remaining)

    def clone(self) -> "DeadlineTimeout":
        return DeadlineTimeout(self._connect, self._read, self.deadline)


class BoundedRetry(Retry):
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
        WATCHDOG.watch(sock)
        return sock

    def connect(self):
        super().connect()
        # TLS wraps the socket in a new object: that one is what reads.
        WATCHDOG.watch(self.sock)

    def request(self, *args, **kwargs):
        # A pooled connection's socket joins the current request's watch too.
        WATCHDOG.watch(self.sock)
        return super().request(*args, **kwargs)


class _CheckedHTTPConnection(_CheckedConnection, HTTPConnection):
    pass


class _CheckedHTTPSConnection(_CheckedConnection, HTTPSConnection):
    pass


class _CheckedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _CheckedHTTPConnection


class _CheckedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _CheckedHTTPSConnection


class PolicyPoolManager(urllib3.PoolManager):
    """A PoolManager whose connections check their peer with `policy`."""

    def __init__(self, policy: UrlPolicy, **kwargs):
        super().__init__(**kwargs)
        self.policy = policy
        self.pool_classes_by_scheme = {"http": _CheckedHTTPPool, "https": _CheckedHTTPSPool}

    def _new_pool(self, scheme, host, port, request_context=None):
        pool = super()._new_pool(scheme, host, port, request_context)
        pool.conn_kw["peer_check"] = functools.partial(self.policy.check_peer, scheme)
        return pool
