"""berthcache: Redis 7 as the cache of an API backend on AWS.

``Cache`` (sync) and ``AsyncCache`` (asyncio) with the seed module's operations, key prefix,
JSON values, retries, connection events, health, sessions, API-response caching, rate limiting,
presence and pub/sub; plus the seed's module-level functions (``initialize_cache`` …).
Everything public is importable from here; the underscored modules are private.
"""

from berthcache._async_client import AsyncCache
from berthcache._client import Cache
from berthcache._config import DEFAULT_KEY_PREFIX, CacheConfig
from berthcache._events import ConnectionEvent, ConnectionEvents
from berthcache._exceptions import (
    AuthenticationError,
    CacheClosedError,
    CacheError,
    CacheServerError,
    CacheUnavailableError,
    ConfigurationError,
    InvalidKeyError,
    InvalidTTLError,
    OutOfMemoryError,
    RateLimitUnavailableError,
    ReadOnlyError,
    SerializationError,
    TLSError,
)
from berthcache._health import HealthStatus, health_app
from berthcache._keys import KeyBuilder
from berthcache._module_api import (
    cache_api_response,
    check_health,
    check_rate_limit,
    close_cache,
    create_session,
    delete,
    exists,
    expire,
    get,
    get_cached_api_response,
    get_client,
    get_session,
    initialize_cache,
    invalidate_api_cache,
    invalidate_session,
    is_user_online,
    publish,
    set,
    subscribe,
    ttl,
    update_presence,
)
from berthcache._presence import AsyncPresence, Presence
from berthcache._pubsub import AsyncSubscription, Message, Subscription
from berthcache._ratelimit import AsyncRateLimiter, RateLimiter, RateLimitResult
from berthcache._responses import AsyncResponseCache, CacheStats, ResponseCache
from berthcache._retry import RetryDelay, retry_schedule
from berthcache._sessions import AsyncSessionStore, SessionStore
from berthcache._ttl import TTL

__version__ = "0.1.0"

__all__ = [
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
