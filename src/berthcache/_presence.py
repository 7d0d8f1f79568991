"""Presence: ``{prefix}presence:{user_id}`` = epoch MILLISECONDS of the last activity, 5-minute TTL.

The value is what the seed's ``Date.now()`` writes (an integer string such as
``"1764452400123"``), so a TypeScript service on the seed and a Python one on berthcache read
each other's presence. Values below 100 000 000 000 are older berthcache values in epoch
SECONDS (``"1764452400.123"``) and are still read, converted.

A user is online when the key exists AND the stored time is within the window (the TTL, 5
minutes): ``now_ms - stored_ms < window_ms``, the seed's own test. Existence alone is not
enough — a key re-armed with a fresh TTL may hold a value 10 minutes old. ``online()`` asks about
many users in one MGET round trip; ``offline()`` deletes the key (logout).

Every decision (keys, the value written, parsing, the online rule) is made in
:class:`_PresenceBase`; the twins only send the command and hand the reply back to it.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
import re
import time
from collections.abc import Iterable
from typing import Any

from berthcache._exceptions import SerializationError
from berthcache._host import CacheHost
from berthcache._parts import as_text, check_part
from berthcache._ttl import TTL, TTLLike, to_seconds

__all__ = ["SECONDS_VALUE_BELOW", "AsyncPresence", "Presence"]

#: A stored value below this is epoch seconds (older berthcache), not epoch milliseconds:
#: 1e11 ms is March 1973, 1e11 s is the year 5138.
SECONDS_VALUE_BELOW = 100_000_000_000


#: A stored time: a plain decimal number (JavaScript's ``Number`` reads these the same way).
_DECIMAL = re.compile(r"\s*\d+(?:\.\d+)?\s*")
#: How many bad keys a Presence remembers having logged before it starts over.
_REPORTED_KEYS = 1024

logger = logging.getLogger("berthcache.presence")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class _PresenceBase:
    """Keys, the stored value, its parsing and the online rule — no I/O."""

    def __init__(self, cache: CacheHost, *, ttl: TTLLike = TTL.PRESENCE) -> None:
        self._cache = cache
        self.ttl = to_seconds(ttl, name="ttl")
        self._reported: set[str] = set()  # keys whose bad value was logged already

    def _key(self, user_id: str | int) -> str:
        return self._cache.keys("presence", check_part(user_id, "user_id"))

    @staticmethod
    def _now() -> str:
        """The value ``touch`` writes: ``Date.now()`` as the seed writes it."""
        return str(_now_ms())

    def _ids(self, user_ids: Iterable[str | int]) -> tuple[list[str], list[str]]:
        if isinstance(user_ids, str | bytes):
            raise TypeError("user_ids must be a collection of ids, not a single string")
        ids = [check_part(u, "user_ids") for u in user_ids]
        return ids, [self._cache.keys("presence", u) for u in ids]

    @staticmethod
    def _stored_ms(raw: Any, key: str) -> int | None:
        """The stored time in epoch ms (seconds values converted), None for a missing key.

        Only plain decimal numbers are times (what ``Date.now()`` and older berthcache wrote);
        anything else — ``nan``, ``1_000``, ``-5``, text — raises SerializationError naming the key.
        """
        if raw is None:
            return None
        text = as_text(raw)
        number = float(text) if _DECIMAL.fullmatch(text) else math.nan
        if not math.isfinite(number):
            raise SerializationError(
                f"value at key {key!r} is not a time in epoch milliseconds (or seconds)"
            )
        return round(number * 1000 if number < SECONDS_VALUE_BELOW else number)

    def _online(self, raw: Any, key: str, now_ms: int | None = None) -> bool:
        """The seed's rule on the stored time: seen less than the window (the TTL) ago.

        A value that is not a time is offline, as in the seed (``Date.now() - Number(v)`` is NaN
        there, and NaN is never below the window): one bad key must not fail a whole batch. It is
        logged once per key.
        """
        try:
            stored = self._stored_ms(raw, key)
        except SerializationError as exc:
            if key not in self._reported:
                if len(self._reported) >= _REPORTED_KEYS:
                    self._reported.clear()
                self._reported.add(key)
                logger.warning("%s; counted as offline", exc)
            return False
        if stored is None:
            return False
        return (_now_ms() if now_ms is None else now_ms) - stored < self.ttl * 1000

    def _online_many(self, ids: list[str], keys: list[str], values: list[Any]) -> dict[str, bool]:
        now_ms = _now_ms()
        return {
            user: self._online(value, key, now_ms)
            for user, key, value in zip(ids, keys, values, strict=True)
        }

    def _last_seen(self, raw: Any, key: str) -> _dt.datetime | None:
        stored = self._stored_ms(raw, key)
        if stored is None:
            return None
        try:
            return _dt.datetime.fromtimestamp(stored / 1000, tz=_dt.UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise SerializationError(f"value at key {key!r} is not a usable time") from exc

    def __repr__(self) -> str:
        return f"{type(self).__name__}(ttl={self.ttl})"


class Presence(_PresenceBase):
    """Presence on the sync client."""

    def touch(self, user_id: str | int) -> None:
        """Record activity now; the user stays online for ``ttl`` seconds."""
        key = self._key(user_id)
        with self._cache._operation():
            self._cache._transport.call(("SET", key, self._now(), "EX", self.ttl))

    def is_online(self, user_id: str | int) -> bool:
        """True when the user was seen within the last ``ttl`` seconds (by the stored time)."""
        key = self._key(user_id)
        with self._cache._operation():
            raw = self._cache._transport.call(("GET", key))
        return self._online(raw, key)

    def last_seen(self, user_id: str | int) -> _dt.datetime | None:
        """When the user was last seen (aware UTC), or None when there is no record."""
        key = self._key(user_id)
        with self._cache._operation():
            raw = self._cache._transport.call(("GET", key))
        return self._last_seen(raw, key)

    def online(self, user_ids: Iterable[str | int]) -> dict[str, bool]:
        """``{user_id: online}`` for many users in one round trip."""
        ids, keys = self._ids(user_ids)
        if not keys:
            return {}
        with self._cache._operation():
            values = self._cache._transport.call(("MGET", *keys))
        return self._online_many(ids, keys, values)

    def offline(self, user_id: str | int) -> bool:
        """Mark the user offline now (logout); False when there was no record."""
        key = self._key(user_id)
        with self._cache._operation():
            return bool(self._cache._transport.call(("DEL", key)))


class AsyncPresence(_PresenceBase):
    """Presence on the asyncio client."""

    async def touch(self, user_id: str | int) -> None:
        """Record activity now; the user stays online for ``ttl`` seconds."""
        key = self._key(user_id)
        with self._cache._operation():
            await self._cache._transport.call(("SET", key, self._now(), "EX", self.ttl))

    async def is_online(self, user_id: str | int) -> bool:
        """True when the user was seen within the last ``ttl`` seconds (by the stored time)."""
        key = self._key(user_id)
        with self._cache._operation():
            raw = await self._cache._transport.call(("GET", key))
        return self._online(raw, key)

    async def last_seen(self, user_id: str | int) -> _dt.datetime | None:
        """When the user was last seen (aware UTC), or None when there is no record."""
        key = self._key(user_id)
        with self._cache._operation():
            raw = await self._cache._transport.call(("GET", key))
        return self._last_seen(raw, key)

    async def online(self, user_ids: Iterable[str | int]) -> dict[str, bool]:
        """``{user_id: online}`` for many users in one round trip."""
        ids, keys = self._ids(user_ids)
        if not keys:
            return {}
        with self._cache._operation():
            values = await self._cache._transport.call(("MGET", *keys))
        return self._online_many(ids, keys, values)

    async def offline(self, user_id: str | int) -> bool:
        """Mark the user offline now (logout); False when there was no record."""
        key = self._key(user_id)
        with self._cache._operation():
            return bool(await self._cache._transport.call(("DEL", key)))
