"""Backoff schedules and the redis-py retry policy.

The seed's schedule is linear: ``base * attempt`` capped (50 ms, 100 ms, 150 ms … 2000 ms).
``exponential`` doubles per attempt with "equal jitter" (half fixed, half random) so that many
clients reconnecting after a failover do not stampede the new primary in lock step.

redis-py's own :class:`~redis.retry.Retry` retries every ``ConnectionError`` — including
``AuthenticationError``, which subclasses it — and nests: a command retry reconnects through the
connection's own connect retry, multiplying the attempts. Our policy fixes both:

* authentication failures and TLS certificate failures are never retried (they cannot heal);
* ``READONLY`` (a primary demoted by a failover) is a disconnect-reconnect-and-retry, since the
  endpoint's DNS name moves to the new primary;
* only the outermost retry loop in a call stack retries, so one command makes at most
  ``max_retries_per_request`` retries in total.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import random
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.exceptions as rex
from redis.asyncio.retry import Retry as _AsyncRedisRetry
from redis.backoff import AbstractBackoff
from redis.retry import Retry as _SyncRedisRetry

from berthcache._config import CacheConfig
from berthcache._exceptions import AuthenticationError, TLSError, translate

__all__ = [
    "AsyncRetryPolicy",
    "Backoff",
    "RetryPolicy",
    "build_async_retry",
    "build_retry",
    "exponential_delay_ms",
    "is_retryable",
    "linear_delay_ms",
    "linear_schedule",
]

T = TypeVar("T")

#: errors that may heal by reconnecting (ReadOnlyError: a demoted primary after failover).
RETRY_ON: tuple[type[Exception], ...] = (
    rex.ConnectionError,
    rex.TimeoutError,
    rex.ReadOnlyError,
    socket.timeout,
)

# True while a retry loop runs in this thread / task: nested loops then run their operation once.
_IN_RETRY: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "berthcache_in_retry", default=False
)

OnReconnecting = Callable[[int, float], None]
OnError = Callable[[BaseException], None]


def linear_delay_ms(attempt: int, base_ms: int = 50, cap_ms: int = 2000) -> int:
    """The seed's delay before retry ``attempt`` (1-based): ``min(base * attempt, cap)``."""
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    return min(base_ms * attempt, cap_ms)


def linear_schedule(retries: int, base_ms: int = 50, cap_ms: int = 2000) -> list[int]:
    """Delays (ms) before each of ``retries`` retries — the documented schedule."""
    return [linear_delay_ms(n, base_ms, cap_ms) for n in range(1, retries + 1)]


def exponential_delay_ms(
    attempt: int, base_ms: int = 50, cap_ms: int = 2000, rng: random.Random | None = None
) -> float:
    """Exponential with equal jitter: in ``[d/2, d]``, ``d = min(base * 2**(n-1), cap)``."""
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    ceiling = float(min(base_ms * 2 ** min(attempt - 1, 32), cap_ms))
    gen = rng if rng is not None else random
    return ceiling / 2 + gen.uniform(0, ceiling / 2)


def is_retryable(exc: BaseException) -> bool:
    """Whether reconnecting and resending could succeed. Credentials and certificates cannot."""
    if isinstance(exc, rex.AuthenticationError | rex.AuthorizationError):
        return False
    if isinstance(exc, rex.ReadOnlyError):
        return True
    if not isinstance(exc, RETRY_ON):
        return False
    mapped = translate(exc)
    return not isinstance(mapped, AuthenticationError | TLSError)


class Backoff(AbstractBackoff):
    """The configured schedule as a redis-py backoff; reports each wait as ``reconnecting``."""

    def __init__(
        self,
        strategy: str = "linear",
        base_ms: int = 50,
        cap_ms: int = 2000,
        *,
        on_reconnecting: OnReconnecting | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if strategy not in ("linear", "exponential", "none"):
            raise ValueError(f"unknown retry strategy {strategy!r}")
        self.strategy = strategy
        self.base_ms = base_ms
        self.cap_ms = cap_ms
        self._on_reconnecting = on_reconnecting
        self._rng = rng

    def delay_ms(self, attempt: int) -> float:
        """Milliseconds to wait before retry ``attempt`` (1-based)."""
        if self.strategy == "none":
            return 0.0
        if self.strategy == "exponential":
            return exponential_delay_ms(attempt, self.base_ms, self.cap_ms, self._rng)
        return float(linear_delay_ms(attempt, self.base_ms, self.cap_ms))

    def compute(self, failures: int) -> float:
        delay = self.delay_ms(failures)
        if self._on_reconnecting is not None:
            self._on_reconnecting(failures, delay)
        return delay / 1000.0

    def __deepcopy__(self, memo: dict[int, Any]) -> Backoff:
        # redis-py deep-copies the retry per connection; callbacks must stay shared.
        return self

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Backoff):
            return NotImplemented
        return (self.strategy, self.base_ms, self.cap_ms) == (
            other.strategy,
            other.base_ms,
            other.cap_ms,
        )

    def __hash__(self) -> int:
        return hash((self.strategy, self.base_ms, self.cap_ms))

    def __repr__(self) -> str:
        return f"Backoff(strategy={self.strategy!r}, base_ms={self.base_ms}, cap_ms={self.cap_ms})"


