"""CacheConfig: errors name the variable, REDIS_URL wins, the password never shows."""

from __future__ import annotations

import pytest

from berthcache._async_client import AsyncCache
from berthcache._client import Cache
from berthcache._config import CacheConfig
from berthcache._exceptions import ConfigurationError

PASSWORD = "pw-Zq81-never-printed"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"REDIS_PORT": "abc"}, "REDIS_PORT"),
        ({"REDIS_PORT": "70000"}, "REDIS_PORT"),
        ({"REDIS_DB": "-1"}, "REDIS_DB"),
        ({"REDIS_RETRY_STRATEGY": "fibonacci"}, "REDIS_RETRY_STRATEGY"),
        ({"REDIS_MAX_RETRIES_PER_REQUEST": "many"}, "REDIS_MAX_RETRIES_PER_REQUEST"),
        ({"REDIS_URL": "http://host:6379"}, "REDIS_URL"),
        ({"REDIS_TLS": "maybe"}, "REDIS_TLS"),
        ({"REDIS_PREFIX_CHANNELS": "sometimes"}, "REDIS_PREFIX_CHANNELS"),
        # Values that come from REDIS_URL are reported as REDIS_URL, not REDIS_PORT / REDIS_DB.
        ({"REDIS_URL": "redis://cache:0/0", "REDIS_PORT": "6379"}, "REDIS_URL"),
        ({"REDIS_URL": "redis://cache:6379/99"}, "REDIS_URL"),
        ({"REDIS_URL": "rediss://cache:6379/0?ssl_cert_reqs=none"}, "REDIS_URL"),
    ],
)
def test_bad_environment_names_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        CacheConfig.from_env(env)
    assert info.value.setting == variable
    assert str(info.value).startswith(variable)


def test_bad_arguments_name_the_argument() -> None:
    with pytest.raises(ConfigurationError, match=r"^db"):
        CacheConfig(db=-1)
    with pytest.raises(
        ConfigurationError, match=r"retry_strategy.*exponential, linear, exponential-jitter, none"
    ):
        CacheConfig(retry_strategy="fibonacci")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"^prefix_channels"):
        CacheConfig(prefix_channels="no")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"^url: scheme"):
        CacheConfig.from_url("memcached://h:1")


def test_defaults_are_the_seeds() -> None:
    config = CacheConfig.from_env({})
    assert (config.host, config.port, config.db) == ("localhost", 6379, 0)
    assert config.key_prefix == "berthcare:"
    assert config.max_retries_per_request == 3
    assert config.retry_strategy == "exponential"  # the seed's .env name for 50, 100, 150 ms …
    assert config.prefix_channels is True


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("1", True), ("yes", True), ("false", False), ("0", False), ("NO", False)],
)
def test_prefix_channels_variable(raw: str, expected: bool) -> None:
    assert CacheConfig.from_env({"REDIS_PREFIX_CHANNELS": raw}).prefix_channels is expected


@pytest.mark.parametrize("name", ["exponential", "linear", "exponential-jitter", "none"])
def test_every_retry_strategy_name_is_accepted(name: str) -> None:
    assert CacheConfig.from_env({"REDIS_RETRY_STRATEGY": name.upper()}).retry_strategy == name


def test_redis_url_wins_over_host_variables() -> None:
    config = CacheConfig.from_env(
        {
            "REDIS_HOST": "ignored",
            "REDIS_PORT": "1234",
            "REDIS_PASSWORD": "ignored-too",
            "REDIS_URL": f"rediss://app:{PASSWORD}@cache.internal:6380/2",
            "REDIS_KEY_PREFIX": "svc:",
        }
    )
    assert (config.host, config.port, config.db) == ("cache.internal", 6380, 2)
    assert (config.username, config.password, config.tls) == ("app", PASSWORD, True)
    assert config.key_prefix == "svc:"


def test_cache_from_env_and_url_use_the_config() -> None:
    cache = Cache.from_env({"REDIS_PORT": "6390", "REDIS_KEY_PREFIX": "x:"}, db=3)
    assert (cache.config.port, cache.config.db, cache.keys.prefix) == (6390, 3, "x:")
    cache.close()
    cache = Cache.from_url("redis://127.0.0.1:6391/1")
    assert cache.config.port == 6391
    cache.close()


def test_password_never_in_repr_str_or_errors() -> None:
    config = CacheConfig.from_url(f"redis://user:{PASSWORD}@h:1/0")
    cache = Cache(config)
    acache = AsyncCache(config)
    shown = [
        repr(config),
        str(config),
        config.url,
        repr(cache),
        repr(cache.redis.connection_pool),  # redis-py 7.x prints its kwargs whole: masked
        repr(acache),
        repr(acache.redis.connection_pool),
    ]
    assert all(PASSWORD not in s for s in shown)
    assert "***" in config.url
    with pytest.raises(ConfigurationError) as info:
        CacheConfig.from_env({"REDIS_URL": f"redis://u:{PASSWORD}@h:notaport/0"})
    assert PASSWORD not in str(info.value)
    cache.close()


def test_url_query_parameters_are_refused_without_echoing_their_values() -> None:
    with pytest.raises(ConfigurationError) as info:
        CacheConfig.from_url("rediss://app:pw@cache:6379/0?ssl_cert_reqs=none&token=s3cr3t-value")
    assert "ssl_cert_reqs" in str(info.value)
    assert "token" in str(info.value)
    assert "s3cr3t-value" not in str(info.value)


def test_a_bare_query_item_is_counted_not_shown() -> None:
    """``?s3cr3t`` has no name: it may be a pasted token, so it is counted, never echoed."""
    with pytest.raises(ConfigurationError) as info:
        CacheConfig.from_url("redis://cache:6379/0?s3cr3tT0ken")
    assert "s3cr3tT0ken" not in str(info.value)
    assert "1 given" in str(info.value)


def test_cluster_setting_from_env_and_a_configuration_endpoint_url() -> None:
    assert CacheConfig().cluster is False
    config = CacheConfig.from_env(
        {
            "REDIS_CLUSTER": "true",
            "REDIS_URL": f"rediss://app:{PASSWORD}@clustercfg.example.cache.amazonaws.com:6379",
        }
    )
    assert config.cluster is True
    assert config.tls is True
    assert config.host == "clustercfg.example.cache.amazonaws.com"
    assert config.username == "app"
    assert PASSWORD not in repr(config)
    assert CacheConfig.from_url("rediss://cfg.example:7000", cluster=True).cluster is True


def test_cluster_setting_errors_name_the_variable() -> None:
    with pytest.raises(ConfigurationError, match=r"^REDIS_CLUSTER"):
        CacheConfig.from_env({"REDIS_CLUSTER": "sometimes"})
    # A Redis Cluster has one database: a db other than 0 is refused, naming where it came from.
    with pytest.raises(ConfigurationError, match=r"^REDIS_URL.*cluster mode"):
        CacheConfig.from_env({"REDIS_CLUSTER": "1", "REDIS_URL": "redis://cfg:6379/3"})
    with pytest.raises(ConfigurationError, match=r"^db.*cluster mode"):
        CacheConfig(cluster=True, db=2)
