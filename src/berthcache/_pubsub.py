"""Pub/sub on a dedicated connection.

A connection in subscribe mode can run nothing but (P)SUBSCRIBE/UNSUBSCRIBE/PING, so the seed's
"subscribe, then publish on the same client" cannot work. Every subscription here takes its own
connection from the pool (redis-py ``PubSub``); publishing goes through the cache's transport.

By default channels carry the key prefix (``berthcare:alerts``) so apps sharing a server do not
hear each other; :class:`Message` gives the channel back without it. The seed (ioredis, whose
``keyPrefix`` does not apply to channels) publishes on the bare name (``alerts``): with
``prefix_channels=False`` (``REDIS_PREFIX_CHANNELS=false``) berthcache publishes and subscribes
on the bare name too, and ``Message.channel`` is the name as sent. Dicts and lists are
published as JSON, strings as they are; with ``parse_json`` (the default) a payload that parses
as JSON is decoded, anything else arrives as the text sent.

Sync: :class:`Subscription` runs a listener thread that calls ``callback(message)`` (or queues
messages for :meth:`Subscription.get` / iteration). Async: :class:`AsyncSubscription` is an
async iterator, or runs ``callback`` (sync or async) in a reader task. A callback that raises is
logged and the listener carries on; lost connections are retried with a backoff (redis-py
re-subscribes on reconnect). Both register with the cache's shutdown, so ``cache.close()``
stops them.

The listeners read outside ``cache._operation()``: a subscription waits for messages
indefinitely and must not hold ``close()`` up as an in-flight call would.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from types import TracebackType
from typing import Any

from berthcache._exceptions import CacheError, CacheUnavailableError, map_errors
from berthcache._host import CacheHost
from berthcache._parts import as_text, check_part

__all__ = [
    "AsyncSubscription",
    "Message",
    "Subscription",
    "async_publish",
    "async_subscribe",
    "publish",
    "subscribe",
]

logger = logging.getLogger("berthcache.pubsub")

_POLL_SECONDS = 0.2  # how often the sync listener looks at its stop flag
_READY_TIMEOUT = 5.0
_MAX_BACKOFF = 2.0
#: How long close() waits for the server to confirm the UNSUBSCRIBE (at most; usually ~1 ms).
_LEAVE_TIMEOUT = 1.0


@dataclasses.dataclass(frozen=True, slots=True)
class Message:
    """One message: ``channel`` without the key prefix, ``data`` decoded (see module doc)."""

    channel: str
    data: Any


class _Closed:
    """Queue sentinel: the subscription was closed."""


_CLOSED = _Closed()


def _channel(cache: CacheHost, channel: str) -> str:
    """The channel's name on the server: prefixed, or bare with ``prefix_channels=False``."""
    name = check_part(channel, "channel")
    return cache.keys(name) if cache.config.prefix_channels else name


def _payload(cache: CacheHost, channel: str, message: Any) -> tuple[str, Any]:
    full = _channel(cache, channel)
    return full, cache._json.encode_value(message, key=full)


def _message(cache: CacheHost, raw: dict[str, Any] | None, parse_json: bool) -> Message | None:
    """The :class:`Message` in a reply of the subscription, or None for anything else."""
    if raw is None or raw.get("type") != "message":
        return None
    data: Any = as_text(raw["data"]) if isinstance(raw["data"], bytes | str) else raw["data"]
    if parse_json and isinstance(data, str):
        # Plain text was published, or JSON nested too deeply to parse: deliver it as sent.
        data = cache._json.decode_or_text(data)
    channel = as_text(raw["channel"])
    if cache.config.prefix_channels:
        channel = cache.keys.strip(channel)
    return Message(channel=channel, data=data)


def _backoff(failures: int) -> float:
    return float(min(_MAX_BACKOFF, 0.05 * 2.0 ** min(failures, 6)))


def publish(cache: CacheHost, channel: str, message: Any) -> int:
    """Publish on ``channel`` (prefixed unless ``prefix_channels=False``); returns how many
    subscribers received it."""
    full, payload = _payload(cache, channel, message)
    with cache._operation():
        return int(cache._transport.call(("PUBLISH", full, payload)))


def subscribe(
    cache: CacheHost,
    channel: str,
    callback: Callable[[Message], Any] | None = None,
    *,
    parse_json: bool = True,
) -> Subscription:
    """Start listening on ``channel``; returns once the server confirmed the subscription."""
    return Subscription(cache, channel, callback, parse_json=parse_json)


async def async_publish(cache: CacheHost, channel: str, message: Any) -> int:
    """Publish on ``channel`` (prefixed unless ``prefix_channels=False``); returns how many
    subscribers received it."""
    full, payload = _payload(cache, channel, message)
    with cache._operation():
        return int(await cache._transport.call(("PUBLISH", full, payload)))


