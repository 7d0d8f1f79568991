"""User sessions: ``{prefix}session:user-{id}-session-{uuid4}`` holding JSON, 7-day TTL.

``invalidate_all(user_id)`` must not scan the keyspace (slow and unsafe on a shared server), so
every session is also recorded in a per-user index set ``{prefix}session-index:user-{id}``,
written in the same MULTI/EXEC as the session and expiring with the newest one. Index members
whose session already expired are harmless: deleting a missing key is a no-op.

The feature modules talk to the cache only through :class:`CacheHost` (``.redis``, ``.keys``,
``._operation()``, ``._on_close()``), which ``Cache`` and ``AsyncCache`` provide.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

import redis.exceptions

from berthcache._exceptions import CacheServerError, SerializationError
from berthcache._host import CacheHost
from berthcache._parts import as_text, check_part
from berthcache._serialization import decode_json, encode_json
from berthcache._ttl import TTL, TTLLike, to_seconds

__all__ = ["AsyncSessionStore", "SessionStore"]

_SESSION_ID = re.compile(
    r"^user-(?P<user>.+)-session-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
)
_MAX_WATCH_RETRIES = 16


class _SessionBase:
    """Keys, ids and parsing — no I/O, shared by the twins so they cannot drift."""

    def __init__(self, cache: CacheHost, *, ttl: TTLLike = TTL.SESSION) -> None:
        self._cache = cache
        self.ttl = to_seconds(ttl, name="ttl")

    def _new_id(self, user_id: str | int) -> str:
        return f"user-{check_part(user_id, 'user_id')}-session-{uuid.uuid4()}"

    def _key(self, session_id: str) -> str:
        return self._cache.keys("session", check_part(session_id, "session_id"))

    def _index_key(self, user_id: str | int) -> str:
        return self._cache.keys("session-index", f"user-{check_part(user_id, 'user_id')}")

    def _index_of(self, session_id: str) -> str | None:
        """The index holding ``session_id``, or None for an id not made by :meth:`create`."""
        match = _SESSION_ID.match(session_id)
        return self._index_key(match.group("user")) if match else None

    def _encode(self, data: Mapping[str, Any], key: str) -> str:
        if not isinstance(data, Mapping):
            raise SerializationError(
                f"session data for key {key!r} must be a mapping, got {type(data).__name__}"
            )
        return encode_json(dict(data), key=key)

    @staticmethod
    def _decode(raw: str | bytes | None, key: str) -> dict[str, Any] | None:
        if raw is None:
            return None
        value = decode_json(raw, key=key)
        if not isinstance(value, dict):
            raise SerializationError(f"value at key {key!r} is not a session object")
        return value

    def _queue_create(self, pipe: Any, key: str, index: str, session_id: str, payload: str) -> None:
        pipe.set(key, payload, ex=self.ttl)
        pipe.sadd(index, session_id)
        # The index lives as long as the longest-lived session in it: NX sets a first TTL,
        # GT only ever extends it.
        pipe.expire(index, self.ttl, nx=True)
        pipe.expire(index, self.ttl, gt=True)

    def _session_keys(self, members: Any) -> list[str]:
        return [self._key(as_text(m)) for m in members]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(ttl={self.ttl})"


class SessionStore(_SessionBase):
    """Sessions on the sync client."""

    def create(self, user_id: str | int, data: Mapping[str, Any]) -> str:
        """Store ``data`` under a new session id and return the id."""
        session_id = self._new_id(user_id)
        key, index = self._key(session_id), self._index_key(user_id)
        payload = self._encode(data, key)
        with self._cache._operation():
            pipe = self._cache.redis.pipeline(transaction=True)
            self._queue_create(pipe, key, index, session_id, payload)
            pipe.execute()
        return session_id

    def get(self, session_id: str) -> dict[str, Any] | None:
        """The session's data, or None when it expired or was invalidated."""
        key = self._key(session_id)
        with self._cache._operation():
            raw = self._cache.redis.get(key)
        return self._decode(raw, key)

    def refresh(self, session_id: str) -> bool:
        """Restart the session's TTL (sliding expiry); False when it no longer exists."""
        key, index = self._key(session_id), self._index_of(session_id)
        with self._cache._operation():
            pipe = self._cache.redis.pipeline(transaction=True)
            pipe.expire(key, self.ttl)
            if index is not None:
                pipe.expire(index, self.ttl, gt=True)
            results = pipe.execute()
        return bool(results[0])

    def invalidate(self, session_id: str) -> bool:
        """Delete the session (logout); False when it did not exist."""
        key, index = self._key(session_id), self._index_of(session_id)
        with self._cache._operation():
            pipe = self._cache.redis.pipeline(transaction=True)
            pipe.delete(key)
            if index is not None:
                pipe.srem(index, session_id)
            results = pipe.execute()
        return bool(results[0])

    def invalidate_all(self, user_id: str | int) -> int:
        """Delete every session of ``user_id`` (log out everywhere); returns how many existed.

        WATCHes the index so a session created concurrently is either deleted too or kept in
        the index — never orphaned.
        """
        index = self._index_key(user_id)
        with self._cache._operation():
            for _ in range(_MAX_WATCH_RETRIES):
                with self._cache.redis.pipeline(transaction=True) as pipe:
                    try:
                        pipe.watch(index)
                        keys = self._session_keys(pipe.smembers(index))
                        pipe.multi()
                        if keys:
                            pipe.delete(*keys)
                        pipe.delete(index)
                        results = pipe.execute()
                    except redis.exceptions.WatchError:
                        continue
                return int(results[0]) if keys else 0
        raise CacheServerError(f"sessions of user {user_id!r} kept changing; try again")


