"""A second tenant on the same Redis tries every way into this app's data, and is refused.

One real ``redis-server`` 7 with two app users made by :func:`berthcache.acl.app_user_access`
(exactly what the deployed RBAC user and the local harness get): ``app`` for ``berthcare:`` —
this app, which runs its features through berthcache — and ``other`` for ``other:``. Every way
in that ``other`` tries is listed in :data:`WAYS_IN`; each must be refused with ``NOPERM`` (or,
for a script reaching for a key, the script's permission error). On the deny-list rules this
project had before (``+@all -@dangerous``) ``SCAN``, ``RANDOMKEY``, ``FUNCTION LOAD REPLACE`` /
``DELETE`` / ``FLUSH``, ``FCALL``, ``SCRIPT FLUSH`` / ``LOAD``, ``PUBSUB CHANNELS`` and
``SELECT`` all went through (21 of these tests fail on them): a session id read by ``SCAN`` is a
bearer token.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from berthcache import AsyncCache, Cache, CacheConfig, CacheError
from berthcache.acl import app_user_access
from berthcache.testing import ACLUser, RedisServer
from berthcache.testing._server import ADMIN_RULES, free_port

APP, OTHER = "berthcare:", "other:"
LIBRARY = "#!lua name=berthlib\nredis.register_function('hello', function() return 'ours' end)"
EVIL = "#!lua name=berthlib\nredis.register_function('hello', function() return 'theirs' end)"


class Tenants:
    """The server, the passwords, and what the app wrote (found by ``other`` only if a way in
    works)."""

    def __init__(self, server: RedisServer, passwords: dict[str, str]) -> None:
        self.server = server
        self.passwords = passwords
        self.session_id = ""
        self.session_key = ""

    def config(self, user: str, prefix: str) -> CacheConfig:
        return CacheConfig(
            host=self.server.host,
            port=self.server.port,
            username=user,
            password=self.passwords[user],
            key_prefix=prefix,
            max_retries_per_request=0,
            socket_timeout=2.0,
        )

    def client(self, user: str) -> redis.Redis:
        return redis.Redis(
            host=self.server.host,
            port=self.server.port,
            username=user,
            password=self.passwords[user],
            decode_responses=True,
            socket_timeout=2.0,
        )


@pytest.fixture(scope="module")
def tenants() -> Iterator[Tenants]:
    passwords = {name: secrets.token_hex(16) for name in ("admin", "app", "other")}
    users = [
        ACLUser("admin", passwords["admin"], ADMIN_RULES),
        ACLUser("app", passwords["app"], app_user_access(APP)),
        ACLUser("other", passwords["other"], app_user_access(OTHER)),
    ]
    with RedisServer(users=users, appendonly=False, name="tenants") as server:
        found = Tenants(server, passwords)
        admin = server.client("admin")
        try:
            admin.function_load(LIBRARY)  # a library this app's FCALLs rely on
        finally:
            admin.close()
        with Cache(found.config("app", APP)) as cache:
            found.session_id = cache.sessions.create(42, {"role": "nurse", "ssn": "123-45-6789"})
            found.session_key = cache.keys("session", found.session_id)
            cache.responses.set("clients:list", 42, [{"id": 1}])
            cache.set("secret", "ours", ttl=600)
            assert cache.rate_limiter.check("10.0.0.1", "login").allowed
        yield found


def _fcall(client: redis.Redis) -> Any:
    return client.fcall("hello", 0)


def _subscribe(channel: str, *, pattern: bool = False) -> Callable[[redis.Redis], Any]:
    def attempt(client: redis.Redis) -> Any:
        pubsub = client.pubsub()  # type: ignore[no-untyped-call]
        try:
            if pattern:
                pubsub.psubscribe(channel)
            else:
                pubsub.subscribe(channel)
            return pubsub.get_message(timeout=2)  # the refusal arrives as the reply
        finally:
            pubsub.close()

    return attempt


def _monitor(client: redis.Redis) -> Any:
    with client.monitor() as monitor:  # type: ignore[no-untyped-call]
        return monitor.next_command()


#: Every way in the second tenant tries, by name. ``{key}`` / ``{session}`` stand for this
#: app's keys.
WAYS_IN: dict[str, Callable[[redis.Redis, Tenants], Any]] = {
    "SCAN MATCH berthcare:session:*": lambda c, t: c.scan(0, match=f"{APP}session:*"),
    "SCAN (everything)": lambda c, t: c.scan(0),
    "KEYS berthcare:*": lambda c, t: c.keys(f"{APP}*"),
    "RANDOMKEY": lambda c, t: c.randomkey(),
    "GET our key": lambda c, t: c.get(f"{APP}secret"),
    "SET our key": lambda c, t: c.set(f"{APP}secret", "theirs"),
    "DEL our key": lambda c, t: c.delete(f"{APP}secret"),
    "GET a session by its id": lambda c, t: c.get(t.session_key),
    "GET a cached API response": lambda c, t: c.get(f"{APP}api:clients:list:42"),
    "SMEMBERS the session index": lambda c, t: c.smembers(f"{APP}session-index:user-42"),
    "FUNCTION LOAD REPLACE": lambda c, t: c.function_load(EVIL, replace=True),
    "FUNCTION DELETE": lambda c, t: c.function_delete("berthlib"),
    "FUNCTION FLUSH": lambda c, t: c.function_flush(),
    "FUNCTION RESTORE": lambda c, t: c.execute_command(  # type: ignore[no-untyped-call]
        "FUNCTION", "RESTORE", b"\x00", "REPLACE"
    ),
    "FUNCTION LIST": lambda c, t: c.function_list(),
    "FCALL": lambda c, t: _fcall(c),
    "SCRIPT FLUSH": lambda c, t: c.script_flush(),
    "SCRIPT KILL": lambda c, t: c.script_kill(),
    "SCRIPT LOAD": lambda c, t: c.script_load("return 1"),
    "PUBSUB CHANNELS": lambda c, t: c.pubsub_channels(),
    "PUBSUB NUMSUB": lambda c, t: c.pubsub_numsub(f"{APP}alerts"),
    "PUBLISH on our channel": lambda c, t: c.publish(f"{APP}alerts", "x"),
    "SUBSCRIBE our channel": lambda c, t: _subscribe(f"{APP}alerts")(c),
    "PSUBSCRIBE berthcare:*": lambda c, t: _subscribe(f"{APP}*", pattern=True)(c),
    "PSUBSCRIBE *": lambda c, t: _subscribe("*", pattern=True)(c),
    "SELECT 1": lambda c, t: c.execute_command("SELECT", 1),  # type: ignore[no-untyped-call]
    "CLIENT LIST": lambda c, t: c.client_list(),
    "CLIENT KILL": lambda c, t: c.client_kill_filter(user="app"),
    "CONFIG GET": lambda c, t: c.config_get("requirepass"),
    "MONITOR": lambda c, t: _monitor(c),
    "DEBUG OBJECT": lambda c, t: c.debug_object(f"{APP}secret"),
    "OBJECT ENCODING our key": lambda c, t: c.object("encoding", f"{APP}secret"),
    "DUMP our key": lambda c, t: c.dump(f"{APP}secret"),
    "MIGRATE our key": lambda c, t: c.migrate("127.0.0.1", free_port(), f"{APP}secret", 0, 500),
    "COPY our key to theirs": lambda c, t: c.copy(f"{APP}secret", f"{OTHER}stolen"),
    "RENAME our key": lambda c, t: c.rename(f"{APP}secret", f"{OTHER}stolen"),
    "EVAL with our key in KEYS": lambda c, t: c.eval(
        "return redis.call('GET', KEYS[1])", 1, f"{APP}secret"
    ),
    "EVAL reaching our key": lambda c, t: c.eval(f"return redis.call('GET', '{APP}secret')", 0),
    "FLUSHALL": lambda c, t: c.flushall(),
    "FLUSHDB": lambda c, t: c.flushdb(),
    "ACL LIST": lambda c, t: c.acl_list(),
    "SWAPDB": lambda c, t: c.swapdb(0, 1),
    "SHUTDOWN": lambda c, t: c.shutdown(nosave=True),
}


@pytest.mark.parametrize("way", list(WAYS_IN))
def test_the_other_tenant_is_refused(tenants: Tenants, way: str) -> None:
    client = tenants.client("other")
    try:
        with pytest.raises(redis.exceptions.ResponseError) as refused:
            WAYS_IN[way](client, tenants)
    finally:
        client.close()
    text = str(refused.value)
    # NOPERM (redis-py drops the code: "this user has no permissions ..."), or the script's
    # own wording for a key it may not touch.
    assert isinstance(refused.value, redis.exceptions.NoPermissionError) or (
        "can't access" in text or "no permissions" in text
    ), text


def test_the_apps_data_is_intact_after_every_attempt(tenants: Tenants) -> None:
    for way in WAYS_IN:  # every attempt again, in one go, then look
        client = tenants.client("other")
        try:
            with pytest.raises(redis.exceptions.ResponseError):
                WAYS_IN[way](client, tenants)
        finally:
            client.close()
    with Cache(tenants.config("app", APP)) as cache:
        assert cache.get("secret") == "ours"
        assert cache.sessions.get(tenants.session_id) == {"role": "nurse", "ssn": "123-45-6789"}
        assert cache.responses.get("clients:list", 42) == [{"id": 1}]
    admin = tenants.server.client("admin")
    try:
        assert admin.fcall("hello", 0) == b"ours"  # the library was not replaced
    finally:
        admin.close()


def test_a_cache_of_the_other_tenant_cannot_read_our_session(tenants: Tenants) -> None:
    """Even configured with our prefix and a guessed (here: the real) session id."""
    with Cache(tenants.config("other", APP)) as cache, pytest.raises(CacheError):
        cache.sessions.get(tenants.session_id)


def test_the_other_tenant_works_in_its_own_prefix(tenants: Tenants) -> None:
    """The allow-list is not a wall: every feature works for ``other`` under ``other:``."""
    with Cache(tenants.config("other", OTHER)) as cache:
        sid = cache.sessions.create(7, {"a": 1})
        assert cache.sessions.get(sid) == {"a": 1}
        assert cache.sessions.invalidate_all(7) == 1
        cache.responses.set("clients", 7, [1])
        assert cache.responses.invalidate("clients") == 1
        assert cache.rate_limiter.check("10.0.0.9", "login").allowed
        assert cache.publish("alerts", {"x": 1}) == 0
        assert cache.check_health().healthy


@pytest.mark.asyncio
async def test_scripts_run_after_a_script_flush_without_script_load(tenants: Tenants) -> None:
    """The app user may not SCRIPT LOAD: after the server forgot the scripts (SCRIPT FLUSH by
    an operator, a restart, a failover) EVALSHA's NOSCRIPT falls back to EVAL."""
    admin = tenants.server.client("admin")
    try:
        admin.script_flush()
        with Cache(tenants.config("app", APP)) as cache:
            assert cache.rate_limiter.check("10.0.0.2", "login").remaining == 99
            assert cache.rate_limiter.check("10.0.0.2", "login").remaining == 98  # EVALSHA now
        admin.script_flush()
        acache = AsyncCache(tenants.config("app", APP))
        try:
            assert (await acache.rate_limiter.check("10.0.0.3", "login")).remaining == 99
            assert await acache.responses.get_or_compute("x", 1, lambda: 5) == 5  # lock release
        finally:
            await acache.close()
    finally:
        admin.close()


