"""The asyncio connection pool: callers wait for a free connection instead of failing.

redis-py's asyncio ``ConnectionPool`` raises "Too many connections" once ``max_connections``
are in use — an API with more concurrent requests than pooled connections would fail under
load. Its ``BlockingConnectionPool`` waits instead, but takes an ``asyncio.Condition`` on every
checkout and return: at 64 concurrent callers on 2 cores it cost ~19% of throughput (measured,
see docs/benchmarks.md). This pool gates checkouts with a semaphore, which costs nothing while
a connection is free and waits, up to ``timeout`` seconds, only when none is.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis
import redis.asyncio as aredis
import redis.exceptions as rex

__all__ = ["AsyncWaitingPool", "WaitingPool", "masked_repr"]


def masked_repr(pool: Any) -> str:
    """A pool's repr without its password (redis-py before 8 prints connection_kwargs whole)."""
    kwargs = pool.connection_kwargs
    shown = ", ".join(
        f"{name}={kwargs[name]!r}" for name in ("host", "port", "db", "username") if name in kwargs
    )
    secret = ", password='***'" if kwargs.get("password") else ""
    return (
        f"<{type(pool).__name__}({pool.connection_class.__name__}({shown}{secret}), "
        f"max_connections={pool.max_connections})>"
    )


class WaitingPool(redis.BlockingConnectionPool):
    """redis-py's blocking pool (callers wait for a free connection), with a masked repr."""

    def __repr__(self) -> str:
        return masked_repr(self)


class AsyncWaitingPool(aredis.ConnectionPool):
    """``max_connections`` connections; the next caller waits up to ``timeout`` seconds.

    A slot is taken before a connection is checked out and given back exactly once, when a
    connection that holds one is released. (redis-py's ``get_connection`` itself releases a
    connection whose connect failed, so the slot cannot simply be freed on every error path.)
    """

    def __init__(self, *, timeout: float, max_connections: int, **kwargs: Any) -> None:
        super().__init__(max_connections=max_connections, **kwargs)
        self._slots = asyncio.Semaphore(max_connections)
        self._wait_timeout = timeout

    async def get_connection(self, *args: Any, **options: Any) -> Any:
        if self._slots.locked():
            try:
                async with asyncio.timeout(self._wait_timeout):
                    await self._slots.acquire()
            except TimeoutError:
                raise rex.ConnectionError(
                    f"no free connection within {self._wait_timeout} s: all "
                    f"{self.max_connections} are in use (raise max_connections or pool_timeout)"
                ) from None
        else:
            await self._slots.acquire()  # a slot is free: returns without suspending
        try:
            # Arguments passed on as given: redis-py deprecated the old command-name argument.
            connection = await super().get_connection(*args, **options)  # type: ignore[no-untyped-call]
        except BaseException:
            self._slots.release()  # no connection holds this slot
            raise
        connection._berthcache_slot = True
        return connection

    def __repr__(self) -> str:
        return masked_repr(self)

    async def release(self, connection: Any) -> None:
        holds_slot = getattr(connection, "_berthcache_slot", False)
        connection._berthcache_slot = False
        try:
            await super().release(connection)
        finally:
            if holds_slot:
                self._slots.release()