class AsyncSessionStore(_SessionBase):
    """Sessions on the asyncio client."""

    async def create(self, user_id: str | int, data: Mapping[str, Any]) -> str:
        """Store ``data`` under a new session id and return the id."""
        session_id = self._new_id(user_id)
        key, index = self._key(session_id), self._index_key(user_id)
        payload = self._encode(data, key)
        with self._cache._operation():
            pipe = self._cache.redis.pipeline(transaction=True)
            self._queue_create(pipe, key, index, session_id, payload)
            await pipe.execute()
        return session_id

    async def get(self, session_id: str) -> dict[str, Any] | None:
        """The session's data, or None when it expired or was invalidated."""
        key = self._key(session_id)
        with self._cache._operation():
            raw = await self._cache.redis.get(key)
        return self._decode(raw, key)

    async def refresh(self, session_id: str) -> bool:
        """Restart the session's TTL (sliding expiry); False when it no longer exists."""
        key, index = self._key(session_id), self._index_of(session_id)
        with self._cache._operation():
            pipe = self._cache.redis.pipeline(transaction=True)
            pipe.expire(key, self.ttl)
            if index is not None:
                pipe.expire(index, self.ttl, gt=True)
            results = await pipe.execute()
        return bool(results[0])

    async def invalidate(self, session_id: str) -> bool:
        """Delete the session (logout); False when it did not exist."""
        key, index = self._key(session_id), self._index_of(session_id)
        with self._cache._operation():
            pipe = self._cache.redis.pipeline(transaction=True)
            pipe.delete(key)
            if index is not None:
                pipe.srem(index, session_id)
            results = await pipe.execute()
        return bool(results[0])

    async def invalidate_all(self, user_id: str | int) -> int:
        """Delete every session of ``user_id`` (log out everywhere); returns how many existed."""
        index = self._index_key(user_id)
        with self._cache._operation():
            for _ in range(_MAX_WATCH_RETRIES):
                async with self._cache.redis.pipeline(transaction=True) as pipe:
                    try:
                        await pipe.watch(index)
                        keys = self._session_keys(await pipe.smembers(index))
                        pipe.multi()
                        if keys:
                            pipe.delete(*keys)
                        pipe.delete(index)
                        results = await pipe.execute()
                    except redis.exceptions.WatchError:
                        continue
                return int(results[0]) if keys else 0
        raise CacheServerError(f"sessions of user {user_id!r} kept changing; try again")
