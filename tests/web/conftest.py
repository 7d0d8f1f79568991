"""Fixtures for berthcache.web and @cached: a real redis-server, connected to as an ACL ``app``
user with the deployed app user's allow-list (so the helpers are proven to need nothing more),
and real ``Cache`` / ``AsyncCache`` clients, each test under its own key prefix.

``twin`` gives each test both clients in turn: the web helpers call a sync cache in a worker
thread and an async one on the loop, and both must behave the same.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
import redis

from berthcache import AsyncCache, Cache, CacheConfig
from berthcache.acl import app_user_access
from berthcache.testing import ACLUser, RedisServer, free_port
from tests.unit.support import app_user_config

APP_PREFIX = "bc-web:"
APP_USER = ACLUser("app", secrets.token_hex(16), app_user_access(APP_PREFIX))


def _config(port: int, *, timeout: float = 2.0) -> CacheConfig:
    """Fail fast (no retries, short timeouts) under a fresh key prefix, as the app user."""
    return app_user_config(port, APP_USER, APP_PREFIX, timeout=timeout)


@pytest.fixture(scope="session")
def web_server() -> Iterator[RedisServer]:
    with RedisServer(appendonly=False, name="web", users=[APP_USER]) as server:
        yield server


@pytest.fixture
def web_config(web_server: RedisServer) -> CacheConfig:
    return _config(web_server.port)


@pytest.fixture
def cache(web_config: CacheConfig) -> Iterator[Cache]:
    client = Cache(web_config)
    try:
        yield client
    finally:
        client.close()


@pytest_asyncio.fixture
async def acache(web_config: CacheConfig) -> AsyncIterator[AsyncCache]:
    client = AsyncCache(web_config)
    try:
        yield client
    finally:
        await client.close()


@pytest_asyncio.fixture(params=["sync", "async"])
async def twin(
    request: pytest.FixtureRequest, web_config: CacheConfig
) -> AsyncIterator[Cache | AsyncCache]:
    """A sync Cache, then an AsyncCache, on the same server."""
    if request.param == "sync":
        sync = Cache(web_config)
        try:
            yield sync
        finally:
            sync.close()
    else:
        client = AsyncCache(web_config)
        try:
            yield client
        finally:
            await client.close()


@pytest_asyncio.fixture(params=["sync", "async"])
async def dead_twin(request: pytest.FixtureRequest) -> AsyncIterator[Cache | AsyncCache]:
    """A cache of each kind whose server is down (connections refused)."""
    config = _config(free_port(), timeout=0.5)
    if request.param == "sync":
        sync = Cache(config)
        try:
            yield sync
        finally:
            sync.close()
    else:
        client = AsyncCache(config)
        try:
            yield client
        finally:
            await client.close()


@pytest.fixture
def raw(web_server: RedisServer) -> Iterator[redis.Redis]:
    """A plain client for looking behind the helpers' backs (TTLs, raw keys)."""
    client = web_server.client(None, decode_responses=True)
    try:
        yield client
    finally:
        client.close()
