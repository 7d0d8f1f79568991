"""Helpers the unit tests import: a ``CacheConfig`` pointing at a harness server."""

from __future__ import annotations

import uuid
from typing import Any

from berthcache._config import CacheConfig
from berthcache.testing import ACLUser, RedisServer

__all__ = ["app_user_config", "config_for"]


def config_for(server: RedisServer, **overrides: Any) -> CacheConfig:
    """Settings for ``server`` as its default user (password / TLS CA as it runs), under a fresh
    key prefix so tests sharing a server never see each other's keys; ``overrides`` win."""
    kwargs = server.connection_kwargs(user=None)
    settings: dict[str, Any] = {
        "host": kwargs["host"],
        "port": kwargs["port"],
        "key_prefix": f"bc-unit-{uuid.uuid4().hex[:8]}:",
    }
    if "password" in kwargs:
        settings["password"] = kwargs["password"]
    if kwargs.get("ssl"):
        settings.update(tls=True, tls_ca_file=kwargs["ssl_ca_certs"])
    settings.update(overrides)
    return CacheConfig(**settings)


def app_user_config(port: int, user: ACLUser, prefix: str, *, timeout: float = 2.0) -> CacheConfig:
    """Settings that fail fast (no retries, short timeouts) as ``user`` on a plain server on
    ``port``, under a fresh key prefix below ``prefix`` (the user's allow-listed prefix)."""
    return CacheConfig(
        host="127.0.0.1",
        port=port,
        username=user.name,
        password=user.password,
        key_prefix=f"{prefix}{uuid.uuid4().hex[:8]}:",
        connect_timeout=min(timeout, 1.0),
        socket_timeout=timeout,
        max_retries_per_request=0,
    )