async def async_subscribe(
    cache: CacheHost,
    channel: str,
    callback: Callable[[Message], Any] | None = None,
    *,
    parse_json: bool = True,
) -> AsyncSubscription:
    """Start listening on ``channel``; returns once the server confirmed the subscription."""
    return await AsyncSubscription(cache, channel, callback, parse_json=parse_json).start()


class _SubscriptionBase:
    """Arguments, state and logging shared by the twins, so they cannot drift; no I/O of its
    own (the twins subscribe: the sync one in :meth:`_setup`, the async one in ``start()``)."""

    def __init__(
        self,
        cache: CacheHost,
        channel: str,
        callback: Callable[[Message], Any] | None = None,
        *,
        parse_json: bool = True,
        ready_timeout: float = _READY_TIMEOUT,
    ) -> None:
        if callback is not None and not callable(callback):
            raise TypeError("callback must be callable")
        self.channel = check_part(channel, "channel")
        self._cache = cache
        self._full = _channel(cache, channel)
        self._callback = callback
        self._parse_json = parse_json
        self._ready_timeout = ready_timeout
        self._closed = False
        self._pubsub: Any = None  # the dedicated connection, once subscribed
        self._setup()

    def _setup(self) -> None:
        """The twin's own state; the sync twin also subscribes here (async: in ``start()``)."""

    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        state = (
            "closed" if self._closed else ("open" if self._pubsub is not None else "not started")
        )
        return f"{type(self).__name__}(channel={self.channel!r}, {state})"

    def _require_queue(self) -> None:
        if self._callback is not None:
            raise TypeError("this subscription delivers messages to its callback")

    def _connection_lost(self, exc: CacheError, failures: int) -> float:
        """Log a lost connection; how long to wait before the next read retries it."""
        logger.warning(
            "subscription to channel %r lost its connection (%s); retrying", self.channel, exc
        )
        return _backoff(failures)

    def _callback_failed(self) -> None:
        logger.exception("subscription callback for channel %r failed", self.channel)

    @staticmethod
    def _confirms(reply: dict[str, Any] | None) -> bool:
        """Whether ``reply`` is the server's confirmation of the SUBSCRIBE."""
        return reply is not None and reply["type"] == "subscribe"

    @staticmethod
    def _left(reply: dict[str, Any] | None) -> bool:
        """Whether ``reply`` is the server's confirmation of the UNSUBSCRIBE (messages that
        were already on their way are dropped: the subscription is closing)."""
        return reply is not None and reply["type"] == "unsubscribe"

    def _not_confirmed(self) -> CacheUnavailableError:
        return CacheUnavailableError(
            f"subscription to channel {self.channel!r} not confirmed within {self._ready_timeout}s"
        )


