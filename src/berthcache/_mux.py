"""``AsyncMultiplexer``: the asyncio transport — many tasks, one connection, replies in order.

Every caller of one event loop writes its command into the same connection without waiting for
the replies of the others (as ioredis does): the commands of one loop tick go out together (a
``write()`` every 32 sends, one for the rest at the end of the tick), and the replies, read by
``hiredis``, are handed to the callers in the order the commands were sent (a deque of futures).
No pool checkout per command. Why each piece is as it is (numbers in docs/benchmarks.md):

* **Handshake on redis-py.** A connection starts as redis-py's asyncio connection
  (``AsyncEventConnection`` / ``AsyncEventSSLConnection``): TCP or TLS, AUTH with the user and
  password, CLIENT SETNAME, SELECT, and the ``connect`` / ``ready`` / ``error`` events as
  before. Then its transport is handed to a protocol of ours (``transport.set_protocol``): bytes
  arriving go straight into a ``hiredis.Reader`` from ``data_received`` — no reader task, no
  future per read — and commands are written as ``hiredis.pack_command`` bytes. Replies are
  decoded as UTF-8 with ``surrogateescape``: text as a strict decode gives it, any other bytes
  kept losslessly (``get_bytes`` re-encodes them, ``get`` refuses them).
* **Coalesced writes.** A lone caller's command is written at once. Otherwise commands are
  appended to the connection's out-buffer: the first of a tick schedules one flush with
  ``call_soon``, and every ``flush_at`` (32) sends are written without waiting for it, so
  Redis works on a burst's first commands while the tick's other callers still run.
* **Timeouts without a timer per call.** One ``call_at`` handle per connection watches the
  oldest command still owed a reply: overdue past ``socket_timeout``, the connection is declared
  dead (every caller on it fails with a retryable TimeoutError). A call with a ``Budget`` gets
  one ``call_at`` handle that fails just that caller; its reply is read and dropped later, so
  the connection stays in step. A cancelled caller's reply is read and dropped the same way.
* **Retries.** A dropped connection fails every command in flight on it; each caller then
  follows the retry policy of ``berthcache._retry`` (retryable errors only,
  ``max_retries_per_request``, the backoff schedule with its ``reconnecting`` events), and the
  next attempt reconnects (one connect shared by every waiting caller). ``READONLY`` (a primary
  demoted by a failover) drops the connection and retries on a new one.
* **Bounded.** At most ``max_queued_commands`` commands are owed replies per connection; more
  callers wait (FIFO) instead of growing buffers without limit. What a command in flight holds
  here is its packed bytes, a future and a deque slot (~0.2 KB plus the command); measured with
  the caller's own task and coroutine, 10,000 concurrent callers took 1.9 KB each (tracemalloc
  peak, benchmarks/mux_micro.py --memory): the documented bound is 4 KB per concurrent caller.
* **One event loop.** A multiplexer belongs to the loop it was first used on; another loop gets
  a RuntimeError that says so (a closed loop's multiplexer starts over on the new one).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Any

import hiredis
import redis.exceptions as rex
from redis._parsers.base import BaseParser

from berthcache._budget import Budget
from berthcache._config import CacheConfig
from berthcache._events import AsyncEventConnection, AsyncEventSSLConnection, ConnectionEvents
from berthcache._exceptions import CacheClosedError
from berthcache._retry import _IN_RETRY, Backoff, build_async_retry, is_retryable
from berthcache._transport import transaction_replies

__all__ = ["AsyncMultiplexer"]

Args = tuple[Any, ...]

_ReplyError = hiredis.ReplyError
_pack = hiredis.pack_command
_parse_error = BaseParser.parse_error
#: Errors of a dead connection or an overdue reply: the ones the retry policy may retry.
_CONNECTION_ERRORS = (rex.ConnectionError, rex.TimeoutError, rex.ReadOnlyError)
_TIMEOUTS = (rex.TimeoutError, TimeoutError)
_Future = asyncio.Future
#: Budgeted calls whose deadlines fall within this many seconds share one expiry entry.
_EXPIRY_BUCKET = 0.001
#: Commands that would change or hold the shared connection for everyone on it: they need a
#: connection of their own (``cache.redis``). MULTI/EXEC go through ``batch(transaction=True)``.
_OWN_CONNECTION = frozenset(
    name
    for upper in [
        "SUBSCRIBE",
        "PSUBSCRIBE",
        "SSUBSCRIBE",
        "UNSUBSCRIBE",
        "PUNSUBSCRIBE",
        "SUNSUBSCRIBE",
        "MONITOR",
        "RESET",
        "SELECT",
        "SWAPDB",
        "AUTH",
        "HELLO",
        "QUIT",
        "WATCH",
        "UNWATCH",
        "MULTI",
        "EXEC",
        "DISCARD",
        "WAIT",
        "WAITAOF",
        "BLPOP",
        "BRPOP",
        "BLMOVE",
        "BRPOPLPUSH",
        "BLMPOP",
        "BZPOPMIN",
        "BZPOPMAX",
        "BZMPOP",
    ]
    for name in (upper, upper.lower())
)


def _error(reply: Any) -> Exception:
    """A reply error as the redis-py exception redis-py would raise (READONLY -> ReadOnlyError)."""
    return _parse_error(reply.args[0] if reply.args else str(reply))  # type: ignore[no-any-return,no-untyped-call]


def _errors_inside(reply: Any) -> Any:
    """``reply`` with reply errors nested in a list (EXEC's) as redis-py exceptions."""
    if type(reply) is list:
        return [_errors_inside(item) for item in reply]
    if type(reply) is _ReplyError:
        return _error(reply)
    return reply


#: How replies are decoded: UTF-8, other bytes kept losslessly (see the module docstring).
_ENCODING = "utf-8"
_ERRORS = "surrogateescape"
#: ``batch`` of ``_once`` / ``_attempts`` / ``_bounded``: one command whose reply is read raw.
_RAW = 2


class _RawFuture(asyncio.Future[Any]):
    """The future of a ``call_raw``: its reply is read with the reader's decoding switched off
    (bulk strings as ``bytes``). Only its type differs from a plain future's."""


def _entry(
    loop: asyncio.AbstractEventLoop, count: int, batch: int, transaction: bool
) -> tuple[asyncio.Future[Any], Any]:
    """The future a caller awaits and the entry the connection resolves (itself, or a
    _Batch collecting ``count`` replies)."""
    if batch == _RAW:
        raw: asyncio.Future[Any] = _RawFuture(loop=loop)
        return raw, raw
    future = loop.create_future()
    return future, (_Batch(future, count, transaction) if batch else future)


def _packed(commands: Sequence[Args]) -> bytes:
    try:
        return b"".join([_pack(args) for args in commands])
    except TypeError:
        for args in commands:
            for arg in args:
                if not isinstance(arg, str | bytes | int | float) or isinstance(arg, bool):
                    raise rex.DataError(
                        f"Invalid input of type: {type(arg).__name__!r}. "
                        "Convert to a bytes, string, int or float first."
                    ) from None
        raise


class _Aborted:
    """EXECABORT: the QUEUED replies (the refused commands' errors among them) and EXEC's."""

    __slots__ = ("exec_error", "queued")

    def __init__(self, queued: list[Any], exec_error: Exception) -> None:
        self.queued = queued
        self.exec_error = exec_error


class _Batch:
    """Collects the replies of one batch (or MULTI ... EXEC) and resolves its future."""

    __slots__ = ("future", "left", "readonly", "replies", "transaction")

    def __init__(self, future: asyncio.Future[Any], count: int, transaction: bool) -> None:
        self.future = future
        self.left = count
        self.replies: list[Any] = []
        self.transaction = transaction
        self.readonly: Exception | None = None

    def feed(self, reply: Any) -> None:
        self.replies.append(reply)
        self.left -= 1
        if self.left or self.future.done():
            return
        if self.readonly is not None:  # a replica now: retried whole on a new connection
            self.future.set_exception(self.readonly)
            return
        if not self.transaction:
            self.future.set_result(_errors_inside(self.replies))
            return
        result = self.replies[-1]  # MULTI's OK and the QUEUED replies are not the caller's
        if type(result) is _ReplyError:  # EXECABORT: batch() raises the refused command's error
            self.future.set_result(_Aborted(_errors_inside(self.replies[1:-1]), _error(result)))
        elif isinstance(result, UnicodeDecodeError):  # EXEC's list held a non-UTF-8 value
            self.future.set_exception(result)
        else:
            self.future.set_result(_errors_inside(result))

    def fail(self, error: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(error)


class _Link(asyncio.Protocol):
    """One multiplexed connection: the out-buffer, the replies owed, the overdue timer."""

    #: Write at once when the connection is idle and its last write carried one command (a
    #: sequential caller); otherwise at the end of the loop tick (or every ``flush_at`` sends).
    #: Measured in benchmarks/mux_micro.
    eager = True
    #: Within a tick, write as soon as this many sends wait (a batch is one send, never split):
    #: Redis starts on them while the tick's other callers still run, where one write per tick
    #: left it idle until the tick ended, then the client idle while it answered (64 concurrent
    #: gets: 1.13-1.33x plain, 0.99-1.05x TLS; benchmarks.md).
    flush_at = 32

    def __init__(self, mux: AsyncMultiplexer, connection: Any, loop: asyncio.AbstractEventLoop):
        self.mux = mux
        self.connection = connection  # redis-py's, kept for its events on disconnect
        self.loop = loop
        self.reader = hiredis.Reader(encoding=_ENCODING, errors=_ERRORS)
        #: _RawFuture entries owed a reply: while any is, replies are checked for them.
        self.raw_owed = 0
        self.pending: collections.deque[Any] = collections.deque()  # futures and _Batches
        self.owed = 0  # replies owed (a batch owes one per command)
        self.out: list[bytes] = []
        self.flush_scheduled = False
        self.solo = True  # the last write carried a single command
        # For the overdue check: (commands sent in total after that flush, loop time of it).
        self.sent = 0
        self.received = 0
        self.flushes: collections.deque[tuple[int, float]] = collections.deque()
        self.timer: asyncio.TimerHandle | None = None
        self.alive = True
        self.error: Exception | None = None  # why it died
        self.drop_after_reply = False
        self.transport: Any = None
        self._stream_protocol: Any = None

    # -- taking the stream over from redis-py --------------------------------------------------

    def take_over(self) -> None:
        writer = self.connection._writer
        reader = self.connection._reader
        self.transport = writer.transport
        self._stream_protocol = writer._protocol
        leftover = bytes(getattr(reader, "_buffer", b""))
        self.transport.set_protocol(self)
        if leftover:  # nothing is owed after the handshake; a stray byte would desync us
            self.die(rex.ConnectionError("unexpected data from Redis after the handshake"))

    # -- writing ---------------------------------------------------------------------------------

    def send(self, data: bytes, entry: Any, count: int) -> None:
        self.pending.append(entry)
        idle = not self.owed
        self.owed += count
        out = self.out
        out.append(data)
        if self.flush_scheduled:
            if len(out) >= self.flush_at:
                self.write_out()
            return
        if idle and self.solo and self.eager:
            self.flush()  # a lone caller: write now, not one loop iteration later
        else:
            self.flush_scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self.flush_scheduled = False
        self.write_out()

    def write_out(self) -> None:
        if not self.out or not self.alive:
            return
        self.solo = len(self.out) == 1
        data = self.out[0] if self.solo else b"".join(self.out)
        self.out = []
        self.sent = self.received + self.owed
        now = self.loop.time()
        self.flushes.append((self.sent, now))
        if self.timer is None:
            self.timer = self.loop.call_at(now + self.mux._socket_timeout, self.check_overdue)
        try:
            self.transport.write(data)
            if self.mux._observer is not None:
                self.mux._observer(data)
        except Exception as exc:  # a closing transport, a TLS error ...
            self.die(rex.ConnectionError(f"Error writing to Redis: {exc}"))

    # -- reading ---------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        reader.feed(data)
        pending = self.pending
        got = 0
        # Only send() adds raw callers, never during this call: read once, and the text path
        # pays one local truth test per reply.
        raw_owed = self.raw_owed
        try:
            while True:
                raw = raw_owed and pending and type(pending[0]) is _RawFuture
                if raw:
                    reader.set_encoding(None)  # bulk strings as bytes, for this reply only
                try:
                    reply = reader.gets()
                except hiredis.ProtocolError as exc:
                    self.die(rex.InvalidResponse(f"Protocol error from Redis: {exc}"))
                    return
                except UnicodeDecodeError as exc:  # a whole reply, consumed: that caller's
                    reply = exc
                finally:
                    if raw:
                        reader.set_encoding(_ENCODING, _ERRORS)
                if reply is False:
                    break
                if raw:
                    self.raw_owed -= 1
                got += 1
                if not pending:
                    self.die(rex.InvalidResponse("a reply from Redis nobody asked for"))
                    return
                entry = pending[0]
                if type(entry) is _Batch:
                    if type(reply) is _ReplyError and reply.args[0].startswith("READONLY"):
                        entry.readonly = _error(reply)
                        self.drop_after_reply = True
                    entry.feed(reply)
                    if entry.left:
                        continue
                    pending.popleft()
                    continue
                pending.popleft()
                if entry.done():  # timed out on its budget, or cancelled: dropped
                    continue
                if type(reply) is _ReplyError:
                    error = _error(reply)
                    if type(error) is rex.ReadOnlyError:
                        self.drop_after_reply = True
                    entry.set_exception(error)
                elif isinstance(reply, UnicodeDecodeError):
                    entry.set_exception(reply)
                else:
                    entry.set_result(reply)
        finally:
            if got and self.alive:
                self.owed -= got
                received = self.received = self.received + got
                flushes = self.flushes
                while flushes and flushes[0][0] <= received:  # answered in full
                    flushes.popleft()
                if self.mux._space_waiters:
                    self.mux._wake_waiters()
                if not self.owed and self.mux._drain_waiter is not None:
                    self.mux._check_drained()
        if self.drop_after_reply:
            self.die(rex.ReadOnlyError("READONLY: the node became a replica; reconnecting"))

    def check_overdue(self) -> None:
        """The per-connection timer: is the oldest command owed a reply past socket_timeout?"""
        self.timer = None
        if not self.alive:
            return
        flushes = self.flushes
        received = self.received
        while flushes and flushes[0][0] <= received:
            flushes.popleft()
        if not flushes:
            return
        due = flushes[0][1] + self.mux._socket_timeout
        if self.loop.time() >= due:
            self.die(rex.TimeoutError("Timeout reading from Redis"), timeout=True)
        else:
            self.timer = self.loop.call_at(due, self.check_overdue)

    # -- the end ---------------------------------------------------------------------------------

    def connection_lost(self, exc: Exception | None) -> None:
        if self._stream_protocol is not None:  # resolves StreamWriter.wait_closed for redis-py
            self._stream_protocol.connection_lost(exc)
        if self.alive:
            detail = f": {exc}" if exc else ""
            self.die(rex.ConnectionError(f"Connection closed by Redis{detail}"))

    def die(self, error: Exception, *, timeout: bool = False) -> None:
        """Fail every command owed on this connection with ``error`` and close it."""
        if not self.alive:
            return
        self.alive = False
        self.error = error
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.mux._forget(self, error)
        pending, self.pending = self.pending, collections.deque()
        self.owed = 0
        self.raw_owed = 0
        self.out = []
        for entry in pending:
            # A fresh exception per caller (tracebacks are per raise), chained to the one the
            # ``error`` event reports once.
            each = type(error)(*error.args)
            each.__cause__ = error
            if type(entry) is _Batch:
                entry.fail(each)
            elif not entry.done():
                entry.set_exception(each)
        self.mux._close_connection(self.connection)
        if self.mux._space_waiters:
            self.mux._wake_waiters()
        if self.mux._drain_waiter is not None:
            self.mux._check_drained()

    def pause_writing(self) -> None:  # bounded by max_queued_commands instead
        pass

    def resume_writing(self) -> None:
        pass


class AsyncMultiplexer:
    """Send raw Redis commands from many tasks of one event loop over few connections.

    ``call(args)`` returns the reply (an error reply raises the redis-py exception);
    ``batch(commands)`` returns every reply in order, errors as exception instances;
    ``aclose()`` waits for what is in flight, then closes. See the module docstring.
    """

    #: The connection class (benchmarks/mux_micro.py swaps in the alternatives it measures).
    _link_class: type[_Link] = _Link

    def __init__(self, config: CacheConfig, events: ConnectionEvents) -> None:
        self.config = config
        self.events = events
        self._socket_timeout = float(config.socket_timeout)
        self._size = config.multiplex_connections
        self._max_queued = config.max_queued_commands
        kwargs = config.connection_kwargs()
        kwargs.pop("max_connections", None)
        tls = bool(kwargs.pop("ssl", False))
        self._connection_class = AsyncEventSSLConnection if tls else AsyncEventConnection
        # The connection itself connects once: the retry loop is ours (see _retry).
        once = build_async_retry(config.replace(retry_strategy="none"), on_error=events.error)
        self._connection_kwargs = {**kwargs, "retry": once, "berthcache_events": events}
        self._retries = 0 if config.retry_strategy == "none" else config.max_retries_per_request
        # Reported here, not by the backoff: callers failing together share one outage, so
        # each attempt number is reported once per outage (as one connection would), not once
        # per caller.
        self._backoff = Backoff(
            config.retry_strategy, config.retry_base_delay_ms, config.retry_max_delay_ms
        )
        self._reported_attempt = 0  # highest attempt reported in this wave of failures
        self._loop: asyncio.AbstractEventLoop | None = None
        self._links: list[_Link] = []
        self._connecting: asyncio.Future[_Link] | None = None
        self._space_waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._drain_waiter: asyncio.Future[None] | None = None
        self._closing_tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._observer: Callable[[bytes], None] | None = None
        #: Budgeted calls in flight per budget length (ms), oldest first — (when due, the
        #: futures sharing that entry, budget) — and each length's timer.
        self._expiries: dict[
            int, collections.deque[tuple[float, list[asyncio.Future[Any]], Budget]]
        ] = {}
        self._expiry_timers: dict[int, asyncio.TimerHandle] = {}

    def __repr__(self) -> str:
        return (
            f"AsyncMultiplexer(url={self.config.url!r}, connections={len(self._links)}/"
            f"{self._size}, owed={sum(link.owed for link in self._links)})"
        )

    # -- the public surface ----------------------------------------------------------------------

    async def call(self, args: Args, *, budget: Budget | None = None) -> Any:
        """Send one command and return its reply; an error reply raises (redis-py classes)."""
        if args[0] in _OWN_CONNECTION:
            _refuse(args[0])
        loop = asyncio.get_running_loop()
        links = self._links
        if loop is self._loop and links and self._size == 1:  # the hot path: one connection
            link = links[0]
            if link.owed < self._max_queued and not self._space_waiters:
                try:
                    data = _pack(args)
                except TypeError:
                    data = _packed([args])  # names the bad argument
                future: asyncio.Future[Any] = _Future(loop=loop)  # loop.create_future(), inlined
                if budget is None:
                    link.send(data, future, 1)
                    try:
                        return await future
                    except _CONNECTION_ERRORS as error:
                        return await self._retry(data, 1, False, error)
                # _bounded's path, inlined: connected, room, so one attempt needs no more.
                deadline = loop.time() + budget.ms / 1000.0
                self._expire_at(loop, deadline, future, budget)
                link.send(data, future, 1)
                try:
                    return await future
                except (rex.ConnectionError, *_TIMEOUTS) as exc:
                    failure = self._over(exc, budget, deadline - loop.time())
                    if failure is exc:
                        raise  # refused, reset: an answer in time
                    raise failure from exc
        if budget is not None:
            return await self._bounded(budget, _pack_one(args), 1, False)
        return await self._attempts(_pack_one(args), 1, False)

    async def call_raw(self, args: Args, *, budget: Budget | None = None) -> Any:
        """``call``, with the reply's bulk strings as ``bytes``, undecoded (``get_bytes``):
        the connection's reader switches decoding off for that one reply. For commands
        whose reply is a bulk string (or nil, an integer, an error), not an array."""
        if args[0] in _OWN_CONNECTION:
            _refuse(args[0])
        if budget is not None:
            return await self._bounded(budget, _pack_one(args), 1, _RAW)
        return await self._attempts(_pack_one(args), 1, _RAW)

    async def batch(
        self,
        commands: Sequence[Args],
        *,
        transaction: bool = False,
        budget: Budget | None = None,
    ) -> list[Any]:
        """Send ``commands`` in one write; their replies in order, errors as exceptions.

        ``transaction=True`` wraps them in MULTI ... EXEC, written contiguously (nobody's
        commands interleave), and returns EXEC's replies; EXECABORT raises.
        """
        if not commands:
            return []
        for args in commands:
            if args[0] in _OWN_CONNECTION:
                _refuse(args[0])
        if transaction:
            data = _packed([("MULTI",), *commands, ("EXEC",)])
            count = len(commands) + 2
        else:
            data = _packed(commands)
            count = len(commands)
        if budget is not None:
            result = await self._bounded(budget, data, count, True, transaction)
        else:
            result = await self._attempts(data, count, True, transaction)
        if type(result) is _Aborted:
            transaction_replies(commands, result.queued, result.exec_error)  # raises
        return result  # type: ignore[no-any-return]

    def observe_writes(self, observer: Callable[[bytes], None] | None) -> None:
        """A testing seam: call ``observer(data)`` after each write to the socket (the
        commands of one loop tick, up to ``_Link.flush_at`` sends each, or one lone call);
        ``None`` stops. The hot path checks one attribute."""
        self._observer = observer

    async def aclose(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait (up to ``timeout`` s) for every command in flight, then close the connections."""
        if self._links and asyncio.get_running_loop() is not self._loop:
            self._bind(asyncio.get_running_loop())  # raises unless the old loop is closed
        self._closed = True
        if self._links and self._loop is not None and not self._loop.is_closed():
            if any(link.owed or link.out for link in self._links) or self._space_waiters:
                self._drain_waiter = self._loop.create_future()
                try:
                    async with asyncio.timeout(timeout):
                        await self._drain_waiter
                except TimeoutError:
                    pass
                finally:
                    self._drain_waiter = None
            for link in list(self._links):
                link.die(CacheClosedError("the cache was closed"))
        connecting = self._connecting
        if connecting is not None and not connecting.done():  # no socket opened after close
            connecting.cancel()
            with contextlib.suppress(BaseException):
                await connecting
        for handle in self._expiry_timers.values():  # every call in flight has failed by now
            handle.cancel()
        self._expiry_timers.clear()
        self._expiries.clear()
        tasks = list(self._closing_tasks)
        if tasks:
            await asyncio.wait(tasks, timeout=max(timeout, 1.0))

    # -- sending ---------------------------------------------------------------------------------

    async def _attempts(
        self, data: bytes, count: int, batch: int, transaction: bool = False
    ) -> Any:
        try:
            return await self._once(data, count, batch, transaction)
        except _CONNECTION_ERRORS as error:
            return await self._retry(data, count, batch, error, transaction)

    async def _retry(
        self, data: bytes, count: int, batch: int, error: Exception, transaction: bool = False
    ) -> Any:
        """The retry policy, entered only after a failure (the happy path pays nothing)."""
        if _IN_RETRY.get():  # an outer retry loop owns the retries
            raise error
        token = _IN_RETRY.set(True)
        try:
            failures = 0
            while True:
                self.events.error(error)
                failures += 1
                if not is_retryable(error) or failures > self._retries:
                    self._reported_attempt = 0  # the next callers' retries are a new wave
                    raise error
                delay = self._backoff.compute(failures)
                if failures > self._reported_attempt:
                    self._reported_attempt = failures
                    self.events.reconnecting(failures, delay * 1000.0)
                if delay > 0:
                    await asyncio.sleep(delay)
                try:
                    return await self._once(data, count, batch, transaction)
                except _CONNECTION_ERRORS as again:
                    error = again
        finally:
            _IN_RETRY.reset(token)

    async def _once(self, data: bytes, count: int, batch: int, transaction: bool) -> Any:
        """One attempt; ``batch``: False one reply, True a _Batch of ``count``, _RAW raw."""
        link = await self._link(count)
        future, entry = _entry(link.loop, count, batch, transaction)
        link.send(data, entry, count)
        if batch == _RAW:
            link.raw_owed += 1
        return await future

    async def _bounded(
        self, budget: Budget, data: bytes, count: int, batch: int, transaction: bool = False
    ) -> Any:
        """One attempt, no retries, the whole call (connecting included) within ``budget``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget.seconds
        start = time.monotonic()
        try:
            links = self._links
            if (
                loop is self._loop
                and len(links) == 1
                and links[0].owed + count <= self._max_queued
                and not self._space_waiters
            ):
                link = links[0]  # connected, room: no timeout context needed to get it
            else:
                async with asyncio.timeout_at(deadline):
                    link = await self._link(count)
            future, entry = _entry(loop, count, batch, transaction)
            self._expire_at(loop, deadline, future, budget)
            link.send(data, entry, count)
            if batch == _RAW:
                link.raw_owed += 1
            return await future
        except (rex.ConnectionError, *_TIMEOUTS) as exc:
            error = self._over(exc, budget, start + budget.seconds - time.monotonic())
            if error is exc:
                raise  # refused, reset: an answer in time
            raise error from exc

    def _over(self, exc: Exception, budget: Budget, left: float) -> Exception:
        """What a budgeted call raises for ``exc``: the error itself when it came in time (a
        refused or reset connection, ``left`` > 0), else the budget's "exceeded" error."""
        self.events.error(exc)
        if not isinstance(exc, _TIMEOUTS) and left > 0:
            return exc
        return budget.exceeded()

    def _expire_at(
        self,
        loop: asyncio.AbstractEventLoop,
        deadline: float,
        future: asyncio.Future[Any],
        budget: Budget,
    ) -> None:
        """Fail ``future`` with ``budget.exceeded()`` at ``deadline`` unless answered by then.

        One timer per budget length, not one per call (a TimerHandle made and cancelled per
        call cost about a third of a budgeted GET): calls of one budget length expire in the
        order they were made, so each length keeps a FIFO of its calls in flight and one timer
        for the oldest. Calls of one budget whose deadlines fall within ``_EXPIRY_BUCKET`` of
        the first one's share one entry, due at the end of that span (a call may so fail up to
        a millisecond after its deadline, as a timer's own latency may — never before it):
        joining one is a list append, the common case when many tasks call at once. Answered
        entries leave from the front as new ones join.
        """
        key = budget.ms
        queue = self._expiries.get(key)
        if queue:
            last = queue[-1]
            if deadline <= last[0] and last[2] is budget:
                last[1].append(future)
                return
        elif queue is None:
            queue = self._expiries[key] = collections.deque()
        while queue and _all_done(queue[0][1]):
            queue.popleft()
        queue.append((deadline + _EXPIRY_BUCKET, [future], budget))
        if key not in self._expiry_timers:
            self._expiry_timers[key] = loop.call_at(queue[0][0], self._expire_due, loop, key)

    def _expire_due(self, loop: asyncio.AbstractEventLoop, key: int) -> None:
        """The timer of one budget length: fail what is overdue, wait for the next oldest."""
        del self._expiry_timers[key]
        queue = self._expiries[key]
        now = loop.time()
        while queue:
            deadline, futures, budget = queue[0]
            if deadline > now:
                if not _all_done(futures):
                    self._expiry_timers[key] = loop.call_at(deadline, self._expire_due, loop, key)
                    return
            else:
                for future in futures:
                    _expire(future, budget)
            queue.popleft()
        del self._expiries[key]  # every call of this length answered or expired

    async def _link(self, count: int) -> _Link:
        """A live connection with room for ``count`` more commands (connecting or waiting)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._bind(loop)
        woken = False
        while True:
            if self._closed and not (woken and self._links):  # queued before close: drained
                raise CacheClosedError("the cache was closed")
            link = self._least_busy()
            if link is None:
                link = await asyncio.shield(self._connect(loop))
                if not link.alive:  # dropped as soon as it was made
                    raise link.error or rex.ConnectionError("the connection to Redis was lost")
            elif link.owed and len(self._links) < self._size and self._connecting is None:
                self._connect(loop)  # grow in the background; this caller goes on now
            room = not link.owed or link.owed + count <= self._max_queued
            if link.alive and room and (woken or not self._space_waiters or not link.owed):
                return link
            waiter = loop.create_future()
            self._space_waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    # Woken, then cancelled before it ran: pass the room on, or the next
                    # waiter would wait for a reply that may never come.
                    self._wake_waiters()
                raise
            finally:
                if not waiter.done():
                    waiter.cancel()
            woken = True

    def _least_busy(self) -> _Link | None:
        links = self._links
        if not links:
            return None
        if len(links) == 1:
            return links[0]
        return min(links, key=lambda link: link.owed)

    def _connect(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[_Link]:
        """Start (or join) the one connect in progress."""
        if self._connecting is None:
            self._connecting = loop.create_task(self._open(loop))
            self._connecting.add_done_callback(self._connected)
        return self._connecting

    def _connected(self, task: asyncio.Future[_Link]) -> None:
        self._connecting = None
        if not task.cancelled():
            task.exception()  # retrieved: each waiter raises it itself

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _Link:
        connection = self._connection_class(**self._connection_kwargs)
        try:
            await connection.connect()  # type: ignore[no-untyped-call]
        except BaseException:
            await _quietly_disconnect(connection)
            raise
        link = self._link_class(self, connection, loop)
        link.take_over()
        self._reported_attempt = 0
        if link.alive:
            self._links.append(link)
        if self._closed:
            link.die(CacheClosedError("the cache was closed"))
        return link

    def _forget(self, link: _Link, error: Exception) -> None:
        if link in self._links:
            self._links.remove(link)
        if isinstance(error, _CONNECTION_ERRORS):
            self.events.error(error)

    def _close_connection(self, connection: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        task = loop.create_task(_quietly_disconnect(connection))
        self._closing_tasks.add(task)
        task.add_done_callback(self._closing_tasks.discard)

    def _wake_waiters(self) -> None:
        waiters = self._space_waiters
        links = self._links
        # No connection left: every waiter goes on (to one shared reconnect, or its error).
        room = sum(self._max_queued - link.owed for link in links) if links else len(waiters)
        while waiters and room > 0:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                room -= 1

    def _check_drained(self) -> None:
        waiter = self._drain_waiter
        if waiter is None or waiter.done():
            return
        if not self._space_waiters and not any(link.owed or link.out for link in self._links):
            waiter.set_result(None)

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        old = self._loop
        if old is not None and not old.is_closed():
            raise RuntimeError(
                "this AsyncCache is used from another event loop than the one it was first "
                "used on; create one AsyncCache per event loop"
            )
        self._loop = loop
        self._links = []
        self._connecting = None
        self._space_waiters.clear()
        self._expiries.clear()  # the old loop's calls and timers are gone with it
        self._expiry_timers.clear()


def _refuse(name: Any) -> None:
    raise rex.DataError(
        f"{name} needs a connection of its own, not the shared one: use cache.redis "
        "(MULTI ... EXEC: batch(transaction=True))"
    )


def _pack_one(args: Args) -> bytes:
    try:
        return _pack(args)  # type: ignore[no-any-return]
    except TypeError:
        return _packed([args])


def _all_done(futures: list[asyncio.Future[Any]]) -> bool:
    return all(future.done() for future in futures)


def _expire(future: asyncio.Future[Any], budget: Budget) -> None:
    if not future.done():
        future.set_exception(budget.exceeded())


async def _quietly_disconnect(connection: Any) -> None:
    # Closing a dead socket: nothing to report beyond the ``close`` event.
    with contextlib.suppress(Exception):
        await connection.disconnect(nowait=True)
