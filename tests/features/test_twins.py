"""The sync and async twins of every feature expose the same methods with the same signatures."""

from __future__ import annotations

import inspect

import pytest

from berthcache._presence import AsyncPresence, Presence
from berthcache._pubsub import AsyncSubscription, Subscription
from berthcache._ratelimit import AsyncRateLimiter, RateLimiter
from berthcache._responses import AsyncResponseCache, ResponseCache
from berthcache._sessions import AsyncSessionStore, SessionStore

PAIRS = [
    (SessionStore, AsyncSessionStore),
    (ResponseCache, AsyncResponseCache),
    (RateLimiter, AsyncRateLimiter),
    (Presence, AsyncPresence),
]


def _public(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls)
        if not name.startswith("_") and callable(member)
    }


@pytest.mark.parametrize(("sync", "async_"), PAIRS, ids=[p[0].__name__ for p in PAIRS])
def test_twins_match(sync: type, async_: type) -> None:
    sync_methods, async_methods = _public(sync), _public(async_)
    assert sync_methods.keys() == async_methods.keys()
    for name, signature in sync_methods.items():
        twin = async_methods[name]
        assert [(p.name, p.kind, p.default) for p in signature.parameters.values()] == [
            (p.name, p.kind, p.default) for p in twin.parameters.values()
        ], name
        if name != "get_or_compute":  # the async one also accepts an async compute
            assert str(signature) == str(twin), name
        assert inspect.iscoroutinefunction(getattr(async_, name)), name
    assert inspect.signature(sync) == inspect.signature(async_)


def test_subscriptions_share_their_reading_api() -> None:
    shared = {"get", "unsubscribe"}
    assert shared <= _public(Subscription).keys()
    assert shared <= _public(AsyncSubscription).keys()
    assert str(inspect.signature(Subscription.__init__)) == str(
        inspect.signature(AsyncSubscription.__init__)
    )
