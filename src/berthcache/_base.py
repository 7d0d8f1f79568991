"""State and command preparation shared by :class:`Cache` and :class:`AsyncCache`; no I/O.

Everything that can be decided without the network lives here — settings, argument validation,
key prefixing, value encoding, result parsing, the in-flight counter behind graceful shutdown —
so the sync and async clients only send commands and cannot drift apart.

Each data command is a *plan* (``_plan_get`` …): an immutable :data:`_Call` tuple saying which
redis-py method to call, with which arguments, and how to read the reply. A twin method is one
line that hands its plan to the twin's ``_run``; the pipeline queues the same plans. So which
command a method sends and how its reply is parsed is written once, for both twins.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, Generic, Literal, TypeAlias, TypeVar

from berthcache._config import CacheConfig
from berthcache._events import ConnectionEvents
from berthcache._exceptions import (
    CacheClosedError,
    ConfigurationError,
    InvalidKeyError,
    SerializationError,
    mapped,
)
from berthcache._keys import KeyBuilder
from berthcache._serialization import decode_json, encode_json, encode_value
from berthcache._ttl import TTLLike, to_seconds

__all__ = ["CacheBase", "PipelineBase", "resolve_config"]

logger = logging.getLogger("berthcache")
_FIELDS = frozenset(f.name for f in dataclasses.fields(CacheConfig))
_CLOSED_MESSAGE = (
    "the cache is closed (close() was called); create a new client, or call "
    "initialize_cache() again for the module-level API"
)

P = TypeVar("P", bound="PipelineBase[Any]")
C = TypeVar("C", bound="CacheBase")
T = TypeVar("T")


_Call: TypeAlias = tuple[str, tuple[Any, ...], Callable[[Any], T] | None]
"""One planned command, ``(command, args, parse)``: send ``getattr(client, command)(*args)``
and read the reply with ``parse``.

Built once per call and never changed, so a plan can be compared (the twin test does) and
queued on a pipeline as is. ``parse`` ``None`` means the reply is the result (no extra call on
the hot path); ``command`` ``""`` means there is nothing to send and the result is
``parse(None)`` (``delete()`` with no keys). A plain tuple, not a NamedTuple: building a
NamedTuple costs a Python-level ``__new__`` (~0.3 us) on every command.
"""


def _no_keys(_: Any) -> int:
    """Result of a ``delete`` with no keys: nothing was sent, nothing was removed."""
    return 0


def _json_reply(key: str, raw: Any) -> Any:
    """A ``get`` reply parsed as JSON (errors name ``key``); ``None`` stays ``None``."""
    return None if raw is None else decode_json(raw, key=key)


_PING: _Call[Any] = ("ping", (), None)


def resolve_config(config: CacheConfig | None, settings: dict[str, Any]) -> CacheConfig:
    """``config`` with ``settings`` applied, or ``CacheConfig(**settings)``; unknown names raise."""
    unknown = sorted(set(settings) - _FIELDS)
    if unknown:
        raise ConfigurationError(unknown[0], "unknown setting")
    if config is None:
        return CacheConfig(**settings)
    if not isinstance(config, CacheConfig):
        raise ConfigurationError("config", f"must be a CacheConfig, got {type(config).__name__}")
    return config.replace(**settings) if settings else config


def _unencodable_at(text: str) -> int | None:
    """Index of the first character UTF-8 cannot encode (a lone surrogate), else ``None``."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return None


S = TypeVar("S", bound=str | bytes | int | float)


def _check_text(value: S, key: str) -> S:
    """``value`` if it can go to Redis and come back as the same text; else SerializationError.

    Values are read back decoded as UTF-8, so bytes that are not UTF-8 could be written but never
    read: refuse them at ``set`` instead of failing every later ``get``.
    """
    if isinstance(value, str):
        if value.isascii():  # O(1) in CPython: nothing to check, no copy made on the hot path
            return value
        bad = _unencodable_at(value)
        if bad is not None:
            raise SerializationError(
                f"value for key {key!r} is not valid Unicode text (lone surrogate at position "
                f"{bad}); values are sent to Redis as UTF-8"
            )
    elif isinstance(value, bytes):
        try:
            value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SerializationError(
                f"value for key {key!r} is bytes that are not UTF-8 text (invalid byte at "
                f"position {exc.start}); berthcache reads values back as text, so it could never "
                "be read: store str, or base64-encode binary data"
            ) from None
    return value


class _Operation:
    """``with cache._operation():`` around every command — refuse it once closed, count it in
    flight (``close()`` waits for those), map redis-py errors to ours.

    One instance per cache, shared by every thread and task: it keeps no per-call state, so
    the per-command path allocates nothing (a generator-based context manager cost ~4x more).
    """

    __slots__ = ("_cache",)

    def __init__(self, cache: CacheBase) -> None:
        self._cache = cache

    def __enter__(self) -> None:
        cache = self._cache
        with cache._state_lock:
            if cache._closed:
                raise CacheClosedError(_CLOSED_MESSAGE)
            cache._inflight += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        self._cache._leave()
        if exc is not None:
            self._cache._raise_mapped(exc)
        return False


