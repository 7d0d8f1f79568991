"""C15 TLS and AUTH: a password is required and TLS protects the traffic; NOAUTH, a wrong
password, plain TCP against the TLS port and an untrusted CA each fail with a clear error."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import redis
import trustme
from redis.asyncio.connection import SSLConnection as AsyncSSLConnection

from berthcache import (
    AuthenticationError,
    CacheConfig,
    CacheUnavailableError,
    TLSError,
)

from .support import WAIT, AnyCache, CacheFactory, aw, elapsed, is_async

pytestmark = [pytest.mark.clause("C15"), pytest.mark.asyncio]


@pytest.mark.requires("auth")
async def test_no_password_is_explained(cache_factory: CacheFactory, conf: CacheConfig) -> None:
    cache = cache_factory(conf.replace(username=None, password=None))
    with pytest.raises(AuthenticationError) as info:
        await aw(cache.get("k"))
    text = str(info.value)
    assert "NOAUTH" in text or "auth" in text.lower()
    assert "REDIS_PASSWORD" in text  # says what to fix


@pytest.mark.requires("auth")
async def test_wrong_password_fails_fast_and_secretly(
    cache_factory: CacheFactory, conf: CacheConfig
) -> None:
    wrong = "wrong-" + "Zp3r" * 5
    cache = cache_factory(conf.replace(password=wrong), max_retries_per_request=3)
    reconnecting: list[object] = []
    cache.events.on("reconnecting", reconnecting.append)
    with elapsed() as took, pytest.raises(AuthenticationError) as info:
        await aw(cache.get("k"))
    assert wrong not in str(info.value)
    assert conf.password is None or conf.password not in str(info.value)
    assert reconnecting == []  # bad credentials are never retried
    assert took[0] < WAIT


@pytest.mark.requires("tls")
async def test_tls_is_on_and_verified(cache: AnyCache) -> None:
    """The client really speaks TLS to the target and verifies its certificate and name."""
    await aw(cache.set("tls-probe", "yes", ttl=60))
    assert await aw(cache.get("tls-probe")) == "yes"
    if cache.config.cluster:
        # Every node's connections: TLS, the certificate and the node's own name verified.
        for node in cache._transport.nodes():  # type: ignore[union-attr]
            kwargs = cache._transport.node_config(node).connection_kwargs()  # type: ignore[union-attr]
            assert kwargs["ssl"] is True
            assert kwargs["ssl_cert_reqs"] == "required"
            assert kwargs["ssl_check_hostname"] is True
            assert kwargs["host"] == node[0]
        return
    pool = cache.redis.connection_pool
    tls_class = AsyncSSLConnection if is_async(cache) else redis.SSLConnection
    assert issubclass(pool.connection_class, tls_class)
    assert pool.connection_kwargs.get("ssl_cert_reqs") in ("required", ssl.CERT_REQUIRED)
    assert pool.connection_kwargs.get("ssl_check_hostname") is True


@pytest.mark.requires("tls")
async def test_plain_tcp_against_tls_port_is_refused_clearly(
    cache_factory: CacheFactory, conf: CacheConfig
) -> None:
    cache = cache_factory(
        conf.replace(tls=False, tls_ca_file=None),
        connect_timeout=1.0,
        socket_timeout=1.0,
        max_retries_per_request=0,
    )
    with elapsed() as took, pytest.raises(CacheUnavailableError) as info:
        await aw(cache.get("k"))
    assert not isinstance(info.value, AuthenticationError)
    assert "unreachable" in str(info.value).lower() or "tls" in str(info.value).lower()
    assert took[0] < WAIT


@pytest.mark.requires("tls")
async def test_untrusted_ca_is_a_tls_error(
    cache_factory: CacheFactory, conf: CacheConfig, tmp_path: Path
) -> None:
    other_ca = trustme.CA(organization_name="not the server's CA")
    ca_file = tmp_path / "other-ca.pem"
    other_ca.cert_pem.write_to_path(str(ca_file))
    cache = cache_factory(conf.replace(tls_ca_file=str(ca_file)), max_retries_per_request=2)
    reconnecting: list[object] = []
    cache.events.on("reconnecting", reconnecting.append)
    with pytest.raises(TLSError) as info:
        await aw(cache.get("k"))
    assert "REDIS_TLS_CA_FILE" in str(info.value)
    assert reconnecting == []  # a certificate problem does not heal by retrying


@pytest.mark.requires("tls", "auth")
async def test_authenticated_tls_works(cache_factory: CacheFactory) -> None:
    cache = cache_factory()
    await aw(cache.set("secure", "yes", ttl=60))
    assert await aw(cache.get("secure")) == "yes"
