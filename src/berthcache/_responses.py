"""API response cache: ``{prefix}api:{endpoint}:{user_id}`` holding JSON, 5-minute TTL.

``get_or_compute`` protects the backend from a stampede of concurrent misses on a cold key, in
two layers:

1. in process — single flight: one caller (a task, or a thread) looks the key up and computes,
   every other caller on that key waits for that one outcome — the value, or the very error
   ``compute()`` raised (never a queue of computes);
2. across processes — a short Redis lock ``{prefix}lock:api:{endpoint}:{user_id}``
   (``SET NX PX`` with a random token, released by the compare-and-delete script
   ``resources/release_lock.lua``). Processes that lose the race poll for the value with a
   bounded backoff; if it does not appear within ``wait_timeout`` (the holder died or is too
   slow) they compute it themselves, so a crashed holder delays callers but never blocks them.
   A holder whose compute raised releases the lock: the next process tries, one at a time.

Every Redis step of the response cache (read, write, lock) runs within
``response_cache_timeout_ms`` (``REDIS_RESPONSE_CACHE_TIMEOUT_MS``, default 500) with no
retries (the budget is handed to the cache's transport). When a step finds Redis unavailable
or over budget, ``get_or_compute`` serves through the outage (``serve_through_outage``, default
on): it computes and returns the value without storing it, counts it in
``stats.served_through_outage``, and logs one warning when the outage starts and one info line
when Redis answers again.

``invalidate(endpoint)`` without a user removes exactly that endpoint's entries
``{prefix}api:{endpoint}:{user_id}``, as the seed's endpoint-wide invalidation means it, without
listing keys (the app user may not SCAN: it would list every tenant's keys). Every write records
its user id in the endpoint's index, the sorted set ``{prefix}api-index:{endpoint}`` (score: the
entry's expiry in epoch ms), in the same MULTI/EXEC as the entry; the index expires with its
newest entry (EXPIRE NX, then GT) and each write prunes members expired more than a minute ago
(a margin for clock skew between app servers), so it holds about the live entries, not every
user ever seen. ``invalidate(endpoint)`` runs ``resources/invalidate_endpoint.lua``: it takes
up to 500 index members, deletes their entries and removes them from the index atomically, and
is called again while members remain (bounded by the count it started with, so writers cannot
keep it going). An entry written meanwhile is either deleted with its member or stays indexed —
never orphaned, and no retry loop under contention. The index is per exact endpoint name, so a
nested endpoint (``clients:list`` under ``clients``) keeps its entries. Keys and values are the
seed's, unchanged; an entry a seed service wrote is not indexed: it is not removed by the
endpoint-wide invalidation and expires by its TTL (5 minutes). User ids containing ``:`` are
refused (InvalidKeyError naming ``user_id``): they would make keys ambiguous.

Every decision — keys, validation, encoding, what a write queues, how far an invalidation goes,
when to give up waiting for another process's lock — is made in :class:`_ResponseCacheBase` and
its step objects (:class:`_Sweep`, :class:`_LockTurn`); the twins only send the commands they
are handed.
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

from berthcache._budget import Budget
from berthcache._exceptions import (
    CacheError,
    CacheServerError,
    CacheUnavailableError,
    ConfigurationError,
    InvalidKeyError,
    OutOfMemoryError,
    ReadOnlyError,
    TLSError,
)
from berthcache._host import CacheHost
from berthcache._parts import KeyMemo, check_part
from berthcache._scripts import register_script
from berthcache._transport import Args, raise_first_error
from berthcache._ttl import MAX_TTL_SECONDS, TTL, TTLLike, to_seconds

__all__ = ["AsyncResponseCache", "CacheStats", "ResponseCache"]

logger = logging.getLogger("berthcache.responses")

T = TypeVar("T")
#: Index members are pruned this long after the expiry the writer computed: app servers' clocks
#: may disagree, and pruning a live entry's member would hide it from ``invalidate(endpoint)``.
_INDEX_GRACE_MS = 60_000
#: Index members one call of the invalidation script handles: bounded work per call.
_SWEEP_CHUNK = 500
#: What ``_read`` returns for a missing key — distinct from a cached JSON ``null``, so that a
#: computed ``None`` is a hit too instead of being recomputed on every call.
_MISS: Any = object()
#: What a step returns when Redis is unavailable and the cache serves through the outage.
_DOWN: Any = object()
#: Server errors that mean "Redis cannot serve now" (TLSError, a configuration problem, excepted).
_OUTAGES = (CacheUnavailableError, ReadOnlyError, OutOfMemoryError)
#: Argument types whose entry keys are memoized (``_key``).
_MEMO_TYPES = (str, int)
_FIRST_DELAY = 0.01
_MAX_DELAY = 0.2


@dataclasses.dataclass(frozen=True, slots=True)
class CacheStats:
    """Hits and misses of one ResponseCache since it was created (this process only)."""

    hits: int
    misses: int
    hit_rate: float  # hits / (hits + misses); 0.0 before the first lookup
    #: Computed values returned without the cache because Redis was unavailable or over budget.
    served_through_outage: int = 0


def _positive(value: float, name: str) -> float:
    """Seconds in ``(0, MAX_TTL_SECONDS]``: the lock's PX is ``lock_timeout`` in ms, and an
    infinite wait is no bound."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 < value <= MAX_TTL_SECONDS
    ):
        raise ConfigurationError(
            name, f"must be a positive number of seconds up to {MAX_TTL_SECONDS}, got {value!r}"
        )
    return float(value)


