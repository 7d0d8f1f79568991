"""Backoff schedules and the redis-py retry policy.

The strategies (``REDIS_RETRY_STRATEGY``), named as the seed's ``.env`` names them:

* ``exponential`` (the default) — the seed's documented schedule, ``min(base * attempt, cap)``:
  50, 100, 150 … ms capped at 2000 ms. ``linear`` is another name for the same schedule.
* ``exponential-jitter`` — doubles per attempt with "equal jitter" (each delay in
  ``[d/2, d]``, ``d = min(base * 2**(n-1), cap)``) so that many clients reconnecting after a
  failover do not stampede the new primary in lock step.
* ``none`` — no retries.

:func:`retry_schedule` says the delays of a strategy (exact, or the range of a jittered one),
so ops tools and docs print the same schedule the client follows.

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
import dataclasses
import random
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.exceptions as rex
from redis.asyncio.retry import Retry as _AsyncRedisRetry
from redis.backoff import AbstractBackoff
from redis.retry import Retry as _SyncRedisRetry

from berthcache._config import RETRY_STRATEGIES, CacheConfig
from berthcache._exceptions import AuthenticationError, ConfigurationError, TLSError, to_cache_error

__all__ = [
    "AsyncRetryPolicy",
    "Backoff",
    "RetryDelay",
    "RetryPolicy",
    "build_async_retry",
    "build_retry",
    "is_retryable",
    "jittered_delay_ms",
    "linear_delay_ms",
    "retry_schedule",
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


def _jitter_ceiling_ms(attempt: int, base_ms: int, cap_ms: int) -> float:
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    return float(min(base_ms * 2 ** min(attempt - 1, 32), cap_ms))


def jittered_delay_ms(
    attempt: int, base_ms: int = 50, cap_ms: int = 2000, rng: random.Random | None = None
) -> float:
    """``exponential-jitter``: in ``[d/2, d]``, ``d = min(base * 2**(n-1), cap)``."""
    ceiling = _jitter_ceiling_ms(attempt, base_ms, cap_ms)
    gen = rng if rng is not None else random
    return ceiling / 2 + gen.uniform(0, ceiling / 2)


def _strategy(strategy: str) -> str:
    if strategy not in RETRY_STRATEGIES:
        raise ConfigurationError(
            "retry_strategy",
            f"unknown retry strategy {strategy!r} (REDIS_RETRY_STRATEGY); "
            f"choose one of {', '.join(RETRY_STRATEGIES)}",
        )
    return strategy


@dataclasses.dataclass(frozen=True, slots=True)
class RetryDelay:
    """The wait before one retry: exactly ``min_ms`` when ``min_ms == max_ms``, else a random
    time in ``[min_ms, max_ms]`` (``exponential-jitter``)."""

    attempt: int
    min_ms: float
    max_ms: float

    @property
    def exact(self) -> bool:
        return self.min_ms == self.max_ms

    def __str__(self) -> str:
        if self.exact:
            return f"{self.min_ms:g} ms"
        return f"{self.min_ms:g}-{self.max_ms:g} ms"


def retry_schedule(
    strategy: str, retries: int, *, base_ms: int = 50, cap_ms: int = 2000
) -> list[RetryDelay]:
    """The waits before each of ``retries`` retries under ``strategy`` (``none``: no retries).

    ``retry_schedule("exponential", 4)`` is 50, 100, 150, 200 ms — the seed's schedule.
    """
    name = _strategy(strategy.strip().lower() if isinstance(strategy, str) else strategy)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ConfigurationError("retries", f"must be a non-negative integer, got {retries!r}")
    # The bounds CacheConfig puts on REDIS_RETRY_BASE_DELAY_MS / REDIS_RETRY_MAX_DELAY_MS.
    for argument, value, highest in (("base_ms", base_ms, 60_000), ("cap_ms", cap_ms, 600_000)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= highest:
            raise ConfigurationError(
                argument, f"must be an integer from 1 to {highest} ms, got {value!r}"
            )
    if cap_ms < base_ms:
        raise ConfigurationError("cap_ms", f"must be at least base_ms ({base_ms}), got {cap_ms}")
    if name == "none":
        return []
    delays = []
    for attempt in range(1, retries + 1):
        if name == "exponential-jitter":
            ceiling = _jitter_ceiling_ms(attempt, base_ms, cap_ms)
            delays.append(RetryDelay(attempt, ceiling / 2, ceiling))
        else:
            exact = float(linear_delay_ms(attempt, base_ms, cap_ms))
            delays.append(RetryDelay(attempt, exact, exact))
    return delays


def is_retryable(exc: BaseException) -> bool:
    """Whether reconnecting and resending could succeed. Credentials and certificates cannot."""
    if isinstance(exc, rex.AuthenticationError | rex.AuthorizationError):
        return False
    if isinstance(exc, rex.ReadOnlyError):
        return True
    if not isinstance(exc, RETRY_ON):
        return False
    mapped = to_cache_error(exc)
    return not isinstance(mapped, AuthenticationError | TLSError)


class Backoff(AbstractBackoff):
    """The configured schedule as a redis-py backoff; reports each wait as ``reconnecting``."""

    def __init__(
        self,
        strategy: str = "exponential",
        base_ms: int = 50,
        cap_ms: int = 2000,
        *,
        on_reconnecting: OnReconnecting | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.strategy = _strategy(strategy)
        self.base_ms = base_ms
        self.cap_ms = cap_ms
        self._on_reconnecting = on_reconnecting
        self._rng = rng

    def delay_ms(self, attempt: int) -> float:
        """Milliseconds to wait before retry ``attempt`` (1-based)."""
        if self.strategy == "none":
            return 0.0
        if self.strategy == "exponential-jitter":
            return jittered_delay_ms(attempt, self.base_ms, self.cap_ms, self._rng)
        return float(linear_delay_ms(attempt, self.base_ms, self.cap_ms))  # the seed's schedule

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
