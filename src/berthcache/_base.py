"""State and command preparation shared by :class:`Cache` and :class:`AsyncCache`; no I/O.

Everything that can be decided without the network lives here — settings, argument validation,
key prefixing, value encoding, result parsing, the in-flight counter behind graceful shutdown —
so the sync and async clients only send commands and cannot drift apart.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar

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
from berthcache._serialization import Scalar, decode_json, encode_json, encode_value
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
        self._closing = False
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
    def _ttl_seconds(ttl: TTLLike | None) -> int | None:
        return None if ttl is None else to_seconds(ttl)

    def _prepare_set(
        self, key: str, value: Any, ttl: TTLLike | None
    ) -> tuple[str, Scalar, int | None]:
        full = self._key(key)
        return full, _check_text(encode_value(value, key=key), key), self._ttl_seconds(ttl)

    def _prepare_set_json(
        self, key: str, value: Any, ttl: TTLLike | None
    ) -> tuple[str, str, int | None]:
        full = self._key(key)
        return full, _check_text(encode_json(value, key=key), key), self._ttl_seconds(ttl)

    def _prepare_delete(self, keys: tuple[str, ...]) -> list[str]:
        return [self._key(k, f"keys[{i}]") for i, k in enumerate(keys)]

    @staticmethod
    def _check_amount(amount: int) -> int:
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise ConfigurationError("amount", f"must be an integer, got {type(amount).__name__}")
        return amount

    @staticmethod
    def _parse_get(key: str, raw: Any, parse_json: bool) -> Any:
        if raw is None or not parse_json:
            return raw
        return decode_json(raw, key=key)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"{type(self).__name__}(url={self.config.url!r}, "
            f"key_prefix={self.config.key_prefix!r}, {state})"
        )


class PipelineBase(Generic[C]):
    """Queues prefixed commands on a redis-py pipeline and parses their results on execute."""

    def __init__(self, cache: C, pipe: Any) -> None:
        self._cache = cache
        self._pipe = pipe
        self._parsers: list[Callable[[Any], Any]] = []

    def _queue(self: P, parser: Callable[[Any], Any], method: str, *args: Any, **kw: Any) -> P:
        self._cache._check_open()
        getattr(self._pipe, method)(*args, **kw)
        self._parsers.append(parser)
        return self

    def set(self: P, key: str, value: Any, ttl: TTLLike | None = None) -> P:
        """Queue ``set`` (dicts/lists/bools/None as JSON); result ``True``."""
        full, encoded, seconds = self._cache._prepare_set(key, value, ttl)
        return self._queue(bool, "set", full, encoded, ex=seconds)

    def set_json(self: P, key: str, value: Any, ttl: TTLLike | None = None) -> P:
        """Queue ``set`` of ``value`` as JSON; result ``True``."""
        full, encoded, seconds = self._cache._prepare_set_json(key, value, ttl)
        return self._queue(bool, "set", full, encoded, ex=seconds)

    def get(self: P, key: str, parse_json: bool = False) -> P:
        """Queue ``get``; result the text, parsed JSON, or ``None``."""
        full = self._cache._key(key)

        def parse(raw: Any) -> Any:
            return self._cache._parse_get(key, raw, parse_json)

        return self._queue(parse, "get", full)

    def get_json(self: P, key: str) -> P:
        """Queue ``get`` parsed as JSON."""
        return self.get(key, parse_json=True)

    def delete(self: P, *keys: str) -> P:
        """Queue ``del``; result the number of keys removed."""
        return self._queue(int, "delete", *self._cache._prepare_delete(keys))

    def exists(self: P, key: str) -> P:
        """Queue ``exists``; result a bool."""
        return self._queue(bool, "exists", self._cache._key(key))

    def expire(self: P, key: str, ttl: TTLLike) -> P:
        """Queue ``expire``; result whether the key existed."""
        return self._queue(bool, "expire", self._cache._key(key), to_seconds(ttl))

    def ttl(self: P, key: str) -> P:
        """Queue ``ttl``; result seconds, -1 without expiry, -2 when missing."""
        return self._queue(int, "ttl", self._cache._key(key))

    def incr(self: P, key: str, amount: int = 1) -> P:
        """Queue ``incrby``; result the new value."""
        return self._queue(int, "incrby", self._cache._key(key), self._cache._check_amount(amount))

    def __len__(self) -> int:
        return len(self._parsers)

    def _take_parsers(self) -> list[Callable[[Any], Any]]:
        parsers, self._parsers = self._parsers, []
        return parsers

    @staticmethod
    def _parse(parsers: list[Callable[[Any], Any]], results: list[Any]) -> list[Any]:
        return [parse(raw) for parse, raw in zip(parsers, results, strict=True)]
