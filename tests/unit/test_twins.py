"""Sync and async twins expose the same public methods with the same parameters."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import pytest

PAIRS = [
    ("berthcache._client:Cache", "berthcache._async_client:AsyncCache"),
    ("berthcache._client:Pipeline", "berthcache._async_client:AsyncPipeline"),
    ("berthcache._sessions:SessionStore", "berthcache._sessions:AsyncSessionStore"),
    ("berthcache._api_cache:ResponseCache", "berthcache._api_cache:AsyncResponseCache"),
    ("berthcache._ratelimit:RateLimiter", "berthcache._ratelimit:AsyncRateLimiter"),
    ("berthcache._presence:Presence", "berthcache._presence:AsyncPresence"),
    ("berthcache._pubsub:Subscription", "berthcache._pubsub:AsyncSubscription"),
]
# Protocol differences that are the point of the twin, not drift.
SYNC_ONLY = {"__enter__", "__exit__", "__iter__", "__next__"}
ASYNC_ONLY = {"__aenter__", "__aexit__", "__aiter__", "__anext__", "start"}


def load(spec: str) -> Any:
    module, _, name = spec.partition(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError:
        pytest.skip(f"{module} does not exist yet")
    if not hasattr(mod, name):
        pytest.skip(f"{module}.{name} does not exist yet")
    return getattr(mod, name)


def public_members(cls: type) -> dict[str, Any]:
    members = {}
    for name, value in inspect.getmembers(cls):
        if name.startswith("_") and name not in SYNC_ONLY | ASYNC_ONLY:
            continue
        if name.startswith("__") and name not in SYNC_ONLY | ASYNC_ONLY:
            continue
        members[name] = value
    return members


def signature(obj: Any) -> list[tuple[str, Any, Any]] | None:
    func = obj.fget if isinstance(obj, property) else obj
    if not callable(func):
        return None
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return None
    return [(p.name, p.kind, p.default) for p in sig.parameters.values()]


@pytest.mark.parametrize(("sync_spec", "async_spec"), PAIRS, ids=[p[0] for p in PAIRS])
def test_twins_have_the_same_methods_and_parameters(sync_spec: str, async_spec: str) -> None:
    sync_cls, async_cls = load(sync_spec), load(async_spec)
    sync_members, async_members = public_members(sync_cls), public_members(async_cls)
    if "close" in sync_members and "close" not in async_members and "aclose" in async_members:
        async_members["close"] = async_members.pop("aclose")  # asyncio's naming for close()
    sync_names = set(sync_members) - SYNC_ONLY
    async_names = set(async_members) - ASYNC_ONLY
    assert sync_names == async_names, (
        f"only in {sync_cls.__name__}: {sorted(sync_names - async_names)}; "
        f"only in {async_cls.__name__}: {sorted(async_names - sync_names)}"
    )
    for name in sorted(sync_names):
        assert signature(sync_members[name]) == signature(async_members[name]), name


def test_async_cache_methods_that_do_io_are_coroutines() -> None:
    from berthcache._async_client import AsyncCache

    for name in (
        "set",
        "get",
        "set_json",
        "get_json",
        "delete",
        "exists",
        "expire",
        "ttl",
        "incr",
        "ping",
        "check_health",
        "publish",
        "subscribe",
        "close",
    ):
        assert inspect.iscoroutinefunction(getattr(AsyncCache, name)), name