def test_the_app_user_cannot_select_another_database(tenants: Tenants) -> None:
    """Tenants are separated by prefix, not database number: SELECT is not granted, so a client
    of the app user configured with ``db`` other than 0 fails to connect, saying why."""
    with Cache(tenants.config("app", APP).replace(db=1)) as cache, pytest.raises(CacheError) as e:
        cache.get("secret")
    assert "select" in str(e.value)
    assert tenants.passwords["app"] not in str(e.value)


@pytest.mark.parametrize("prefix", ["tenant1", "berthcare", "tenant1-", "a.b"])
def test_a_prefix_without_a_delimiter_gets_no_rules(prefix: str) -> None:
    with pytest.raises(ValueError, match=r"key_prefix .* must end with ':'"):
        app_user_access(prefix)


def test_why_a_prefix_needs_a_delimiter(tenants: Tenants) -> None:
    """Rules for ``tenant1`` (a pattern ``tenant1*``) read ``tenant10:secret``; ``tenant1:`` does
    not. app_user_access refuses the first (above) and grants the second."""
    admin = tenants.server.client("admin")
    try:
        admin.set("tenant10:secret", "of tenant 10")
        loose = secrets.token_hex(16)
        admin.acl_setuser(
            "loose", enabled=True, passwords=[f"+{loose}"], keys=["tenant1*"], commands=["+get"]
        )
        admin.execute_command(  # type: ignore[no-untyped-call]
            "ACL", "SETUSER", "tight", "on", f">{loose}", *app_user_access("tenant1:").split()
        )
        port = tenants.server.port
        with redis.Redis(port=port, username="loose", password=loose) as client:
            assert client.get("tenant10:secret") == b"of tenant 10"
        tight = redis.Redis(port=port, username="tight", password=loose)
        with tight, pytest.raises(redis.exceptions.NoPermissionError):
            tight.get("tenant10:secret")
    finally:
        admin.acl_deluser("loose", "tight")
        admin.delete("tenant10:secret")
        admin.close()
