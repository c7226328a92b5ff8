"""A bounded, order-keeping process pool for per-chunk work.

Decoding, validating and PNG-encoding images is CPU work that Python threads
cannot share; processes can. Results come back in input order so builds stay
deterministic, and at most `window` chunks are in the pool (two windows
drawn in all when the caller helps) so memory stays flat however large the
input is.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import multiprocessing
import os
import signal
import threading
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

from sign_datasets.io import settings

try:
    import fcntl
except ImportError:  # Windows: no fork either
    fcntl = None

T = TypeVar("T")
R = TypeVar("R")

WORKERS_ENV = "SIGN_DATASETS_WORKERS"

# Workers hand results back through one pipe, which a thread of the main
# process drains while the main thread writes examples: a 64 KB pipe blocks a
# worker on every 220 KB chunk, 1 MB (the unprivileged maximum) hands it over
# at once (docs/DESIGN.md, "A 1 MB result pipe").
RESULT_PIPE_BYTES = 1 << 20


def default_workers() -> int:
    configured = settings.number(WORKERS_ENV, None, int, minimum=1)
    if configured is not None:
        return configured
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def end_with_parent(parent: int) -> None:
    """Worker start-up: ask Linux to kill this worker when the build dies
    (decode workers, and the forked near-pair search of generate.local).

    A forked worker otherwise outlives a killed build, waiting forever on a
    queue nobody writes to and holding a copy of the build's memory. Linux
    ties the request to the thread that started the pool: ordered_map's
    caller, which iterates it to the end.
    """
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: nothing to ask
        return
    if os.getppid() != parent:  # the build died before the request took effect
        os._exit(1)


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int | None = None,
                window: int | None = None, caller_helps: bool = False) -> Iterator[R]:
    """Like map(fn, items), spread over `workers` processes, in order.

    With `caller_helps`, the calling process is one of the `workers`: the
    pool gets one process fewer, and whenever the next result in order is not
    ready the caller computes the earliest item the pool has not started
    instead of waiting. This is for callers with work of their own between
    results (a TFDS writer): one process per core instead of a process more
    than cores (docs/DESIGN.md gives the figures).
    """
    workers = default_workers() if workers is None else workers
    if workers <= 1:
        yield from map(fn, items)
        return
    window = window or 2 * workers
    items = iter(items)
    with worker_pool(workers - 1 if caller_helps else workers) as pool:
        # In item order: the pool's futures, and results the caller computed.
        pending: deque = deque()
        item_of: dict[Future, T] = {}
        while True:
            while len(item_of) < window and (item := next(items, _END)) is not _END:
                future = pool.submit(fn, item)
                item_of[future] = item
                pending.append(future)
            if not pending:
                return
            if (caller_helps and isinstance(pending[0], Future) and not pending[0].done()
                    and len(pending) < 2 * window  # memory: at most two windows drawn
                    and _compute_one_not_started(pending, item_of, fn)):
                continue  # the pool's window has room again
            head = pending.popleft()
            if isinstance(head, _Computed):
                yield head.result
            else:
                del item_of[head]
                yield head.result()


def _compute_one_not_started(pending: deque, item_of: dict, fn: Callable) -> bool:
    """Computes, in its place, the earliest item the pool has not started
    (its processes only claim one item ahead), so the caller and the pool
    both work on the next items in order; False if there is none."""
    for at, future in enumerate(pending):
        if isinstance(future, Future) and future.cancel():
            pending[at] = _Computed(fn(item_of.pop(future)))
            return True
    return False


_END = object()


class _Computed:
    """A result the calling process computed itself, kept in its place."""

    __slots__ = ("result",)

    def __init__(self, result):
        self.result = result


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """Forked workers that die with the build and hand results over at once.

    fork: workers start in milliseconds and inherit the imported modules;
    they only run numpy/pandas/Pillow code, never TensorFlow."""
    context = multiprocessing.get_context("fork")
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=end_with_parent,
                               initargs=(os.getpid(),))
    _widen_result_pipe(pool)
    return pool


def result_pipe(pool: ProcessPoolExecutor) -> int | None:
    """The pipe workers write results to, or None where the executor does not
    keep it where CPython 3.8-3.13 do (results then use the default pipe)."""
    # Private, and no public way reaches this pipe: widening it cut a worker's waits
    # from 425 to 50 a build, and the build 1.08x faster (median of 20 A/B pairs).
    reader = getattr(getattr(pool, "_result_queue", None), "_reader", None)
    fileno = getattr(reader, "fileno", None)
    return fileno() if callable(fileno) else None


def _widen_result_pipe(pool: ProcessPoolExecutor) -> None:
    fd = result_pipe(pool)
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)  # Linux only
    if fd is None or set_size is None:
        return
    try:
        fcntl.fcntl(fd, set_size, RESULT_PIPE_BYTES)
    except OSError:  # fs.pipe-max-size set lower: the default pipe still works
        pass


_FROZEN_DEPTH = 0
_FROZEN_LOCK = threading.Lock()


@contextlib.contextmanager
def long_lived_objects_frozen():
    """Leaves the objects alive on entry out of garbage collection until the
    (outermost) block ends.

    A build process holds TensorFlow's and TFDS's few hundred thousand
    objects; every full collection walks them all, and a loop that creates
    tens of thousands of records triggers many, which costs a scan about a
    third of its time. Frozen objects
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