def _delays() -> Iterator[float]:
    delay = _FIRST_DELAY
    while True:
        yield delay
        delay = min(delay * 2, _MAX_DELAY)


class _Flight:
    """One in-process lookup of a key that other threads wait for: its value or its error."""

    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.value: Any = None


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
    """One endpoint-wide invalidation: the script's arguments, how many entries it removed,
    and when to stop — the index is empty, or as many chunks ran as the first reply's count
    needed (entries written after the call began may stay: writers cannot keep it going)."""

    __slots__ = ("_rounds_left", "args", "index", "removed")

    def __init__(self, index: str, head: str) -> None:
        self.index = index
        self.args = [head, _SWEEP_CHUNK]
        self.removed = 0
        self._rounds_left: int | None = None  # known after the first reply

    @property
    def done(self) -> bool:
        return self._rounds_left == 0

    def record(self, reply: Any) -> None:
        """One script reply: ``[deleted, members left]``."""
        deleted, left = int(reply[0]), int(reply[1])
        self.removed += deleted
        if self._rounds_left is None:
            self._rounds_left = -(-left // _SWEEP_CHUNK)  # the chunks the rest needed then
        else:
            self._rounds_left -= 1
        if left == 0:
            self._rounds_left = 0


class _ResponseCacheBase:
    """Keys, validation, encoding and the counters — no I/O."""

    def __init__(
        self,
        cache: CacheHost,
        *,
        ttl: TTLLike = TTL.API_RESPONSE,
        lock_timeout: float = 10.0,
        wait_timeout: float = 5.0,
        timeout_ms: int | None = None,
        serve_through_outage: bool | None = None,
    ) -> None:
        self._cache = cache
        self.ttl = to_seconds(ttl, name="ttl")
        self.lock_timeout = _positive(lock_timeout, "lock_timeout")
        self.wait_timeout = _positive(wait_timeout, "wait_timeout")
        if timeout_ms is None:
            timeout_ms = cache.config.response_cache_timeout_ms
        elif isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int) or timeout_ms < 1:
            raise ConfigurationError(
                "timeout_ms", f"must be a positive number of milliseconds, got {timeout_ms!r}"
            )
        if serve_through_outage is None:
            serve_through_outage = cache.config.serve_through_outage
        elif not isinstance(serve_through_outage, bool):
            raise ConfigurationError("serve_through_outage", "must be true or false")
        #: How long each Redis step (read, write, lock) may take.
        self.budget = Budget(timeout_ms, "response_cache_timeout_ms")
        self.serve_through_outage = serve_through_outage
        self._release: Any = register_script(cache._transport, "release_lock.lua")
        self._sweep_script: Any = register_script(cache._transport, "invalidate_endpoint.lua")
        self._counter_lock = threading.Lock()
        self._keys_seen = KeyMemo()
        self._hits = 0
        self._misses = 0
        self._served_through = 0
        self._down = False  # in an outage (logged once when it starts, once when it ends)
        self._down_served = 0
        self._setup()

    def _setup(self) -> None:
        """The twin's own in-process single-flight state (a base needs none)."""

    @property
    def stats(self) -> CacheStats:
        """Hits and misses so far (a hit = served without computing)."""
        with self._counter_lock:
            hits, misses, through = self._hits, self._misses, self._served_through
        total = hits + misses
        return CacheStats(
            hits=hits,
            misses=misses,
            hit_rate=hits / total if total else 0.0,
            served_through_outage=through,
        )

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

    def _stored(self, raw: Any, key: str) -> Any:
        """A GET reply as the stored value (JSON ``null`` included), or ``_MISS``."""
        return _MISS if raw is None else self._cache._json.decode_json(raw, key=key)

    def _hit(self, value: Any) -> bool:
        """Whether ``value`` was found in the cache; counts the hit when it was."""
        if value is _MISS or value is _DOWN:
            return False
        with self._counter_lock:
            self._hits += 1
        return True

    def _outage(self, exc: CacheServerError) -> Any:
        """A Redis step failed: ``_DOWN`` when that is an outage to serve through (the first
        of an outage logged as a warning); re-raised otherwise."""
        if not self.serve_through_outage or isinstance(exc, TLSError):
            raise exc
        if not isinstance(exc, _OUTAGES):
            raise exc
        with self._counter_lock:
            first, self._down = not self._down, True
        if first:
            logger.warning(
                "response cache: Redis unavailable (%s); serving computed responses without "
                "the cache until it answers again",
                exc,
            )
        return _DOWN

    def _up(self) -> None:
        """A Redis step succeeded: log the end of an outage, once."""
        if not self._down:  # the common case, read without the lock
            return
        with self._counter_lock:
            was, self._down = self._down, False
            served, self._down_served = self._down_served, 0
        if was:
            logger.info(
                "response cache: Redis answers again; %d response(s) were served without the "
                "cache during the outage",
                served,
            )

    def _served(self) -> None:
        """Count one computed value returned without the cache (an outage)."""
        with self._counter_lock:
            self._misses += 1
            self._served_through += 1
            self._down_served += 1

    def _key(self, endpoint: str, user_id: str | int) -> str:
        # A hot endpoint is read for the same users again and again: their keys are memoized
        # (exact str/int parts only, so a bool or a str subclass is still checked each time).
        if type(endpoint) is not str or type(user_id) not in _MEMO_TYPES:
            return self._build_key(endpoint, user_id)
        pair = (endpoint, user_id)
        return self._keys_seen.get(pair) or self._keys_seen.remember(
            pair, self._build_key(endpoint, user_id)
        )

    def _build_key(self, endpoint: str, user_id: str | int) -> str:
        user = check_part(user_id, "user_id")
        if ":" in user:
            raise InvalidKeyError(
                f"user_id must not contain ':' (got {user!r}): api:{{endpoint}}:{{user_id}} "
                "would be ambiguous with a nested endpoint"
            )
        return self._cache.keys("api", self._endpoint_part(endpoint), user)

    def _endpoint_part(self, endpoint: str) -> str:
        """The endpoint as a key part: ``{endpoint}`` (a hash tag) in cluster mode, so its
        entries and its index share one slot and the invalidation script touches one node."""
        name = check_part(endpoint, "endpoint")
        return f"{{{name}}}" if self._cache.config.cluster else name

    def _lock_key(self, key: str) -> str:
        return self._cache.keys("lock", self._cache.keys.strip(key))

    def _index_key(self, endpoint: str) -> str:
        """``{prefix}api-index:{endpoint}``: the user ids of the endpoint's entries."""
        return self._cache.keys("api-index", self._endpoint_part(endpoint))

    def _write_commands(self, key: str, data: Any, seconds: int) -> list[Args]:
        """The transaction of a write: the entry, and its user id in the endpoint's index."""
        payload = self._cache._json.encode_json(data, key=key)
        # key = {prefix}api:{endpoint}:{user}; the user id holds no ':' (see _key).
        endpoint, user = self._cache.keys.strip(key).removeprefix("api:").rsplit(":", 1)
        index = self._cache.keys("api-index", endpoint)
        now_ms = time.time_ns() // 1_000_000
        # The index lives as long as its longest-lived entry: NX sets a first TTL, GT only
        # ever extends it (as the sessions index does).
        return [
            ("SET", key, payload, "EX", seconds),
            ("ZADD", index, now_ms + seconds * 1000, user),
            ("ZREMRANGEBYSCORE", index, "-inf", f"({now_ms - _INDEX_GRACE_MS}"),
            ("EXPIRE", index, seconds, "NX"),
            ("EXPIRE", index, seconds, "GT"),
        ]

    def _sweep(self, endpoint: str) -> _Sweep:
        """A new endpoint-wide invalidation of exactly ``endpoint``'s indexed entries."""
        name = self._endpoint_part(endpoint)
        return _Sweep(self._cache.keys("api-index", name), self._cache.keys("api", name) + ":")

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
        return (
            f"{type(self).__name__}(ttl={self.ttl}, timeout_ms={self.budget.ms}, "
            f"serve_through_outage={self.serve_through_outage})"
        )


