"""The one error-mapping boundary: what a caller catches, and what its message never carries.

Server errors come from real redis-server processes (a maxmemory-limited one for OOM); the
boundary function itself is also called directly on the errors redis-py and sockets raise.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable

import pytest
import redis
import redis.exceptions as rex

from berthcache import (
    AsyncCache,
    AuthenticationError,
    Cache,
    CacheError,
    CacheServerError,
    CacheUnavailableError,
    OutOfMemoryError,
    SerializationError,
)
from berthcache._exceptions import map_errors, to_cache_error
from berthcache.testing import RedisServer
from tests.unit.support import config_for

# What the caller stored: it must never come back in an error message.
PRIVATE = "patient-7731-diagnosis"


@pytest.fixture
def full_server(server_factory: Callable[..., RedisServer]) -> RedisServer:
    """A server that refuses every write: maxmemory 1 byte with no eviction, set at run time."""
    server = server_factory(maxmemory_policy="noeviction")
    with server.client() as admin:
        admin.config_set("maxmemory", "1")
    return server


@pytest.mark.parametrize(
    ("transaction", "failed"),
    # Inside MULTI, Redis refuses to queue any command once out of memory (queuing takes
    # memory), so the first command fails; a plain pipeline fails only the write.
    [(False, "#2: SET"), (True, "#1: EXISTS")],
    ids=["pipeline", "multi"],
)
def test_oom_inside_a_pipeline_names_the_command_not_its_arguments(
    full_server: RedisServer, transaction: bool, failed: str
) -> None:
    with Cache(config_for(full_server)) as cache, cache.pipeline(transaction) as pipe:
        pipe.exists("other").set(f"key-{PRIVATE}", PRIVATE)
        with pytest.raises(OutOfMemoryError) as info:
            pipe.execute()
    message = str(info.value)
    assert message.startswith("OOM command not allowed when used memory > 'maxmemory'")
    assert f"(pipeline command {failed})" in message
    assert PRIVATE not in message
    assert isinstance(info.value.__cause__, rex.RedisError)  # the original stays for debugging


@pytest.mark.asyncio
async def test_oom_inside_an_async_pipeline_is_scrubbed_the_same(full_server: RedisServer) -> None:
    async with AsyncCache(config_for(full_server)) as cache, cache.pipeline() as pipe:
        pipe.set("k", PRIVATE)
        with pytest.raises(OutOfMemoryError) as info:
            await pipe.execute()
    assert "pipeline command #1: SET" in str(info.value)
    assert PRIVATE not in str(info.value)


def test_oom_outside_a_pipeline(full_server: RedisServer) -> None:
    oom = pytest.raises(OutOfMemoryError, match=r"^OOM command not allowed")
    with Cache(config_for(full_server)) as cache, oom:
        cache.set("k", PRIVATE)


def test_a_failed_pipeline_command_with_newlines_in_its_value_leaks_none_of_it(
    redis_server: RedisServer,
) -> None:
    value = f"first line\n{PRIVATE}\r\nthird) of pipeline caused error: fake"
    with Cache(config_for(redis_server)) as cache, cache.pipeline() as pipe:
        pipe.set("n", value).incr("n")  # INCRBY of text: the server refuses the second
        with pytest.raises(CacheServerError) as info:
            pipe.execute()
    message = str(info.value)
    assert message == "value is not an integer or out of range (pipeline command #2: INCRBY)"


def test_the_password_never_reaches_a_message(
    server_factory: Callable[..., RedisServer],
) -> None:
    password = secrets.token_urlsafe(16)
    server = server_factory(password=password)
    with Cache(config_for(server, password=password)) as cache:
        assert cache.get("k") is None
        with pytest.raises(CacheError) as info, cache._operation():
            # as a connection error quoting its settings would carry it
            raise rex.ConnectionError(f"Error connecting with password {password}")
    assert password not in str(info.value)
    assert "***" in str(info.value)


def test_wrong_password_is_an_authentication_error(
    server_factory: Callable[..., RedisServer],
) -> None:
    server = server_factory(password=secrets.token_urlsafe(16))
    wrong = secrets.token_urlsafe(16)
    with (
        Cache(config_for(server, password=wrong)) as cache,
        pytest.raises(AuthenticationError) as info,
    ):
        cache.get("k")
    assert wrong not in str(info.value)


def test_to_cache_error_maps_each_family_once() -> None:
    ours = SerializationError("already ours")
    assert to_cache_error(ours) is ours
    assert isinstance(to_cache_error(rex.ConnectionError("refused")), CacheUnavailableError)
    assert isinstance(to_cache_error(ConnectionRefusedError(111, "refused")), CacheUnavailableError)
    exhausted = to_cache_error(rex.ConnectionError("No connection available."))
    assert isinstance(exhausted, CacheUnavailableError)
    assert "max_connections" in str(exhausted)
    assert isinstance(to_cache_error(rex.ResponseError("WRONGPASS nope")), AuthenticationError)
    assert type(to_cache_error(rex.ResponseError("WRONGTYPE x"))) is CacheServerError
    decode = UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
    assert isinstance(to_cache_error(decode), SerializationError)
    assert to_cache_error(ValueError("a bug in the caller")) is None
    assert to_cache_error(KeyError("k")) is None


def test_map_errors_raises_ours_from_the_original_and_leaves_bugs_alone() -> None:
    original = rex.TimeoutError(f"Timeout reading from socket {PRIVATE}")
    with pytest.raises(CacheUnavailableError) as info, map_errors(secrets=[PRIVATE]):
        raise original
    assert info.value.__cause__ is original
    assert PRIVATE not in str(info.value)
    with pytest.raises(ZeroDivisionError), map_errors():
        _ = 1 / 0


@pytest.mark.asyncio
async def test_map_errors_works_around_await() -> None:
    async def refuse() -> None:
        await asyncio.sleep(0)
        raise redis.ConnectionError("Connection refused")

    with pytest.raises(CacheUnavailableError), map_errors():
        await refuse()
