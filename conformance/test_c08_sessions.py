"""C8 Sessions: ``session:user-{id}-session-{uuid}``, 7-day TTL, get, refresh, invalidate."""

from __future__ import annotations

import re
import uuid

import pytest

from berthcache import TTL

from .support import AnyCache, aw, session_key_part

pytestmark = [pytest.mark.clause("C8"), pytest.mark.asyncio]

SEVEN_DAYS = 7 * 24 * 3600
ID_FORMAT = re.compile(r"^user-(?P<user>.+)-session-(?P<uuid>[0-9a-f-]{36})$")


async def test_create_id_format_and_key(cache: AnyCache) -> None:
    sid = await aw(cache.sessions.create(42, {"role": "nurse"}))
    match = ID_FORMAT.match(sid)
    assert match, sid
    assert match["user"] == "42"
    assert uuid.UUID(match["uuid"]).version == 4
    full = cache.config.key_prefix + session_key_part(cache, sid)
    assert await aw(cache.redis.exists(full)) == 1


async def test_seven_day_ttl(cache: AnyCache) -> None:
    assert TTL.SESSION == SEVEN_DAYS
    sid = await aw(cache.sessions.create("u1", {"a": 1}))
    ttl = await aw(cache.ttl(session_key_part(cache, sid)))
    assert SEVEN_DAYS - 5 <= ttl <= SEVEN_DAYS


async def test_get_returns_the_data(cache: AnyCache) -> None:
    data = {"role": "admin", "facility": "Zoë Ward", "perms": ["read", "write"]}
    sid = await aw(cache.sessions.create(7, data))
    assert await aw(cache.sessions.get(sid)) == data
    assert await aw(cache.sessions.get("user-7-session-" + str(uuid.uuid4()))) is None


async def test_ids_are_unique(cache: AnyCache) -> None:
    ids = {await aw(cache.sessions.create(1, {})) for _ in range(20)}
    assert len(ids) == 20


async def test_invalidate(cache: AnyCache) -> None:
    sid = await aw(cache.sessions.create(9, {"x": 1}))
    assert await aw(cache.sessions.invalidate(sid)) is True
    assert await aw(cache.sessions.get(sid)) is None
    assert await aw(cache.sessions.invalidate(sid)) is False


async def test_refresh_restores_full_ttl(cache: AnyCache) -> None:
    sid = await aw(cache.sessions.create(3, {"x": 1}))
    await aw(cache.expire(session_key_part(cache, sid), 60))
    assert await aw(cache.sessions.refresh(sid)) is True
    assert await aw(cache.ttl(session_key_part(cache, sid))) >= SEVEN_DAYS - 5
    assert await aw(cache.sessions.refresh("user-3-session-" + str(uuid.uuid4()))) is False


async def test_invalidate_all_of_one_user(cache: AnyCache) -> None:
    mine = [await aw(cache.sessions.create(5, {"n": n})) for n in range(3)]
    other = await aw(cache.sessions.create(6, {"n": 0}))
    assert await aw(cache.sessions.invalidate_all(5)) == 3
    for sid in mine:
        assert await aw(cache.sessions.get(sid)) is None
    assert await aw(cache.sessions.get(other)) == {"n": 0}
