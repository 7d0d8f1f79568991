"""The public names are pinned: adding or removing one is a deliberate change to this list."""

from __future__ import annotations

import inspect

import berthcache

EXPECTED = [
    "DEFAULT_KEY_PREFIX",
    "TTL",
    "AsyncCache",
    "AsyncPresence",
    "AsyncRateLimiter",
    "AsyncResponseCache",
    "AsyncSessionStore",
    "AsyncSubscription",
    "AuthenticationError",
    "Cache",
    "CacheClosedError",
    "CacheConfig",
    "CacheError",
    "CacheServerError",
    "CacheStats",
    "CacheUnavailableError",
    "ConfigurationError",
    "ConnectionEvent",
    "ConnectionEvents",
    "HealthStatus",
    "InvalidKeyError",
    "InvalidTTLError",
    "KeyBuilder",
    "Message",
    "OutOfMemoryError",
    "Presence",
    "RateLimitResult",
    "RateLimitUnavailableError",
    "RateLimiter",
    "ReadOnlyError",
    "ResponseCache",
    "RetryDelay",
    "SerializationError",
    "SessionStore",
    "Subscription",
    "TLSError",
    "cache_api_response",
    "check_health",
    "check_rate_limit",
    "close_cache",
    "create_session",
    "delete",
    "exists",
    "expire",
    "get",
    "get_cached_api_response",
    "get_client",
    "get_session",
    "health_app",
    "initialize_cache",
    "invalidate_api_cache",
    "invalidate_session",
    "is_user_online",
    "publish",
    "retry_schedule",
    "set",
    "subscribe",
    "ttl",
    "update_presence",
]


def test_all_is_pinned_and_sorted() -> None:
    # isort-style order (constants, classes, functions), as ruff's RUF022 keeps it.
    assert berthcache.__all__ == EXPECTED
    assert len(set(EXPECTED)) == len(EXPECTED)


def test_every_public_name_resolves_and_is_documented() -> None:
    for name in berthcache.__all__:
        obj = getattr(berthcache, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"{name} has no docstring"


def test_public_objects_live_in_private_modules() -> None:
    for name in berthcache.__all__:
        module = getattr(getattr(berthcache, name), "__module__", "berthcache._x")
        assert module.startswith("berthcache._"), (name, module)


def test_every_error_derives_from_cache_error() -> None:
    errors = [getattr(berthcache, n) for n in EXPECTED if n.endswith("Error")]
    assert all(issubclass(e, berthcache.CacheError) for e in errors)
