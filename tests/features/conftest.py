"""Fixtures for the feature tests: a real throwaway redis-server and real ``Cache`` /
``AsyncCache`` clients on it. Each test gets its own key prefix, so tests never see each
other's keys; the system Redis on 6379 is never used.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
import pytest_asyncio
import redis

from berthcache._async_client import AsyncCache
from berthcache._client import Cache
from berthcache._config import CacheConfig

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """One redis-server process on 127.0.0.1 in its own temp dir."""

    port: int
    directory: str
    process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                self.directory,
                "--save",
                "",
                "--appendonly",
                "no",
                "--logfile",
                "redis.log",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        try:
            while True:
                try:
                    if client.ping():
                        return
                except redis.ConnectionError as exc:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        self.stop()
                        raise RuntimeError(
                            f"redis-server on port {self.port} did not start"
                        ) from exc
                    time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self.process = None


@contextlib.contextmanager
def running_server() -> Iterator[Server]:
    directory = tempfile.mkdtemp(prefix="berthcache-features-")
    server = Server(port=_free_port(), directory=directory)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def feature_server() -> Iterator[Server]:
    with running_server() as server:
        yield server


@pytest.fixture
def feature_config(feature_server: Server) -> CacheConfig:
    prefix = f"bc-feat-{uuid.uuid4().hex[:8]}:"
    return CacheConfig(
        host="127.0.0.1",
        port=feature_server.port,
        key_prefix=prefix,
        connect_timeout=1.0,
        socket_timeout=2.0,
        max_retries_per_request=0,
    )


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
def raw(feature_server: Server) -> Iterator[redis.Redis]:
    """A plain client for looking behind the features' backs (TTLs, raw values)."""
    client = redis.Redis(port=feature_server.port, decode_responses=True)
    try:
        yield client
    finally:
        client.close()


def _dead_config() -> Iterator[CacheConfig]:
    with running_server() as server:
        config = CacheConfig(
            host="127.0.0.1",
            port=server.port,
            key_prefix=f"bc-feat-{uuid.uuid4().hex[:8]}:",
            connect_timeout=0.5,
            socket_timeout=0.5,
            max_retries_per_request=0,
        )
        server.stop()
        yield config


@pytest.fixture
def dead_cache() -> Iterator[Cache]:
    """A sync cache whose server has been stopped (Redis unreachable)."""
    for config in _dead_config():
        client = Cache(config)
        try:
            yield client
        finally:
            client.close()


@pytest_asyncio.fixture
async def dead_acache() -> AsyncIterator[AsyncCache]:
    """An async cache whose server has been stopped (Redis unreachable)."""
    for config in _dead_config():
        client = AsyncCache(config)
        try:
            yield client
        finally:
            await client.close()
