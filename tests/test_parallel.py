"""The worker pool behind parallel builds: order, and how results come back."""

from __future__ import annotations

import fcntl
import functools
import os
import time
from pathlib import Path

import pytest

from sign_datasets.io import parallel

F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", None)
PIPE_MAX = Path("/proc/sys/fs/pipe-max-size")


def _pid_and_square(x: int) -> tuple[int, int]:
    # Every fourth item is slow, so the pool's next result is often not
    # ready and a helping caller has something to do.
    time.sleep(0.02 if x % 4 == 0 else 0.001)
    return os.getpid(), x * x


@pytest.mark.parametrize("workers", [2, 3])
def test_a_helping_caller_keeps_the_order_and_shares_the_work(workers):
    items = list(range(120))
    got = list(parallel.ordered_map(_pid_and_square, items, workers=workers, caller_helps=True))
    assert [square for _, square in got] == [x * x for x in items]
    by_caller = sum(pid == os.getpid() for pid, _ in got)
    pool_pids = {pid for pid, _ in got} - {os.getpid()}
    assert 0 < by_caller < len(items)
    assert 1 <= len(pool_pids) <= workers - 1  # the pool has one process fewer


def test_without_helping_the_caller_computes_nothing():
    for window in (None, 1, 9):
        got = list(parallel.ordered_map(_pid_and_square, range(40), workers=2, window=window))
        assert [square for _, square in got] == [x * x for x in range(40)]
        assert all(pid != os.getpid() for pid, _ in got)


@pytest.mark.parametrize("caller_helps", [False, True])
def test_items_are_drawn_at_most_two_windows_ahead(caller_helps):
    """Memory stays flat: items in the pool plus results the caller computed
    ahead never pass two windows, however long the input."""
    drawn = 0
    ahead = []

    def items():
        nonlocal drawn
        for x in range(200):
            drawn += 1
            yield x

    window = 4
    for taken, (_, square) in enumerate(parallel.ordered_map(
            _pid_and_square, items(), workers=2, window=window, caller_helps=caller_helps), 1):
        ahead.append(drawn - taken)
        assert square == (taken - 1) ** 2
    assert max(ahead) <= (2 * window if caller_helps else window)
    assert drawn == 200


def _slow_first(x: int) -> int:
    time.sleep(0.5 if x == 0 else 0.001)
    return x


def test_a_helping_caller_stops_two_windows_ahead_of_a_slow_pool():
    """While the pool's first item takes long, the caller computes later
    items, but at most two windows are drawn: then it waits."""
    drawn = 0

    def items():
        nonlocal drawn
        for x in range(100):
            drawn += 1
            yield x

    results = parallel.ordered_map(_slow_first, items(), workers=2, window=4, caller_helps=True)
    assert next(results) == 0
    assert 4 < drawn <= 2 * 4 + 1  # the caller went on, and at most one item past two windows
    assert list(results) == list(range(1, 100))


def _slow_in_the_pool(caller: int, x: int) -> tuple[int, int]:
    time.sleep(0.3 if os.getpid() != caller else 0.001)
    return os.getpid(), x


def test_the_caller_computes_the_items_the_pool_has_not_started():
    """Instead of waiting for a slow pool, the caller takes the items queued
    for it that it has not started; the order holds."""
    caller = os.getpid()
    got = list(parallel.ordered_map(functools.partial(_slow_in_the_pool, caller), range(6),
                                    workers=2, window=4, caller_helps=True))
    assert [x for _, x in got] == list(range(6))
    # Before its first item ends, 0.3 s in, the pool's one process claims at
    # most three (one running, two in its queue); the caller, which computes
    # an item in 1 ms, takes every other one long before.
    assert sum(pid != caller for pid, _ in got) <= 3


def _fails_on_seven(x: int) -> int:
    if x == 7:
        raise ValueError("item 7")
    time.sleep(0.005)
    return x


def test_an_error_reaches_the_caller_wherever_the_item_ran():
    for caller_helps in (False, True):
        with pytest.raises(ValueError, match="item 7"):
            list(parallel.ordered_map(_fails_on_seven, range(30), workers=2,
                                      caller_helps=caller_helps))


def test_one_worker_runs_in_the_calling_process():
    got = list(parallel.ordered_map(_pid_and_square, range(10), workers=1, caller_helps=True))
    assert got == [(os.getpid(), x * x) for x in range(10)]


def _big_result(delay: float) -> bytes:
    time.sleep(delay)
    return bytes(900_000)


def _started_at(_: object) -> float:
    return time.monotonic()


def _hold_the_gil(seconds: float) -> None:
    """Keep this process's other threads from running, as a busy main thread
    does at every switch interval: builtin sum over a range never lets go."""
    n = 1_000_000
    start = time.perf_counter()
    sum(range(n))
    per_item = (time.perf_counter() - start) / n
    sum(range(int(seconds / per_item)))


@pytest.mark.skipif(F_GETPIPE_SZ is None or not PIPE_MAX.exists()
                    or int(PIPE_MAX.read_text()) < parallel.RESULT_PIPE_BYTES,
                    reason="needs Linux pipes that can grow to 1 MB")
def test_a_worker_hands_a_large_result_over_without_waiting_for_the_main_process():
    """A worker's 900 KB result fits the result pipe whole: the worker goes on
    to its next task while the main process's reader thread cannot run (the
    main thread holds the GIL). Through a default 64 KB pipe it waited for
    the reader, which cost the sign-language build 13 % of its time."""
    with parallel.worker_pool(1) as pool:
        assert fcntl.fcntl(parallel.result_pipe(pool), F_GETPIPE_SZ) >= parallel.RESULT_PIPE_BYTES
        first = pool.submit(_big_result, 1.0)
        second = pool.submit(_started_at, None)
        time.sleep(0.5)  # both tasks reach the worker's queue
        _hold_the_gil(2.5)  # the first result is sent within this
        held_until = time.monotonic()
        assert len(first.result()) == 900_000
        assert second.result() < held_until


def _chunk_sized(x: int) -> bytes:
    """A result the size of a decoded chunk (220 KB), distinct for each item."""
    return x.to_bytes(4, "big") * 55_000


def test_pools_whose_result_pipe_cannot_be_reached_give_the_same_results(monkeypatch):
    """The 1 MB result pipe is found through a private attribute of CPython's
    executor: where it is not there, the pool keeps the default pipe and every
    result still arrives, in order, byte for byte, in either mode."""
    from types import SimpleNamespace

    assert parallel.result_pipe(object()) is None
    assert parallel.result_pipe(SimpleNamespace(_result_queue=SimpleNamespace())) is None
    assert parallel.result_pipe(SimpleNamespace(
        _result_queue=SimpleNamespace(_reader=SimpleNamespace()))) is None

    reach = parallel.result_pipe
    monkeypatch.setattr(parallel, "result_pipe", lambda pool: None)
    if F_GETPIPE_SZ is not None:
        with parallel.worker_pool(1) as pool:
            assert fcntl.fcntl(reach(pool), F_GETPIPE_SZ) < parallel.RESULT_PIPE_BYTES
    items = list(range(24))
    for caller_helps in (False, True):
        got = list(parallel.ordered_map(_chunk_sized, items, workers=2, window=3,
                                        caller_helps=caller_helps))
        assert got == [_chunk_sized(x) for x in items]
