"""The public names are pinned: adding or removing one is a deliberate change to this list."""

from __future__ import annotations

import builtins
import inspect
import re
from typing import Any

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
    "CacheNotInitializedError",
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
    "Serializer",
    "SessionStore",
    "Subscription",
    "TLSError",
    "health_app",
    "masked_url",
    "retry_schedule",
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


def test_a_star_import_shadows_no_builtin() -> None:
    assert set(berthcache.__all__) & set(dir(builtins)) == set()
    namespace: dict[str, Any] = {}
    exec("from berthcache import *", namespace)  # noqa: S102 - the star import itself
    assert (set(namespace) - {"__builtins__"}) & set(dir(builtins)) == set()


def test_the_seed_functions_live_in_compat_not_at_the_top() -> None:
    from berthcache import compat

    for name in ("initialize_cache", "get", "set", "create_session", "close_cache"):
        assert not hasattr(berthcache, name), name
        assert callable(getattr(compat, name)), name


def test_the_error_tree_in_the_docstring_names_every_error() -> None:
    from berthcache import _exceptions

    tree = _exceptions.__doc__ or ""
    for name in EXPECTED:
        if name.endswith("Error"):
            assert re.search(rf"\b{name}\b", tree), f"{name} is missing from the tree"
