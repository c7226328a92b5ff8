"""ordered_map: order, completeness and bounded memory, with and without the
calling process computing items itself (caller_helps)."""

from __future__ import annotations

import os
import time

import pytest

from sign_datasets import parallel


def _pid_and_square(x: int) -> tuple[int, int]:
    # Every fourth item is slow, so the pool's head is often not ready and
    # a helping caller has something to do.
    time.sleep(0.02 if x % 4 == 0 else 0.001)
    return os.getpid(), x * x


@pytest.mark.parametrize("workers", [2, 3])
def test_caller_helping_keeps_order_and_shares_the_work(workers):
    items = list(range(120))
    got = list(parallel.ordered_map(_pid_and_square, items, workers=workers, caller_helps=True))
    assert [square for _, square in got] == [x * x for x in items]
    by_caller = sum(pid == os.getpid() for pid, _ in got)
    pool_pids = {pid for pid, _ in got} - {os.getpid()}
    assert 0 < by_caller < len(items)
    assert 1 <= len(pool_pids) <= workers - 1  # the pool has one process fewer


def test_without_helping_the_caller_computes_nothing():
    got = list(parallel.ordered_map(_pid_and_square, range(40), workers=2))
    assert [square for _, square in got] == [x * x for x in range(40)]
    assert all(pid != os.getpid() for pid, _ in got)


@pytest.mark.parametrize("caller_helps", [False, True])
def test_items_are_drawn_at_most_two_windows_ahead(caller_helps):
    """Memory stays flat: items in flight in the pool plus results the caller
    computed ahead never pass two windows, however long the input."""
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
