"""Throwaway real redis-server processes for the core unit/integration tests.

Each server runs from a config file in its own temp dir on a free port (never 6379), persistence
off, and is stopped at teardown whatever happens. The lead may later swap these for the shared
``berthcache.testing`` fixtures.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from berthcache._config import CacheConfig

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisProc:
    """One redis-server on 127.0.0.1 (optionally password / TLS-only), restartable."""

    def __init__(
        self,
        directory: Path,
        *,
        password: str | None = None,
        tls: dict[str, str] | None = None,
    ) -> None:
        self.directory = directory
        self.port = free_port()
        self.password = password
        self.tls = tls
        self.process: subprocess.Popen[bytes] | None = None
        self.conf = directory / "redis.conf"
        lines = [
            "bind 127.0.0.1",
            f"dir {directory}",
            'save ""',
            "appendonly no",
            "logfile redis.log",
        ]
        if tls:
            lines += [
                "port 0",
                f"tls-port {self.port}",
                f"tls-cert-file {tls['cert']}",
                f"tls-key-file {tls['key']}",
                f"tls-ca-cert-file {tls['ca']}",
                "tls-auth-clients no",
            ]
        else:
            lines.append(f"port {self.port}")
        if password:
            lines.append(f"requirepass {password}")
        self.conf.write_text("\n".join(lines) + "\n")

    def _client(self) -> redis.Redis:
        kwargs: dict[str, Any] = {"port": self.port, "socket_connect_timeout": 0.5}
        if self.password:
            kwargs["password"] = self.password
        if self.tls:
            kwargs.update(ssl=True, ssl_ca_certs=self.tls["ca"], ssl_check_hostname=False)
        return redis.Redis(host="127.0.0.1", **kwargs)

    def start(self, timeout: float = 10.0) -> None:
        self.process = subprocess.Popen(
            [REDIS_SERVER, str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        client = self._client()
        try:
            while True:
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        self.stop()
                        raise RuntimeError(
                            f"redis-server on port {self.port} did not start"
                        ) from None
                    time.sleep(0.02)  # readiness of a child process cannot be awaited
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def config(self, **overrides: Any) -> CacheConfig:
        settings: dict[str, Any] = {"host": "127.0.0.1", "port": self.port}
        if self.password:
            settings["password"] = self.password
        if self.tls:
            settings.update(tls=True, tls_ca_file=self.tls["ca"])
        settings["key_prefix"] = f"bc-unit-{uuid.uuid4().hex[:8]}:"
        settings.update(overrides)
        return CacheConfig(**settings)


@contextlib.contextmanager
def running(**kwargs: Any) -> Iterator[RedisProc]:
    with tempfile.TemporaryDirectory(prefix="bc-unit-redis-") as tmp:
        proc = RedisProc(Path(tmp), **kwargs)
        try:
            proc.start()
            yield proc
        finally:
            proc.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisProc]:
    """A shared plain server; tests isolate themselves with a fresh key prefix per config."""
    with running() as proc:
        yield proc


@pytest.fixture
def config(redis_server: RedisProc) -> CacheConfig:
    return redis_server.config()


@pytest.fixture
def server_factory() -> Iterator[Callable[..., RedisProc]]:
    """Start extra private servers (for restart / stop / auth / TLS tests); all stopped after."""
    stack = contextlib.ExitStack()

    def make(**kwargs: Any) -> RedisProc:
        return stack.enter_context(running(**kwargs))

    with stack:
        yield make


@pytest.fixture(scope="session")
def tls_files() -> Iterator[dict[str, str]]:
    """A throwaway CA and a server certificate for 127.0.0.1 / localhost (trustme)."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    with tempfile.TemporaryDirectory(prefix="bc-unit-tls-") as tmp:
        paths = {"ca": f"{tmp}/ca.pem", "cert": f"{tmp}/server.pem", "key": f"{tmp}/server.key"}
        ca.cert_pem.write_to_path(paths["ca"])
        cert.cert_chain_pems[0].write_to_path(paths["cert"])
        cert.private_key_pem.write_to_path(paths["key"])
        other = trustme.CA()
        paths["other_ca"] = f"{tmp}/other-ca.pem"
        other.cert_pem.write_to_path(paths["other_ca"])
        yield paths
