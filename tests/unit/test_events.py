"""Connection events and fault behaviour against real redis-server processes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from berthcache._async_client import AsyncCache
from berthcache._client import Cache
from berthcache._events import ConnectionEvent
from berthcache._exceptions import (
    AuthenticationError,
    CacheUnavailableError,
    ConfigurationError,
    ReadOnlyError,
    TLSError,
)
from berthcache.testing import TLSFiles
from berthcache.testing._server import free_port
from tests.unit.support import config_for

SECRET = "s3cr3t-Pa55word-never-shown"


def record(cache: Cache | AsyncCache) -> list[ConnectionEvent]:
    seen: list[ConnectionEvent] = []
    for name in ("connect", "ready", "error", "close", "reconnecting", "end"):
        cache.events.on(name, seen.append)
    return seen


def names(events: list[ConnectionEvent]) -> list[str]:
    return [e.name for e in events]


def test_connect_ready_on_first_command_close_and_end_on_close(config: Any) -> None:
    cache = Cache(config)
    seen = record(cache)
    assert seen == [], "no connection before the first command"
    cache.set("k", "v")
    assert names(seen) == ["connect", "ready"]
    cache.close()
    assert names(seen) == ["connect", "ready", "close", "end"]
    assert all(e.endpoint == config.url for e in seen)


def test_unknown_event_name_is_named() -> None:
    cache = Cache(port=free_port())
    with pytest.raises(ConfigurationError, match="'conect'"):
        cache.events.on("conect", print)
    cache.close()


def test_off_stops_callbacks_and_failing_callback_does_not_break(config: Any) -> None:
    cache = Cache(config)
    seen: list[ConnectionEvent] = []

    def boom(event: ConnectionEvent) -> None:
        raise RuntimeError("callback bug")

    cache.events.on("ready", boom)
    cache.events.on("ready", seen.append)
    cache.events.off("ready", seen.append)
    cache.set("k", "v")  # the raising callback is logged, the command still works
    assert seen == []
    assert cache.get("k") == "v"
    cache.close()


def test_server_down_at_start_fails_bounded(server_factory: Callable[..., Any]) -> None:
    cache = Cache(host="127.0.0.1", port=free_port(), max_retries_per_request=3)
    seen = record(cache)
    start = time.monotonic()
    with pytest.raises(CacheUnavailableError, match="unreachable"):
        cache.get("k")
    elapsed = time.monotonic() - start
    assert elapsed < 3.0
    assert names(seen).count("error") == 4  # the first try and three retries, not 16
    reconnecting = [e.details for e in seen if e.name == "reconnecting"]
    assert reconnecting == [
        {"attempt": 1, "delay_ms": 50},
        {"attempt": 2, "delay_ms": 100},
        {"attempt": 3, "delay_ms": 150},
    ]
    health = cache.check_health()
    assert health.healthy is False
    assert health.error is not None
    cache.close()


def test_server_restart_mid_use_recovers(server_factory: Callable[..., Any]) -> None:
    server = server_factory()
    cache = Cache(config_for(server))
    seen = record(cache)
    cache.set("k", "before")
    server.restart()  # data is gone (no persistence), connections dropped
    assert cache.get("k") is None
    cache.set("k", "after")
    assert cache.get("k") == "after"
    got = names(seen)
    assert got[:2] == ["connect", "ready"]
    assert "close" in got
    assert got.count("connect") == 2
    assert got[-1] == "ready"
    cache.close()


@pytest.mark.asyncio
async def test_async_restart_mid_use_recovers(server_factory: Callable[..., Any]) -> None:
    server = server_factory()
    cache = AsyncCache(config_for(server))
    seen = record(cache)
    await cache.set("k", "v")
    server.restart()
    await cache.set("k", "again")
    assert await cache.get("k") == "again"
    assert names(seen).count("ready") == 2
    await cache.close()
    assert names(seen)[-1] == "end"


def test_wrong_password_is_not_retried_and_never_shown(
    server_factory: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    server = server_factory(password="the-real-password-xyz")
    caplog.set_level(logging.DEBUG, logger="berthcache")
    cache = Cache(config_for(server, password=SECRET))
    seen = record(cache)
    with pytest.raises(AuthenticationError) as info:
        cache.set("k", "v")
    assert names(seen).count("error") == 1
    assert "reconnecting" not in names(seen)
    assert names(seen).count("connect") == 1, "exactly one connection attempt"
    text = " ".join([str(info.value), repr(cache), repr(cache.config), str(cache.config)])
    text += caplog.text + repr([e.details for e in seen])
    assert SECRET not in text
    assert "REDIS_PASSWORD" in str(info.value)
    cache.close()


def test_right_password_works(server_factory: Callable[..., Any]) -> None:
    server = server_factory(password=SECRET)
    with Cache(config_for(server)) as cache:
        cache.set("k", "v")
        assert cache.get("k") == "v"
        assert SECRET not in repr(cache)


def test_password_in_error_text_is_scrubbed(config: Any) -> None:
    cache = Cache(config.replace(password="hunter2-unique"))
    with pytest.raises(CacheUnavailableError) as info, cache._operation():
        raise redis.ConnectionError("server said hunter2-unique is bad")
    assert "hunter2-unique" not in str(info.value)
    cache.close()


def test_readonly_replica_is_reconnect_and_retry(server_factory: Callable[..., Any]) -> None:
    server = server_factory()
    other = server_factory()
    cache = Cache(config_for(server, retry_base_delay_ms=1, retry_max_delay_ms=5))
    seen = record(cache)
    cache.set("k", "v")
    admin = redis.Redis(host="127.0.0.1", port=server.port)
    try:
        admin.replicaof("127.0.0.1", other.port)  # demote: now answers READONLY
        with pytest.raises(ReadOnlyError):
            cache.set("k", "w")
        assert names(seen).count("reconnecting") == 3
        assert names(seen).count("connect") == 4  # reconnected for each retry
    finally:
        admin.replicaof("NO", "ONE")
        admin.close()
    cache.set("k", "again")
    cache.close()


def test_tls_with_the_right_ca(server_factory: Callable[..., Any], tls_files: TLSFiles) -> None:
    server = server_factory(tls=tls_files)
    with Cache(config_for(server)) as cache:
        assert cache.config.url.startswith("rediss://")
        cache.set("k", "v")
        assert cache.get("k") == "v"


@pytest.mark.asyncio
async def test_async_tls(server_factory: Callable[..., Any], tls_files: TLSFiles) -> None:
    server = server_factory(tls=tls_files)
    async with AsyncCache(config_for(server)) as cache:
        await cache.set("k", "v")
        assert await cache.get("k") == "v"


def test_tls_verification_failure_is_tls_error(
    server_factory: Callable[..., Any], tls_files: TLSFiles, other_ca_file: str
) -> None:
    server = server_factory(tls=tls_files)
    cache = Cache(config_for(server, tls_ca_file=other_ca_file))
    seen = record(cache)
    with pytest.raises(TLSError, match="REDIS_TLS_CA_FILE"):
        cache.get("k")
    assert "reconnecting" not in names(seen), "a certificate failure cannot heal"
    cache.close()


@pytest.mark.asyncio
async def test_async_wrong_password(server_factory: Callable[..., Any]) -> None:
    server = server_factory(password="the-real-password-xyz")
    cache = AsyncCache(config_for(server, password=SECRET))
    seen = record(cache)
    with pytest.raises(AuthenticationError) as info:
        await cache.get("k")
    assert SECRET not in str(info.value)
    assert "reconnecting" not in names(seen)
    await cache.close()