class CacheBase:
    """What both clients share: config, key builder, events and the shutdown bookkeeping."""

    def __init__(self, config: CacheConfig | None = None, **settings: Any) -> None:
        self.config: CacheConfig = resolve_config(config, settings)
        self.keys = KeyBuilder(self.config.key_prefix)
        self.events = ConnectionEvents(self.config.url, secrets=[self.config.password])
        self._state_lock = threading.Lock()
        self._idle = threading.Condition(self._state_lock)
        self._inflight = 0
        self._closed = False
        self._close_callbacks: list[Callable[[], Any]] = []
        self._idle_waiters: list[Callable[[], None]] = []
        self._op = _Operation(self)

    # -- shutdown bookkeeping -----------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once ``close()`` has started; every later call raises CacheClosedError."""
        return self._closed

    def _operation(self) -> _Operation:
        """The context manager around one unit of work (see :class:`_Operation`)."""
        return self._op

    def _leave(self) -> None:
        """One call finished: wake ``close()`` when it waits for the last one."""
        with self._state_lock:
            self._inflight -= 1
            if self._inflight or not self._closed:
                return
            self._idle.notify_all()
            waiters = list(self._idle_waiters)
        for wake in waiters:
            wake()

    def _raise_mapped(self, exc: BaseException) -> None:
        """Raise the berthcache error for ``exc`` (scrubbed of the password), or return to let
        ``exc`` propagate unchanged when it is already ours or not a Redis error."""
        if isinstance(exc, UnicodeDecodeError):
            raise SerializationError(
                "a stored value is not UTF-8 text; berthcache stores text and JSON"
            ) from exc
        if isinstance(exc, UnicodeEncodeError):
            # Keys are checked by KeyBuilder; this is a value no encoder checked (e.g. a
            # pub/sub message or pipeline argument with a lone surrogate).
            raise SerializationError(
                "a value is not valid Unicode text (lone surrogate); Redis is sent UTF-8"
            ) from exc
        error = mapped(exc)
        if error is None:
            return
        self._scrub_error(error)
        if error is not exc:
            raise error from exc

    def _scrub_error(self, exc: BaseException) -> None:
        password = self.config.password
        if password and exc.args and any(password in str(a) for a in exc.args):
            exc.args = tuple(self.events.scrub(str(a)) for a in exc.args)

    def _on_close(self, callback: Callable[[], Any]) -> None:
        """Run ``callback`` during ``close()`` before the pool closes (subscriptions use it)."""
        with self._state_lock:
            if self._closed:
                raise CacheClosedError(_CLOSED_MESSAGE)
            self._close_callbacks.append(callback)

    def _forget_on_close(self, callback: Callable[[], Any]) -> None:
        """Drop a callback registered with :meth:`_on_close` (its owner closed by itself), so
        long-lived caches do not keep every finished subscription alive."""
        with self._state_lock, contextlib.suppress(ValueError):
            self._close_callbacks.remove(callback)

    def _begin_close(self) -> list[Callable[[], Any]] | None:
        """Mark closed; returns the close callbacks, or None when already closed (idempotent)."""
        with self._state_lock:
            if self._closed:
                return None
            self._closed = True
            callbacks = list(reversed(self._close_callbacks))
            self._close_callbacks.clear()
            return callbacks

    def _wait_idle_blocking(self, timeout: float) -> bool:
        with self._state_lock:
            return self._idle.wait_for(lambda: self._inflight == 0, timeout=timeout)

    def _check_open(self) -> None:
        if self._closed:
            raise CacheClosedError(_CLOSED_MESSAGE)

    @staticmethod
    def _check_timeout(timeout: float) -> float:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 0:
            raise ConfigurationError(
                "timeout", f"must be a number of seconds >= 0, got {timeout!r}"
            )
        return float(timeout)

    def _log_close_timeout(self, timeout: float) -> None:
        logger.warning(
            "close(): %d call(s) still in flight after %.1f s; closing connections anyway",
            self._inflight,
            timeout,
        )

    # -- connection pool settings --------------------------------------------------------------

    def _pool_kwargs(self, plain_class: type, tls_class: type, retry: Any) -> dict[str, Any]:
        kwargs = self.config.connection_kwargs()
        tls = bool(kwargs.pop("ssl", False))
        kwargs.update(
            timeout=self.config.pool_timeout,
            connection_class=tls_class if tls else plain_class,
            decode_responses=True,
            retry=retry,
            berthcache_events=self.events,
        )
        return kwargs

    # -- command preparation (no I/O) ----------------------------------------------------------

    def _key(self, key: str, argument: str = "key") -> str:
        value: object = key
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise InvalidKeyError(f"{argument} must be a string, got {type(value).__name__}")
        if key == "":
            raise InvalidKeyError(f"{argument} must not be empty")
        try:
            return self.keys(key)
        except InvalidKeyError as exc:
            if argument == "key":  # KeyBuilder's messages already say "key ..."
                raise
            raise InvalidKeyError(f"{argument}: {exc}") from None

    @staticmethod
    def _check_amount(amount: int) -> int:
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise ConfigurationError("amount", f"must be an integer, got {type(amount).__name__}")
        return amount

    # -- command plans (no I/O): what each data method sends and how its reply is read ---------
    # ``set`` passes the TTL as redis-py's third positional parameter (``ex``) so that a plan
    # needs no kwargs dict; ``None`` means no expiry, exactly as ``ex=None``.

    def _plan_set(self, key: str, value: Any, ttl: TTLLike | None) -> _Call[bool]:
        full = self._key(key)
        encoded = _check_text(encode_value(value, key=key), key)
        return ("set", (full, encoded, None if ttl is None else to_seconds(ttl)), bool)

    def _plan_set_json(self, key: str, value: Any, ttl: TTLLike | None) -> _Call[bool]:
        full = self._key(key)
        encoded = _check_text(encode_json(value, key=key), key)
        return ("set", (full, encoded, None if ttl is None else to_seconds(ttl)), bool)

    def _plan_get(self, key: str, parse_json: bool = False) -> _Call[Any]:
        full = self._key(key)
        # The JSON parser needs the key for its error message: the only per-call partial,
        # and only on the JSON path, where decoding costs far more.
        return ("get", (full,), functools.partial(_json_reply, key) if parse_json else None)

    def _plan_delete(self, keys: tuple[str, ...]) -> _Call[int]:
        full = tuple(self._key(k, f"keys[{i}]") for i, k in enumerate(keys))
        return ("delete", full, int) if full else ("", (), _no_keys)

    def _plan_exists(self, key: str) -> _Call[bool]:
        return ("exists", (self._key(key),), bool)

    def _plan_expire(self, key: str, ttl: TTLLike) -> _Call[bool]:
        full = self._key(key)
        return ("expire", (full, to_seconds(ttl)), bool)

    def _plan_ttl(self, key: str) -> _Call[int]:
        return ("ttl", (self._key(key),), int)

    def _plan_incr(self, key: str, amount: int) -> _Call[int]:
        full = self._key(key)
        return ("incrby", (full, self._check_amount(amount)), int)

    @staticmethod
    def _plan_ping() -> _Call[Any]:
        return _PING

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"{type(self).__name__}(url={self.config.url!r}, "
            f"key_prefix={self.config.key_prefix!r}, {state})"
        )


