"""Health: :class:`HealthStatus` (the seed's ``{healthy, latency}``) and the ``/health`` app.

:func:`health_app` is a plain ASGI callable — no framework dependency — so it mounts under any
ASGI server or framework (Starlette ``Mount``, FastAPI ``app.mount``) or runs alone under uvicorn.

Both are bounded in time: ``check_health()`` sends one PING within ``health_timeout_ms``
(``REDIS_HEALTH_TIMEOUT_MS``, default 1000) with no retries, and the app answers 503 with the
reason once that budget (plus a little grace) has passed, whatever Redis does — a load balancer
gets the JSON, not its own timeout.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol, cast

from berthcache._budget import BudgetExceededError
from berthcache._exceptions import (
    AuthenticationError,
    CacheClosedError,
    CacheError,
    CacheUnavailableError,
    ConfigurationError,
    TLSError,
)

__all__ = ["HealthStatus", "SupportsHealthCheck", "health_app", "unhealthy"]

#: What the app waits beyond the health budget (a sync check's thread hop, the JSON) before it
#: answers 503 itself.
_GRACE = 0.05
#: Public-safe reasons (no host, no secret) for the /health body, most specific first.
_REASONS: tuple[tuple[type[CacheError], str], ...] = (
    (TLSError, "the TLS handshake with Redis failed"),
    (AuthenticationError, "Redis refused the credentials"),
    (CacheUnavailableError, "Redis is unreachable"),
    (CacheClosedError, "the cache client is closed"),
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclasses.dataclass(frozen=True)
class HealthStatus:
    """Result of ``check_health()``: ``latency_ms`` is the PING round trip; ``error`` says why not.

    ``error`` is the mapped berthcache error text (never a password).
    """

    healthy: bool
    latency_ms: float | None = None
    error: str | None = None
    #: Why not, short and safe to show anyone (no host, no secret): the ``/health`` body's.
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The seed's shape: ``{"healthy": bool, "latency": ms | None}``."""
        return {"healthy": self.healthy, "latency": self.latency_ms}


class SupportsHealthCheck(Protocol):
    """Anything with ``check_health()``, sync or async: a :class:`~berthcache.Cache` or an
    :class:`~berthcache.AsyncCache` (this module needs neither client, only the method)."""

    def check_health(self) -> HealthStatus | Awaitable[HealthStatus]:
        """The cache's health; never raises."""
        ...


def unhealthy(exc: BaseException) -> HealthStatus:
    """The status for a failed check: the error's text, and a reason safe to publish."""
    if isinstance(exc, BudgetExceededError):
        return HealthStatus(healthy=False, error=str(exc), reason=str(exc))
    if isinstance(exc, CacheError):
        reason = next((text for kind, text in _REASONS if isinstance(exc, kind)), None)
        return HealthStatus(
            healthy=False, error=str(exc), reason=reason or "Redis answered with an error"
        )
    return HealthStatus(healthy=False, error=type(exc).__name__, reason="unexpected error")


def health_app(
    cache: SupportsHealthCheck, path: str | None = "/health", *, timeout_ms: int | None = None
) -> ASGIApp:
    """An ASGI app answering ``GET {path}`` with 200/503 and the cache's health as JSON.

    ``path`` is compared with the request's path *below the mount point*: the ASGI ``path``
    without the ``root_path`` a router put in front of it, as Starlette's own routes read it. So
    ``app.mount("/health", health_app(cache, path="/"))`` answers ``/health/`` (and ``/health``,
    which Starlette redirects there), and the app alone under uvicorn answers ``/health``.
    ``path=None`` answers whatever path the router hands it (``Route("/healthz", app)``).

    It answers within ``timeout_ms`` (default: the cache's ``health_timeout_ms``) plus 50 ms
    whatever Redis does: 503 with ``"reason"`` when the check ran out of time or failed. A sync
    ``check_health`` (:class:`~berthcache.Cache`) runs in a worker thread so the event loop never
    blocks. Other paths get 404; lifespan events are acknowledged.
    """
    if path is not None and not (isinstance(path, str) and path.startswith("/")):
        raise ValueError(f"path must start with '/' (or be None: any path), got {path!r}")
    if timeout_ms is None:
        timeout_ms = getattr(getattr(cache, "config", None), "health_timeout_ms", 1000)
    if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int) or timeout_ms < 1:
        raise ConfigurationError(
            "timeout_ms", f"must be a positive number of milliseconds, got {timeout_ms!r}"
        )
    return _HealthApp(cache, path, timeout_ms)


def _route_path(scope: Scope) -> str:
    """The request path below the mount point (``root_path`` removed), ``/`` at least.

    ASGI puts the full path in ``path`` and the mount point in ``root_path``; servers and
    routers that still strip the prefix themselves leave ``path`` without it, also handled.
    """
    path: str = scope.get("path") or "/"
    root: str = scope.get("root_path") or ""
    if root and path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/"):
        path = path[len(root) :]
    return path or "/"


class _HealthApp:
    """The app :func:`health_app` returns: a class, not a function, so a Starlette/FastAPI
    ``Route`` treats it as an ASGI app rather than as a request handler."""

    def __init__(self, cache: SupportsHealthCheck, path: str | None, timeout_ms: int) -> None:
        self._cache = cache
        self._path = path
        self._limit = timeout_ms / 1000.0 + _GRACE
        self._late = f"the health check did not finish within {timeout_ms} ms"
        self._is_async = inspect.iscoroutinefunction(cache.check_health)

    def __repr__(self) -> str:
        return f"health_app(path={self._path!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if self._path is not None and _route_path(scope) != self._path:
            await _respond(send, 404, {"error": "not found"})
            return
        if scope.get("method", "GET") not in ("GET", "HEAD"):
            await _respond(send, 405, {"error": "method not allowed"}, allow="GET, HEAD")
            return
        cache = self._cache
        try:
            async with asyncio.timeout(self._limit):
                if self._is_async:
                    status = await cast("Awaitable[HealthStatus]", cache.check_health())
                else:
                    status = cast("HealthStatus", await asyncio.to_thread(cache.check_health))
        except TimeoutError:  # a check of a cache without a budget, or a starved thread pool
            status = HealthStatus(healthy=False, error=self._late, reason=self._late)
        body: dict[str, Any] = {"status": "healthy" if status.healthy else "unhealthy"}
        if not status.healthy:
            body["reason"] = status.reason or "unhealthy"
        body["checks"] = {"cache": status.as_dict()}
        await _respond(
            send, 200 if status.healthy else 503, body, head=scope.get("method") == "HEAD"
        )


async def _respond(
    send: Send, code: int, body: dict[str, Any], *, head: bool = False, allow: str | None = None
) -> None:
    payload = json.dumps(body, separators=(",", ":")).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"cache-control", b"no-store"),
    ]
    if allow:
        headers.append((b"allow", allow.encode()))
    await send({"type": "http.response.start", "status": code, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else payload})
