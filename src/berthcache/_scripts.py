"""The Lua scripts shipped in ``berthcache/resources`` (rate limiting, lock release), and how
they are run through the cache's transport: ``EVALSHA``, falling back to ``EVAL`` on
``NOSCRIPT`` — never ``SCRIPT LOAD``.

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
import inspect
import time
from collections.abc import Sequence
from functools import cache
from typing import Any

import redis.exceptions

from berthcache._budget import Budget, BudgetExceededError

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


def _rest(budget: Budget | None, start: float) -> Budget | None:
    """What is left of ``budget`` (started at ``start``) for the EVAL fallback."""
    if budget is None:
        return None
    left_ms = budget.ms - int((time.monotonic() - start) * 1000)
    if left_ms < 1:
        raise budget.exceeded()
    return Budget(left_ms, budget.setting)


class _ScriptBase:
    """A shipped script, its SHA1 (what EVALSHA names it by) and the transport that runs it
    (:mod:`berthcache._transport`)."""

    __slots__ = ("_transport", "name", "sha", "text")

    def __init__(self, transport: Any, name: str) -> None:
        self._transport = transport
        self.name = name
        self.text = load_script(name)
        self.sha = hashlib.sha1(self.text.encode("utf-8"), usedforsecurity=False).hexdigest()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, sha={self.sha[:12]})"


class LuaScript(_ScriptBase):
    """Run through a sync transport: ``script(keys=[...], args=[...], budget=...)``.

    With a budget the whole run — the EVAL fallback included — stays within it.
    """

    __slots__ = ()

    def __call__(
        self, keys: Sequence[Any] = (), args: Sequence[Any] = (), budget: Budget | None = None
    ) -> Any:
        """The script's reply (EVALSHA; EVAL when the server does not have it yet)."""
        start = time.monotonic()
        try:
            return self._transport.call(
                ("EVALSHA", self.sha, len(keys), *keys, *args), budget=budget
            )
        except redis.exceptions.NoScriptError:
            return self._fallback(("EVAL", self.text, len(keys), *keys, *args), budget, start)

    def one(self, key: Any, arg: Any, budget: Budget | None = None) -> Any:
        """The script run on one key with one argument (the rate limiter's hot path)."""
        start = time.monotonic()
        try:
            return self._transport.call(("EVALSHA", self.sha, 1, key, arg), budget=budget)
        except redis.exceptions.NoScriptError:
            return self._fallback(("EVAL", self.text, 1, key, arg), budget, start)

    def _fallback(self, args: tuple[Any, ...], budget: Budget | None, start: float) -> Any:
        try:
            return self._transport.call(args, budget=_rest(budget, start))
        except BudgetExceededError as exc:
            assert budget is not None
            raise budget.exceeded() from exc.__cause__


class AsyncLuaScript(_ScriptBase):
    """Run through an asyncio transport: ``await script(keys=[...], args=[...], budget=...)``."""

    __slots__ = ()

    async def __call__(
        self, keys: Sequence[Any] = (), args: Sequence[Any] = (), budget: Budget | None = None
    ) -> Any:
        """The script's reply (EVALSHA; EVAL when the server does not have it yet)."""
        start = time.monotonic()
        try:
            return await self._transport.call(
                ("EVALSHA", self.sha, len(keys), *keys, *args), budget=budget
            )
        except redis.exceptions.NoScriptError:
            return await self._fallback(("EVAL", self.text, len(keys), *keys, *args), budget, start)

    async def one(self, key: Any, arg: Any, budget: Budget | None = None) -> Any:
        """The script run on one key with one argument (the rate limiter's hot path)."""
        start = time.monotonic()
        try:
            return await self._transport.call(("EVALSHA", self.sha, 1, key, arg), budget=budget)
        except redis.exceptions.NoScriptError:
            return await self._fallback(("EVAL", self.text, 1, key, arg), budget, start)

    async def _fallback(self, args: tuple[Any, ...], budget: Budget | None, start: float) -> Any:
        try:
            return await self._transport.call(args, budget=_rest(budget, start))
        except BudgetExceededError as exc:
            assert budget is not None
            raise budget.exceeded() from exc.__cause__


def register_script(transport: Any, name: str) -> LuaScript | AsyncLuaScript:
    """The shipped script ``name`` run through ``transport`` (sync, or asyncio when its
    ``call`` is a coroutine function); no I/O."""
    if inspect.iscoroutinefunction(transport.call):
        return AsyncLuaScript(transport, name)
    return LuaScript(transport, name)
