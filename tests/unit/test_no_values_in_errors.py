"""No stored value, and no personal part of a key, in any error or log line — on every write path.

A real redis-server that refuses every write (``maxmemory 1`` under ``noeviction``) makes each
path fail the way production does under memory pressure. redis-py annotates an error inside a
pipeline or MULTI/EXEC with the whole command ("Command # 1 (SET key value) of pipeline caused
error"); berthcache keeps the original on ``__cause__`` for debugging, so the check covers what a
traceback prints — the whole cause/context chain — not only ``str(exc)``, and every log record
of the berthcache and redis loggers at DEBUG.
"""

from __future__ import annotations

import inspect
import logging
import traceback
from collections.abc import Callable
from typing import Any

import pytest

from berthcache import AsyncCache, Cache, CacheServerError, OutOfMemoryError
from berthcache.testing import RedisServer
from tests.unit.support import config_for

# What a caller stores (personal data) and a personal key part (a user id that is an e-mail).
SSN = "123-45-6789"
USER = "ada.lovelace@example.org"
PRIVATE = (SSN, USER)

AnyCache = Cache | AsyncCache


async def aw(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def make(kind: str, server: RedisServer) -> AnyCache:
    config = config_for(server)
    return Cache(config) if kind == "sync" else AsyncCache(config)


async def close(cache: AnyCache) -> None:
    await aw(cache.close())


def everything_printed(exc: BaseException) -> str:
    """All a caller could see of ``exc``: str, repr, args and the traceback with its chain."""
    return "\n".join(
        [str(exc), repr(exc), repr(exc.args), "".join(traceback.format_exception(exc))]
    )


def assert_private_absent(text: str, where: str) -> None:
    for secret in PRIVATE:
        assert secret not in text, f"{secret!r} appears in {where}:\n{text}"


@pytest.fixture
def full_server(server_factory: Callable[..., RedisServer]) -> RedisServer:
    """A server of this test's own that refuses every write: maxmemory 1 byte, noeviction."""
    server = server_factory(maxmemory_policy="noeviction")
    with server.client() as admin:
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", "1")
    return server


async def _pipelined(cache: AnyCache, transaction: bool) -> None:
    if isinstance(cache, AsyncCache):
        async with cache.pipeline(transaction=transaction) as apipe:
            apipe.set(f"user:{USER}", SSN)
            await apipe.execute()
        return
    with cache.pipeline(transaction=transaction) as pipe:
        pipe.set(f"user:{USER}", SSN)
        pipe.execute()


WRITES: dict[str, Callable[[AnyCache], Any]] = {
    "sessions.create (MULTI/EXEC)": lambda c: c.sessions.create(USER, {"ssn": SSN}),
    "pipeline set": lambda c: _pipelined(c, transaction=False),
    "transaction pipeline set": lambda c: _pipelined(c, transaction=True),
    "set": lambda c: c.set(f"user:{USER}", SSN),
    "set_json": lambda c: c.set_json(f"user:{USER}", {"ssn": SSN}),
    "responses.set": lambda c: c.responses.set("profile", USER, {"ssn": SSN}),
    "presence.touch": lambda c: c.presence.touch(USER),
}


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("write", list(WRITES))
async def test_oom_on_every_write_path_shows_no_value_anywhere(
    full_server: RedisServer, kind: str, write: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # root: the berthcache.* and redis.* loggers included
    cache = make(kind, full_server)
    try:
        with pytest.raises(OutOfMemoryError) as info:
            await aw(WRITES[write](cache))
    finally:
        await close(cache)
    exc = info.value
    assert str(exc).startswith("OOM command not allowed when used memory > 'maxmemory'")
    assert_private_absent(everything_printed(exc), f"the error of {write}")
    assert exc.__cause__ is not None  # the original is kept for debugging, scrubbed
    assert_private_absent(caplog.text, f"the log records of {write}")
    if "pipeline" in write or "sessions" in write:
        printed = "".join(traceback.format_exception(exc))
        assert "Command # 1 (SET) of pipeline caused error" in printed  # position + name kept


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_publish_is_not_refused_under_oom_and_logs_no_value(
    full_server: RedisServer, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """PUBLISH stores nothing, so Redis does not refuse it under maxmemory (measured on 7.0)."""
    caplog.set_level(logging.DEBUG)
    cache = make(kind, full_server)
    try:
        assert await aw(cache.publish(f"alerts:{USER}", {"ssn": SSN})) == 0
    finally:
        await close(cache)
    assert_private_absent(caplog.text, "the log records of publish")


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_an_error_inside_exec_shows_no_key(
    redis_server: RedisServer, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A command that fails when EXEC runs it (INCRBY of text) is annotated by redis-py with
    its arguments — here the key, whose user part is personal."""
    caplog.set_level(logging.DEBUG)
    cache = make(kind, redis_server)
    key = f"user:{USER}"
    try:
        await aw(cache.set(key, SSN))
        with pytest.raises(CacheServerError) as info:
            await _get_then_incr_in_a_transaction(cache, key)
    finally:
        await close(cache)
    exc = info.value
    assert str(exc) == "value is not an integer or out of range (pipeline command #2: INCRBY)"
    assert_private_absent(everything_printed(exc), "the error")
    assert_private_absent(caplog.text, "the log records")


async def _get_then_incr_in_a_transaction(cache: AnyCache, key: str) -> None:
    if isinstance(cache, AsyncCache):
        async with cache.pipeline(transaction=True) as apipe:
            apipe.get(key).incr(key)
            await apipe.execute()
        return
    with cache.pipeline(transaction=True) as pipe:
        pipe.get(key).incr(key)
        pipe.execute()


@pytest.fixture
def replica_server(server_factory: Callable[..., RedisServer]) -> RedisServer:
    """A server of this test's own that answers every write with READONLY, as a primary demoted
    by a failover does: a replica of a primary that is not there (port 1 on loopback)."""
    server = server_factory()
    with server.client() as admin:
        admin.execute_command("REPLICAOF", "127.0.0.1", "1")
    return server


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("write", ["sessions.create (MULTI/EXEC)", "pipeline set"])
async def test_readonly_retries_log_no_value(
    replica_server: RedisServer, kind: str, write: str, caplog: pytest.LogCaptureFixture
) -> None:
    """READONLY is retried (it heals after a failover), and each retry emits the ``error``
    connection event, which is logged: that line must say which command failed, not with what."""
    caplog.set_level(logging.DEBUG)
    cache = make(kind, replica_server)
    try:
        with pytest.raises(CacheServerError) as info:
            await aw(WRITES[write](cache))
    finally:
        await close(cache)
    assert_private_absent(everything_printed(info.value), f"the error of {write}")
    events = [r.getMessage() for r in caplog.records if r.name == "berthcache.connection"]
    assert any("ReadOnlyError" in line for line in events), events  # the event was logged
    assert_private_absent(caplog.text, f"the log records of {write}")
