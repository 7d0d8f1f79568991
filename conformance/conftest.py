"""Fixtures of the conformance suite.

``cache`` is parametrized over ``sync`` (:class:`berthcache.Cache`) and ``async``
(:class:`berthcache.AsyncCache`), so every test proves its clause for both twins. Each test gets
its own key prefix under the run's namespace (``redis_namespace``): tests never see each other's
keys, and everything they write is removed by the harness at the end of the run. Every client a
test builds is closed at teardown, whatever happens.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from berthcache import CacheConfig

from .support import CLIENT_KINDS, AnyCache, CacheFactory, aw, make_cache


def pytest_configure(config: pytest.Config) -> None:
    # Also registered by berthcache.testing.clauses; repeated here so --strict-markers holds
    # when the suite runs without that plugin.
    config.addinivalue_line("markers", "clause(id, ...): the contract clause(s) a test proves")


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def test_prefix(redis_namespace: str) -> str:
    """A key prefix of this test's own, under the run's namespace."""
    return f"{redis_namespace}{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def conf(cache_config: CacheConfig, test_prefix: str) -> CacheConfig:
    """The target's settings with this test's prefix."""
    return cache_config.replace(key_prefix=test_prefix)


@pytest.fixture(params=CLIENT_KINDS)
def client_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest_asyncio.fixture
async def cache_factory(client_kind: str, conf: CacheConfig) -> AsyncIterator[CacheFactory]:
    """Build more clients of this test's kind (``factory(**overrides)``); all closed at the end."""
    made: list[AnyCache] = []

    def factory(config: CacheConfig | None = None, **overrides: Any) -> AnyCache:
        client = make_cache(client_kind, config or conf, **overrides)
        made.append(client)
        return client

    try:
        yield factory
    finally:
        for client in reversed(made):
            with contextlib.suppress(Exception):
                await aw(client.close())


@pytest.fixture
def cache(cache_factory: CacheFactory) -> AnyCache:
    """A connected client on the target: ``Cache`` or ``AsyncCache`` (both, by parametrization)."""
    return cache_factory()
