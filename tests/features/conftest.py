"""Fixtures for the feature tests: a real redis-server from the shared harness and real
``Cache`` / ``AsyncCache`` clients on it, connected as an ACL ``app`` user with the deployed
app user's allow-list (``berthcache.acl.app_user_access``) for ``bc-feat:``, so every feature
test also proves the allow-list grants what the feature sends. Each test gets its own key
prefix under it, so tests never see each other's keys; the system Redis on 6379 is never used.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
import redis

from berthcache._async_client import AsyncCache
from berthcache._client import Cache
from berthcache._config import CacheConfig
from berthcache.acl import app_user_access
from berthcache.testing import ACLUser, RedisServer
from berthcache.testing._server import free_port
from tests.unit.support import app_user_config

APP_PREFIX = "bc-feat:"
APP_USER = ACLUser("app", secrets.token_hex(16), app_user_access(APP_PREFIX))


def _config(port: int, *, timeout: float = 2.0) -> CacheConfig:
    """Fail fast (no retries, short timeouts) under a fresh key prefix, as the app user."""
    return app_user_config(port, APP_USER, APP_PREFIX, timeout=timeout)


@pytest.fixture(scope="session")
def feature_server() -> Iterator[RedisServer]:
    """One plain server for the whole session; no test stops or reconfigures it."""
    with RedisServer(appendonly=False, name="features", users=[APP_USER]) as server:
        yield server


@pytest.fixture
def feature_config(feature_server: RedisServer) -> CacheConfig:
    return _config(feature_server.port)


@pytest.fixture
def cache(feature_config: CacheConfig) -> Iterator[Cache]:
    client = Cache(feature_config)
    try:
        yield client
    finally:
        client.close()


@pytest_asyncio.fixture
async def acache(feature_config: CacheConfig) -> AsyncIterator[AsyncCache]:
    client = AsyncCache(feature_config)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def raw(feature_server: RedisServer) -> Iterator[redis.Redis]:
    """A plain client for looking behind the features' backs (TTLs, raw values)."""
    client = feature_server.client(None, decode_responses=True)  # the default user: anything
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def dead_config() -> CacheConfig:
    """Settings for a port nobody listens on: connections are refused (Redis unreachable)."""
    return _config(free_port(), timeout=0.5)


@pytest.fixture
def dead_cache(dead_config: CacheConfig) -> Iterator[Cache]:
    """A sync cache whose server is down."""
    client = Cache(dead_config)
    try:
        yield client
    finally:
        client.close()


@pytest_asyncio.fixture
async def dead_acache(dead_config: CacheConfig) -> AsyncIterator[AsyncCache]:
    """An async cache whose server is down."""
    client = AsyncCache(dead_config)
    try:
        yield client
    finally:
        await client.close()
