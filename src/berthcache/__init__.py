"""berthcache: Redis 7 as the cache of an API backend on AWS.

``Cache`` (sync) and ``AsyncCache`` (asyncio) with the seed module's operations, key prefix,
JSON values, retries, connection events, health, sessions, API-response caching, rate limiting,
presence and pub/sub. Everything public is importable from here (a star import shadows no
built-in); the underscored modules are private. The seed's module-level functions
(``initialize_cache``, ``get``, ``set`` …) live in :mod:`berthcache.compat`.
"""

from berthcache._async_client import AsyncCache
from berthcache._client import Cache
from berthcache._config import DEFAULT_KEY_PREFIX, CacheConfig, masked_url
from berthcache._events import ConnectionEvent, ConnectionEvents
from berthcache._exceptions import (
    AuthenticationError,
    CacheClosedError,
    CacheError,
    CacheNotInitializedError,
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
from berthcache._presence import AsyncPresence, Presence
from berthcache._pubsub import AsyncSubscription, Message, Subscription
from berthcache._ratelimit import AsyncRateLimiter, RateLimiter, RateLimitResult
from berthcache._responses import AsyncResponseCache, CacheStats, ResponseCache
from berthcache._retry import RetryDelay, retry_schedule
from berthcache._serialization import Serializer
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
