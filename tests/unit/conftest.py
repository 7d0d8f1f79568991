"""Real redis-server processes for the core unit/integration tests, from the shared harness.

Servers are :class:`berthcache.testing.RedisServer` processes on free ports (never 6379), with
persistence off so a restart loses the data as a cache node would. The plain server is shared by
the session (tests isolate themselves by key prefix); tests that stop, restart or reconfigure a
server get private ones from ``server_factory``, all stopped when the test ends.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from berthcache._config import CacheConfig
from berthcache.testing import RedisServer, TLSFiles, make_tls_files
from berthcache.testing.plugin import LocalRedisFactory
from tests.unit.support import config_for


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A shared plain server; tests isolate themselves with a fresh key prefix per config."""
    with RedisServer(appendonly=False, name="unit") as server:
        yield server


@pytest.fixture
def config(redis_server: RedisServer) -> CacheConfig:
    return config_for(redis_server)


@pytest.fixture
def server_factory(local_redis_factory: LocalRedisFactory) -> Callable[..., RedisServer]:
    """Start private servers (for restart / stop / auth / TLS tests); all stopped after the test.

    Keyword arguments go to :class:`RedisServer` (``password=``, ``tls=``, ...); persistence is
    off unless asked for.
    """

    def make(**kwargs: Any) -> RedisServer:
        kwargs.setdefault("appendonly", False)
        return local_redis_factory.server(**kwargs)

    return make


@pytest.fixture(scope="session")
def tls_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="bc-unit-tls-") as tmp:
        yield Path(tmp)


@pytest.fixture(scope="session")
def tls_files(tls_dir: Path) -> TLSFiles:
    """A throwaway CA and a server certificate for 127.0.0.1 / localhost."""
    return make_tls_files(tls_dir / "server")


@pytest.fixture(scope="session")
def other_ca_file(tls_dir: Path) -> str:
    """A CA that did not sign the server certificate (verification must fail)."""
    return str(make_tls_files(tls_dir / "other").ca_file)
