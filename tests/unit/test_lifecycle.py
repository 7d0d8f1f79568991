"""Graceful-shutdown bookkeeping under threads: ``close()`` waits for every call that got in
and no call gets in after it (the in-flight count is kept without a lock; see Lifecycle)."""

from __future__ import annotations

import threading

import pytest

from berthcache._exceptions import CacheClosedError
from berthcache._lifecycle import Lifecycle

THREADS = 8
CALLS_BEFORE_CLOSE = 20_000
MAX_CALLS_PER_THREAD = 2_000_000  # a bound: the workers stop at close long before this


def test_close_waits_for_every_call_that_got_in_and_refuses_the_rest() -> None:
    lifecycle = Lifecycle()
    operation = lifecycle.operation
    lock = threading.Lock()
    inside = 0
    calls = 0
    enough = threading.Event()
    idle_seen = threading.Event()
    late: list[int] = []  # calls that got in after close() saw the cache idle
    refused = 0

    def worker() -> None:
        nonlocal inside, calls, refused
        for _ in range(MAX_CALLS_PER_THREAD):
            try:
                with operation:
                    with lock:
                        inside += 1
                        calls += 1
                        if calls >= CALLS_BEFORE_CLOSE:
                            enough.set()
                    if idle_seen.is_set():
                        late.append(1)
                    with lock:
                        inside -= 1
            except CacheClosedError:
                with lock:
                    refused += 1
                return

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    try:
        assert enough.wait(timeout=30), "the workers never got going"
        assert lifecycle.begin_close() is not None
        assert lifecycle.wait_idle_blocking(timeout=10), "close() never saw the cache idle"
        with lock:
            assert inside == 0, "close() saw the cache idle with a call still inside"
        idle_seen.set()
    finally:
        for thread in threads:
            thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert not late, "a call got in after close() saw the cache idle"
    assert refused == THREADS  # every worker was refused once the cache closed
    assert lifecycle.inflight == 0


def test_a_refused_call_leaves_no_trace_and_close_is_idempotent() -> None:
    lifecycle = Lifecycle()
    assert lifecycle.begin_close() == []
    with pytest.raises(CacheClosedError), lifecycle.operation:
        pass
    assert lifecycle.inflight == 0
    assert lifecycle.wait_idle_blocking(timeout=0)
    assert lifecycle.begin_close() is None