class ResponseCache(_ResponseCacheBase):
    """API response cache on the sync client."""

    def _setup(self) -> None:
        self._flights: dict[str, _Flight] = {}
        self._flights_guard = threading.Lock()

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
                return int(self._cache._transport.call(("DEL", key)))
        sweep = self._sweep(endpoint)
        with self._cache._operation():
            while not sweep.done:
                sweep.record(self._sweep_script(keys=[sweep.index], args=sweep.args))
        return sweep.removed

    def get_or_compute(
        self,
        endpoint: str,
        user_id: str | int,
        compute: Callable[[], T],
        ttl: TTLLike | None = None,
    ) -> T:
        """The cached response, or ``compute()``'s result cached — computed once per key even
        when many threads and processes miss at the same time (threads waiting on a compute
        that raised get its error). When Redis is unavailable or over budget the value is
        computed and returned uncached (``serve_through_outage``)."""
        key, seconds = self._key(endpoint, user_id), self._ttl(ttl)
        # Single flight over the whole lookup, as on the async twin: concurrent callers share
        # one GET (and at most one compute), so a burst on a key costs one connection.
        return self._single_flight(key, lambda: self._load(key, compute, seconds))

    # -- internals ----------------------------------------------------------------------------

    def _read(self, key: str) -> Any:
        """The stored value (JSON ``null`` included), or ``_MISS`` when there is none."""
        with self._cache._operation():
            raw = self._cache._transport.call(("GET", key), budget=self.budget)
        return self._stored(raw, key)

    def _read_or_down(self, key: str) -> Any:
        """``_read``, or ``_DOWN`` in an outage served through."""
        try:
            value = self._read(key)
        except CacheServerError as exc:
            return self._outage(exc)
        self._up()
        return value

    def _write(self, key: str, data: Any, seconds: int) -> None:
        commands = self._write_commands(key, data, seconds)
        with self._cache._operation():
            replies = self._cache._transport.batch(commands, transaction=True, budget=self.budget)
            raise_first_error(replies, commands)

    def _single_flight(self, key: str, load: Callable[[], T]) -> T:
        """``load()`` run by one thread per key at a time; the others wait for its outcome."""
        with self._flights_guard:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error  # the leader's compute (or lookup) failed: the same error
            self._count(True)  # served without computing
            return flight.value  # type: ignore[no-any-return]
        try:
            flight.value = load()
            return flight.value  # type: ignore[no-any-return]
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._flights_guard:
                del self._flights[key]
            flight.done.set()

    def _load(self, key: str, compute: Callable[[], T], seconds: int) -> T:
        """The leader's lookup: read, take the cross-process lock, compute."""
        if (value := self._read_or_down(key)) is _DOWN:
            return self._compute_uncached(compute)
        if self._hit(value):
            return value  # type: ignore[no-any-return]
        turn = self._lock_turn(key)
        while (locked := self._try_lock(turn)) is not True:
            if locked is _DOWN:
                return self._compute_uncached(compute)
            delay = turn.next_delay()
            if delay is None:  # the holder died or is too slow: compute it here
                return self._compute_and_store(key, compute, seconds)
            time.sleep(delay)  # another process is computing: poll for its result
            if (value := self._read_or_down(key)) is _DOWN:
                return self._compute_uncached(compute)
            if self._hit(value):
                return value  # type: ignore[no-any-return]
        try:
            return self._compute_and_store(key, compute, seconds)
        finally:
            self._unlock(turn)

    def _try_lock(self, turn: _LockTurn) -> Any:
        """True (taken), False (another holder) or ``_DOWN``."""
        try:
            with self._cache._operation():
                taken = self._cache._transport.call(
                    ("SET", turn.lock_key, turn.token, "NX", "PX", turn.ms), budget=self.budget
                )
        except CacheServerError as exc:
            return self._outage(exc)
        self._up()
        return bool(taken)

    def _unlock(self, turn: _LockTurn) -> None:
        # Best effort: the lock expires by itself (PX), and a failure here must not hide the
        # computed value or compute()'s own error.
        with contextlib.suppress(CacheError), self._cache._operation():
            self._release.one(turn.lock_key, turn.token, self.budget)

    def _compute_uncached(self, compute: Callable[[], T]) -> T:
        value = compute()
        self._served()
        return value

    def _compute_and_store(self, key: str, compute: Callable[[], T], seconds: int) -> T:
        value = compute()
        try:
            self._write(key, value, seconds)
        except CacheServerError as exc:
            self._outage(exc)  # re-raises unless served through
            self._served()
            return value
        self._up()
        self._count(False)
        return value


