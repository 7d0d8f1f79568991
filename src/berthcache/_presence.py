"""Presence: ``{prefix}presence:{user_id}`` = unix time of the last activity, 5-minute TTL.

A user is online while the key exists — the TTL does the "seen in the last 5 minutes" test on
the server, so app servers with skewed clocks still agree. ``online()`` asks about many users
in one MGET round trip.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Iterable
from typing import Any

from berthcache._exceptions import SerializationError
from berthcache._host import CacheHost
from berthcache._parts import as_text, check_part
from berthcache._ttl import TTL, TTLLike, to_seconds

__all__ = ["AsyncPresence", "Presence"]


class _PresenceBase:
    """Keys and parsing — no I/O."""

    def __init__(self, cache: CacheHost, *, ttl: TTLLike = TTL.PRESENCE) -> None:
        self._cache = cache
        self.ttl = to_seconds(ttl, name="ttl")

    def _key(self, user_id: str | int) -> str:
        return self._cache.keys("presence", check_part(user_id, "user_id"))

    @staticmethod
    def _now() -> str:
        return f"{time.time():.3f}"

    def _ids(self, user_ids: Iterable[str | int]) -> tuple[list[str], list[str]]:
        if isinstance(user_ids, str | bytes):
            raise TypeError("user_ids must be a collection of ids, not a single string")
        ids = [check_part(u, "user_ids") for u in user_ids]
        return ids, [self._cache.keys("presence", u) for u in ids]

    @staticmethod
    def _parse(raw: Any, key: str) -> _dt.datetime | None:
        if raw is None:
            return None
        try:
            return _dt.datetime.fromtimestamp(float(as_text(raw)), tz=_dt.UTC)
        except (ValueError, OverflowError, OSError) as exc:
            raise SerializationError(f"value at key {key!r} is not a unix timestamp") from exc

    def __repr__(self) -> str:
        return f"{type(self).__name__}(ttl={self.ttl})"


class Presence(_PresenceBase):
    """Presence on the sync client."""

    def touch(self, user_id: str | int) -> None:
        """Record activity now; the user stays online for ``ttl`` seconds."""
        key = self._key(user_id)
        with self._cache._operation():
            self._cache.redis.set(key, self._now(), ex=self.ttl)

    def is_online(self, user_id: str | int) -> bool:
        """True when the user was seen within the last ``ttl`` seconds."""
        key = self._key(user_id)
        with self._cache._operation():
            return bool(self._cache.redis.exists(key))

    def last_seen(self, user_id: str | int) -> _dt.datetime | None:
        """When the user was last seen (UTC), or None when not online."""
        key = self._key(user_id)
        with self._cache._operation():
            raw = self._cache.redis.get(key)
        return self._parse(raw, key)

    def online(self, user_ids: Iterable[str | int]) -> dict[str, bool]:
        """``{user_id: online}`` for many users in one round trip."""
        ids, keys = self._ids(user_ids)
        if not keys:
            return {}
        with self._cache._operation():
            values = self._cache.redis.mget(keys)
        return {u: v is not None for u, v in zip(ids, values, strict=True)}


class AsyncPresence(_PresenceBase):
    """Presence on the asyncio client."""

    async def touch(self, user_id: str | int) -> None:
        """Record activity now; the user stays online for ``ttl`` seconds."""
        key = self._key(user_id)
        with self._cache._operation():
            await self._cache.redis.set(key, self._now(), ex=self.ttl)

    async def is_online(self, user_id: str | int) -> bool:
        """True when the user was seen within the last ``ttl`` seconds."""
        key = self._key(user_id)
        with self._cache._operation():
            return bool(await self._cache.redis.exists(key))

    async def last_seen(self, user_id: str | int) -> _dt.datetime | None:
        """When the user was last seen (UTC), or None when not online."""
        key = self._key(user_id)
        with self._cache._operation():
            raw = await self._cache.redis.get(key)
        return self._parse(raw, key)

    async def online(self, user_ids: Iterable[str | int]) -> dict[str, bool]:
        """``{user_id: online}`` for many users in one round trip."""
        ids, keys = self._ids(user_ids)
        if not keys:
            return {}
        with self._cache._operation():
            values = await self._cache.redis.mget(keys)
        return {u: v is not None for u, v in zip(ids, values, strict=True)}
