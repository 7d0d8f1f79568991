"""The Lua scripts shipped in ``berthcache/resources`` (rate limiting, lock release), and how
they are run: ``EVALSHA``, falling back to ``EVAL`` on ``NOSCRIPT`` — never ``SCRIPT LOAD``.

redis-py's ``Script`` answers ``NOSCRIPT`` with ``SCRIPT LOAD``; the app user's allow-list
(:mod:`berthcache.acl`) grants no ``SCRIPT`` subcommand at all (``SCRIPT FLUSH`` / ``KILL``
reach every tenant, and one rule for the whole family is simpler to audit). ``EVAL`` runs the
script and caches it on the server, so the next ``EVALSHA`` finds it: one extra round trip per
server that had not seen the script (after a restart or failover), none afterwards.

Read once per process from the installed package, so they work from a wheel as from a checkout.
"""

from __future__ import annotations

import hashlib
import importlib.resources
from collections.abc import Sequence
from functools import cache
from typing import Any

import redis.asyncio
import redis.exceptions

__all__ = ["AsyncLuaScript", "LuaScript", "load_script", "register_script"]


@cache
def load_script(name: str) -> str:
    """The text of a Lua script shipped in ``berthcache/resources`` (read once)."""
    return (
        importlib.resources.files("berthcache")
        .joinpath("resources")
        .joinpath(name)
        .read_text("utf-8")
    )


class _ScriptBase:
    """A shipped script, its SHA1 (what EVALSHA names it by) and the client that runs it."""

    __slots__ = ("_client", "name", "sha", "text")

    def __init__(self, client: Any, name: str) -> None:
        self._client = client
        self.name = name
        self.text = load_script(name)
        self.sha = hashlib.sha1(self.text.encode("utf-8"), usedforsecurity=False).hexdigest()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, sha={self.sha[:12]})"


class LuaScript(_ScriptBase):
    """Run on a sync client: ``script(keys=[...], args=[...])``, as redis-py's ``Script``."""

    __slots__ = ()

    def __call__(
        self, keys: Sequence[Any] = (), args: Sequence[Any] = (), client: Any | None = None
    ) -> Any:
        """Run it on the bound client, or on ``client`` (e.g. a bounded one) when given."""
        target = self._client if client is None else client
        try:
            return target.evalsha(self.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            return target.eval(self.text, len(keys), *keys, *args)


class AsyncLuaScript(_ScriptBase):
    """Run on an asyncio client: ``await script(keys=[...], args=[...])``."""

    __slots__ = ()

    async def __call__(
        self, keys: Sequence[Any] = (), args: Sequence[Any] = (), client: Any | None = None
    ) -> Any:
        """Run it on the bound client, or on ``client`` (e.g. a bounded one) when given."""
        target = self._client if client is None else client
        try:
            return await target.evalsha(self.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            return await target.eval(self.text, len(keys), *keys, *args)


def register_script(client: Any, name: str) -> LuaScript | AsyncLuaScript:
    """The shipped script ``name`` bound to ``client`` (sync or asyncio); no I/O."""
    if isinstance(client, redis.asyncio.Redis):
        return AsyncLuaScript(client, name)
    return LuaScript(client, name)
