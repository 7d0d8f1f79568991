"""``LeanTransport``: the sync client's per-call path (issue 10) — a connection without
Python-level locking on the hot path, commands packed by hiredis, replies read by hiredis.

Why not redis-py's client: a ``redis.Redis`` call checks a connection out of a pool (a
``LifoQueue`` and its lock per checkout), runs the command through the client's
``execute_command`` / response-callback layers and redis-py's parser, and checks the connection
back in (plus a readability system call): measured with ``benchmarks/lean_micro.py``, this path
does 1.6-2.1x redis-py's sequential PINGs and 2.3-2.7x its MULTI/EXEC + GET session pairs,
within a few per cent of a bare socket with hiredis. Here:

* **Connections.** Idle connections wait on a stack, a :class:`collections.deque`: ``pop()`` one,
  use it, ``append()`` it back. Both are atomic in CPython, so two threads can never get the same
  connection and the hot path takes no lock. Only when the stack is empty does a caller take the
  slow path (a :class:`threading.Condition`): open a new connection while fewer than
  ``config.max_connections`` exist, else wait up to ``config.pool_timeout`` for one to come back,
  then fail with a ConnectionError saying which setting to raise. A returning connection wakes a
  waiter only when one is waiting (an int read, no lock otherwise).
* **Thread safety.** A connection belongs to exactly one thread between its ``pop()`` and its
  ``append()``; a command's bytes go out in one ``sendall`` and its replies are read back before
  the connection is returned, so replies are never mixed up between threads. Any failure
  mid-command (timeout, reset, a read cut short, an exception) discards the connection: it is
  never reused out of step.
* **Handshake.** Each connection is opened by redis-py's connection classes from
  :mod:`berthcache._events` (TCP / TLS, AUTH with the ACL user, RESP2, CLIENT SETNAME, SELECT),
  so ``connect`` / ``ready`` / ``error`` / ``close`` fire as on the redis-py path; the TLS context
  is built once per transport, not per connection. After the handshake the transport talks to
  the socket itself: ``sock.sendall(hiredis.pack_command(...))`` and a ``hiredis.Reader``
  (UTF-8 with ``surrogateescape``: bytes that are not UTF-8 are kept losslessly for
  ``get_bytes``; error replies built by redis-py's own ``parse_error`` so NOSCRIPT -> NoScriptError,
  READONLY -> ReadOnlyError …) fed by ``recv_into`` a per-connection buffer.
* **Connections the server closed while idle** (a restart, a failover, an idle timeout): the
  first call on one fails before any reply byte (EOF, reset, broken pipe); the connection and
  its idle neighbours are closed and the call goes out once more on a new connection at once —
  no ``error`` event, no backoff, not counted as a retry: what redis-py's pool does when it checks
  a connection out (there with a readability check, a system call on every checkout).
* **Retries** (no budget): the retry policy of :mod:`berthcache._retry` — retryable errors only
  (``is_retryable``: never authentication or certificate failures), at most
  ``max_retries_per_request`` retries, the Backoff schedule (its ``reconnecting`` events), the
  ``error`` event per failure; each retry takes a fresh connection. READONLY (a demoted primary
  after a failover) discards the connection and retries on a new one.
* **Budgets**: one attempt, the whole call — waiting for a connection, connecting, TLS, each send
  and each read — by the budget's deadline (socket timeouts set to what is left), then
  ``budget.exceeded()``; an answer in time (refused, reset, an error reply) raises as is.
* **Fork safety**: a child process forgets the parent's connections (``os.register_at_fork``)
  and opens its own; it never writes to the parent's sockets.
"""

from __future__ import annotations

import collections
import contextlib
import os
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import hiredis
import redis.exceptions as rex
from redis._parsers.base import BaseParser
from redis.backoff import NoBackoff
from redis.retry import Retry

