"""The transport: the one layer that sends raw Redis commands and hands back raw replies.

Every data method, pipeline and feature of :class:`~berthcache.Cache` /
:class:`~berthcache.AsyncCache` sends through ``cache._transport`` — a :class:`SyncTransport` or
an :class:`AsyncTransport` — with the command as raw Redis arguments (``("SET", key, value,
"EX", 300)``) and reads the raw RESP2 reply (bulk strings decoded as UTF-8 ``str`` with
``surrogateescape`` — text as a strict decode gives it, other bytes as lone surrogates that
``get_bytes`` encodes back losslessly —, ``"OK"``, ints, ``None``, nested lists). What a
transport keeps, whatever its implementation:

* the retry policy of :mod:`berthcache._retry` (retryable errors only,
  ``max_retries_per_request`` times on the backoff schedule, ``reconnecting`` events);
  ``READONLY`` (a replica after a failover) drops the connection and reconnects;
* the connection events of :mod:`berthcache._events` (the handshake runs on its connection
  classes: TLS, AUTH, RESP2, CLIENT SETNAME, SELECT);
* timeouts: ``socket_timeout`` per command, or a :class:`~berthcache._budget.Budget` for the
  whole call (one attempt, ``BudgetExceededError`` when the time runs out); a connection that
  timed out mid-command is never reused out of step;
* errors as **redis-py exception classes** (:func:`parse_error`): the cache's operation context
  (:func:`berthcache._exceptions.to_cache_error`) stays the one boundary that maps them.

``batch`` returns error replies as exception instances (the caller decides —
:func:`raise_first_error` raises the first, named by its position and command only, as
redis-py's pipeline does minus the arguments); a transaction's EXECABORT raises the first
refused command's error (:func:`transaction_replies`).

:class:`PooledTransport` / :class:`AsyncPooledTransport` are reference implementations on
redis-py connection pools — correct, not fast — that the multiplexing and lean transports
replace; they can be deleted once nothing constructs them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

import redis.exceptions as rex
from redis._parsers.base import BaseParser

from berthcache._budget import (
    AsyncBoundedClient,
    BoundedClient,
    Budget,
    bounded_pool_kwargs,
    deadline_call,
)
from berthcache._config import CacheConfig
from berthcache._events import (
    AsyncEventConnection,
    AsyncEventSSLConnection,
    ConnectionEvents,
    EventConnection,
    EventSSLConnection,
)
from berthcache._pool import AsyncWaitingPool, WaitingPool
from berthcache._retry import build_async_retry, build_retry

__all__ = [
    "Args",
    "AsyncPooledTransport",
    "AsyncTransport",
    "PooledTransport",
    "SyncTransport",
    "annotate_error",
    "parse_error",
    "pool_kwargs",
    "raise_first_error",
    "transaction_replies",
]

#: A raw Redis command: ``("SET", key, value, "EX", 300)``, ``("GET", key)``.
Args = tuple[Any, ...]


class SyncTransport(Protocol):
    """What :class:`~berthcache.Cache` sends through; usable from many threads at once."""

    def call(self, args: Args, *, budget: Budget | None = None) -> Any:
        """One command's raw reply; an error reply raises its redis-py exception."""
        ...

    def call_raw(self, args: Args, *, budget: Budget | None = None) -> Any:
        """``call`` with bulk strings as ``bytes``, not decoded (``get_bytes``)."""
        ...

    def batch(
        self, commands: Sequence[Args], *, transaction: bool = False, budget: Budget | None = None
    ) -> list[Any]:
        """The commands in one write, their replies in order (error replies as instances);
        ``transaction``: wrapped in MULTI … EXEC, EXEC's list returned."""
        ...

    def close(self) -> None:
        """Close every connection."""
        ...