class Subscription(_SubscriptionBase):
    """A channel subscription on its own connection, read by a background thread."""

    def _setup(self) -> None:
        self._queue: queue.Queue[Message | _Closed] = queue.Queue()
        self._stop = threading.Event()
        self._close_lock = threading.Lock()
        self._pubsub = self._cache.redis.pubsub()
        try:
            with self._cache._operation():
                self._pubsub.subscribe(self._full)
                self._confirm(self._ready_timeout)
            self._cache._on_close(self.close)
        except BaseException:
            self._pubsub.close()
            raise
        self._thread = threading.Thread(
            target=self._listen, name=f"berthcache-subscription-{self.channel}", daemon=True
        )
        self._thread.start()

    def get(self, timeout: float | None = None) -> Message | None:
        """The next message (no-callback mode), or None after ``timeout`` s or once closed."""
        self._require_queue()
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(item, _Closed):
            self._queue.put(item)  # wake other readers too
            return None
        return item

    def __iter__(self) -> Iterator[Message]:
        """Messages as they arrive, until the subscription is closed (no-callback mode)."""
        self._require_queue()
        while (message := self.get()) is not None:
            yield message

    def unsubscribe(self) -> None:
        """Stop listening (same as :meth:`close`)."""
        self.close()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the listener thread (joined up to ``timeout`` s) and close the connection."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._cache._forget_on_close(self.close)
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.warning(
                    "subscription listener for channel %r did not stop within %.1fs "
                    "(a callback still running?); closing its connection anyway",
                    self.channel,
                    timeout,
                )
        try:
            if not self._thread.is_alive():  # nobody else reads the connection any more
                self._leave(min(timeout, _LEAVE_TIMEOUT))
            self._pubsub.close()
        finally:
            self._queue.put(_CLOSED)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------------

    def _leave(self, timeout: float) -> None:
        """UNSUBSCRIBE and wait (bounded) for the server's confirmation, so that once close()
        returns the server delivers nothing more here: a PUBLISH sent after it counts no one.
        Closing the socket alone leaves that to when the server next reads it."""
        deadline = time.monotonic() + timeout
        with contextlib.suppress(CacheError), map_errors():  # a dead connection has left already
            self._pubsub.unsubscribe()
            while (remaining := deadline - time.monotonic()) > 0:
                if self._left(self._pubsub.get_message(timeout=remaining)):
                    return

    def _confirm(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            if self._confirms(self._pubsub.get_message(timeout=remaining)):
                return
        raise self._not_confirmed()

    def _listen(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                with map_errors(secrets=[self._cache.config.password]):
                    raw = self._pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=_POLL_SECONDS
                    )
            except CacheError as exc:
                if self._stop.is_set():
                    break
                failures += 1
                self._stop.wait(self._connection_lost(exc, failures))
                continue
            failures = 0
            if (message := _message(self._cache, raw, self._parse_json)) is not None:
                self._deliver(message)

    def _deliver(self, message: Message) -> None:
        if self._callback is None:
            self._queue.put(message)
            return
        try:
            self._callback(message)
        except Exception:
            self._callback_failed()


class AsyncSubscription(_SubscriptionBase):
    """A channel subscription on its own connection for asyncio.

    ``sub = await cache.subscribe("alerts")`` then ``async for message in sub``; or pass a
    callback (sync or async), which a reader task calls for each message.
    """

    def _setup(self) -> None:
        self._queue: asyncio.Queue[Message | _Closed] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> AsyncSubscription:
        """Subscribe and wait for the server's confirmation (idempotent)."""
        if self._pubsub is not None:
            return self
        if self._closed:
            raise CacheError(f"subscription to channel {self.channel!r} was closed")
        if self._cache.config.cluster:
            # redis-py's asyncio cluster client picks the channel's node from its slot map:
            # read it first (the sync one reads it when built).
            with self._cache._operation():
                await self._cache.redis.initialize()
        pubsub = self._cache.redis.pubsub()
        try:
            # The timeout sits outside _operation(): TimeoutError is an OSError, which the
            # error mapping would turn into a vaguer "unreachable".
            async with asyncio.timeout(self._ready_timeout):
                with self._cache._operation():
                    await pubsub.subscribe(self._full)
                    reply = None
                    while not self._confirms(reply):
                        reply = await pubsub.get_message(timeout=self._ready_timeout)
            self._cache._on_close(self.aclose)
        except TimeoutError:
            await pubsub.aclose()
            raise self._not_confirmed() from None
        except BaseException:
            await pubsub.aclose()
            raise
        self._pubsub = pubsub
        self._task = asyncio.create_task(
            self._listen(), name=f"berthcache-subscription-{self.channel}"
        )
        return self

    async def get(self, timeout: float | None = None) -> Message | None:  # noqa: ASYNC109
        """The next message (no-callback mode), or None after ``timeout`` s or once closed."""
        self._require_queue()
        try:
            async with asyncio.timeout(timeout):
                item = await self._queue.get()
        except TimeoutError:
            return None
        if isinstance(item, _Closed):
            self._queue.put_nowait(item)  # wake other readers too
            return None
        return item

    def __aiter__(self) -> AsyncIterator[Message]:
        self._require_queue()
        return self

    async def __anext__(self) -> Message:
        message = await self.get()
        if message is None:
            raise StopAsyncIteration
        return message

    async def unsubscribe(self) -> None:
        """Stop listening (same as :meth:`aclose`)."""
        await self.aclose()

    async def aclose(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Stop the reader task and close the connection (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._cache._forget_on_close(self.aclose)
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=timeout)
            if not done:
                logger.warning(
                    "subscription reader for channel %r did not stop within %.1fs",
                    self.channel,
                    timeout,
                )
        try:
            if self._pubsub is not None:
                if task is None or task.done():  # nobody else reads the connection any more
                    await self._leave(min(timeout, _LEAVE_TIMEOUT))
                await self._pubsub.aclose()
        finally:
            self._queue.put_nowait(_CLOSED)

    async def _leave(self, within: float) -> None:
        """UNSUBSCRIBE and wait (bounded) for the server's confirmation, so that once aclose()
        returns the server delivers nothing more here: a PUBLISH sent after it counts no one.
        Closing the socket alone leaves that to when the server next reads it."""
        with contextlib.suppress(CacheError, TimeoutError), map_errors():
            async with asyncio.timeout(within):
                await self._pubsub.unsubscribe()
                while not self._left(await self._pubsub.get_message(timeout=within)):
                    pass

    async def __aenter__(self) -> AsyncSubscription:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- internals ----------------------------------------------------------------------------

    async def _listen(self) -> None:
        failures = 0
        while not self._closed:
            try:
                with map_errors(secrets=[self._cache.config.password]):
                    raw = await self._pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=1.0
                    )
            except CacheError as exc:
                failures += 1
                await asyncio.sleep(self._connection_lost(exc, failures))
                continue
            failures = 0
            if (message := _message(self._cache, raw, self._parse_json)) is not None:
                await self._deliver(message)

    async def _deliver(self, message: Message) -> None:
        if self._callback is None:
            self._queue.put_nowait(message)
            return
        try:
            result = self._callback(message)
            if inspect.isawaitable(result):
                await result
        except Exception:
            self._callback_failed()