class AsyncResponseCache(_ResponseCacheBase):
    """API response cache on the asyncio client."""

    def _setup(self) -> None:
        self._inflight: dict[str, asyncio.Task[Any]] = {}

    async def get(self, endpoint: str, user_id: str | int) -> Any | None:
        """The cached response, or None on a miss."""
        key = self._key(endpoint, user_id)
        cache = self._cache
        with cache._operation():  # _read and _answer, inlined: this is an API's hot path
            raw = await cache._transport.call(("GET", key), budget=self.budget)
        # The counters without their lock: an AsyncCache, like any asyncio object, is used
        # from its event loop's thread (its transport refuses a second loop — per node in
        # cluster mode), so every count of this twin comes from one thread.
        if raw is None:
            self._misses += 1
            return None
        value = cache._json.decode_json(raw, key=key)
        self._hits += 1
        return value

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
                return int(await self._cache._transport.call(("DEL", key)))
        sweep = self._sweep(endpoint)
        with self._cache._operation():
            while not sweep.done:
                sweep.record(await self._sweep_script(keys=[sweep.index], args=sweep.args))
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
        """The leader's lookup: read, take the cross-process lock, compute."""
        if (value := await self._read_or_down(key)) is _DOWN:
            return await self._compute_uncached(compute)
        if self._hit(value):
            return value  # type: ignore[no-any-return]
        turn = self._lock_turn(key)
        while (locked := await self._try_lock(turn)) is not True:
            if locked is _DOWN:
                return await self._compute_uncached(compute)
            delay = turn.next_delay()
            if delay is None:  # the holder died or is too slow: compute it here
                return await self._compute_and_store(key, compute, seconds)
            await asyncio.sleep(delay)  # another process is computing: poll for its result
            if (value := await self._read_or_down(key)) is _DOWN:
                return await self._compute_uncached(compute)
            if self._hit(value):
                return value  # type: ignore[no-any-return]
        try:
            return await self._compute_and_store(key, compute, seconds)
        finally:
            await self._unlock(turn)

    async def _read(self, key: str) -> Any:
        """The stored value (JSON ``null`` included), or ``_MISS`` when there is none."""
        with self._cache._operation():
            raw = await self._cache._transport.call(("GET", key), budget=self.budget)
        return self._stored(raw, key)

    async def _read_or_down(self, key: str) -> Any:
        """``_read``, or ``_DOWN`` in an outage served through."""
        try:
            value = await self._read(key)
        except CacheServerError as exc:
            return self._outage(exc)
        self._up()
        return value

    async def _write(self, key: str, data: Any, seconds: int) -> None:
        commands = self._write_commands(key, data, seconds)
        with self._cache._operation():
            replies = await self._cache._transport.batch(
                commands, transaction=True, budget=self.budget
            )
            raise_first_error(replies, commands)

    async def _try_lock(self, turn: _LockTurn) -> Any:
        """True (taken), False (another holder) or ``_DOWN``."""
        try:
            with self._cache._operation():
                taken = await self._cache._transport.call(
                    ("SET", turn.lock_key, turn.token, "NX", "PX", turn.ms), budget=self.budget
                )
        except CacheServerError as exc:
            return self._outage(exc)
        self._up()
        return bool(taken)

    async def _unlock(self, turn: _LockTurn) -> None:
        # Best effort: the lock expires by itself (PX), and a failure here must not hide the
        # computed value or compute()'s own error.
        with contextlib.suppress(CacheError), self._cache._operation():
            await self._release.one(turn.lock_key, turn.token, self.budget)

    async def _compute_uncached(self, compute: Callable[[], Awaitable[T]] | Callable[[], T]) -> T:
        result = compute()
        value: T = await result if inspect.isawaitable(result) else result
        self._served()
        return value

    async def _compute_and_store(
        self, key: str, compute: Callable[[], Awaitable[T]] | Callable[[], T], seconds: int
    ) -> T:
        result = compute()
        value: T = await result if inspect.isawaitable(result) else result
        try:
            await self._write(key, value, seconds)
        except CacheServerError as exc:
            self._outage(exc)  # re-raises unless served through
            self._served()
            return value
        self._up()
        self._count(False)
        return value