class AsyncTransport(Protocol):
    """What :class:`~berthcache.AsyncCache` sends through; many tasks of one event loop."""

    async def call(self, args: Args, *, budget: Budget | None = None) -> Any:
        """One command's raw reply; an error reply raises its redis-py exception."""
        ...

    async def call_raw(self, args: Args, *, budget: Budget | None = None) -> Any:
        """``call`` with bulk strings as ``bytes``, not decoded (``get_bytes``)."""
        ...

    async def batch(
        self, commands: Sequence[Args], *, transaction: bool = False, budget: Budget | None = None
    ) -> list[Any]:
        """The commands in one write, their replies in order (error replies as instances);
        ``transaction``: wrapped in MULTI … EXEC, EXEC's list returned."""
        ...

    async def aclose(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Let what is in flight finish (up to ``timeout`` s), then close every connection."""
        ...


# -- replies and errors ---------------------------------------------------------------------------


def parse_error(message: str) -> rex.RedisError:
    """The redis-py exception for an error reply's text (redis-py's own table): NOSCRIPT →
    NoScriptError, READONLY → ReadOnlyError, NOAUTH / WRONGPASS → AuthenticationError,
    OOM → OutOfMemoryError, EXECABORT → ExecAbortError, anything else ResponseError."""
    return BaseParser.parse_error(message)  # type: ignore[no-untyped-call,no-any-return]


def _command_name(args: Args) -> str:
    name = args[0] if args else "?"
    if isinstance(name, bytes):
        name = name.decode("utf-8", "replace")
    return str(name).upper()


def annotate_error(error: BaseException, position: int, args: Args) -> BaseException:
    """``error`` (in place) named by its command's 1-based ``position`` and name — never its
    arguments (a caller's values): ``Command # 2 (INCRBY) of pipeline caused error: …``, the
    shape redis-py uses and :func:`~berthcache._exceptions.to_cache_error` understands."""
    first = str(error.args[0]) if error.args else ""
    if first.startswith("Command # "):
        return error  # named already (by the transport, or an earlier raise)
    error.args = (
        f"Command # {position} ({_command_name(args)}) of pipeline caused error: {first}",
        *error.args[1:],
    )
    return error


def raise_first_error(replies: Sequence[Any], commands: Sequence[Args] | None = None) -> None:
    """Raise the first error reply in ``replies`` (a batch's), as redis-py's pipeline does;
    with ``commands``, named by its position and command (:func:`annotate_error`)."""
    for position, reply in enumerate(replies, 1):
        if isinstance(reply, Exception):
            if commands is not None:
                annotate_error(reply, position, commands[position - 1])
            raise reply


def transaction_replies(commands: Sequence[Args], queued: Sequence[Any], exec_reply: Any) -> Any:
    """EXEC's reply for a MULTI … EXEC of ``commands`` whose queueing replies were ``queued``.

    An EXECABORT (a command refused when queued: wrong arity, OOM …) raises that command's
    error, named by position (what redis-py raises, without the arguments), or EXEC's own error
    when no queued reply was one. Otherwise EXEC's reply as read (its error replies are
    instances). MULTI's own reply is the caller's to check.
    """
    if isinstance(exec_reply, Exception):
        for position, reply in enumerate(queued, 1):
            if isinstance(reply, Exception):
                raise annotate_error(reply, position, commands[position - 1])
        raise exec_reply
    return exec_reply


# -- the reference implementation on redis-py pools --------------------------------------------


def pool_kwargs(
    config: CacheConfig,
    events: ConnectionEvents,
    plain: type,
    tls: type,
    retry: Any,
    *,
    lossless: bool = False,
) -> dict[str, Any]:
    """The keyword arguments of a redis-py pool for ``config``: its connection class (plain or
    TLS, reporting ``events``), decoded replies, ``retry``, the checkout wait. ``lossless``:
    decoded with ``surrogateescape`` as the transports decode (``cache.redis`` stays strict)."""
    kwargs = config.connection_kwargs()
    if lossless:
        kwargs["encoding_errors"] = "surrogateescape"
    secure = bool(kwargs.pop("ssl", False))
    kwargs.update(
        timeout=config.pool_timeout,
        connection_class=tls if secure else plain,
        decode_responses=True,
        retry=retry,
        berthcache_events=events,
    )
    return kwargs


def _as_bytes(reply: Any) -> Any:
    """A reply decoded losslessly (``surrogateescape``) as the bytes it was read from."""
    return reply.encode("utf-8", "surrogateescape") if isinstance(reply, str) else reply


def _read(conn: Any) -> Any:
    """One reply; an error reply as its exception instance (the connection stays in step)."""
    try:
        return conn.read_response()
    except rex.ResponseError as exc:
        return exc


def _exchange(conn: Any, commands: Sequence[Args], transaction: bool) -> list[Any]:
    """Write ``commands`` at once and read every reply (sync)."""
    if transaction:
        conn.send_packed_command(conn.pack_commands([("MULTI",), *commands, ("EXEC",)]))
        multi = _read(conn)
        queued = [_read(conn) for _ in commands]
        exec_reply = _read(conn)
        if isinstance(multi, Exception):
            raise multi
        replies = list(transaction_replies(commands, queued, exec_reply))
    else:
        conn.send_packed_command(conn.pack_commands(commands))
        replies = [_read(conn) for _ in commands]
    for reply in replies:
        if isinstance(reply, rex.ReadOnlyError):
            raise reply  # a demoted primary: reconnect and resend (the retry policy)
    return replies


def _roundtrip(conn: Any, args: Args) -> Any:
    conn.send_command(*args)
    return conn.read_response()


def _pool_call(pool: Any, args: Args) -> Any:
    conn = pool.get_connection()
    try:
        return conn.retry.call_with_retry(
            lambda: _roundtrip(conn, args), lambda e: conn.disconnect()
        )
    finally:
        pool.release(conn)


def _pool_batch(pool: Any, commands: Sequence[Args], transaction: bool) -> list[Any]:
    conn = pool.get_connection()
    try:
        return conn.retry.call_with_retry(  # type: ignore[no-any-return]
            lambda: _exchange(conn, commands, transaction), lambda e: conn.disconnect()
        )
    finally:
        pool.release(conn)


class PooledTransport:
    """:class:`SyncTransport` on redis-py's blocking pool (reference implementation).

    Thread safety: each call checks a connection out of the pool for its whole exchange, so
    threads never share one. Budgeted calls use a second pool whose connections apply the
    call's deadline to every blocking step (:class:`~berthcache._budget.BoundedClient`).
    """

    def __init__(self, config: CacheConfig, events: ConnectionEvents) -> None:
        retry = build_retry(config, on_reconnecting=events.reconnecting, on_error=events.error)
        self.pool = WaitingPool(  # type: ignore[no-untyped-call]
            **pool_kwargs(config, events, EventConnection, EventSSLConnection, retry, lossless=True)
        )
        once = build_retry(config.replace(retry_strategy="none"), on_error=events.error)
        self._bounded = BoundedClient(
            bounded_pool_kwargs(
                config,
                pool_kwargs(
                    config, events, EventConnection, EventSSLConnection, once, lossless=True
                ),
            )
        )

    def call(self, args: Args, *, budget: Budget | None = None) -> Any:
        if budget is None:
            return _pool_call(self.pool, args)
        return deadline_call(budget, _pool_call, self._bounded.pool, args)

    def call_raw(self, args: Args, *, budget: Budget | None = None) -> Any:
        return _as_bytes(self.call(args, budget=budget))  # lossless decoding, encoded back

    def batch(
        self, commands: Sequence[Args], *, transaction: bool = False, budget: Budget | None = None
    ) -> list[Any]:
        if not commands:
            return []
        if budget is None:
            return _pool_batch(self.pool, commands, transaction)
        return deadline_call(budget, _pool_batch, self._bounded.pool, commands, transaction)

    def close(self) -> None:
        try:
            self.pool.disconnect()  # a blocking pool closes in-use connections too
        finally:
            self._bounded.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.pool!r})"


async def _aread(conn: Any) -> Any:
    try:
        return await conn.read_response()
    except rex.ResponseError as exc:
        return exc


async def _aroundtrip(conn: Any, args: Args) -> Any:
    await conn.send_command(*args)
    return await conn.read_response()


async def _aexchange(conn: Any, commands: Sequence[Args], transaction: bool) -> list[Any]:
    if transaction:
        await conn.send_packed_command(conn.pack_commands([("MULTI",), *commands, ("EXEC",)]))
        multi = await _aread(conn)
        queued = [await _aread(conn) for _ in commands]
        exec_reply = await _aread(conn)
        if isinstance(multi, Exception):
            raise multi
        replies = list(transaction_replies(commands, queued, exec_reply))
    else:
        await conn.send_packed_command(conn.pack_commands(commands))
        replies = [await _aread(conn) for _ in commands]
    for reply in replies:
        if isinstance(reply, rex.ReadOnlyError):
            raise reply
    return replies


async def _apool_call(pool: Any, args: Args) -> Any:
    conn = await pool.get_connection()
    try:
        return await conn.retry.call_with_retry(
            lambda: _aroundtrip(conn, args), lambda e: conn.disconnect()
        )
    except asyncio.CancelledError:
        await conn.disconnect(nowait=True)  # a reply may still come: never reuse it out of step
        raise
    finally:
        await pool.release(conn)


async def _apool_batch(pool: Any, commands: Sequence[Args], transaction: bool) -> list[Any]:
    conn = await pool.get_connection()
    try:
        return await conn.retry.call_with_retry(  # type: ignore[no-any-return]
            lambda: _aexchange(conn, commands, transaction), lambda e: conn.disconnect()
        )
    except asyncio.CancelledError:
        await conn.disconnect(nowait=True)
        raise
    finally:
        await pool.release(conn)


class AsyncPooledTransport:
    """:class:`AsyncTransport` on berthcache's asyncio pool (reference implementation): a
    connection checked out per call; budgeted calls on a pool of their own, no retries."""

    def __init__(self, config: CacheConfig, events: ConnectionEvents) -> None:
        retry = build_async_retry(
            config, on_reconnecting=events.reconnecting, on_error=events.error
        )
        self.pool = AsyncWaitingPool(
            **pool_kwargs(
                config,
                events,
                AsyncEventConnection,
                AsyncEventSSLConnection,
                retry,
                lossless=True,
            )
        )
        once = build_async_retry(config.replace(retry_strategy="none"), on_error=events.error)
        self._bounded = AsyncBoundedClient(
            bounded_pool_kwargs(
                config,
                pool_kwargs(
                    config,
                    events,
                    AsyncEventConnection,
                    AsyncEventSSLConnection,
                    once,
                    lossless=True,
                ),
            )
        )

    async def call(self, args: Args, *, budget: Budget | None = None) -> Any:
        if budget is None:
            return await _apool_call(self.pool, args)
        return await self._bounded.run(budget, _apool_call(self._bounded.pool, args))

    async def call_raw(self, args: Args, *, budget: Budget | None = None) -> Any:
        return _as_bytes(await self.call(args, budget=budget))

    async def batch(
        self, commands: Sequence[Args], *, transaction: bool = False, budget: Budget | None = None
    ) -> list[Any]:
        if not commands:
            return []
        if budget is None:
            return await _apool_batch(self.pool, commands, transaction)
        return await self._bounded.run(
            budget, _apool_batch(self._bounded.pool, commands, transaction)
        )

    async def aclose(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        # The cache drains its calls before closing the transport; nothing is left in flight.
        del timeout
        try:
            await self.pool.disconnect()
        finally:
            await self._bounded.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.pool!r})"
