"""A bounded, order-keeping process pool for per-chunk work.

Decoding, validating and PNG-encoding images is CPU work that Python threads
cannot share; processes can. Results come back in input order so builds stay
deterministic, and only `window` chunks are in flight so memory stays flat
however large the input is.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import signal
import threading
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")

WORKERS_ENV = "SIGN_DATASETS_WORKERS"


def default_workers() -> int:
    configured = os.environ.get(WORKERS_ENV, "").strip()
    if configured:
        return max(1, int(configured))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def _end_with_parent(parent: int) -> None:
    """Worker start-up: ask Linux to kill this worker when the build dies.

    A forked worker otherwise outlives a killed build, waiting forever on a
    queue nobody writes to and holding a copy of the build's memory. Linux
    ties the request to the thread that started the pool: ordered_map's
    caller, which iterates it to the end.
    """
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: nothing to ask
        return
    if os.getppid() != parent:  # the build died before the request took effect
        os._exit(1)


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int | None = None,
                window: int | None = None) -> Iterator[R]:
    """Like map(fn, items), spread over `workers` processes, in order."""
    workers = default_workers() if workers is None else workers
    if workers <= 1:
        yield from map(fn, items)
        return
    window = window or 2 * workers
    # fork: workers start in milliseconds and inherit the imported modules;
    # they only run numpy/pandas/Pillow code, never TensorFlow.
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_end_with_parent,
                             initargs=(os.getpid(),)) as pool:
        pending: deque = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


_FROZEN_DEPTH = 0
_FROZEN_LOCK = threading.Lock()


@contextlib.contextmanager
def long_lived_objects_frozen():
    """Leaves the objects alive on entry out of garbage collection until the
    (outermost) block ends.

    A build process holds TensorFlow's and TFDS's few hundred thousand
    objects; every full collection walks them all, and a loop that creates
    tens of thousands of records triggers many (the sign-language zip's scan
    took 0.54-0.82 s with collections, 0.38-0.53 s without). Frozen objects
    are also what forked workers then never touch, as Python's gc docs
    advise before fork(). Unfreezing hands them back, so nothing leaks.
    """
    global _FROZEN_DEPTH
    with _FROZEN_LOCK:
        if _FROZEN_DEPTH == 0:
            gc.freeze()
        _FROZEN_DEPTH += 1
    try:
        yield
    finally:
        with _FROZEN_LOCK:
            _FROZEN_DEPTH -= 1
            if _FROZEN_DEPTH == 0:
                gc.unfreeze()
