"""A token in a URL's user slot (``redis://TOKEN@host``) is the AUTH token, and never shown.

redis-py reads a lone user-slot value as a user name and sends ``AUTH TOKEN ""``: the server
refuses it and records the token, as a user name, in its ACL LOG. redis-cli reads it as the
password. berthcache follows redis-cli — unless a password comes from elsewhere
(``REDIS_PASSWORD``, ``password=``), when it is the user name — and masks it either way.
"""

from __future__ import annotations

import logging
import secrets
import traceback
from collections.abc import Callable

import pytest

from berthcache import (
    AsyncCache,
    AuthenticationError,
    Cache,
    CacheConfig,
    ConnectionEvent,
)
from berthcache._config import masked_url
from berthcache.testing import RedisServer


def token() -> str:
    return f"tok-{secrets.token_hex(12)}"


@pytest.mark.parametrize("scheme", ["redis", "rediss"])
def test_a_lone_user_slot_value_is_the_password_and_is_masked(scheme: str) -> None:
    secret = token()
    config = CacheConfig.from_url(f"{scheme}://{secret}@cache.example:6379/0")
    assert (config.username, config.password) == (None, secret)
    assert config.tls is (scheme == "rediss")
    for shown in (repr(config), str(config), config.url):
        assert secret not in shown
    assert config.url == f"{scheme}://:***@cache.example:6379/0"
    env = CacheConfig.from_env({"REDIS_URL": f"{scheme}://{secret}@cache.example"})
    assert (env.username, env.password) == (None, secret)


def test_with_a_password_from_elsewhere_the_lone_value_is_the_user_name() -> None:
    """``rediss://app@host`` plus the token from Secrets Manager in REDIS_PASSWORD: RBAC."""
    secret = token()
    env = CacheConfig.from_env(
        {"REDIS_URL": "rediss://app@cache.example", "REDIS_PASSWORD": secret}
    )
    assert (env.username, env.password) == ("app", secret)
    assert env.url == "rediss://app:***@cache.example:6379/0"
    arg = CacheConfig.from_url("rediss://app@cache.example", password=secret)
    assert (arg.username, arg.password) == ("app", secret)
    # An explicit empty password after ':' keeps the value a user name, as every client reads it.
    assert CacheConfig.from_url("redis://app:@cache.example").username == "app"


def test_the_token_given_twice_is_masked_in_the_user_slot_too() -> None:
    secret = token()
    config = CacheConfig.from_url(f"rediss://{secret}@cache.example", password=secret)
    assert secret not in repr(config)
    assert secret not in config.url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://TOKEN@h:1/0", "redis://***@h:1/0"),
        ("rediss://TOKEN@h:6379/0", "rediss://***@h:6379/0"),
        ("rediss://app:TOKEN@h", "rediss://app:***@h"),
        ("redis://:TOKEN@h", "redis://:***@h"),
        ("redis://h:1", "redis://h:1"),
    ],
)
def test_masked_url(url: str, shown: str) -> None:
    assert masked_url(url) == shown


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_the_token_in_the_user_slot_authenticates_and_shows_nowhere(
    server_factory: Callable[..., RedisServer],
    kind: str,
    caplog: pytest.LogCaptureFixture,
    recwarn: pytest.WarningsRecorder,
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = token()
    server = server_factory(password=secret)
    url = f"redis://{secret}@{server.host}:{server.port}/0"
    seen: list[ConnectionEvent] = []
    if kind == "sync":
        cache = Cache.from_url(url, key_prefix="slot:")
        cache.events.on("ready", seen.append)
        assert cache.get("k") is None  # authenticated with the token
        shown = [repr(cache), repr(cache.redis), repr(cache.redis.connection_pool)]
        cache.close()
    else:
        acache = AsyncCache.from_url(url, key_prefix="slot:")
        acache.events.on("ready", seen.append)
        assert await acache.get("k") is None
        shown = [repr(acache), repr(acache.redis), repr(acache.redis.connection_pool)]
        await acache.close()
    assert seen, "no ready event"
    shown += [repr(event) for event in seen]
    shown.append(caplog.text)
    shown += [str(warning.message) for warning in recwarn]
    for text in shown:
        assert secret not in text
    with server.client() as admin:
        assert admin.acl_log() == []  # nothing refused: no token recorded as a user name


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_wrong_token_in_the_user_slot_is_refused_without_showing_it(
    server_factory: Callable[..., RedisServer], kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = server_factory(password=token())
    wrong = token()
    url = f"redis://{wrong}@{server.host}:{server.port}/0"
    with pytest.raises(AuthenticationError) as info:
        await _get_once(kind, url)
    printed = "".join(traceback.format_exception(info.value))
    assert wrong not in printed
    assert wrong not in caplog.text
    with server.client() as admin:
        users = {entry.get("username") for entry in admin.acl_log()}
    assert wrong not in users  # sent as the password, so the server logs user "default"


async def _get_once(kind: str, url: str) -> None:
    if kind == "sync":
        with Cache.from_url(url, max_retries_per_request=0) as cache:
            cache.get("k")
        return
    async with AsyncCache.from_url(url, max_retries_per_request=0) as acache:
        await acache.get("k")


def test_the_conformance_targets_mask_with_the_same_rule() -> None:
    """The conformance targets print URLs with this rule (``berthcache-ops conformance`` prints
    none: it hands the URL to the plugin through the environment)."""
    from berthcache.testing._target import mask_url as target_mask_url

    secret = token()
    assert target_mask_url(f"rediss://{secret}@h:6379/0") == "rediss://***@h:6379/0"
