"""Health: :class:`HealthStatus` (the seed's ``{healthy, latency}``) and the ``/health`` app.

:func:`health_app` is a plain ASGI callable — no framework dependency — so it mounts under any
ASGI server or framework (Starlette ``Mount``, FastAPI ``app.mount``) or runs alone under uvicorn.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol, cast

__all__ = ["HealthStatus", "SupportsHealthCheck", "health_app"]

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

    def as_dict(self) -> dict[str, Any]:
        """The seed's shape: ``{"healthy": bool, "latency": ms | None}``."""
        return {"healthy": self.healthy, "latency": self.latency_ms}


class SupportsHealthCheck(Protocol):
    """Anything with ``check_health()``, sync or async: a :class:`~berthcache.Cache` or an
    :class:`~berthcache.AsyncCache` (this module needs neither client, only the method)."""

    def check_health(self) -> HealthStatus | Awaitable[HealthStatus]:
        """The cache's health; never raises."""
        ...


def health_app(cache: SupportsHealthCheck, path: str = "/health") -> ASGIApp:
    """An ASGI app answering ``GET {path}`` with 200/503 and the cache's health as JSON.

    A sync ``check_health`` (:class:`~berthcache.Cache`) runs in a worker thread so the event
    loop never blocks. Other paths get 404; lifespan events are acknowledged.
    """
    if not path.startswith("/"):
        raise ValueError(f"path must start with '/', got {path!r}")

    is_async = inspect.iscoroutinefunction(cache.check_health)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
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
        if scope.get("path") != path:
            await _respond(send, 404, {"error": "not found"})
            return
        if scope.get("method", "GET") not in ("GET", "HEAD"):
            await _respond(send, 405, {"error": "method not allowed"}, allow="GET, HEAD")
            return
        if is_async:
            status = await cast("Awaitable[HealthStatus]", cache.check_health())
        else:
            status = cast("HealthStatus", await asyncio.to_thread(cache.check_health))
        body = {
            "status": "healthy" if status.healthy else "unhealthy",
            "checks": {"cache": status.as_dict()},
        }
        await _respond(
            send, 200 if status.healthy else 503, body, head=scope.get("method") == "HEAD"
        )

    return app


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
