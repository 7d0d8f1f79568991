"""Graceful-shutdown bookkeeping under threads: ``close()`` waits for every call that got in
and no call gets in after it (the in-flight count is kept without a lock; see Lifecycle)."""

from __future__ import annotations

import asyncio
import threading
import time

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
        start = time.monotonic()
        assert lifecycle.wait_idle_blocking(timeout=10), "close() never saw the cache idle"
        assert time.monotonic() - start < 2.0, "close() was not woken by the last call"
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


class _ClosingOnFirstLook(Lifecycle):
    """Closes the moment a call first looks at whether the cache is closed, and records
    whether close() then counted that call in flight."""

    def __init__(self) -> None:
        self.looked = False
        self.idle_at_close: bool | None = None
        super().__init__()

    @property
    def _closed(self) -> bool:
        if not self.looked:
            self.looked = True
            self.begin_close()
            self.idle_at_close = self.wait_idle_blocking(timeout=0)
        return self._state

    @_closed.setter
    def _closed(self, value: bool) -> None:
        self._state = value


def test_a_call_is_counted_before_it_looks_at_closed() -> None:
    """The interleaving the lock-free count relies on, made to happen: close() runs between
    a call's join and its look at ``_closed``; it must see that call in flight."""
    lifecycle = _ClosingOnFirstLook()
    with pytest.raises(CacheClosedError), lifecycle.operation:
        pass
    assert lifecycle.idle_at_close is False
    assert lifecycle.inflight == 0


def _held_call(lifecycle: Lifecycle, inside: threading.Event, release: threading.Event) -> None:
    with lifecycle.operation:
        inside.set()
        release.wait(timeout=10)


def test_the_last_call_to_leave_wakes_close_at_once() -> None:
    lifecycle = Lifecycle()
    inside, release = threading.Event(), threading.Event()
    worker = threading.Thread(target=_held_call, args=(lifecycle, inside, release))
    worker.start()
    try:
        assert inside.wait(timeout=10)
        assert lifecycle.begin_close() == []
        threading.Timer(0.05, release.set).start()
        start = time.monotonic()
        assert lifecycle.wait_idle_blocking(timeout=10)
        assert time.monotonic() - start < 1.0, "close() was not woken by the last call"
    finally:
        release.set()
        worker.join(timeout=10)


@pytest.mark.asyncio
async def test_the_last_call_to_leave_wakes_an_async_close_at_once() -> None:
    lifecycle = Lifecycle()
    inside, release = threading.Event(), threading.Event()
    worker = threading.Thread(target=_held_call, args=(lifecycle, inside, release))
    worker.start()
    try:
        assert await asyncio.to_thread(inside.wait, 10)
        assert lifecycle.begin_close() == []
        asyncio.get_running_loop().call_later(0.05, release.set)
        start = time.monotonic()
        assert await lifecycle.wait_idle(10)
        assert time.monotonic() - start < 1.0, "close() was not woken by the last call"
    finally:
        release.set()
        await asyncio.to_thread(worker.join, 10)