class PipelineBase(Generic[C]):
    """Queues the cache's command plans on a redis-py pipeline and parses their replies on
    execute, so a pipelined command sends and parses exactly what the direct one does."""

    def __init__(self, cache: C, pipe: Any) -> None:
        self._cache = cache
        self._pipe = pipe
        self._calls: list[_Call[Any]] = []

    def _queue(self: P, call: _Call[Any]) -> P:
        self._cache._check_open()
        command, args, _ = call
        if command:
            getattr(self._pipe, command)(*args)
        self._calls.append(call)
        return self

    def set(self: P, key: str, value: Any, ttl: TTLLike | None = None) -> P:
        """Queue ``set`` (dicts/lists/bools/None as JSON); result ``True``."""
        return self._queue(self._cache._plan_set(key, value, ttl))

    def set_json(self: P, key: str, value: Any, ttl: TTLLike | None = None) -> P:
        """Queue ``set`` of ``value`` as JSON; result ``True``."""
        return self._queue(self._cache._plan_set_json(key, value, ttl))

    def get(self: P, key: str, parse_json: bool = False) -> P:
        """Queue ``get``; result the text, parsed JSON, or ``None``."""
        return self._queue(self._cache._plan_get(key, parse_json))

    def get_json(self: P, key: str) -> P:
        """Queue ``get`` parsed as JSON."""
        return self._queue(self._cache._plan_get(key, True))

    def delete(self: P, *keys: str) -> P:
        """Queue ``del``; result the number of keys removed."""
        return self._queue(self._cache._plan_delete(keys))

    def exists(self: P, key: str) -> P:
        """Queue ``exists``; result a bool."""
        return self._queue(self._cache._plan_exists(key))

    def expire(self: P, key: str, ttl: TTLLike) -> P:
        """Queue ``expire``; result whether the key existed."""
        return self._queue(self._cache._plan_expire(key, ttl))

    def ttl(self: P, key: str) -> P:
        """Queue ``ttl``; result seconds, -1 without expiry, -2 when missing."""
        return self._queue(self._cache._plan_ttl(key))

    def incr(self: P, key: str, amount: int = 1) -> P:
        """Queue ``incrby``; result the new value."""
        return self._queue(self._cache._plan_incr(key, amount))

    def __len__(self) -> int:
        return len(self._calls)

    def _take_calls(self) -> list[_Call[Any]]:
        calls, self._calls = self._calls, []
        return calls

    @staticmethod
    def _parse(calls: list[_Call[Any]], replies: list[Any]) -> list[Any]:
        """One result per queued call, in order; calls that sent nothing take no reply."""
        sent = sum(1 for command, _, _ in calls if command)
        if sent != len(replies):
            raise RuntimeError(f"pipeline sent {sent} command(s) but got {len(replies)} replies")
        pending = iter(replies)
        results = []
        for command, _, parse in calls:
            reply = next(pending) if command else None
            results.append(reply if parse is None else parse(reply))
        return results
