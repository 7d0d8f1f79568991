"""API response cache: ``{prefix}api:{endpoint}:{user_id}`` holding JSON, 5-minute TTL.

``get_or_compute`` protects the backend from a stampede of concurrent misses on a cold key, in
two layers:

1. in process — async: one task computes and every other caller awaits the same task;
   sync: a per-key lock, so one thread computes while the others wait and then read the value;
2. across processes — a short Redis lock ``{prefix}lock:api:{endpoint}:{user_id}``
   (``SET NX PX`` with a random token, released by the compare-and-delete script
   ``resources/release_lock.lua``). Processes that lose the race poll for the value with a
   bounded backoff; if it does not appear within ``wait_timeout`` (the holder died or is too
   slow) they compute it themselves, so a crashed holder delays callers but never blocks them.

``invalidate(endpoint)`` without a user removes exactly that endpoint's entries
``{prefix}api:{endpoint}:{user_id}``, as the seed's endpoint-wide invalidation means it: it walks
``SCAN MATCH api:{endpoint}:*`` (glob characters escaped) and UNLINKs, in batches — bounded work
per round trip, never ``KEYS`` — only the keys whose part after ``api:{endpoint}:`` holds no
``:``, so a nested endpoint (``clients:list`` under ``clients``) keeps its entries. User ids
containing ``:`` are refused (InvalidKeyError naming ``user_id``): they would make keys ambiguous.

Every decision — keys, validation, encoding, which scanned keys go, when to give up waiting for
another process's lock — is made in :class:`_ResponseCacheBase` and its step objects
(:class:`_Sweep`, :class:`_LockTurn`); the twins only send the commands they are handed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import logging
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar, overload

from berthcache._exceptions import CacheError, ConfigurationError, InvalidKeyError
from berthcache._host import CacheHost
from berthcache._parts import as_text, check_part, glob_escape
from berthcache._scripts import load_script
from berthcache._serialization import decode_json, encode_json
from berthcache._ttl import TTL, TTLLike, to_seconds

__all__ = ["AsyncResponseCache", "CacheStats", "ResponseCache"]

logger = logging.getLogger("berthcache.responses")

T = TypeVar("T")
_SCAN_BATCH = 500
#: What ``_read`` returns for a missing key — distinct from a cached JSON ``null``, so that a
#: computed ``None`` is a hit too instead of being recomputed on every call.
_MISS: Any = object()
_FIRST_DELAY = 0.01
_MAX_DELAY = 0.2


@dataclasses.dataclass(frozen=True, slots=True)
class CacheStats:
    """Hits and misses of one ResponseCache since it was created (this process only)."""

    hits: int
    misses: int
    hit_rate: float  # hits / (hits + misses); 0.0 before the first lookup


def _positive(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigurationError(name, f"must be a positive number of seconds, got {value!r}")
    return float(value)


def _delays() -> Iterator[float]:
    delay = _FIRST_DELAY
    while True:
        yield delay
        delay = min(delay * 2, _MAX_DELAY)


class _LockTurn:
    """One caller's try at a key's cross-process lock: the token it SETs and how long it polls
    for another holder's value, so both twins run the same protocol."""

    __slots__ = ("_base", "_deadline", "_delays", "key", "lock_key", "ms", "token")

    def __init__(self, base: _ResponseCacheBase, key: str) -> None:
        self.key = key
        self.lock_key = base._lock_key(key)
        self.token = uuid.uuid4().hex
        self.ms = max(1, int(base.lock_timeout * 1000))  # the lock's PX: it expires by itself
        self._base = base
        self._deadline = time.monotonic() + base.wait_timeout
        self._delays = _delays()

    def next_delay(self) -> float | None:
        """The pause before polling again, or None (logged) once that pause would pass
        ``wait_timeout`` — the holder died or is too slow: compute the value here."""
        delay = next(self._delays)
        if time.monotonic() + delay > self._deadline:
            self._base._gave_up(self.key)
            return None
        return delay


