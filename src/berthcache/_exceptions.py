"""The one exception hierarchy of berthcache.

Every error the module raises derives from :class:`CacheError`; errors from redis-py are mapped
to it at one boundary (:func:`map_redis_errors`), always with ``raise ... from exc`` so the
original stays on ``__cause__`` for debugging. Messages never carry a password or token.

    CacheError
    ├── ConfigurationError          bad setting; names the variable / argument
    ├── CacheClosedError            the client was closed (graceful shutdown) and used again
    ├── SerializationError          value cannot be stored as JSON / stored value is not JSON
    ├── InvalidKeyError             empty or otherwise unusable key part
    ├── InvalidTTLError             zero, negative or non-integral TTL
    ├── RateLimitUnavailableError   rate limiter is fail-closed and Redis is down
    └── CacheServerError            the server answered with an error
        ├── AuthenticationError     NOAUTH / WRONGPASS / no permission (never retried)
        ├── OutOfMemoryError        OOM command not allowed when used memory > 'maxmemory'
        ├── ReadOnlyError           READONLY: talking to a replica (a demoted primary)
        └── CacheUnavailableError   connection refused, reset or timed out after retries
            └── TLSError            TLS handshake / certificate verification failed
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator

import redis.exceptions as rex

__all__ = [
    "AuthenticationError",
    "CacheClosedError",
    "CacheError",
    "CacheServerError",
    "CacheUnavailableError",
    "ConfigurationError",
    "InvalidKeyError",
    "InvalidTTLError",
    "OutOfMemoryError",
    "RateLimitUnavailableError",
    "ReadOnlyError",
    "SerializationError",
    "TLSError",
    "map_redis_errors",
]


class CacheError(Exception):
    """Base class of every error raised by berthcache."""


class ConfigurationError(CacheError, ValueError):
    """A setting is missing, malformed or out of range.

    ``setting`` names the environment variable or argument at fault.
    """

    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        self.problem = problem
        super().__init__(f"{setting}: {problem}")


class CacheClosedError(CacheError, RuntimeError):
    """The cache was closed; create a new client (or call ``initialize_cache`` again)."""


class SerializationError(CacheError, ValueError):
    """A value could not be encoded as JSON, or a stored value is not valid JSON."""


class InvalidKeyError(CacheError, ValueError):
    """A key or key part is empty or not a string."""


class InvalidTTLError(CacheError, ValueError):
    """A TTL is zero, negative or not a whole number of seconds."""


class RateLimitUnavailableError(CacheError):
    """The rate limiter could not reach Redis and is configured to fail closed."""


class CacheServerError(CacheError):
    """The server, or the road to it, failed the command."""


class AuthenticationError(CacheServerError):
    """The server refused our credentials or the user lacks a permission. Never retried."""


class OutOfMemoryError(CacheServerError):
    """Redis is at ``maxmemory`` and its eviction policy cannot free room for this write."""


class ReadOnlyError(CacheServerError):
    """The node is a replica — after a failover the old primary answers ``READONLY``."""


class CacheUnavailableError(CacheServerError, ConnectionError):
    """Redis could not be reached (refused, reset, timed out) after the allowed retries."""


class TLSError(CacheUnavailableError):
    """The TLS handshake failed, usually certificate verification (wrong CA or host name)."""


_AUTH_HINT = (
    "check REDIS_PASSWORD / REDIS_USERNAME (the AUTH token); the server requires AUTH "
    "or this user lacks the permission"
)
# What redis-py's blocking pool and berthcache's asyncio pool say when every connection is busy.
_POOL_EXHAUSTED = ("No connection available", "no free connection within")
_OOM_HINT = (
    "Redis is at maxmemory and the eviction policy cannot free room: shorten TTLs, "
    "use an allkeys-* maxmemory-policy, or scale the node up"
)


def _is_tls_failure(exc: BaseException) -> bool:
    """A TLS failure that reconnecting cannot heal (certificate, protocol mismatch) — not a
    connection that merely dropped during or after the handshake (EOF), which is retryable."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    tls = False
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ssl.SSLCertVerificationError):
            return True
        text = str(cur)
        if isinstance(cur, ssl.SSLEOFError | ssl.SSLZeroReturnError) or (
            "SSL" in text and "EOF" in text.upper()
        ):
            return False
        if "CERTIFICATE_VERIFY_FAILED" in text:
            return True
        if isinstance(cur, ssl.SSLError) or ("SSL" in text and "handshake" in text.lower()):
            tls = True
        cur = cur.__cause__ or cur.__context__
    return tls


def translate(exc: BaseException) -> CacheError | None:
    """Return the berthcache error for a redis-py (or socket/TLS) error, or ``None``."""
    if isinstance(exc, CacheError):
        return exc
    message = str(exc)
    if isinstance(exc, rex.AuthenticationError | rex.AuthorizationError | rex.NoPermissionError):
        return AuthenticationError(f"authentication failed: {_first_line(message)}; {_AUTH_HINT}")
    if isinstance(exc, rex.ReadOnlyError):
        return ReadOnlyError(
            "the node is read-only (a replica, or a primary demoted by a failover) and stayed "
            "so through the retries; reconnect to the primary endpoint"
        )
    if isinstance(exc, rex.OutOfMemoryError):
        # redis-py strips the "OOM" prefix from the message; the class says it.
        return OutOfMemoryError(f"OOM {_first_line(message)}; {_OOM_HINT}")
    if isinstance(exc, rex.ResponseError):
        upper = message.upper()
        if upper.startswith(("NOAUTH", "WRONGPASS", "NOPERM")):
            return AuthenticationError(f"{_first_line(message)}; {_AUTH_HINT}")
        if upper.startswith("OOM"):
            return OutOfMemoryError(f"{_first_line(message)}; {_OOM_HINT}")
        return None
    if isinstance(exc, rex.ConnectionError | rex.TimeoutError | OSError):
        if message.startswith(_POOL_EXHAUSTED):
            return CacheUnavailableError(
                f"no pooled connection became free in time ({_first_line(message)}): the server "
                "may be fine — raise max_connections / pool_timeout (open subscriptions hold "
                "connections too) or find what holds them"
            )
        if _is_tls_failure(exc):
            return TLSError(
                f"TLS handshake failed: {_first_line(message)}; check REDIS_TLS_CA_FILE and that "
                "the host name matches the server certificate"
            )
        return CacheUnavailableError(
            f"Redis is unreachable: {_first_line(message)}; is the server up and the "
            "host/port (and security group) right?"
        )
    return None


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "no detail"


def mapped(exc: BaseException) -> CacheError | None:
    """The berthcache error to raise for ``exc``: itself if already ours, the translation of a
    redis-py / socket / TLS error (a generic :class:`CacheServerError` when nothing more
    specific fits), or ``None`` for anything else (a bug in the caller, left untouched)."""
    if isinstance(exc, CacheError):
        return exc
    if isinstance(exc, rex.RedisError | OSError):
        return translate(exc) or CacheServerError(_first_line(str(exc)))
    return None


@contextlib.contextmanager
def map_redis_errors() -> Iterator[None]:
    """Re-raise redis-py errors as berthcache errors. Works around ``await`` too."""
    try:
        yield
    except CacheError:
        raise
    except (rex.RedisError, OSError) as exc:
        raise (mapped(exc) or CacheServerError(_first_line(str(exc)))) from exc


map_errors = map_redis_errors  # the core branch defines map_errors
