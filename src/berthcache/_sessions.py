"""User sessions: ``{prefix}session:user-{id}-session-{uuid4}`` holding JSON, 7-day TTL.

``invalidate_all(user_id)`` must not scan the keyspace (slow and unsafe on a shared server), so
every session is also recorded in a per-user index set ``{prefix}session-index:user-{id}``,
written in the same MULTI/EXEC as the session and expiring with the newest one. Index members
whose session already expired are harmless: deleting a missing key is a no-op.

Which commands each step sends, and how their replies read, is decided in :class:`_SessionBase`
(``_*_commands``); the twins only send them — a MULTI/EXEC ``batch`` through the cache's
transport — and hand the replies back. ``invalidate_all`` WATCHes, so it runs on a connection of
its own (the pooled redis-py client ``cache.redis``). The feature talks to the cache only
through :class:`~berthcache._host.CacheHost`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import redis.exceptions

from berthcache._exceptions import CacheServerError, SerializationError
from berthcache._host import CacheHost
from berthcache._parts import as_text, check_part
from berthcache._scripts import register_script
from berthcache._transport import Args, raise_first_error
from berthcache._ttl import TTL, TTLLike, to_seconds

__all__ = ["AsyncSessionStore", "SessionStore"]

_SESSION_ID = re.compile(
    r"^user-(?P<user>.+)-session-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
)
_MAX_WATCH_RETRIES = 16
T = TypeVar("T")
# A session key up to its secret part: whoever holds a session id holds the session (a bearer
# token), so messages show "{prefix}session:user-42-session-…" — or "{prefix}session:…" for an
# id not made by create().
_SESSION_KEY_HEAD = re.compile(r"(.*?session:(?:\{?user-.+-session-)?).+", re.S)


def _uuid4() -> str:
    """``str(uuid.uuid4())`` without building a UUID object (a third of its cost): 16 random
    bytes with RFC 4122's version 4 and variant bits, in the 8-4-4-4-12 hex form."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _naming_key_as_shown(convert: Callable[..., T], value: Any, key: str) -> T:
    """``convert(value, key=...)`` (the codec's encode or decode), its error naming ``key`` as
    shown. The shown key is built only when it fails: converting again — outside the handler,
    so the traceback holds one error — raises the same error of a deterministic serializer."""
    try:
        return convert(value, key="")
    except SerializationError:
        pass
    return convert(value, key=_shown(key))


def _shown(key: str) -> str:
    """``key`` as error messages name it: the session id's random part hidden, the user id kept
    so the message still says whose session it was."""
    # match + concatenation: re.sub with a template re-parses the template on every call.
    head = _SESSION_KEY_HEAD.match(key)
    return key if head is None else head.group(1) + "…"


