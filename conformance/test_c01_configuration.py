"""C1 Configuration: the seed's REDIS_* variables, or REDIS_URL (which wins), reach the target;
defaults are the seed's; bad settings are named; secrets stay out of reprs and errors."""

from __future__ import annotations

import pytest

from berthcache import AsyncCache, Cache, CacheConfig, ConfigurationError

from .support import AnyCache, aw, config_environ, config_url, dead_port

pytestmark = [pytest.mark.clause("C1"), pytest.mark.asyncio]


def _cls(kind: str) -> type[Cache] | type[AsyncCache]:
    return Cache if kind == "sync" else AsyncCache


async def _roundtrip(cache: AnyCache) -> None:
    try:
        await aw(cache.set("c1:probe", "ok", ttl=60))
        assert await aw(cache.get("c1:probe")) == "ok"
    finally:
        await aw(cache.close())


async def test_env_vars_connect_to_the_target(client_kind: str, conf: CacheConfig) -> None:
    env = config_environ(conf)
    cache = _cls(client_kind).from_env(env)
    assert cache.config.host == conf.host
    assert cache.config.port == conf.port
    assert cache.config.key_prefix == conf.key_prefix
    await _roundtrip(cache)


async def test_redis_url_wins_over_host_and_port(client_kind: str, conf: CacheConfig) -> None:
    env = config_environ(conf)
    # The host/port variables point at a port nobody listens on; REDIS_URL must win.
    env.update(REDIS_HOST="127.0.0.1", REDIS_PORT=str(dead_port()), REDIS_URL=config_url(conf))
    cache = _cls(client_kind).from_env(env)
    assert (cache.config.host, cache.config.port) == (conf.host, conf.port)
    await _roundtrip(cache)


async def test_from_url_connects(client_kind: str, conf: CacheConfig) -> None:
    cache = _cls(client_kind).from_url(
        config_url(conf),
        key_prefix=conf.key_prefix,
        tls_ca_file=conf.tls_ca_file,
        cluster=conf.cluster,
    )
    assert cache.config.tls == conf.tls
    await _roundtrip(cache)


@pytest.mark.not_twinned(reason="config parsing: no client involved")
async def test_defaults_are_the_seeds() -> None:
    config = CacheConfig.from_env({})
    assert config.key_prefix == "berthcare:"
    assert config.max_retries_per_request == 3
    # The seed's .env name for its 50, 100, 150 ... ms schedule (see C2).
    assert config.retry_strategy == "exponential"
    assert config.prefix_channels is True  # channels carry the key prefix unless turned off
    assert (config.retry_base_delay_ms, config.retry_max_delay_ms) == (50, 2000)
    assert (config.host, config.port, config.db) == ("localhost", 6379, 0)


@pytest.mark.not_twinned(reason="config parsing: no client involved")
async def test_every_seed_variable_is_read() -> None:
    config = CacheConfig.from_env(
        {
            "REDIS_HOST": "cache.internal",
            "REDIS_PORT": "6380",
            "REDIS_PASSWORD": "s3cret-token",
            "REDIS_USERNAME": "app",
            "REDIS_DB": "2",
            "REDIS_KEY_PREFIX": "myapp:",
            "REDIS_MAX_RETRIES_PER_REQUEST": "5",
            "REDIS_RETRY_STRATEGY": "exponential",
        }
    )
    assert (config.host, config.port, config.db) == ("cache.internal", 6380, 2)
    assert (config.username, config.password) == ("app", "s3cret-token")
    assert config.key_prefix == "myapp:"
    assert (config.max_retries_per_request, config.retry_strategy) == (5, "exponential")


@pytest.mark.not_twinned(reason="config parsing: no client involved")
async def test_rediss_url_turns_tls_on_with_verification() -> None:
    config = CacheConfig.from_url("rediss://app:tok@cache.example.com:6379/0")
    assert config.tls is True
    assert config.tls_verify is True  # verification is on unless turned off explicitly
    assert CacheConfig.from_url("redis://cache.example.com").tls is False


@pytest.mark.not_twinned(reason="config parsing: no client involved")
@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"REDIS_PORT": "sixty"}, "REDIS_PORT"),
        ({"REDIS_PORT": "70000"}, "REDIS_PORT"),
        ({"REDIS_DB": "-1"}, "REDIS_DB"),
        ({"REDIS_MAX_RETRIES_PER_REQUEST": "many"}, "REDIS_MAX_RETRIES_PER_REQUEST"),
        ({"REDIS_RETRY_STRATEGY": "sometimes"}, "REDIS_RETRY_STRATEGY"),
        ({"REDIS_PREFIX_CHANNELS": "sometimes"}, "REDIS_PREFIX_CHANNELS"),
        ({"REDIS_URL": "http://cache:6379"}, "REDIS_URL"),
    ],
)
async def test_bad_setting_is_named(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        CacheConfig.from_env(env)
    assert named in str(info.value)


async def test_unknown_argument_is_named(client_kind: str) -> None:
    with pytest.raises(ConfigurationError, match="prot"):
        _cls(client_kind)(prot=6379)


async def test_password_never_shown(client_kind: str, conf: CacheConfig) -> None:
    secret = "pw-" + "x7Qz9" * 4
    config = conf.replace(password=secret)
    cache = _cls(client_kind)(config)
    try:
        for text in (repr(config), str(config), config.url, repr(cache)):
            assert secret not in text
    finally:
        await aw(cache.close())
    with pytest.raises(ConfigurationError) as info:
        CacheConfig.from_url(f"ftp://user:{secret}@host:1")
    assert secret not in str(info.value)
