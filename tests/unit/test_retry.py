"""The backoff schedules and the retry policy's choices (no server needed)."""

from __future__ import annotations

import random
import ssl
from typing import Any

import pytest
import redis.exceptions as rex

from berthcache import RetryDelay, retry_schedule
from berthcache._config import CacheConfig
from berthcache._exceptions import (
    CacheUnavailableError,
    ConfigurationError,
    TLSError,
    to_cache_error,
)
from berthcache._retry import (
    Backoff,
    build_async_retry,
    build_retry,
    is_retryable,
    jittered_delay_ms,
    linear_delay_ms,
)


def _exact(strategy: str, retries: int) -> list[float]:
    delays = retry_schedule(strategy, retries)
    assert all(d.exact for d in delays)
    return [d.min_ms for d in delays]


@pytest.mark.parametrize("strategy", ["exponential", "linear"])
def test_the_seeds_schedule_is_exponential_and_linear(strategy: str) -> None:
    expected = [50 * n for n in range(1, 41)] + [2000, 2000]
    assert _exact(strategy, 42) == expected
    assert _exact(strategy, 42)[-3:] == [2000, 2000, 2000]
    assert [linear_delay_ms(n) for n in (1, 2, 3, 39, 40, 41, 100)] == [
        50,
        100,
        150,
        1950,
        2000,
        2000,
        2000,
    ]


def test_schedule_of_the_jittered_strategy_gives_each_range() -> None:
    delays = retry_schedule("exponential-jitter", 7)
    assert [(d.min_ms, d.max_ms) for d in delays] == [
        (25, 50),
        (50, 100),
        (100, 200),
        (200, 400),
        (400, 800),
        (800, 1600),
        (1000, 2000),
    ]
    assert str(delays[0]) == "25-50 ms"
    assert str(retry_schedule("exponential", 1)[0]) == "50 ms"
    assert retry_schedule("exponential", 2, base_ms=10, cap_ms=15) == [
        RetryDelay(1, 10, 10),
        RetryDelay(2, 15, 15),
    ]
    assert retry_schedule("none", 5) == []


def test_schedule_of_an_unknown_strategy_names_the_setting_and_the_choices() -> None:
    with pytest.raises(ConfigurationError) as info:
        retry_schedule("fibonacci", 3)
    assert "REDIS_RETRY_STRATEGY" in str(info.value)
    assert "exponential, linear, exponential-jitter, none" in str(info.value)
    with pytest.raises(ConfigurationError, match="retries"):
        retry_schedule("exponential", -1)


def test_backoff_follows_the_schedule_of_its_strategy() -> None:
    rng = random.Random(3)
    for strategy in ("exponential", "linear", "exponential-jitter", "none"):
        backoff = Backoff(strategy, 50, 2000, rng=rng)
        for delay in retry_schedule(strategy, 12):
            assert delay.min_ms <= backoff.delay_ms(delay.attempt) <= delay.max_ms
    assert Backoff().strategy == "exponential"


def test_backoff_reports_each_wait_and_returns_seconds() -> None:
    seen: list[tuple[int, float]] = []
    backoff = Backoff("linear", 50, 2000, on_reconnecting=lambda a, d: seen.append((a, d)))
    assert [backoff.compute(n) for n in (1, 2, 3)] == [0.05, 0.1, 0.15]
    assert seen == [(1, 50.0), (2, 100.0), (3, 150.0)]