class _SessionBase:
    """Keys, ids and parsing — no I/O, shared by the twins so they cannot drift."""

    def __init__(self, cache: CacheHost, *, ttl: TTLLike = TTL.SESSION) -> None:
        self._cache = cache
        self.ttl = to_seconds(ttl, name="ttl")
        # Cluster mode: invalidate_all runs as one script in the user's slot (WATCH needs a
        # connection of its own, which the cluster transport does not lend).
        self._invalidate_all_script: Any = (
            register_script(cache._transport, "invalidate_sessions.lua")
            if cache.config.cluster
            else None
        )

    def _new_id(self, user_id: str | int) -> str:
        return f"user-{check_part(user_id, 'user_id')}-session-{_uuid4()}"

    def _key(self, session_id: str) -> str:
        part = check_part(session_id, "session_id")
        if self._cache.config.cluster:
            match = _SESSION_ID.match(part)
            if match:  # {prefix}session:{user-42}-session-<uuid>: the index's slot
                head = f"user-{match.group('user')}"
                return self._cache.keys("session", f"{{{head}}}{part[len(head) :]}")
        return self._cache.keys("session", part)

    def _index_key(self, user_id: str | int) -> str:
        user = f"user-{check_part(user_id, 'user_id')}"
        if self._cache.config.cluster:
            user = f"{{{user}}}"  # {prefix}session-index:{user-42}: one slot per user
        return self._cache.keys("session-index", user)

    def _sweep_args(self, user_id: str | int) -> list[Any]:
        """The invalidation script's arguments (cluster mode): the head of the user's session
        keys up to the end of the hash tag, and the ids' ``user-{id}`` part that it replaces."""
        head = f"user-{check_part(user_id, 'user_id')}"
        return [self._cache.keys("session", f"{{{head}}}"), head]

    def _index_of(self, session_id: str) -> str | None:
        """The index holding ``session_id``, or None for an id not made by :meth:`create`."""
        match = _SESSION_ID.match(session_id)
        return self._index_key(match.group("user")) if match else None

    def _encode(self, data: Mapping[str, Any], key: str) -> str | bytes:
        if not isinstance(data, Mapping):
            raise SerializationError(
                f"session data for key {_shown(key)!r} must be a mapping, got {type(data).__name__}"
            )
        value = data if type(data) is dict else dict(data)
        return _naming_key_as_shown(self._cache._json.encode_json, value, key)

    def _decode(self, raw: str | bytes | None, key: str) -> dict[str, Any] | None:
        if raw is None:
            return None
        value = _naming_key_as_shown(self._cache._json.decode_json, raw, key)
        if not isinstance(value, dict):
            raise SerializationError(f"value at key {_shown(key)!r} is not a session object")
        return value

    def _create_commands(
        self, user_id: str | int, data: Mapping[str, Any]
    ) -> tuple[str, list[Args]]:
        """A new session id of ``user_id`` and the transaction storing ``data`` under it."""
        if self._cache.config.cluster:
            session_id = self._new_id(user_id)
            key, index = self._key(session_id), self._index_key(user_id)
        else:  # _new_id, _key and _index_key in one go: the user id checked once
            user = f"user-{check_part(user_id, 'user_id')}"
            session_id = f"{user}-session-{_uuid4()}"
            keys = self._cache.keys
            key, index = keys("session", session_id), keys("session-index", user)
        ttl = self.ttl
        # The index lives as long as the longest-lived session in it: NX sets a first TTL,
        # GT only ever extends it.
        return session_id, [
            ("SET", key, self._encode(data, key), "EX", ttl),
            ("SADD", index, session_id),
            ("EXPIRE", index, ttl, "NX"),
            ("EXPIRE", index, ttl, "GT"),
        ]

    def _refresh_commands(self, session_id: str) -> list[Args]:
        commands: list[Args] = [("EXPIRE", self._key(session_id), self.ttl)]
        index = self._index_of(session_id)
        if index is not None:
            commands.append(("EXPIRE", index, self.ttl, "GT"))
        return commands

    def _invalidate_commands(self, session_id: str) -> list[Args]:
        commands: list[Args] = [("DEL", self._key(session_id))]
        index = self._index_of(session_id)
        if index is not None:
            commands.append(("SREM", index, session_id))
        return commands

    @staticmethod
    def _first_done(results: list[Any], commands: list[Args]) -> bool:
        """Whether the first command found its key (EXPIRE / DEL reply); the first error
        reply raises."""
        raise_first_error(results, commands)
        return bool(results[0])

    def _queue_invalidate_all(self, pipe: Any, index: str, members: Any) -> int:
        """On a WATCHed pipeline that read the index's ``members``: start the transaction and
        queue the deletes; how many session keys were queued."""
        keys = [self._key(as_text(m)) for m in members]
        pipe.multi()
        if keys:
            pipe.delete(*keys)
        pipe.delete(index)
        return len(keys)

    @staticmethod
    def _deleted(results: list[Any], queued: int) -> int:
        """How many sessions existed, from the transaction of :meth:`_queue_invalidate_all`."""
        return int(results[0]) if queued else 0

    @staticmethod
    def _watch_attempts() -> range:
        return range(_MAX_WATCH_RETRIES)

    @staticmethod
    def _kept_changing(user_id: str | int) -> CacheServerError:
        return CacheServerError(f"sessions of user {user_id!r} kept changing; try again")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(ttl={self.ttl})"


