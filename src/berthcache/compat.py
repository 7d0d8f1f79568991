"""The seed module's functions (``initialize_cache``, ``get``, ``create_session`` …) over one
process-wide :class:`~berthcache.Cache`, for code ported from the TypeScript module::

    from berthcache import compat

    compat.initialize_cache()
    compat.set("greeting", "hello", 60)

New code should hold a ``Cache`` object instead. ``from berthcache.compat import *`` imports
every function except ``set``, which would shadow the built-in: call it as ``compat.set``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from berthcache import Cache, CacheConfig, CacheNotInitializedError, RateLimiter
from berthcache._ttl import TTLLike

# Every public function but ``set``: a star import must not shadow a built-in.
__all__ = [
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
    "initialize_cache",
    "invalidate_api_cache",
    "invalidate_session",
    "is_user_online",
    "publish",
    "subscribe",
    "ttl",
    "update_presence",
]

_lock = threading.Lock()
_client: Cache | None = None
_limiters: dict[tuple[int, int], Any] = {}


def initialize_cache(config: CacheConfig | None = None, **settings: Any) -> Cache:
    """Create the process-wide client (from ``REDIS_*`` when no config or settings are given).

    Calling it again closes the previous client first.
    """
    global _client
    new = Cache(config, **settings) if (config is not None or settings) else Cache.from_env()
    with _lock:
        old, _client = _client, new
        _limiters.clear()
    if old is not None:
        old.close()
    return new


def get_client() -> Cache:
    """The process-wide client; CacheNotInitializedError before ``initialize_cache()``."""
    client = _client
    if client is None:
        raise CacheNotInitializedError(
            "the cache is not initialized; call berthcache.compat.initialize_cache() first"
        )
    return client


def close_cache(timeout: float = 5.0) -> None:
    """Close the process-wide client gracefully (no-op when there is none)."""
    global _client
    with _lock:
        old, _client = _client, None
        _limiters.clear()
    if old is not None:
        old.close(timeout)


def check_health() -> dict[str, Any]:
    """The seed's ``{"healthy": bool, "latency": ms}``; unhealthy when not initialized."""
    client = _client
    if client is None:
        return {"healthy": False, "latency": None}
    return client.check_health().as_dict()


def set(key: str, value: Any, ttl: TTLLike | None = None) -> None:
    """``Cache.set`` on the process-wide client."""
    get_client().set(key, value, ttl)


def get(key: str, parse_json: bool = False) -> Any | None:
    """``Cache.get`` on the process-wide client."""
    return get_client().get(key, parse_json)


def delete(*keys: str) -> int:
    """``Cache.delete`` on the process-wide client."""
    return get_client().delete(*keys)


def exists(key: str) -> bool:
    """``Cache.exists`` on the process-wide client."""
    return get_client().exists(key)


def expire(key: str, ttl: TTLLike) -> bool:
    """``Cache.expire`` on the process-wide client."""
    return get_client().expire(key, ttl)


def ttl(key: str) -> int:
    """``Cache.ttl`` on the process-wide client."""
    return get_client().ttl(key)


def create_session(user_id: str | int, data: Mapping[str, Any]) -> str:
    """A new session for ``user_id`` (7-day TTL); returns its id."""
    session_id: str = get_client().sessions.create(user_id, data)
    return session_id


def get_session(session_id: str) -> dict[str, Any] | None:
    """The session's data, or None when missing or expired."""
    data: dict[str, Any] | None = get_client().sessions.get(session_id)
    return data


def invalidate_session(session_id: str) -> bool:
    """Delete a session; False when it did not exist."""
    return bool(get_client().sessions.invalidate(session_id))


def cache_api_response(
    endpoint: str, user_id: str | int, data: Any, ttl: TTLLike | None = None
) -> None:
    """Cache an API response for ``user_id`` (5 minutes unless ``ttl``)."""
    get_client().responses.set(endpoint, user_id, data, ttl=ttl)


def get_cached_api_response(endpoint: str, user_id: str | int) -> Any | None:
    """The cached response, or None."""
    return get_client().responses.get(endpoint, user_id)


def invalidate_api_cache(endpoint: str, user_id: str | int | None = None) -> int:
    """Drop cached responses of ``endpoint`` (one user, or every user); returns how many."""
    return int(get_client().responses.invalidate(endpoint, user_id))


def check_rate_limit(ip: str, endpoint: str, limit: int = 100, window: int = 60) -> bool:
    """The seed's boolean: True while ``ip`` has requests left on ``endpoint`` in the window."""
    client = get_client()
    with _lock:
        limiter = _limiters.get((limit, window))
        if limiter is None:
            limiter = client.rate_limiter
            if (limiter.limit, limiter.window) != (limit, window):
                limiter = RateLimiter(client, limit=limit, window=window)
            _limiters[(limit, window)] = limiter
    return bool(limiter.check(ip, endpoint).allowed)


def update_presence(user_id: str | int) -> None:
    """Mark ``user_id`` as seen now (online for 5 minutes)."""
    get_client().presence.touch(user_id)


def is_user_online(user_id: str | int) -> bool:
    """Whether ``user_id`` was seen in the last 5 minutes."""
    return bool(get_client().presence.is_online(user_id))


def publish(channel: str, message: Any) -> int:
    """Publish on ``channel`` (dict/list as JSON); returns the number of receivers."""
    return get_client().publish(channel, message)


def subscribe(channel: str, callback: Callable[[Any], Any]) -> Any:
    """Call ``callback(message)`` for each message on ``channel`` (dedicated connection)."""
    return get_client().subscribe(channel, callback)
