"""Helpers the unit tests import: a ``CacheConfig`` pointing at a harness server."""

from __future__ import annotations

import uuid
from typing import Any

from berthcache._config import CacheConfig
from berthcache.testing import RedisServer

__all__ = ["config_for"]


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