class SessionStore(_SessionBase):
    """Sessions on the sync client."""

    def create(self, user_id: str | int, data: Mapping[str, Any]) -> str:
        """Store ``data`` under a new session id and return the id."""
        session_id, commands = self._create_commands(user_id, data)
        with self._cache._operation():
            raise_first_error(self._cache._transport.batch(commands, transaction=True), commands)
        return session_id

    def get(self, session_id: str) -> dict[str, Any] | None:
        """The session's data, or None when it expired or was invalidated."""
        key = self._key(session_id)
        with self._cache._operation():
            raw = self._cache._transport.call(("GET", key))
        return self._decode(raw, key)

    def refresh(self, session_id: str) -> bool:
        """Restart the session's TTL (sliding expiry); False when it no longer exists."""
        commands = self._refresh_commands(session_id)
        with self._cache._operation():
            replies = self._cache._transport.batch(commands, transaction=True)
            return self._first_done(replies, commands)

    def invalidate(self, session_id: str) -> bool:
        """Delete the session (logout); False when it did not exist."""
        commands = self._invalidate_commands(session_id)
        with self._cache._operation():
            replies = self._cache._transport.batch(commands, transaction=True)
            return self._first_done(replies, commands)

    def invalidate_all(self, user_id: str | int) -> int:
        """Delete every session of ``user_id`` (log out everywhere); returns how many existed.

        WATCHes the index so a session created concurrently is either deleted too or kept in
        the index — never orphaned.
        """
        index = self._index_key(user_id)
        if self._invalidate_all_script is not None:
            with self._cache._operation():
                return int(
                    self._invalidate_all_script(keys=[index], args=self._sweep_args(user_id))
                )
        with self._cache._operation():
            for _ in self._watch_attempts():
                with self._cache.redis.pipeline(transaction=True) as pipe:
                    try:
                        pipe.watch(index)
                        queued = self._queue_invalidate_all(pipe, index, pipe.smembers(index))
                        return self._deleted(pipe.execute(), queued)
                    except redis.exceptions.WatchError:
                        continue
        raise self._kept_changing(user_id)


class AsyncSessionStore(_SessionBase):
    """Sessions on the asyncio client."""

    async def create(self, user_id: str | int, data: Mapping[str, Any]) -> str:
        """Store ``data`` under a new session id and return the id."""
        session_id, commands = self._create_commands(user_id, data)
        with self._cache._operation():
            replies = await self._cache._transport.batch(commands, transaction=True)
            raise_first_error(replies, commands)
        return session_id

    async def get(self, session_id: str) -> dict[str, Any] | None:
        """The session's data, or None when it expired or was invalidated."""
        key = self._key(session_id)
        with self._cache._operation():
            raw = await self._cache._transport.call(("GET", key))
        return self._decode(raw, key)

    async def refresh(self, session_id: str) -> bool:
        """Restart the session's TTL (sliding expiry); False when it no longer exists."""
        commands = self._refresh_commands(session_id)
        with self._cache._operation():
            replies = await self._cache._transport.batch(commands, transaction=True)
            return self._first_done(replies, commands)

    async def invalidate(self, session_id: str) -> bool:
        """Delete the session (logout); False when it did not exist."""
        commands = self._invalidate_commands(session_id)
        with self._cache._operation():
            replies = await self._cache._transport.batch(commands, transaction=True)
            return self._first_done(replies, commands)

    async def invalidate_all(self, user_id: str | int) -> int:
        """Delete every session of ``user_id`` (log out everywhere); returns how many existed.

        WATCHes the index so a session created concurrently is either deleted too or kept in
        the index — never orphaned.
        """
        index = self._index_key(user_id)
        if self._invalidate_all_script is not None:
            with self._cache._operation():
                script = self._invalidate_all_script
                return int(await script(keys=[index], args=self._sweep_args(user_id)))
        with self._cache._operation():
            for _ in self._watch_attempts():
                async with self._cache.redis.pipeline(transaction=True) as pipe:
                    try:
                        await pipe.watch(index)
                        members = await pipe.smembers(index)
                        queued = self._queue_invalidate_all(pipe, index, members)
                        return self._deleted(await pipe.execute(), queued)
                    except redis.exceptions.WatchError:
                        continue
        raise self._kept_changing(user_id)
