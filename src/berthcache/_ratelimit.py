"""Rate limiting per client IP and endpoint: ``{prefix}ratelimit:{ip}:{endpoint}``.

A fixed window (default 100 requests per 60 s) counted by one Lua script
(``resources/rate_limit.lua``) that INCRs and sets the expiry in the same atomic call — the
seed's INCR-then-EXPIRE could leave a counter that never expires, locking a client out forever.

IP addresses are normalised (``2001:DB8:0::1`` → ``2001:db8::1``, ``::ffff:10.0.0.1`` →
``10.0.0.1``) so one client cannot dodge its limit by spelling its address differently. Other
identifiers (e.g. ``"unknown"``) are used as given.

When Redis is unreachable, or does not answer within the limiter's time budget
(``rate_limit_timeout_ms``, ``REDIS_RATE_LIMIT_TIMEOUT_MS``, default 250 ms; no retries — the
budget is handed to the cache's transport), the limiter fails open (request allowed, warning
logged) or, with ``fail_open=False``, raises :class:`RateLimitUnavailableError` — within that
budget either way.
"""

from __future__ import annotations

import datetime as _dt
import functools
import ipaddress
import logging
from typing import Any, NamedTuple

from berthcache._budget import Budget
from berthcache._exceptions import (
    CacheServerError,
    CacheUnavailableError,
    ConfigurationError,
    InvalidKeyError,
    OutOfMemoryError,
    RateLimitUnavailableError,
    ReadOnlyError,
    TLSError,
)
from berthcache._host import CacheHost
from berthcache._parts import KeyMemo, check_part
from berthcache._scripts import register_script
from berthcache._ttl import to_seconds

__all__ = ["AsyncRateLimiter", "RateLimitResult", "RateLimiter", "normalize_ip"]

#: Server errors that mean "cannot count now" (TLSError, a configuration problem, excepted).
_OUTAGES = (CacheUnavailableError, ReadOnlyError, OutOfMemoryError)
#: The largest count INCR can reach (a signed 64-bit integer).
_MAX_COUNT = 2**63 - 1

logger = logging.getLogger("berthcache.ratelimit")


class RateLimitResult(NamedTuple):
    """The verdict for one request (immutable; a NamedTuple because one is built per request
    and a frozen dataclass costs four times as much to build)."""

    allowed: bool
    limit: int
    remaining: int
    reset_after: float  # seconds until the window starts over

    def headers(self) -> dict[str, str]:
        """The conventional ``X-RateLimit-*`` (and ``Retry-After`` when refused) headers."""
        reset = str(max(0, round(self.reset_after)))
        out = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": reset,
        }
        if not self.allowed:
            out["Retry-After"] = reset
        return out


def normalize_ip(ip: str) -> str:
    """Canonical text of an IP address; other non-empty identifiers unchanged."""
    return _canonical_ip(check_part(ip, "ip"))


@functools.lru_cache(maxsize=4096)
def _canonical_ip(ip: str) -> str:
    """Memoized: the same clients come back request after request, and parsing an address
    costs more than the rest of a rate-limit check's Python work together."""
    text = ip.strip()
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        if not text:
            raise InvalidKeyError("ip must not be blank") from None
        return text
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


