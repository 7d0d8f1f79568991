"""Sessions (C8): id format, 7-day TTL, JSON data, refresh, logout and logout-everywhere."""

from __future__ import annotations

import re

import pytest
import redis

from berthcache._exceptions import InvalidKeyError, InvalidTTLError
from berthcache._host import CacheHost
from berthcache._sessions import AsyncSessionStore, SessionStore
from berthcache._ttl import TTL

ID_FORMAT = re.compile(
    r"^user-42-session-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
)


@pytest.mark.clause("C8")
def test_create_stores_json_under_the_seed_key_with_a_seven_day_ttl(
    cache: CacheHost, raw: redis.Redis
) -> None:
    store = SessionStore(cache)
    session_id = store.create(42, {"role": "nurse", "ward": "Ω-3"})

    assert ID_FORMAT.match(session_id)
    key = f"{cache.keys.prefix}session:{session_id}"
    assert raw.get(key) == '{"role":"nurse","ward":"Ω-3"}'
    assert TTL.SESSION - 5 <= raw.ttl(key) <= TTL.SESSION
    assert store.get(session_id) == {"role": "nurse", "ward": "Ω-3"}


@pytest.mark.clause("C8")
def test_missing_session_is_none_and_invalidate_reports_it(cache: CacheHost) -> None:
    store = SessionStore(cache)
    missing = "user-42-session-00000000-0000-4000-8000-000000000000"
    assert store.get(missing) is None
    assert store.refresh(missing) is False
    assert store.invalidate(missing) is False


@pytest.mark.clause("C8")
def test_invalidate_logs_out_one_session_only(cache: CacheHost) -> None:
    store = SessionStore(cache)
    first, second = store.create("u1", {"n": 1}), store.create("u1", {"n": 2})
    assert store.invalidate(first) is True
    assert store.get(first) is None
    assert store.get(second) == {"n": 2}


@pytest.mark.clause("C8")
def test_refresh_restarts_the_ttl(cache: CacheHost, raw: redis.Redis) -> None:
    store = SessionStore(cache, ttl=3600)
    session_id = store.create(7, {})
    key = f"{cache.keys.prefix}session:{session_id}"
    raw.expire(key, 10)
    assert store.refresh(session_id) is True
    assert raw.ttl(key) > 3000


@pytest.mark.clause("C8")
def test_invalidate_all_removes_every_session_of_that_user_only(
    cache: CacheHost, raw: redis.Redis
) -> None:
    store = SessionStore(cache)
    mine = [store.create(5, {"i": i}) for i in range(3)]
    theirs = store.create(55, {"i": 9})  # "5" is a prefix of "55": must not be touched
    store.invalidate(mine[0])

    assert store.invalidate_all(5) == 2
    assert all(store.get(s) is None for s in mine)
    assert store.get(theirs) == {"i": 9}
    assert store.invalidate_all(5) == 0
    index = f"{cache.keys.prefix}session-index:user-5"
    assert raw.exists(index) == 0


def test_index_expires_with_the_sessions(cache: CacheHost, raw: redis.Redis) -> None:
    store = SessionStore(cache, ttl=100)
    store.create(8, {})
    index = f"{cache.keys.prefix}session-index:user-8"
    assert 0 < raw.ttl(index) <= 100
    SessionStore(cache, ttl=1000).create(8, {})
    assert raw.ttl(index) > 100  # extended for the longer-lived session
    store.create(8, {})
    assert raw.ttl(index) > 100  # never shortened


def test_bad_arguments_are_named(cache: CacheHost) -> None:
    store = SessionStore(cache)
    with pytest.raises(InvalidKeyError, match="user_id"):
        store.create("", {})
    with pytest.raises(InvalidKeyError, match="session_id"):
        store.get("")
    with pytest.raises(InvalidTTLError, match="ttl"):
        SessionStore(cache, ttl=0)


@pytest.mark.asyncio
async def test_async_twin_round_trip(acache: CacheHost) -> None:
    store = AsyncSessionStore(acache)
    first = await store.create(42, {"a": [1, 2]})
    second = await store.create(42, {"b": None})
    assert ID_FORMAT.match(first)
    assert await store.get(first) == {"a": [1, 2]}
    assert await store.refresh(first) is True
    assert await store.invalidate(first) is True
    assert await store.get(first) is None
    assert await store.invalidate_all(42) == 1
    assert await store.get(second) is None