class _Sweep:
    """One endpoint-wide invalidation: the SCAN cursor, which scanned keys belong to exactly
    this endpoint, and how many were removed. The twin sends SCAN from ``cursor`` until
    ``done``, hands each page to :meth:`page` and UNLINKs what it returns."""

    __slots__ = ("_head", "cursor", "done", "pattern", "removed")

    def __init__(self, pattern: str, head: str) -> None:
        self.pattern = pattern
        self._head = head  # "{prefix}api:{endpoint}:" — the user id follows, with no ':'
        self.cursor: int = 0
        self.done = False
        self.removed = 0

    def page(self, reply: tuple[Any, list[Any]]) -> list[Any]:
        """Record one SCAN reply; the keys of this endpoint in it (to UNLINK, maybe none)."""
        cursor, found = reply
        self.cursor = int(cursor)
        self.done = self.cursor == 0
        keys = []
        for key in found:
            text = as_text(key)
            if text.startswith(self._head) and ":" not in text[len(self._head) :]:
                keys.append(key)
        return keys

    def unlinked(self, count: Any) -> None:
        self.removed += int(count)


class _ResponseCacheBase:
    """Keys, validation, encoding and the counters — no I/O."""

    def __init__(
        self,
        cache: CacheHost,
        *,
        ttl: TTLLike = TTL.API_RESPONSE,
        lock_timeout: float = 10.0,
        wait_timeout: float = 5.0,
    ) -> None:
        self._cache = cache
        self.ttl = to_seconds(ttl, name="ttl")
        self.lock_timeout = _positive(lock_timeout, "lock_timeout")
        self.wait_timeout = _positive(wait_timeout, "wait_timeout")
        self._release: Any = cache.redis.register_script(load_script("release_lock.lua"))
        self._counter_lock = threading.Lock()
        self._hits = 0
        self._misses = 0
        self._setup()

    def _setup(self) -> None:
        """The twin's own in-process single-flight state (a base needs none)."""

    @property
    def stats(self) -> CacheStats:
        """Hits and misses so far (a hit = served without computing)."""
        with self._counter_lock:
            hits, misses = self._hits, self._misses
        total = hits + misses
        return CacheStats(hits=hits, misses=misses, hit_rate=hits / total if total else 0.0)

    def _count(self, hit: bool) -> None:
        with self._counter_lock:
            if hit:
                self._hits += 1
            else:
                self._misses += 1

    def _answer(self, value: Any) -> Any | None:
        """What ``get`` returns for a read ``value`` (None on a miss), counted."""
        found = value is not _MISS
        self._count(found)
        return value if found else None

    @staticmethod
    def _stored(raw: Any, key: str) -> Any:
        """A GET reply as the stored value (JSON ``null`` included), or ``_MISS``."""
        return _MISS if raw is None else decode_json(raw, key=key)

    def _hit(self, value: Any) -> bool:
        """Whether ``value`` was found in the cache; counts the hit when it was."""
        if value is _MISS:
            return False
        with self._counter_lock:
            self._hits += 1
        return True

    def _key(self, endpoint: str, user_id: str | int) -> str:
        user = check_part(user_id, "user_id")
        if ":" in user:
            raise InvalidKeyError(
                f"user_id must not contain ':' (got {user!r}): api:{{endpoint}}:{{user_id}} "
                "would be ambiguous with a nested endpoint"
            )
        return self._cache.keys("api", check_part(endpoint, "endpoint"), user)

    def _lock_key(self, key: str) -> str:
        return self._cache.keys("lock", self._cache.keys.strip(key))

    def _sweep(self, endpoint: str) -> _Sweep:
        """A new endpoint-wide invalidation of exactly ``endpoint``'s entries."""
        name = check_part(endpoint, "endpoint")
        pattern = self._cache.keys.pattern("api", glob_escape(name), "*")
        return _Sweep(pattern, self._cache.keys("api", name) + ":")

    def _ttl(self, ttl: TTLLike | None) -> int:
        return self.ttl if ttl is None else to_seconds(ttl, name="ttl")

    def _lock_turn(self, key: str) -> _LockTurn:
        """A new try at ``key``'s cross-process lock; its wait starts now."""
        return _LockTurn(self, key)

    def _gave_up(self, key: str) -> None:
        logger.warning(
            "value for %r did not appear within %.1fs while another process held the lock; "
            "computing it here",
            self._cache.keys.strip(key),
            self.wait_timeout,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(ttl={self.ttl})"


class ResponseCache(_ResponseCacheBase):
    """API response cache on the sync client."""

    def _setup(self) -> None:
        self._key_locks: dict[str, tuple[threading.Lock, int]] = {}
        self._key_locks_guard = threading.Lock()

    def get(self, endpoint: str, user_id: str | int) -> Any | None:
        """The cached response, or None on a miss."""
        return self._answer(self._read(self._key(endpoint, user_id)))

    def set(self, endpoint: str, user_id: str | int, data: Any, ttl: TTLLike | None = None) -> None:
        """Cache ``data`` (stored as JSON) for ``ttl`` seconds (default: the store's TTL)."""
        key = self._key(endpoint, user_id)
        self._write(key, data, self._ttl(ttl))

    def invalidate(self, endpoint: str, user_id: str | int | None = None) -> int:
        """Drop one user's cached response, or every user's when ``user_id`` is None."""
        if user_id is not None:
            key = self._key(endpoint, user_id)
            with self._cache._operation():
                return int(self._cache.redis.delete(key))
        sweep = self._sweep(endpoint)
        with self._cache._operation():
            while not sweep.done:
                reply = self._cache.redis.scan(sweep.cursor, match=sweep.pattern, count=_SCAN_BATCH)
                if keys := sweep.page(reply):
                    sweep.unlinked(self._cache.redis.unlink(*keys))
        return sweep.removed

    def get_or_compute(
        self,
        endpoint: str,
        user_id: str | int,
        compute: Callable[[], T],
        ttl: TTLLike | None = None,
    ) -> T:
        """The cached response, or ``compute()``'s result cached — computed once per key even
        when many threads and processes miss at the same time."""
        key, seconds = self._key(endpoint, user_id), self._ttl(ttl)
        value = self._read(key)
        if self._hit(value):
            return value  # type: ignore[no-any-return]
        with self._key_lock(key):
            value = self._read(key)  # filled while we waited for the lock?
            if self._hit(value):
                return value  # type: ignore[no-any-return]
            return self._fill(key, compute, seconds)

    # -- internals ----------------------------------------------------------------------------

    def _read(self, key: str) -> Any:
        """The stored value (JSON ``null`` included), or ``_MISS`` when there is none."""
        with self._cache._operation():
            raw = self._cache.redis.get(key)
        return self._stored(raw, key)

    def _write(self, key: str, data: Any, seconds: int) -> None:
        payload = encode_json(data, key=key)
        with self._cache._operation():
            self._cache.redis.set(key, payload, ex=seconds)

    def _fill(self, key: str, compute: Callable[[], T], seconds: int) -> T:
        turn = self._lock_turn(key)
        while not self._try_lock(turn):
            delay = turn.next_delay()
            if delay is None:  # the holder died or is too slow: compute it here
                return self._compute_and_store(key, compute, seconds)
            time.sleep(delay)  # another process is computing: poll for its result
            if self._hit(value := self._read(key)):
                return value  # type: ignore[no-any-return]
        try:
            return self._compute_and_store(key, compute, seconds)
        finally:
            self._unlock(turn)

    def _try_lock(self, turn: _LockTurn) -> bool:
        with self._cache._operation():
            return bool(self._cache.redis.set(turn.lock_key, turn.token, nx=True, px=turn.ms))

    def _unlock(self, turn: _LockTurn) -> None:
        # Best effort: the lock expires by itself (PX), and a failure here must not hide the
        # computed value or compute()'s own error.
        with contextlib.suppress(CacheError), self._cache._operation():
            self._release(keys=[turn.lock_key], args=[turn.token])

    def _compute_and_store(self, key: str, compute: Callable[[], T], seconds: int) -> T:
        value = compute()
        self._count(False)
        self._write(key, value, seconds)
        return value

    @contextlib.contextmanager
    def _key_lock(self, key: str) -> Iterator[None]:
        with self._key_locks_guard:
            lock, users = self._key_locks.get(key, (threading.Lock(), 0))
            self._key_locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._key_locks_guard:
                lock, users = self._key_locks[key]
                if users == 1:
                    del self._key_locks[key]
                else:
                    self._key_locks[key] = (lock, users - 1)


class AsyncResponseCache(_ResponseCacheBase):
    """API response cache on the asyncio client."""

    def _setup(self) -> None:
        self._inflight: dict[str, asyncio.Task[Any]] = {}

    async def get(self, endpoint: str, user_id: str | int) -> Any | None:
        """The cached response, or None on a miss."""
        return self._answer(await self._read(self._key(endpoint, user_id)))

    async def set(
        self, endpoint: str, user_id: str | int, data: Any, ttl: TTLLike | None = None
    ) -> None:
        """Cache ``data`` (stored as JSON) for ``ttl`` seconds (default: the store's TTL)."""
        key = self._key(endpoint, user_id)
        await self._write(key, data, self._ttl(ttl))

    async def invalidate(self, endpoint: str, user_id: str | int | None = None) -> int:
        """Drop one user's cached response, or every user's when ``user_id`` is None."""
        if user_id is not None:
            key = self._key(endpoint, user_id)
            with self._cache._operation():
                return int(await self._cache.redis.delete(key))
        sweep = self._sweep(endpoint)
        with self._cache._operation():
            while not sweep.done:
                reply = await self._cache.redis.scan(
                    sweep.cursor, match=sweep.pattern, count=_SCAN_BATCH
                )
                if keys := sweep.page(reply):
                    sweep.unlinked(await self._cache.redis.unlink(*keys))
        return sweep.removed

    @overload
    async def get_or_compute(
        self,
        endpoint: str,
        user_id: str | int,
        compute: Callable[[], Awaitable[T]],
        ttl: TTLLike | None = None,
    ) -> T: ...

    @overload
    async def get_or_compute(
        self,
        endpoint: str,
        user_id: str | int,
        compute: Callable[[], T],
        ttl: TTLLike | None = None,
    ) -> T: ...

    async def get_or_compute(
        self,
        endpoint: str,
        user_id: str | int,
        compute: Callable[[], Any],
        ttl: TTLLike | None = None,
    ) -> Any:
        """The cached response, or ``compute()``'s result (sync or async) cached — computed
        once per key even when many tasks and processes miss at the same time."""
        key, seconds = self._key(endpoint, user_id), self._ttl(ttl)
        # Single flight over the whole lookup: concurrent callers share one GET (and at most
        # one compute), so a burst on a hot key costs one connection, not one per caller.
        task = self._inflight.get(key)
        if task is not None and task.get_loop() is not asyncio.get_running_loop():
            task = None  # left over from another event loop: not awaitable here
        leader = task is None
        if task is None:
            task = asyncio.ensure_future(self._load(key, compute, seconds))
            self._inflight[key] = task
            task.add_done_callback(self._forget(key))
        # shield: a caller that is cancelled must not cancel the others' computation.
        result = await asyncio.shield(task)
        if not leader:
            self._count(True)
        return result

    # -- internals ----------------------------------------------------------------------------

    def _forget(self, key: str) -> Callable[[asyncio.Task[Any]], None]:
        def done(task: asyncio.Task[Any]) -> None:
            if self._inflight.get(key) is task:
                del self._inflight[key]
            if not task.cancelled():
                task.exception()  # retrieved: the callers got it; no "never retrieved" noise

        return done

    async def _load(
        self, key: str, compute: Callable[[], Awaitable[T]] | Callable[[], T], seconds: int
    ) -> T:
        value = await self._read(key)
        if self._hit(value):
            return value  # type: ignore[no-any-return]
        return await self._fill(key, compute, seconds)

    async def _read(self, key: str) -> Any:
        """The stored value (JSON ``null`` included), or ``_MISS`` when there is none."""
        with self._cache._operation():
            raw = await self._cache.redis.get(key)
        return self._stored(raw, key)

    async def _write(self, key: str, data: Any, seconds: int) -> None:
        payload = encode_json(data, key=key)
        with self._cache._operation():
            await self._cache.redis.set(key, payload, ex=seconds)

    async def _fill(
        self, key: str, compute: Callable[[], Awaitable[T]] | Callable[[], T], seconds: int
    ) -> T:
        turn = self._lock_turn(key)
        while not await self._try_lock(turn):
            delay = turn.next_delay()
            if delay is None:  # the holder died or is too slow: compute it here
                return await self._compute_and_store(key, compute, seconds)
            await asyncio.sleep(delay)  # another process is computing: poll for its result
            if self._hit(value := await self._read(key)):
                return value  # type: ignore[no-any-return]
        try:
            return await self._compute_and_store(key, compute, seconds)
        finally:
            await self._unlock(turn)

    async def _try_lock(self, turn: _LockTurn) -> bool:
        with self._cache._operation():
            return bool(await self._cache.redis.set(turn.lock_key, turn.token, nx=True, px=turn.ms))

    async def _unlock(self, turn: _LockTurn) -> None:
        # Best effort: the lock expires by itself (PX), and a failure here must not hide the
        # computed value or compute()'s own error.
        with contextlib.suppress(CacheError), self._cache._operation():
            await self._release(keys=[turn.lock_key], args=[turn.token])

    async def _compute_and_store(
        self, key: str, compute: Callable[[], Awaitable[T]] | Callable[[], T], seconds: int
    ) -> T:
        result = compute()
        value: T = await result if inspect.isawaitable(result) else result
        self._count(False)
        await self._write(key, value, seconds)
        return value