def test_exponential_with_jitter_stays_in_its_band() -> None:
    rng = random.Random(7)
    for attempt in range(1, 12):
        ceiling = min(50 * 2 ** (attempt - 1), 2000)
        delays = {jittered_delay_ms(attempt, 50, 2000, rng) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1, "jitter must vary the delay"


def test_none_strategy_means_no_retries_and_no_wait() -> None:
    policy = build_retry(CacheConfig(retry_strategy="none"))
    assert policy.get_retries() == 0
    assert Backoff("none").compute(5) == 0.0


def test_retries_per_request_come_from_config() -> None:
    assert build_retry(CacheConfig(max_retries_per_request=5)).get_retries() == 5
    assert build_async_retry(CacheConfig()).get_retries() == 3


@pytest.mark.parametrize(
    ("error", "retry"),
    [
        (rex.ConnectionError("Error 111 connecting"), True),
        (rex.TimeoutError("Timeout reading"), True),
        (rex.ReadOnlyError("You can't write against a read only replica."), True),
        (rex.AuthenticationError("invalid username-password pair"), False),
        (rex.AuthorizationError("NOPERM"), False),
        (rex.ConnectionError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"), False),
        (rex.ResponseError("WRONGTYPE"), False),
    ],
)
def test_what_is_retried(error: Exception, retry: bool) -> None:
    assert is_retryable(error) is retry


def test_sync_policy_stops_after_the_budget_and_never_retries_auth() -> None:
    policy = build_retry(CacheConfig(retry_base_delay_ms=1, retry_max_delay_ms=1))
    calls: list[int] = []

    def refused() -> None:
        calls.append(1)
        raise rex.ConnectionError("refused")

    with pytest.raises(rex.ConnectionError):
        policy.call_with_retry(refused, lambda e: None)
    assert len(calls) == 4  # first try + 3 retries

    calls.clear()

    def wrong_password() -> None:
        calls.append(1)
        raise rex.AuthenticationError("WRONGPASS")

    with pytest.raises(rex.AuthenticationError):
        policy.call_with_retry(wrong_password, lambda e: None)
    assert len(calls) == 1


def test_nested_retry_loops_do_not_multiply_attempts() -> None:
    policy = build_retry(CacheConfig(retry_base_delay_ms=1, retry_max_delay_ms=1))
    inner_calls: list[int] = []

    def inner() -> None:
        inner_calls.append(1)
        raise rex.ConnectionError("refused")

    def outer() -> None:
        policy.call_with_retry(inner, lambda e: None)

    with pytest.raises(rex.ConnectionError):
        policy.call_with_retry(outer, lambda e: None)
    assert len(inner_calls) == 4


def _wrapped(inner: BaseException, message: str) -> rex.ConnectionError:
    """A redis-py ConnectionError raised while handling ``inner``, as redis-py raises it."""
    try:
        raise inner
    except BaseException:
        try:
            raise rex.ConnectionError(message)  # redis-py chains implicitly, like this
        except rex.ConnectionError as outer:
            return outer


def test_tls_connection_dropped_mid_handshake_is_retryable_not_a_tls_failure() -> None:
    """A failover closes connections, some in the middle of a TLS handshake: that is a dropped
    connection (retry), not a certificate problem (never retried)."""
    eof = ssl.SSLEOFError(8, "[SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in violation")
    dropped = _wrapped(eof, "Error 8 connecting to 127.0.0.1:6380. EOF occurred.")
    assert is_retryable(dropped)
    assert type(to_cache_error(dropped)) is CacheUnavailableError


def test_certificate_verification_failure_is_a_tls_error_and_not_retried() -> None:
    verify = ssl.SSLCertVerificationError(
        1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"
    )
    failed = _wrapped(verify, "Error 1 connecting to 127.0.0.1:6380. certificate verify failed.")
    assert not is_retryable(failed)
    assert isinstance(to_cache_error(failed), TLSError)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"base_ms": -50}, "base_ms"),
        ({"base_ms": 0}, "base_ms"),
        ({"cap_ms": 0}, "cap_ms"),
        ({"base_ms": 100, "cap_ms": 50}, "cap_ms"),
        ({"base_ms": 1.5}, "base_ms"),
    ],
)
def test_retry_schedule_refuses_what_the_config_refuses(
    kwargs: dict[str, Any], argument: str
) -> None:
    """A schedule printed for ops must be one a client could run: the config's own bounds."""
    with pytest.raises(ConfigurationError, match=argument):
        retry_schedule("exponential", 3, **kwargs)


def test_retry_schedule_takes_the_strategy_as_the_config_does() -> None:
    """REDIS_RETRY_STRATEGY=EXPONENTIAL configures a client; the same name prints its schedule."""
    assert CacheConfig.from_env({"REDIS_RETRY_STRATEGY": "EXPONENTIAL"}).retry_strategy == (
        "exponential"
    )
    assert [d.min_ms for d in retry_schedule("EXPONENTIAL", 3)] == [50, 100, 150]
