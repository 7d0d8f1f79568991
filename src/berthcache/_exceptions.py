"""The one exception hierarchy of berthcache.

Every error the module raises derives from :class:`CacheError`. Errors from redis-py, sockets
and TLS are mapped to it at one boundary, :func:`to_cache_error` — raised by the cache's
operation context, or by :func:`map_errors` around code outside it — always with
``raise ... from exc`` so the original stays on ``__cause__`` for debugging. Messages never
carry a password or token, nor the arguments of a failed pipeline command — nor does the chain
a traceback prints: the originals on ``__cause__`` / ``__context__`` are scrubbed in place
(their type and frames stay, for debugging; the caller's values and secrets go).

    CacheError
    ├── ConfigurationError          bad setting; names the variable / argument
    ├── CacheClosedError            the client was closed (graceful shutdown) and used again
    ├── CacheNotInitializedError    a berthcache.compat function before initialize_cache()
    ├── SerializationError          value cannot be stored as JSON / stored value is not JSON
    ├── InvalidKeyError             empty or otherwise unusable key part
    ├── InvalidTTLError             zero, negative, non-integral or too long (> TTL.MAX) TTL
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
import re
import ssl
from collections.abc import Iterable, Iterator

import redis.exceptions as rex

__all__ = [
    "AuthenticationError",
    "CacheClosedError",
    "CacheError",
    "CacheNotInitializedError",
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
    "map_errors",
    "to_cache_error",
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
    """The cache was closed (graceful shutdown) and used again; create a new client."""


class CacheNotInitializedError(CacheError, RuntimeError):
    """A :mod:`berthcache.compat` function was called before ``initialize_cache()``."""


class SerializationError(CacheError, ValueError):
    """A value could not be encoded as JSON, or a stored value is not valid JSON."""


class InvalidKeyError(CacheError, ValueError):
    """A key or key part is empty or not a string."""


class InvalidTTLError(CacheError, ValueError):
    """A TTL is zero, negative, not a whole number of seconds, or beyond what Redis can store
    (``berthcache.TTL.MAX``); raised before anything is sent."""


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


def to_cache_error(exc: BaseException, *, secrets: Iterable[str | None] = ()) -> CacheError | None:
    """The berthcache error to raise for ``exc`` — the one error-mapping boundary.

    ``exc`` itself when it is already ours; the matching error for a redis-py, socket or TLS
    error (a generic :class:`CacheServerError` when nothing more specific fits); a
    :class:`SerializationError` for text that is not UTF-8 either way; ``None`` for anything
    else (a bug in the caller, left untouched). Every ``secrets`` value (password, token) is
    replaced by ``***`` in the message, and a pipeline error names the failed command without
    its arguments (the values a caller stored).
    """
    present = tuple(s for s in secrets if s)
    _scrub_chain(exc, present)  # before mapping: our message is built from exc's own text
    error = _mapped(exc)
    if error is not None:
        _scrub(error, present)
    return error


def describe_error(exc: BaseException, *, secrets: Iterable[str | None] = ()) -> str:
    """``"TypeName: first line"`` of ``exc`` for logs and connection events, through the same
    rules as :func:`to_cache_error`: no pipeline arguments, every secret replaced by ``***``."""
    present = tuple(s for s in secrets if s)
    text = _scrubbed_text(_server_text(exc), present) if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}".rstrip(": ")


@contextlib.contextmanager
def map_errors(secrets: Iterable[str | None] = ()) -> Iterator[None]:
    """Raise the :func:`to_cache_error` of whatever escapes the block, ``from`` the original.

    For code outside ``cache._operation()`` (which maps at the same boundary). Works around
    ``await`` too.
    """
    try:
        yield
    except Exception as exc:
        error = to_cache_error(exc, secrets=secrets)
        if error is None or error is exc:
            raise
        raise error from exc


def _mapped(exc: BaseException) -> CacheError | None:
    if isinstance(exc, CacheError):
        return exc
    if isinstance(exc, UnicodeDecodeError):
        return SerializationError(
            "a stored value is not UTF-8 text; berthcache stores text and JSON"
        )
    if isinstance(exc, UnicodeEncodeError):
        # Keys are checked by KeyBuilder; this is a value no encoder checked (e.g. a pub/sub
        # message or pipeline argument with a lone surrogate).
        return SerializationError(
            "a value is not valid Unicode text (lone surrogate); Redis is sent UTF-8"
        )
    if not isinstance(exc, rex.RedisError | OSError):
        return None
    message = _server_text(exc)
    if isinstance(exc, rex.AuthenticationError | rex.AuthorizationError | rex.NoPermissionError):
        return AuthenticationError(f"authentication failed: {message}; {_AUTH_HINT}")
    if isinstance(exc, rex.ReadOnlyError):
        return ReadOnlyError(
            "the node is read-only (a replica, or a primary demoted by a failover) and stayed "
            "so through the retries; reconnect to the primary endpoint"
        )
    if isinstance(exc, rex.OutOfMemoryError):
        # redis-py strips the "OOM" prefix from the message; the class says it.
        return OutOfMemoryError(f"OOM {message}; {_OOM_HINT}")
    if isinstance(exc, rex.ResponseError):
        upper = message.upper()
        if upper.startswith(("NOAUTH", "WRONGPASS", "NOPERM")):
            return AuthenticationError(f"{message}; {_AUTH_HINT}")
        if upper.startswith("OOM"):
            return OutOfMemoryError(f"{message}; {_OOM_HINT}")
        return CacheServerError(message)
    if isinstance(exc, rex.ConnectionError | rex.TimeoutError | OSError):
        if message.startswith(_POOL_EXHAUSTED):
            return CacheUnavailableError(
                f"no pooled connection became free in time ({message}): the server "
                "may be fine — raise max_connections / pool_timeout (open subscriptions hold "
                "connections too) or find what holds them"
            )
        if _is_tls_failure(exc):
            return TLSError(
                f"TLS handshake failed: {message}; check REDIS_TLS_CA_FILE and that "
                "the host name matches the server certificate"
            )
        return CacheUnavailableError(
            f"Redis is unreachable: {message}; is the server up and the "
            "host/port (and security group) right?"
        )
    return CacheServerError(message)


# redis-py annotates an error inside a pipeline or transaction with the whole command, arguments
# included: "Command # 2 (SET key value) of pipeline caused error: ...". The values are the
# caller's data (a session's personal data, a session id that is a bearer token). The asyncio
# client quotes the original args tuple after the colon: "...caused error: ('OOM ...',)".
_PIPELINE_COMMAND = re.compile(r"Command # (\d+) \(([^\s)]*).*\) of pipeline caused error: ", re.S)
_ARGS_TUPLE = re.compile(r"""\((['"])(.*)\1,?\)""", re.S)


def _server_text(exc: BaseException) -> str:
    """The first line of the error's own text; a pipeline error keeps its command's position
    and name, not its arguments."""
    text = str(exc).strip()
    where = ""
    pipelined = _PIPELINE_COMMAND.match(text)
    if pipelined:
        text = _unquoted(text[pipelined.end() :].strip())
        where = f" (pipeline command #{pipelined[1]}: {pipelined[2]})"
    return (text.splitlines()[0] if text else "no detail") + where


def _unquoted(text: str) -> str:
    """The server's text out of the asyncio client's ``('text',)`` quoting (as is otherwise)."""
    quoted = _ARGS_TUPLE.fullmatch(text)
    return quoted[2] if quoted else text


def _scrub_chain(exc: BaseException, secrets: tuple[str, ...]) -> None:
    """Rewrite, in place, every exception on ``exc``'s cause/context chain that a traceback
    would print: a pipeline command's arguments dropped, each secret replaced by ``***``.

    ``raise ... from None`` would hide the values too, but also the original's type and frames,
    which are what a developer debugging a failure needs; scrubbing keeps those.
    """
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        cur = todo.pop()
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        if cur.args and isinstance(cur.args[0], str):
            first = _scrubbed_text(cur.args[0], secrets)
            if first != cur.args[0]:
                with contextlib.suppress(AttributeError, TypeError):  # an exotic args slot
                    cur.args = (first, *cur.args[1:])
        todo.extend(e for e in (cur.__cause__, cur.__context__) if e is not None)


def _scrubbed_text(text: str, secrets: tuple[str, ...]) -> str:
    pipelined = _PIPELINE_COMMAND.match(text)
    if pipelined:
        rest = _unquoted(text[pipelined.end() :].strip())
        text = f"Command # {pipelined[1]} ({pipelined[2]}) of pipeline caused error: {rest}"
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _scrub(error: BaseException, present: tuple[str, ...]) -> None:
    """Replace each secret in ``error``'s message by ``***`` (in place: the error may be ours)."""
    if not present or not error.args:
        return
    args = tuple(str(a) for a in error.args)
    if any(s in a for s in present for a in args):
        for secret in present:
            args = tuple(a.replace(secret, "***") for a in args)
        error.args = args
