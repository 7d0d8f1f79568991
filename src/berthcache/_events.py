"""Connection events: ``connect``, ``ready``, ``error``, ``close``, ``reconnecting``, ``end``.

Each event is logged on the ``berthcache.connection`` logger and passed to the callbacks
registered with ``cache.events.on(name, callback)``. redis-py has no event hooks, so the events
come from connection subclasses handed to the pool (``connect`` when the socket — and TLS — is
up, ``ready`` after AUTH/SELECT, ``close`` when a live socket is dropped) and from the backoff
(``reconnecting`` with ``attempt`` and ``delay_ms``). Text is scrubbed of the password.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import redis.asyncio.connection as aconn
import redis.connection as sconn

from berthcache._exceptions import ConfigurationError, describe_error

__all__ = [
    "EVENT_NAMES",
    "AsyncEventConnection",
    "AsyncEventSSLConnection",
    "ConnectionEvent",
    "ConnectionEvents",
    "EventConnection",
    "EventSSLConnection",
    "logger",
]

EVENT_NAMES: tuple[str, ...] = ("connect", "ready", "error", "close", "reconnecting", "end")
logger = logging.getLogger("berthcache.connection")

_LEVELS = {
    "connect": logging.DEBUG,
    "ready": logging.INFO,
    "error": logging.WARNING,
    "close": logging.DEBUG,
    "reconnecting": logging.WARNING,
    "end": logging.INFO,
}
_REPORTED = "_berthcache_reported"


@dataclasses.dataclass(frozen=True)
class ConnectionEvent:
    """What callbacks receive: the event ``name``, the (masked) ``endpoint`` and ``details``.

    ``details`` holds ``attempt`` and ``delay_ms`` for ``reconnecting`` and ``error`` (text)
    for ``error``.
    """

    name: str
    endpoint: str
    details: Mapping[str, Any] = dataclasses.field(default_factory=dict)


Callback = Callable[[ConnectionEvent], Any]


class ConnectionEvents:
    """Callback registry and logger for one cache client's connection events."""

    def __init__(self, endpoint: str, *, secrets: Iterable[str | None] = ()) -> None:
        self.endpoint = endpoint
        self._secrets = [s for s in secrets if s]
        self._callbacks: dict[str, list[Callback]] = {name: [] for name in EVENT_NAMES}
        self._lock = threading.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()

    def on(self, name: str, callback: Callback) -> Callback:
        """Call ``callback(event)`` on each ``name`` event; returns it (usable as a decorator)."""
        self._check(name)
        if not callable(callback):
            raise ConfigurationError("callback", f"must be callable, got {type(callback).__name__}")
        with self._lock:
            self._callbacks[name].append(callback)
        return callback

    def off(self, name: str, callback: Callback) -> None:
        """Stop calling ``callback`` for ``name`` (no error if it was not registered)."""
        self._check(name)
        with self._lock, contextlib.suppress(ValueError):
            self._callbacks[name].remove(callback)

    def emit(self, name: str, **details: Any) -> None:
        """Log the event and run its callbacks; a failing callback is logged, never raised."""
        self._check(name)
        clean = {k: self.scrub(v) if isinstance(v, str) else v for k, v in details.items()}
        event = ConnectionEvent(name, self.endpoint, clean)
        if logger.isEnabledFor(_LEVELS[name]):
            extra = " ".join(f"{k}={v}" for k, v in clean.items())
            logger.log(
                _LEVELS[name], "redis %s %s%s", name, self.endpoint, f" {extra}" if extra else ""
            )
        with self._lock:
            callbacks = list(self._callbacks[name])
        for callback in callbacks:
            try:
                result = callback(event)
                if inspect.isawaitable(result):
                    self._schedule(result)
            except Exception:
                logger.exception("connection event callback for %r failed", name)

    def error(self, exc: BaseException) -> None:
        """Emit ``error`` for ``exc`` once, however many layers see it."""
        if _already_reported(exc):
            return
        with contextlib.suppress(AttributeError):
            setattr(exc, _REPORTED, True)
        self.emit("error", error=describe_error(exc, secrets=self._secrets))

    def reconnecting(self, attempt: int, delay_ms: float) -> None:
        shown = int(delay_ms) if float(delay_ms).is_integer() else round(delay_ms, 1)
        self.emit("reconnecting", attempt=attempt, delay_ms=shown)

    def scrub(self, text: str) -> str:
        """``text`` with every secret replaced by ``***``."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _schedule(self, awaitable: Any) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            logger.warning("async connection event callback ignored: no running event loop")
            if inspect.iscoroutine(awaitable):
                awaitable.close()
            return
        task = loop.create_task(awaitable)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    def _check(name: str) -> None:
        if name not in EVENT_NAMES:
            raise ConfigurationError(
                "name", f"unknown connection event {name!r}; choose one of {', '.join(EVENT_NAMES)}"
            )

    def __repr__(self) -> str:
        counts = {k: len(v) for k, v in self._callbacks.items() if v}
        return f"ConnectionEvents(endpoint={self.endpoint!r}, callbacks={counts})"


def _already_reported(exc: BaseException) -> bool:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if getattr(cur, _REPORTED, False):
            return True
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return False


# -- redis-py connection classes that emit the events -------------------------------------------


class EventConnection(sconn.Connection):
    """Sync TCP connection that reports connect / ready / error / close."""

    def __init__(self, *args: Any, berthcache_events: ConnectionEvents | None = None, **kw: Any):
        self._berth_events = berthcache_events
        super().__init__(*args, **kw)  # type: ignore[no-untyped-call]

    def _connect(self) -> Any:
        sock = super()._connect()  # type: ignore[no-untyped-call]
        if self._berth_events is not None:
            self._berth_events.emit("connect")
        return sock

    def connect_check_health(
        self, check_health: bool = True, retry_socket_connect: bool = True
    ) -> None:
        if self._sock:
            return  # type: ignore[unreachable]
        try:
            super().connect_check_health(
                check_health=check_health, retry_socket_connect=retry_socket_connect
            )
        except Exception as exc:
            if self._berth_events is not None:
                self._berth_events.error(exc)
            raise
        if self._berth_events is not None:
            self._berth_events.emit("ready")

    def disconnect(self, *args: Any, **kwargs: Any) -> None:
        was_connected = getattr(self, "_sock", None) is not None
        super().disconnect(*args, **kwargs)  # type: ignore[no-untyped-call]
        if was_connected and getattr(self, "_berth_events", None) is not None:
            assert self._berth_events is not None
            self._berth_events.emit("close")


class EventSSLConnection(EventConnection, sconn.SSLConnection):
    """Sync TLS connection that reports connect / ready / error / close."""


class AsyncEventConnection(aconn.Connection):
    """asyncio TCP connection that reports connect / ready / error / close."""

    def __init__(self, *args: Any, berthcache_events: ConnectionEvents | None = None, **kw: Any):
        self._berth_events = berthcache_events
        super().__init__(*args, **kw)

    async def _connect(self) -> None:
        await super()._connect()  # type: ignore[no-untyped-call]
        if self._berth_events is not None:
            self._berth_events.emit("connect")

    async def connect_check_health(
        self, check_health: bool = True, retry_socket_connect: bool = True
    ) -> None:
        if self.is_connected:
            return
        try:
            await super().connect_check_health(
                check_health=check_health, retry_socket_connect=retry_socket_connect
            )
        except Exception as exc:
            if self._berth_events is not None:
                self._berth_events.error(exc)
            raise
        if self._berth_events is not None:
            self._berth_events.emit("ready")

    async def disconnect(self, *args: Any, **kwargs: Any) -> None:
        was_connected = self.is_connected
        await super().disconnect(*args, **kwargs)
        if was_connected and self._berth_events is not None:
            self._berth_events.emit("close")


class AsyncEventSSLConnection(AsyncEventConnection, aconn.SSLConnection):
    """asyncio TLS connection that reports connect / ready / error / close."""
