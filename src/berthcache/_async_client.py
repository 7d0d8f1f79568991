"""``AsyncCache``: the asyncio client — it only sends commands, through its transport.

The twin of :class:`~berthcache.Cache`, written out by hand over the same I/O-free base: each
data method is one line awaiting its command plan (:mod:`berthcache._commands`) through
:meth:`AsyncCache._run`, the one place a plan meets the network — the transport's ``call``
(:mod:`berthcache._transport`). ``AsyncCache.redis`` (redis-py's pooled asyncio client,
connected lazily) serves what needs a connection of its own: WATCH transactions, subscriptions.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import redis.asyncio as aredis

from berthcache._base import CacheBase
from berthcache._budget import Budget
from berthcache._cluster_transport import AsyncClusterTransport, async_cluster_client
from berthcache._commands import Command, Done, NotTextError, PipelineBase, Plan
from berthcache._config import CacheConfig
from berthcache._events import AsyncEventConnection, AsyncEventSSLConnection
from berthcache._exceptions import CacheError
from berthcache._health import HealthStatus, unhealthy
from berthcache._lifecycle import check_close_timeout
from berthcache._mux import AsyncMultiplexer
from berthcache._pool import AsyncWaitingPool
from berthcache._retry import build_async_retry
from berthcache._transport import AsyncTransport
from berthcache._ttl import TTLLike

if TYPE_CHECKING:
    from berthcache._presence import AsyncPresence
    from berthcache._pubsub import AsyncSubscription
    from berthcache._ratelimit import AsyncRateLimiter
    from berthcache._responses import AsyncResponseCache
    from berthcache._sessions import AsyncSessionStore

__all__ = ["AsyncCache", "AsyncPipeline"]

logger = logging.getLogger("berthcache")
T = TypeVar("T")


_PING_ARGS = ("PING",)


class AsyncPipeline(PipelineBase):
    """Commands queued with the key prefix and sent in one round trip by :meth:`execute`."""

    async def execute(self) -> list[Any]:
        """Send the queued commands; returns their parsed results in order."""
        plans, commands = self._take_plans()
        with self._lifecycle.operation:
            replies = (
                await self._transport.batch(commands, transaction=self._transaction)
                if commands
                else []
            )
            return self._results(plans, commands, replies)

    async def __aenter__(self) -> AsyncPipeline:
        self._lifecycle.check_open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._plans.clear()


class AsyncCache(CacheBase):
    """The asyncio twin of :class:`Cache`: the same methods, awaited."""

    def __init__(self, config: CacheConfig | None = None, **settings: Any) -> None:
        super().__init__(config, **settings)
        # Every command, pipeline and feature call (budgeted ones included) goes through the
        # transport; it opens its connections when first used.
        self._transport: AsyncTransport = (
            AsyncClusterTransport(self.config, self.events)
            if self.config.cluster
            else AsyncMultiplexer(self.config, self.events)
        )
        self._health_budget = Budget(self.config.health_timeout_ms, "health_timeout_ms")
        # redis-py's pooled client for what needs a connection of its own (WATCH transactions,
        # subscriptions); public, and no connection is opened until something uses it.
        retry = build_async_retry(
            self.config, on_reconnecting=self.events.reconnecting, on_error=self.events.error
        )
        self._pool = AsyncWaitingPool(
            **self._pool_kwargs(AsyncEventConnection, AsyncEventSSLConnection, retry)
        )
        self.redis: aredis.Redis = (
            async_cluster_client(self.config)
            if self.config.cluster
            else aredis.Redis(connection_pool=self._pool)
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> AsyncCache:
        """From the seed's ``REDIS_*`` variables (``REDIS_URL`` wins); overrides win over both."""
        return cls(CacheConfig.from_env(environ, **overrides))

    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> AsyncCache:
        """From a ``redis://`` / ``rediss://`` URL."""
        return cls(CacheConfig.from_url(url, **overrides))

    # -- basic operations: each awaits its plan through _run ---------------------------------

    async def _run(self, plan: Plan[T]) -> T:
        """Send one planned command and parse its reply: the only place a plan does I/O."""
        if isinstance(plan, Done):  # nothing to send (delete with no keys)
            (result,) = plan  # unpacked, not .result: mypy keeps the type parameter this way
            return result
        args, parse = plan
        with self._op:  # what _operation() returns, without the call on the hot path
            reply = await self._transport.call(args)
        return parse(reply)

    async def _run_raw(self, command: Command[T]) -> T:
        """``_run`` with the reply read undecoded (``call_raw``): what ``get_bytes`` sends."""
        args, parse = command
        with self._op:
            reply = await self._transport.call_raw(args)
        return parse(reply)

    async def _run_timed(self, command: Command[Any]) -> float:
        """Send one planned command; the round trip in milliseconds (the reply is dropped)."""
        args = command[0]
        with self._op:
            start = time.perf_counter()
            await self._transport.call(args)
            return (time.perf_counter() - start) * 1000.0

    async def set(self, key: str, value: Any, ttl: TTLLike | None = None) -> None:
        """Store ``value`` (dict/list/bool/None as JSON), expiring after ``ttl`` if given."""
        await self._run(self._plan.set(key, value, ttl))

    async def get(self, key: str, parse_json: bool = False) -> Any | None:
        """The stored text (or parsed JSON with ``parse_json``); ``None`` when missing. A
        binary value (not UTF-8) raises SerializationError: read it with :meth:`get_bytes`."""
        try:
            return await self._run(self._plan.get(key, parse_json))
        except NotTextError:
            raise self._plan.not_text(self._plan.key(key)) from None

    async def set_bytes(
        self, key: str, data: bytes | bytearray | memoryview, ttl: TTLLike | None = None
    ) -> None:
        """Store ``data`` as raw bytes — any bytes, UTF-8 or not (compressed payloads) —
        expiring after ``ttl`` if given; read it back with :meth:`get_bytes`."""
        await self._run(self._plan.set_bytes(key, data, ttl))

    async def get_bytes(self, key: str) -> bytes | None:
        """The stored value as raw bytes, exactly as written (by ``set_bytes``, ``set`` or
        another client); ``None`` when missing."""
        return await self._run_raw(self._plan.get_bytes(key))

    async def set_json(self, key: str, value: Any, ttl: TTLLike | None = None) -> None:
        """Store any JSON-serializable ``value`` as JSON (strings too)."""
        await self._run(self._plan.set_json(key, value, ttl))

    async def get_json(self, key: str) -> Any | None:
        """The stored JSON value, parsed; ``None`` when missing."""
        return await self._run(self._plan.get(key, True))

    async def delete(self, *keys: str) -> int:
        """Delete ``keys``; returns how many existed."""
        return await self._run(self._plan.delete(keys))

    async def exists(self, key: str) -> bool:
        """Whether ``key`` exists."""
        return await self._run(self._plan.exists(key))

    async def expire(self, key: str, ttl: TTLLike) -> bool:
        """Set a TTL on ``key``; False when the key does not exist."""
        return await self._run(self._plan.expire(key, ttl))

    async def ttl(self, key: str) -> int:
        """Seconds left; -1 when the key has no expiry, -2 when it does not exist."""
        return await self._run(self._plan.ttl(key))

    async def incr(self, key: str, amount: int = 1) -> int:
        """Add ``amount`` to the integer at ``key`` (0 when missing); returns the new value."""
        return await self._run(self._plan.incr(key, amount))

    def pipeline(self, transaction: bool = False) -> AsyncPipeline:
        """A pipeline whose commands take the key prefix; ``transaction`` wraps it in MULTI."""
        self._check_open()
        return AsyncPipeline(self._plan, self._lifecycle, self._transport, transaction)

    # -- health -------------------------------------------------------------------------------

    async def ping(self) -> float:
        """PING round trip in milliseconds."""
        return await self._run_timed(self._plan.ping())

    async def check_health(self) -> HealthStatus:
        """``HealthStatus`` from one PING within ``health_timeout_ms`` (no retries); never
        raises (unhealthy carries the reason)."""
        budget = self._health_budget
        try:
            with self._op:
                start = time.perf_counter()
                await self._transport.call(_PING_ARGS, budget=budget)
                latency = (time.perf_counter() - start) * 1000.0
            return HealthStatus(healthy=True, latency_ms=round(latency, 3))
        except CacheError as exc:
            return unhealthy(exc)
        except Exception as exc:
            logger.exception("health check failed unexpectedly")
            return unhealthy(exc)

    # -- pub/sub -------------------------------------------------------------------------------

    async def publish(self, channel: str, message: Any) -> int:
        """Publish ``message`` (dict/list as JSON) on ``channel`` (see prefix_channels)."""
        from berthcache._pubsub import async_publish

        return await async_publish(self, channel, message)

    async def subscribe(
        self,
        channel: str,
        callback: Callable[[Any], Any] | None = None,
        *,
        parse_json: bool = True,
    ) -> AsyncSubscription:
        """Listen on ``channel`` over a dedicated connection; see :class:`AsyncSubscription`."""
        from berthcache._pubsub import async_subscribe

        return await async_subscribe(self, channel, callback, parse_json=parse_json)

    # -- features -----------------------------------------------------------------------------

    @functools.cached_property
    def sessions(self) -> AsyncSessionStore:
        """:class:`AsyncSessionStore` on this cache."""
        from berthcache._sessions import AsyncSessionStore

        return AsyncSessionStore(self)

    @functools.cached_property
    def responses(self) -> AsyncResponseCache:
        """:class:`AsyncResponseCache` on this cache."""
        from berthcache._responses import AsyncResponseCache

        return AsyncResponseCache(self)

    @functools.cached_property
    def rate_limiter(self) -> AsyncRateLimiter:
        """:class:`AsyncRateLimiter` on this cache (100 requests / 60 s)."""
        from berthcache._ratelimit import AsyncRateLimiter

        return AsyncRateLimiter(self)

    @functools.cached_property
    def presence(self) -> AsyncPresence:
        """:class:`AsyncPresence` on this cache."""
        from berthcache._presence import AsyncPresence

        return AsyncPresence(self)

    # -- shutdown -----------------------------------------------------------------------------

    async def close(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Finish in-flight calls (up to ``timeout`` s), stop subscriptions, close every
        connection, then emit ``end``. Idempotent; later calls raise CacheClosedError."""
        timeout = check_close_timeout(timeout)
        callbacks = self._lifecycle.begin_close()
        if callbacks is None:
            return
        if not await self._lifecycle.wait_idle(timeout):
            self._lifecycle.log_close_timeout(timeout)
        for callback in callbacks:
            try:
                result = callback()
                if inspect.isawaitable(result):
                    await asyncio.wait_for(result, timeout=max(timeout, 1.0))
            except Exception:
                logger.exception("close callback failed")
        try:
            try:
                await self._transport.aclose(timeout)
            finally:
                if self.config.cluster:
                    await self.redis.aclose()
                else:
                    await self.redis.aclose(close_connection_pool=True)
        finally:
            self.events.emit("end")

    async def __aenter__(self) -> AsyncCache:
        self._check_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