from berthcache._budget import Budget, _tls_context
from berthcache._config import CacheConfig
from berthcache._events import ConnectionEvents, EventConnection, EventSSLConnection
from berthcache._exceptions import CacheClosedError
from berthcache._retry import RETRY_ON, Backoff, is_retryable

__all__ = ["Args", "LeanTransport"]

Args = tuple[Any, ...]

#: A spent budget still goes through the socket with this timeout (as in _budget).
_SPENT = 0.001
#: How much later than a budget's deadline a socket timeout may end and still be kept (so
#: repeated calls of one budget set it once): well under the budgets' 250 ms and more.
_SLACK = 0.002
_BUFFER = 65536
_TIMEOUTS = (rex.TimeoutError, socket.timeout, TimeoutError)
_CLOSED = "the transport is closed (close() was called); create a new client"
_parse_error: Callable[[str], Exception] = BaseParser.parse_error
#: How replies are decoded: UTF-8, other bytes kept losslessly (``call_raw``: not decoded).
_ENCODING = "utf-8"
_ERRORS = "surrogateescape"


class _ClosedByServer(OSError):
    """The server closed the connection (a read returned no bytes)."""


#: Socket failures that mean the server closed the connection before we wrote or read.
_STALE = (
    _ClosedByServer,
    ConnectionResetError,
    BrokenPipeError,
    ssl.SSLEOFError,
    ssl.SSLZeroReturnError,
)


class _NoFreeConnection(rex.ConnectionError):
    """All ``max_connections`` were busy for ``pool_timeout``: not retried (not a network fault)."""


_NOT_RETRIED = (_NoFreeConnection, CacheClosedError)
#: Error replies after which the connection is dropped and, per the retry policy, the call
#: retried on a new one, as redis-py does: READONLY (a demoted primary after a failover) and the
#: replies redis-py maps to ConnectionError subclasses (LOADING, MASTERDOWN, NOAUTH / WRONGPASS
#: — never retried, see is_retryable — and "max number of clients reached").
_FAULTS = (rex.ReadOnlyError, rex.ConnectionError)


# -- the redis-py connection classes that do the handshake -------------------------------------


class _HandshakeMixin:
    """Connect and handshake by a deadline when one is set; the transport's shared TLS context."""

    _sock: Any
    host: Any
    socket_timeout: Any
    socket_connect_timeout: Any
    #: The monotonic time the connect must be done by (a budgeted call), or None.
    _lean_deadline: float | None = None
    #: A one-element list shared by every connection of one transport: its TLS context.
    _lean_tls: list[ssl.SSLContext | None] | None = None

    def _left(self) -> float | None:
        deadline = self._lean_deadline
        return None if deadline is None else max(deadline - time.monotonic(), _SPENT)

    def _connect(self) -> Any:
        left = self._left()
        if left is not None:
            self.socket_connect_timeout = min(self.socket_connect_timeout, left)
            self.socket_timeout = min(self.socket_timeout, left)
        return super()._connect()  # type: ignore[misc]

    def _wrap_socket_with_ssl(self, sock: Any) -> Any:
        # redis-py builds a fresh SSLContext (system CAs loaded: tens of ms) per connection;
        # one per transport, built from the same settings, is enough.
        shared = self._lean_tls
        context = shared[0] if shared is not None else None
        if context is None:
            context = _tls_context(self)
            if shared is not None:
                shared[0] = context
        left = self._left()
        sock.settimeout(left if left is not None else self.socket_timeout)
        return context.wrap_socket(sock, server_hostname=self.host)

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        left = self._left()
        if left is not None and self._sock is not None:
            self._sock.settimeout(left)
        super().send_packed_command(command, check_health)  # type: ignore[misc]

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        left = self._left()
        if left is not None and self._sock is not None:
            self._sock.settimeout(left)
        return super().read_response(*args, **kwargs)  # type: ignore[misc]


class _LeanConnection(_HandshakeMixin, EventConnection):
    """TCP handshake for the lean transport (events as EventConnection)."""