class _RateLimiterBase:
    """Validation, keys and parsing of the script's reply — no I/O."""

    def __init__(
        self,
        cache: CacheHost,
        *,
        limit: int = 100,
        window: int | _dt.timedelta = 60,
        fail_open: bool = True,
        timeout_ms: int | None = None,
    ) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= _MAX_COUNT:
            raise ConfigurationError(
                "limit", f"must be an integer from 1 to {_MAX_COUNT} (INCR's range), got {limit!r}"
            )
        if not isinstance(fail_open, bool):
            raise ConfigurationError("fail_open", "must be true or false")
        if timeout_ms is None:
            timeout_ms = cache.config.rate_limit_timeout_ms
        elif isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int) or timeout_ms < 1:
            raise ConfigurationError(
                "timeout_ms", f"must be a positive number of milliseconds, got {timeout_ms!r}"
            )
        #: How long one check may wait for Redis before failing open or closed.
        self.budget = Budget(timeout_ms, "rate_limit_timeout_ms")
        self._cache = cache
        self.limit = limit
        self.window = to_seconds(window, name="window")
        self.fail_open = fail_open
        # No I/O: the SHA is computed once; EVALSHA falls back to EVAL (never SCRIPT LOAD,
        # which the app user's allow-list does not grant).
        self._script: Any = register_script(cache._transport, "rate_limit.lua")
        self._window_arg = self.window * 1000  # the script's ARGV: the window in milliseconds
        self._keys = KeyMemo()

    def _key(self, ip: str, endpoint: str) -> str:
        # The same (ip, endpoint) pairs come back request after request: remember their keys
        # (validation, address parsing and prefixing done once).
        if type(ip) is not str or type(endpoint) is not str:  # memo only for exact str pairs
            return self._build_key(ip, endpoint)
        pair = (ip, endpoint)
        return self._keys.get(pair) or self._keys.remember(pair, self._build_key(ip, endpoint))

    def _build_key(self, ip: str, endpoint: str) -> str:
        return self._cache.keys("ratelimit", normalize_ip(ip), check_part(endpoint, "endpoint"))

    def _result(self, reply: Any) -> RateLimitResult:
        count, pttl = int(reply[0]), int(reply[1])
        limit = self.limit
        # Positional, no max(): one is built per request (keywords cost a third more).
        return RateLimitResult(
            count <= limit,
            limit,
            limit - count if count < limit else 0,
            pttl / 1000.0 if pttl > 0 else 0.0,
        )

    def _unavailable(self, endpoint: str, exc: CacheServerError) -> RateLimitResult:
        """Redis could not count this request (unreachable, read-only after a failover, out of
        memory): allow it (fail open) or refuse it. Any other server error (a wrong-typed key,
        bad credentials, a script bug, a TLS certificate problem) is not an outage: re-raised."""
        if isinstance(exc, TLSError) or not isinstance(exc, _OUTAGES):
            raise exc
        if not self.fail_open:
            raise RateLimitUnavailableError(
                f"rate limit for endpoint {endpoint!r} cannot be checked: {exc}; "
                "refusing the request (fail_open=False)"
            ) from exc
        logger.warning(
            "rate limit for endpoint %r not checked, allowing the request (fail_open): %s",
            endpoint,
            exc,
        )
        return RateLimitResult(
            allowed=True, limit=self.limit, remaining=self.limit, reset_after=float(self.window)
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(limit={self.limit}, window={self.window}, "
            f"fail_open={self.fail_open}, timeout_ms={self.budget.ms})"
        )


class RateLimiter(_RateLimiterBase):
    """Rate limiting on the sync client."""

    def check(self, ip: str, endpoint: str) -> RateLimitResult:
        """Count one request from ``ip`` to ``endpoint`` and say whether it is allowed."""
        key = self._key(ip, endpoint)
        try:
            with self._cache._operation():
                reply = self._script.one(key, self._window_arg, self.budget)
        except CacheServerError as exc:
            return self._unavailable(endpoint, exc)  # re-raises what is not an outage
        return self._result(reply)

    def reset(self, ip: str, endpoint: str) -> None:
        """Forget the count (e.g. after a successful login)."""
        key = self._key(ip, endpoint)
        with self._cache._operation():
            self._cache._transport.call(("DEL", key))


class AsyncRateLimiter(_RateLimiterBase):
    """Rate limiting on the asyncio client."""

    async def check(self, ip: str, endpoint: str) -> RateLimitResult:
        """Count one request from ``ip`` to ``endpoint`` and say whether it is allowed."""
        key = self._key(ip, endpoint)
        try:
            with self._cache._operation():
                reply = await self._script.one(key, self._window_arg, self.budget)
        except CacheServerError as exc:
            return self._unavailable(endpoint, exc)  # re-raises what is not an outage
        return self._result(reply)

    async def reset(self, ip: str, endpoint: str) -> None:
        """Forget the count (e.g. after a successful login)."""
        key = self._key(ip, endpoint)
        with self._cache._operation():
            await self._cache._transport.call(("DEL", key))
