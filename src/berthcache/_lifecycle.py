"""Graceful shutdown bookkeeping of one cache: open or closed, calls in flight, close callbacks.

``close()`` must refuse new calls at once, let the calls already running finish (up to a
timeout), stop subscriptions, and only then close the connections. :class:`Lifecycle` keeps
that state for a cache — sync or async — and :class:`Operation` is the context manager around
every call that counts it in flight and maps whatever escapes at the error boundary.
No I/O here: the clients close their own connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Literal

from berthcache._exceptions import CacheClosedError, ConfigurationError, to_cache_error

__all__ = ["CLOSED_MESSAGE", "Lifecycle", "Operation", "check_close_timeout"]

logger = logging.getLogger("berthcache")

CLOSED_MESSAGE = (
    "the cache is closed (close() was called); create a new client, or call "
    "berthcache.compat.initialize_cache() again for the module-level API"
)


def check_close_timeout(timeout: float) -> float:
    """``close(timeout)``'s argument as float seconds; a clear error for anything else."""
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 0:
        raise ConfigurationError("timeout", f"must be a number of seconds >= 0, got {timeout!r}")
    return float(timeout)


class Lifecycle:
    """Open/closed state, in-flight count and close callbacks of one cache, shared by every
    thread and task that uses it (one lock; asyncio waiters are woken thread-safely).

    Calls in flight are counted without the lock — one item each in ``_calls`` (a list's
    append and pop are atomic) — because every command pays for that count. A call joins
    before it looks at ``_closed`` and ``close()`` sets ``_closed`` before it counts, so a call
    either sees the cache closed and leaves, or is counted and waited for.
    """

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._calls: list[None] = []  # one item per call in flight
        self._closed = False
        self._close_callbacks: list[Callable[[], Any]] = []
        self._idle_waiters: list[Callable[[], None]] = []
        self.operation = Operation(self, secrets)

    @property
    def closed(self) -> bool:
        """True once ``close()`` has started."""
        return self._closed

    @property
    def inflight(self) -> int:
        """Calls running now (for the close-timeout warning)."""
        return len(self._calls)

    def check_open(self) -> None:
        """Raise CacheClosedError once closing has started."""
        if self._closed:
            raise CacheClosedError(CLOSED_MESSAGE)

    def _settle(self) -> None:
        """A call left a closing cache: wake ``close()`` when that was the last one."""
        with self._lock:
            if self._calls:
                return
            self._idle.notify_all()
            waiters = list(self._idle_waiters)
        for wake in waiters:
            wake()

    def on_close(self, callback: Callable[[], Any]) -> None:
        """Run ``callback`` during ``close()`` before the pool closes (subscriptions use it)."""
        with self._lock:
            if self._closed:
                raise CacheClosedError(CLOSED_MESSAGE)
            self._close_callbacks.append(callback)

    def forget_on_close(self, callback: Callable[[], Any]) -> None:
        """Drop a callback registered with :meth:`on_close` (its owner closed by itself), so
        long-lived caches do not keep every finished subscription alive."""
        with self._lock, contextlib.suppress(ValueError):
            self._close_callbacks.remove(callback)

    def begin_close(self) -> list[Callable[[], Any]] | None:
        """Mark closed; the close callbacks (last registered first), or None when already
        closed (so ``close()`` is idempotent)."""
        with self._lock:
            if self._closed:
                return None
            self._closed = True
            callbacks = list(reversed(self._close_callbacks))
            self._close_callbacks.clear()
            return callbacks

    def wait_idle_blocking(self, timeout: float) -> bool:
        """Block until no call is in flight; False when ``timeout`` seconds passed first."""
        with self._lock:
            return self._idle.wait_for(lambda: not self._calls, timeout=timeout)

    async def wait_idle(self, limit: float) -> bool:
        """Await until no call is in flight; False when ``limit`` seconds passed first.

        The last call may finish on another thread (a sync client shared with an executor), so
        the waiter is woken through the loop, thread-safely.
        """
        loop = asyncio.get_running_loop()
        idle = asyncio.Event()

        def wake() -> None:
            loop.call_soon_threadsafe(idle.set)

        with self._lock:
            if not self._calls:
                return True
            self._idle_waiters.append(wake)
        try:
            await asyncio.wait_for(idle.wait(), timeout=limit)
            return True
        except TimeoutError:
            return False
        finally:
            with self._lock:
                self._idle_waiters.remove(wake)

    def log_close_timeout(self, timeout: float) -> None:
        """Say that ``close()`` stopped waiting for calls still in flight."""
        logger.warning(
            "close(): %d call(s) still in flight after %.1f s; closing connections anyway",
            len(self._calls),
            timeout,
        )


class Operation:
    """``with cache._operation():`` around every call: refuse it once closed, count it in
    flight (``close()`` waits for those), and raise the :func:`to_cache_error` of whatever
    escapes, scrubbed of the cache's secrets.

    One instance per cache, shared by every thread and task: it keeps no per-call state, so
    the per-command path allocates nothing (a generator-based context manager cost ~4x more).
    """

    __slots__ = ("_lifecycle", "_secrets")

    def __init__(self, lifecycle: Lifecycle, secrets: Iterable[str | None]) -> None:
        self._lifecycle = lifecycle
        self._secrets = tuple(s for s in secrets if s)

    def __enter__(self) -> None:
        lifecycle = self._lifecycle  # this runs on every command: no lock (see Lifecycle)
        calls = lifecycle._calls
        calls.append(None)
        if lifecycle._closed:
            calls.pop()
            lifecycle._settle()
            raise CacheClosedError(CLOSED_MESSAGE)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        lifecycle = self._lifecycle
        lifecycle._calls.pop()
        if lifecycle._closed:
            lifecycle._settle()
        if exc is not None:
            error = to_cache_error(exc, secrets=self._secrets)
            if error is not None and error is not exc:
                raise error from exc
        return False