class _LeanSSLConnection(_HandshakeMixin, EventSSLConnection):
    """TLS handshake for the lean transport (events as EventSSLConnection)."""


# -- one connection after its handshake ----------------------------------------------------------


class _Conn:
    """A connected socket, its hiredis reader and read buffer; owned by one thread at a time."""

    __slots__ = (
        "buf",
        "current",
        "fed",
        "handshake",
        "reader",
        "sock",
        "timeout",
        "used",
        "where",
    )

    def __init__(self, handshake: EventConnection, socket_timeout: float | None) -> None:
        self.handshake = handshake
        #: The connected socket (an _ObservedSocket while writes are observed).
        self.sock: Any = handshake._sock
        # UTF-8 with surrogateescape: text exactly as a strict decode, other bytes kept
        # losslessly (get_bytes re-encodes them; get refuses them): no per-call reader switch.
        self.reader = hiredis.Reader(
            encoding=_ENCODING,
            errors=_ERRORS,
            replyError=_parse_error,
            protocolError=rex.InvalidResponse,
        )
        self.buf = bytearray(_BUFFER)
        self.where = f"{handshake.host}:{handshake.port}"
        self.used = False  # True once a call succeeded on it (it then sat idle in the stack)
        self.fed = False  # whether the current exchange received any reply bytes
        self.timeout = socket_timeout or None
        sock: Any = handshake._sock
        #: The socket timeout set now: ``socket_timeout``, or a budgeted call's time left.
        self.current: float | None = self.timeout
        sock.settimeout(self.timeout)

    def time_out_in(self, seconds: float | None) -> None:
        """Set the socket's timeout when it differs from the one set now (each settimeout is
        a system call: a sequential caller should not pay one per call)."""
        if seconds != self.current:
            self.sock.settimeout(seconds)
            self.current = seconds

    def within(self, deadline: float) -> None:
        """A timeout no later than ``deadline``: the one set now when it ends within
        ``_SLACK`` of it (repeated calls of one budget keep theirs), else the time left."""
        left = max(deadline - time.monotonic(), _SPENT)
        current = self.current
        if current is None or current > left + _SLACK:
            self.sock.settimeout(left)
            self.current = left

    def observe(self, observer: Callable[[bytes], None] | None) -> None:
        raw = self.handshake._sock
        self.sock = raw if observer is None else _ObservedSocket(raw, observer)  # type: ignore[arg-type]

    def stale(self, exc: BaseException) -> bool:
        """Whether ``exc`` says the server closed this connection while it sat idle (restart,
        failover, idle timeout): it failed before any reply byte came back."""
        return self.used and not self.fed and isinstance(exc, _STALE)

    def exchange(
        self, packed: bytes, count: int, deadline: float | None, raw: bool = False
    ) -> list[Any]:
        """Send ``packed`` (``count`` commands); their ``count`` replies, in order; ``raw``:
        bulk strings as ``bytes``, not decoded (``call_raw``)."""
        if raw:
            self.reader.set_encoding(None)
            try:
                return self.exchange(packed, count, deadline)
            finally:
                self.reader.set_encoding(_ENCODING, _ERRORS)
        sock, reader, buf = self.sock, self.reader, self.buf
        self.fed = False
        if deadline is None:
            if self.current != self.timeout:
                self.time_out_in(self.timeout)  # a budgeted call used it last
        else:
            self.within(deadline)
        sock.sendall(packed)
        replies: list[Any] = []
        while len(replies) < count:
            reply = reader.gets()
            if reply is False:
                if deadline is not None and self.fed:  # a reply in pieces: within what is left
                    self.within(deadline)
                n = sock.recv_into(buf)
                if not n:
                    raise _ClosedByServer("connection closed by the server")
                reader.feed(buf, 0, n)  # type: ignore[arg-type]  # any buffer
                self.fed = True
                continue
            replies.append(reply)
        return replies

    def as_redis_error(self, exc: BaseException) -> BaseException:
        """A socket-level failure as the redis-py error the rest of berthcache knows."""
        if isinstance(exc, rex.RedisError):
            return exc
        if isinstance(exc, TimeoutError):  # socket.timeout is TimeoutError
            error: Exception = rex.TimeoutError(f"Timeout reading from {self.where}")
        elif isinstance(exc, OSError):
            error = rex.ConnectionError(f"Error while talking to {self.where}: {exc}")
        else:
            return exc
        error.__cause__ = exc
        return error

    def close(self) -> None:
        """Close the socket (redis-py's disconnect: emits ``close``; no shutdown in a child)."""
        with contextlib.suppress(Exception):  # a broken socket may fail to close: gone anyway
            self.handshake.disconnect()