def _call_fail(fail: Callable[..., Any], error: Exception, failures: int, with_count: bool) -> Any:
    return fail(error, failures) if with_count else fail(error)


class RetryPolicy(_SyncRedisRetry):
    """redis-py ``Retry`` for the sync client with our retryability and no nesting."""

    def __init__(self, backoff: Backoff, retries: int, *, on_error: OnError | None = None) -> None:
        super().__init__(backoff, retries, supported_errors=RETRY_ON)
        self._on_error = on_error

    def __deepcopy__(self, memo: dict[int, Any]) -> RetryPolicy:
        return copy.copy(self)

    def call_with_retry(
        self,
        do: Callable[[], T],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        if _IN_RETRY.get():
            try:
                return do()
            except self._supported_errors as error:
                _call_fail(fail, error, 1, with_failure_count)
                raise
        token = _IN_RETRY.set(True)
        try:
            self._backoff.reset()  # type: ignore[no-untyped-call]
            failures = 0
            while True:
                try:
                    return do()
                except self._supported_errors as error:
                    if self._on_error is not None:
                        self._on_error(error)
                    failures += 1
                    _call_fail(fail, error, failures, with_failure_count)
                    if not _retry_allowed(error, is_retryable, failures, self._retries):
                        raise
                    delay = self._backoff.compute(failures)
                    if delay > 0:
                        time.sleep(delay)
        finally:
            _IN_RETRY.reset(token)


class AsyncRetryPolicy(_AsyncRedisRetry):
    """redis-py asyncio ``Retry`` with our retryability and no nesting."""

    def __init__(self, backoff: Backoff, retries: int, *, on_error: OnError | None = None) -> None:
        super().__init__(backoff, retries, supported_errors=RETRY_ON)  # type: ignore[arg-type]
        self._on_error = on_error

    def __deepcopy__(self, memo: dict[int, Any]) -> AsyncRetryPolicy:
        return copy.copy(self)

    async def call_with_retry(
        self,
        do: Callable[[], Awaitable[T]],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        if _IN_RETRY.get():
            try:
                return await do()
            except self._supported_errors as error:
                await _maybe_await(_call_fail(fail, error, 1, with_failure_count))
                raise
        token = _IN_RETRY.set(True)
        try:
            self._backoff.reset()  # type: ignore[no-untyped-call]
            failures = 0
            while True:
                try:
                    return await do()
                except self._supported_errors as error:
                    if self._on_error is not None:
                        self._on_error(error)
                    failures += 1
                    await _maybe_await(_call_fail(fail, error, failures, with_failure_count))
                    if not _retry_allowed(error, is_retryable, failures, self._retries):
                        raise
                    delay = self._backoff.compute(failures)
                    if delay > 0:
                        await asyncio.sleep(delay)
        finally:
            _IN_RETRY.reset(token)


def _retry_allowed(
    error: Exception,
    caller_check: Callable[[Exception], bool] | None,
    failures: int,
    retries: int,
) -> bool:
    if not is_retryable(error):
        return False
    if caller_check is not None and not caller_check(error):
        return False
    return retries < 0 or failures <= retries


async def _maybe_await(value: Any) -> None:
    if isinstance(value, Awaitable):
        await value


def _retries(config: CacheConfig) -> int:
    return 0 if config.retry_strategy == "none" else config.max_retries_per_request


def _backoff(config: CacheConfig, on_reconnecting: OnReconnecting | None) -> Backoff:
    return Backoff(
        config.retry_strategy,
        config.retry_base_delay_ms,
        config.retry_max_delay_ms,
        on_reconnecting=on_reconnecting,
    )


def build_retry(
    config: CacheConfig,
    *,
    on_reconnecting: OnReconnecting | None = None,
    on_error: OnError | None = None,
) -> RetryPolicy:
    """The sync client's retry policy for ``config`` (``none`` -> no retries)."""
    return RetryPolicy(_backoff(config, on_reconnecting), _retries(config), on_error=on_error)


def build_async_retry(
    config: CacheConfig,
    *,
    on_reconnecting: OnReconnecting | None = None,
    on_error: OnError | None = None,
) -> AsyncRetryPolicy:
    """The asyncio client's retry policy for ``config``."""
    return AsyncRetryPolicy(_backoff(config, on_reconnecting), _retries(config), on_error=on_error)