class _ObservedSocket:
    """A socket whose writes are shown to an observer after they went out (a testing seam)."""

    __slots__ = ("_observer", "_sock")

    def __init__(self, sock: socket.socket, observer: Callable[[bytes], None]) -> None:
        self._sock = sock
        self._observer = observer

    def sendall(self, data: bytes) -> None:
        self._sock.sendall(data)
        self._observer(bytes(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


# -- the transport -------------------------------------------------------------------------------


class LeanTransport:
    """SyncTransport for ``Cache``: ``call`` / ``batch`` / ``close`` over a lock-free stack of
    connections (see the module docstring for the thread-safety model)."""

    def __init__(self, config: CacheConfig, events: ConnectionEvents) -> None:
        self._config = config
        self._events = events
        kwargs = config.connection_kwargs()
        tls = bool(kwargs.pop("ssl", False))
        self._max = int(kwargs.pop("max_connections"))
        self._connection_class: type[EventConnection] = (
            _LeanSSLConnection if tls else _LeanConnection
        )
        # The connect is attempted once per retry of ours (redis-py's own Retry would nest).
        self._kwargs = {
            **kwargs,
            "decode_responses": True,
            "retry": Retry(NoBackoff(), 0),
            "berthcache_events": events,
        }
        self._tls: list[ssl.SSLContext | None] = [None]
        self._retries = 0 if config.retry_strategy == "none" else config.max_retries_per_request
        self._backoff = Backoff(
            config.retry_strategy,
            config.retry_base_delay_ms,
            config.retry_max_delay_ms,
            on_reconnecting=events.reconnecting,
        )
        self._closed = False
        self._observer: Callable[[bytes], None] | None = None
        self._reset()
        _LIVE.add(self)  # forgotten in a forked child (one fork hook for every transport)

    def _reset(self) -> None:
        self._idle: collections.deque[_Conn] = collections.deque()
        self._count = 0  # connections open or being opened (<= max_connections)
        self._waiters = 0
        self._cond = threading.Condition(threading.Lock())

    # -- the public interface ------------------------------------------------------------------

    def call(self, args: Args, *, budget: Budget | None = None) -> Any:
        """Send one command; its reply (an error reply raises the mapped redis-py exception)."""
        try:
            packed: bytes = _pack_command(args)
        except TypeError:
            packed = _pack(args)
        if budget is not None:
            reply = self._within(packed, 1, budget)[0]
        else:
            # The hot path: an idle connection, one send, one reply, the connection back.
            try:
                conn = self._idle.pop()
            except IndexError:
                reply = self._with_retries(packed, 1)[0]
            else:
                try:
                    if conn.current != conn.timeout:
                        conn.time_out_in(conn.timeout)  # a budgeted call used it last
                    sock = conn.sock
                    sock.sendall(packed)
                    reader = conn.reader
                    reply = reader.gets()
                    while reply is False:
                        n = sock.recv_into(conn.buf)
                        if not n:
                            raise _ClosedByServer("connection closed by the server")
                        reader.feed(conn.buf, 0, n)  # type: ignore[arg-type]
                        conn.fed = True
                        reply = reader.gets()
                except Exception as exc:
                    self._discard(conn)
                    if conn.stale(exc):  # closed while idle: replaced, as redis-py's pool does
                        self._close_idle()  # its idle neighbours most likely went with it
                        reply = self._with_retries(packed, 1, replaced=True)[0]
                    else:
                        reply = self._with_retries(packed, 1, conn.as_redis_error(exc))[0]
                except BaseException:
                    self._discard(conn)
                    raise
                else:
                    if not isinstance(reply, Exception):
                        conn.fed = False
                        self._idle.append(conn)  # _checkin, inlined
                        if self._waiters or self._closed:
                            self._after_checkin()
                        return reply
                    if isinstance(reply, _FAULTS):
                        self._discard(conn)
                        reply = self._with_retries(packed, 1, reply)[0]
                    else:
                        self._checkin(conn)
        if isinstance(reply, Exception):
            raise reply
        return reply

    def call_raw(self, args: Args, *, budget: Budget | None = None) -> Any:
        """``call``, with the reply's bulk strings as ``bytes``, undecoded (``get_bytes``): the
        connection's reader switches decoding off for that exchange. Off the hot path."""
        packed = _pack(args)
        if budget is not None:
            reply = self._within(packed, 1, budget, raw=True)[0]
        else:
            reply = self._with_retries(packed, 1, raw=True)[0]
        if isinstance(reply, Exception):
            raise reply
        return reply

    def batch(
        self,
        commands: Sequence[Args],
        *,
        transaction: bool = False,
        budget: Budget | None = None,
    ) -> list[Any]:
        """Send ``commands`` in one write; their replies in order, error replies as exception
        instances. ``transaction``: wrapped in MULTI … EXEC (contiguous, so atomic); EXEC's list
        is returned, and a refused queued command (EXECABORT) raises."""
        if not commands:
            return []
        try:
            packed = b"".join([_pack_command(args) for args in commands])
        except TypeError:
            packed = b"".join([_pack(args) for args in commands])  # names the bad argument
        count = len(commands)
        if transaction:
            packed = _MULTI + packed + _EXEC
            count += 2
        if budget is not None:
            replies = self._within(packed, count, budget)
        else:
            replies = self._with_retries(packed, count)
        if not transaction:
            return replies
        return _exec_result(replies, commands)

    def close(self) -> None:
        """Close every connection (each emits ``close``); later calls raise CacheClosedError.
        A connection in use by another thread is closed when that call gives it back."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._close_idle()

    def observe_writes(self, observer: Callable[[bytes], None] | None) -> None:
        """A testing seam: call ``observer(data)`` after each write (one per call or batch) of
        the idle connections and of those opened from now on; ``None`` stops. A connection in
        use by another thread at this moment is not observed. Free when unused: the sockets
        themselves are wrapped, the hot path checks nothing."""
        self._observer = observer
        for conn in list(self._idle):
            conn.observe(observer)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def open_connections(self) -> int:
        """Connections open or being opened now (never more than ``max_connections``)."""
        return self._count

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"LeanTransport(url={self._config.url!r}, connections={self._count}/{self._max}, "
            f"{state})"
        )

    # -- the slow paths ------------------------------------------------------------------------

    def _with_retries(
        self,
        packed: bytes,
        count: int,
        first_error: BaseException | None = None,
        *,
        replaced: bool = False,
        raw: bool = False,
    ) -> list[Any]:
        """The call under the retry policy; ``first_error``: the hot path's failed attempt;
        ``replaced``: it already replaced a connection the server had closed while idle."""
        failures = 0
        error = first_error
        while True:
            if error is not None:
                if isinstance(error, _NOT_RETRIED) or not isinstance(error, RETRY_ON):
                    # Not a network fault (no free connection, closed …): raised at once,
                    # without the ``error`` event, as RetryPolicy does.
                    raise error
                self._events.error(error)
                failures += 1
                if not _retry_allowed(error, failures, self._retries):
                    raise error
                delay = self._backoff.compute(failures)
                if delay > 0:
                    time.sleep(delay)
                error = None
            conn = None
            try:
                conn = self._checkout(None)
                replies = conn.exchange(packed, count, None, raw)
            except Exception as exc:
                if conn is None:
                    error = exc  # connecting failed (redis-py raised its own error)
                else:
                    self._discard(conn)
                    if not replaced and conn.stale(exc):
                        replaced = True  # closed while idle: replaced at once, not a retry
                        self._close_idle()
                        continue
                    error = conn.as_redis_error(exc)
                continue
            except BaseException:
                if conn is not None:
                    self._discard(conn)
                raise
            fault = _fault(replies)
            if fault is not None:
                self._discard(conn)
                error = fault
                continue
            self._checkin(conn)
            return replies

    def _within(self, packed: bytes, count: int, budget: Budget, *, raw: bool = False) -> list[Any]:
        """One attempt, done by the budget's deadline, else ``budget.exceeded()``."""
        deadline = time.monotonic() + budget.seconds
        replaced = False
        while True:
            conn = None
            try:
                conn = self._checkout(deadline)
                replies = conn.exchange(packed, count, deadline, raw)
                break
            except BaseException as exc:
                error = exc
                if conn is not None:
                    self._discard(conn)
                    if not replaced and conn.stale(exc):
                        replaced = True  # closed while idle: replaced (within the budget)
                        self._close_idle()
                        continue
                    error = conn.as_redis_error(exc)
                if isinstance(error, RETRY_ON) and not isinstance(error, _NOT_RETRIED):
                    self._events.error(error)
                late = isinstance(error, _TIMEOUTS) or (
                    isinstance(error, rex.ConnectionError) and time.monotonic() >= deadline
                )
                if late:
                    raise budget.exceeded() from error
                if error is exc:
                    raise
                raise error from exc
        if _fault(replies) is not None:
            self._discard(conn)  # an answer in time; the next call reconnects
        else:
            self._checkin(conn)
        return replies

    def _checkout(self, deadline: float | None) -> _Conn:
        """An idle connection, else a new one (below the bound), else wait for one."""
        if self._closed:
            raise CacheClosedError(_CLOSED)
        try:
            return self._idle.pop()
        except IndexError:
            pass
        limit = time.monotonic() + self._config.pool_timeout
        if deadline is not None:
            limit = min(limit, deadline)
        with self._cond:
            self._waiters += 1
            try:
                while True:
                    if self._closed:
                        raise CacheClosedError(_CLOSED)
                    try:
                        return self._idle.pop()
                    except IndexError:
                        pass
                    if self._count < self._max:
                        self._count += 1
                        break
                    left = limit - time.monotonic()
                    if left <= 0:
                        raise _NoFreeConnection(
                            f"no free connection within {self._config.pool_timeout} s: all "
                            f"{self._max} are in use (raise max_connections or pool_timeout)"
                        )
                    self._cond.wait(left)
            finally:
                self._waiters -= 1
        try:
            return self._connect(deadline)
        except BaseException:
            self._forget_one()
            raise

    def _connect(self, deadline: float | None) -> _Conn:
        handshake = self._connection_class(**self._kwargs)
        handshake._lean_tls = self._tls  # type: ignore[attr-defined]
        handshake._lean_deadline = deadline  # type: ignore[attr-defined]
        handshake.connect_check_health(check_health=False, retry_socket_connect=False)
        handshake._lean_deadline = None  # type: ignore[attr-defined]
        conn = _Conn(handshake, self._config.socket_timeout)  # in its idle timeout mode
        if self._observer is not None:
            conn.observe(self._observer)
        return conn

    def _checkin(self, conn: _Conn) -> None:
        conn.used = True
        conn.fed = False
        self._idle.append(conn)
        if self._waiters or self._closed:
            self._after_checkin()

    def _after_checkin(self) -> None:
        """A connection came back: wake a caller waiting for one; close it if we are closed."""
        if self._waiters:
            with self._cond:
                self._cond.notify()
        if self._closed:
            self._close_idle()

    def _discard(self, conn: _Conn) -> None:
        conn.close()
        self._forget_one()

    def _forget_one(self) -> None:
        with self._cond:
            self._count -= 1
            self._cond.notify()

    def _close_idle(self) -> None:
        while True:
            try:
                conn = self._idle.pop()
            except IndexError:
                return
            self._discard(conn)

    def _forget_after_fork(self) -> None:
        # In the child: the parent's sockets are the parent's. Drop them unclosed-by-us (their
        # objects close only the child's copy of the descriptor when collected, no shutdown).
        self._reset()


#: Every LeanTransport alive: a forked child forgets their connections (weakly held, so a
#: transport that is gone is not kept, and one hook serves them all).
_LIVE: weakref.WeakSet[LeanTransport] = weakref.WeakSet()


def _forget_in_child() -> None:
    for transport in list(_LIVE):
        transport._forget_after_fork()


os.register_at_fork(after_in_child=_forget_in_child)


_pack_command = hiredis.pack_command
_MULTI = hiredis.pack_command(("MULTI",))
_EXEC = hiredis.pack_command(("EXEC",))


def _pack(args: Args) -> bytes:
    """``args`` in RESP (str as UTF-8); a bad argument raises DataError naming its position."""
    try:
        packed: bytes = hiredis.pack_command(args)
    except TypeError:
        for position, arg in enumerate(args):
            if isinstance(arg, bool) or not isinstance(arg, (str, bytes, int, float)):
                raise rex.DataError(
                    f"argument {position} of {str(args[0])[:32]!r} is a "
                    f"{type(arg).__name__}: convert it to bytes, str, int or float first"
                ) from None
        if type(args) is not tuple:  # a list of arguments: hiredis takes tuples only
            return _pack(tuple(args))
        raise
    return packed


def _fault(replies: list[Any]) -> Exception | None:
    """The first error reply (inside EXEC's list too) that says this connection cannot serve —
    READONLY, or one redis-py raises as a ConnectionError (LOADING, MASTERDOWN, NOAUTH, max
    clients) — or None."""
    for reply in replies:
        if isinstance(reply, _FAULTS):
            return reply
        if isinstance(reply, list):
            for inner in reply:
                if isinstance(inner, _FAULTS):
                    return inner
    return None


def _exec_result(replies: list[Any], commands: Sequence[Args]) -> list[Any]:
    """EXEC's list from the replies to MULTI, each queued command and EXEC. An EXECABORT (a
    command refused when queued) raises that command's error named by its 1-based position and
    name — redis-py's "Command # 2 (SET) of pipeline caused error: …" without the arguments —
    and a refused MULTI raises."""
    if isinstance(replies[0], Exception):
        raise replies[0]
    result = replies[-1]
    if isinstance(result, list):
        return result
    if isinstance(result, Exception):
        for position, queued in enumerate(replies[1:-1], 1):
            if isinstance(queued, Exception):
                name = commands[position - 1][0]
                if isinstance(name, bytes):
                    name = name.decode("utf-8", "replace")
                first = str(queued.args[0]) if queued.args else ""
                queued.args = (
                    f"Command # {position} ({str(name).upper()}) of pipeline caused error: {first}",
                    *queued.args[1:],
                )
                raise queued
        raise result
    raise rex.ResponseError("EXEC returned no result (the transaction was discarded)")


def _retry_allowed(error: Exception, failures: int, retries: int) -> bool:
    return is_retryable(error) and (retries < 0 or failures <= retries)
