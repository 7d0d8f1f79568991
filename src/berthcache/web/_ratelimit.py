"""Rate limiting for Starlette and FastAPI apps, over the cache's rate limiter.

:class:`RateLimitMiddleware` counts every HTTP request of a client (one limit across the app,
or per route with Starlette's ``Route(..., middleware=[...])``); :class:`RateLimit` is a FastAPI
dependency with its own limit per route. Both answer a refused request with 429, the JSON body
``{"detail": "..."}`` and the ``RateLimit-Limit`` / ``RateLimit-Remaining`` / ``RateLimit-Reset``
/ ``Retry-After`` headers, and put the ``RateLimit-*`` headers on allowed responses too.

Counting is :class:`berthcache.RateLimiter`'s (fixed window, one Lua call). When Redis cannot
count (unreachable, read-only, over the limiter's time budget) the limiter fails open — the
request goes through, a warning is logged — or, with ``fail_open=False``, the request gets 503.

No ``from __future__ import annotations`` here: FastAPI reads :meth:`RateLimit.__call__`'s
annotations at run time to inject the request and response.
"""

import datetime as _dt
import math
import time
from collections.abc import Callable, Iterable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from berthcache import (
    AsyncCache,
    AsyncRateLimiter,
    ConfigurationError,
    RateLimiter,
    RateLimitResult,
    RateLimitUnavailableError,
)
from berthcache.web._common import (
    CacheSource,
    KeyFunc,
    ResolvedCache,
    call_key,
    check_source,
    client_ip,
    in_thread,
    resolve_cache,
    send_json,
)

__all__ = ["DecisionHook", "RateLimit", "RateLimitMiddleware", "rate_limit_headers"]

#: Told of each decision: the endpoint, the verdict and the check's duration in seconds
#: (``berthcache.observability.CacheSignals.record_rate_limit`` fits).
DecisionHook = Callable[[str, RateLimitResult, float], None]

#: What a request refused because the limit cannot be checked (fail_open=False) is told.
_UNAVAILABLE = "rate limit cannot be checked now; try again shortly"


def rate_limit_headers(result: RateLimitResult, window: int | None = None) -> dict[str, str]:
    """The standard headers for ``result``: ``RateLimit-Limit``, ``RateLimit-Remaining``,
    ``RateLimit-Reset`` (seconds until the window starts over, rounded up), ``RateLimit-Policy``
    when the ``window`` is known, and ``Retry-After`` when the request was refused."""
    reset = max(0, math.ceil(result.reset_after))
    headers = {
        "RateLimit-Limit": str(result.limit),
        "RateLimit-Remaining": str(result.remaining),
        "RateLimit-Reset": str(reset),
    }
    if window is not None:
        headers["RateLimit-Policy"] = f"{result.limit};w={window}"
    if not result.allowed:
        headers["Retry-After"] = str(max(1, reset))
    return headers


def _refusal(result: RateLimitResult, window: int) -> str:
    retry = max(1, math.ceil(result.reset_after))
    return (
        f"Too Many Requests: the limit of {result.limit} requests per {window} s is reached; "
        f"retry in {retry} s"
    )


class _Limit:
    """One limit over whichever cache the app has: the cache's own ``rate_limiter`` when no
    setting differs from it, else a limiter of its own (built on first use, once per cache)."""

    def __init__(
        self,
        cache: CacheSource,
        *,
        limit: int | None,
        window: int | _dt.timedelta | None,
        fail_open: bool | None,
        timeout_ms: int | None,
        on_decision: DecisionHook | None = None,
    ) -> None:
        check_source(cache)
        if on_decision is not None and not callable(on_decision):
            raise ConfigurationError("on_decision", "must be a function (endpoint, result, s)")
        self._on_decision = on_decision
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise ConfigurationError("limit", f"must be a positive integer, got {limit!r}")
        if limit is not None and limit < 1:
            raise ConfigurationError("limit", f"must be a positive integer, got {limit!r}")
        if window is not None and (
            isinstance(window, bool) or not isinstance(window, int | _dt.timedelta)
        ):
            raise ConfigurationError("window", f"must be seconds or a timedelta, got {window!r}")
        self._source = cache
        self._settings: dict[str, Any] = {
            name: value
            for name, value in (
                ("limit", limit),
                ("window", window),
                ("fail_open", fail_open),
                ("timeout_ms", timeout_ms),
            )
            if value is not None
        }
        self._bound: tuple[ResolvedCache, RateLimiter | AsyncRateLimiter] | None = None

    def limiter(self) -> RateLimiter | AsyncRateLimiter:
        cache = resolve_cache(self._source)
        if self._bound is not None and self._bound[0] is cache:
            return self._bound[1]
        limiter: RateLimiter | AsyncRateLimiter
        if not self._settings:
            limiter = cache.rate_limiter
        elif isinstance(cache, AsyncCache):
            limiter = AsyncRateLimiter(cache, **self._settings)
        else:
            limiter = RateLimiter(cache, **self._settings)
        self._bound = (cache, limiter)
        return limiter

    async def check(self, who: str, endpoint: str) -> tuple[RateLimitResult, int]:
        """The verdict, and the window in seconds. Raises RateLimitUnavailableError when Redis
        cannot count and the limiter fails closed."""
        limiter = self.limiter()
        started = time.perf_counter()
        if isinstance(limiter, AsyncRateLimiter):
            result = await limiter.check(who, endpoint)
        else:
            result = await in_thread(limiter.check, who, endpoint)
        if self._on_decision is not None:
            self._on_decision(endpoint, result, time.perf_counter() - started)
        return result, limiter.window


def _route_path(scope: Scope) -> str:
    path: str = scope.get("path") or "/"
    root: str = scope.get("root_path") or ""
    if root and path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/"):
        path = path[len(root) :]
    return path or "/"


def _exempt(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in prefixes)


class RateLimitMiddleware:
    """ASGI middleware counting each HTTP request of a client against one limit.

    ``app.add_middleware(RateLimitMiddleware, cache=cache, limit=100, window=60)`` limits each
    client across the whole app; in Starlette, ``Route("/login", login, middleware=[Middleware(
    RateLimitMiddleware, cache=cache, limit=5, endpoint="login")])`` limits one route. Settings
    left out are the cache's ``rate_limiter``'s (100 per 60 s, ``REDIS_RATE_LIMIT_TIMEOUT_MS``,
    fail open).

    ``key`` says who a request counts as (:func:`client_ip` by default; use
    :func:`forwarded_client_ip` behind your own proxies). ``endpoint`` names the counter (a
    string, or a function of the ASGI scope). Paths under ``exempt`` (default ``/health``, so a
    load balancer's checks are never refused) are not counted. A route's own :class:`RateLimit`
    headers, when it set them, win over the middleware's on the response. ``on_decision`` is
    told of every decision (metrics: ``CacheSignals.record_rate_limit``).
    """

    def __init__(
        self,
        app: ASGIApp,
        cache: CacheSource,
        *,
        limit: int | None = None,
        window: int | _dt.timedelta | None = None,
        key: KeyFunc = client_ip,
        endpoint: str | Callable[[Scope], str] = "all",
        exempt: Iterable[str] = ("/health",),
        fail_open: bool | None = None,
        timeout_ms: int | None = None,
        on_decision: DecisionHook | None = None,
    ) -> None:
        if not callable(key):
            raise ConfigurationError("key", f"must be a function of the request, got {key!r}")
        if not (callable(endpoint) or (isinstance(endpoint, str) and endpoint)):
            raise ConfigurationError("endpoint", "must be a non-empty string or a function")
        self.app = app
        self._limit = _Limit(
            cache,
            limit=limit,
            window=window,
            fail_open=fail_open,
            timeout_ms=timeout_ms,
            on_decision=on_decision,
        )
        self._key = key
        self._endpoint = endpoint
        self._exempt = tuple(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _exempt(_route_path(scope), self._exempt):
            await self.app(scope, receive, send)
            return
        who = await call_key(self._key, HTTPConnection(scope))
        endpoint = self._endpoint(scope) if callable(self._endpoint) else self._endpoint
        try:
            result, window = await self._limit.check(who, endpoint)
        except RateLimitUnavailableError:
            await send_json(send, 503, {"detail": _UNAVAILABLE}, {"Retry-After": "1"})
            return
        headers = rate_limit_headers(result, window)
        if not result.allowed:
            await send_json(send, 429, {"detail": _refusal(result, window)}, headers)
            return
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                if b"ratelimit-limit" not in present:  # a route's own limit wins
                    message = dict(message)
                    message["headers"] = [*message.get("headers", []), *raw]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RateLimit:
    """A FastAPI dependency limiting one route: ``Depends(RateLimit(cache, limit=5))``.

    Counted per client (``key``, :func:`client_ip` by default) and per ``endpoint`` (default:
    the route's path template, e.g. ``/items/{item_id}``, so every item shares one counter). An
    allowed request gets the ``RateLimit-*`` headers on its response and the dependency's value
    is the :class:`~berthcache.RateLimitResult`; a refused one raises ``HTTPException(429)``
    with ``Retry-After`` (503 when the limit cannot be checked and ``fail_open=False``).
    """

    def __init__(
        self,
        cache: CacheSource,
        *,
        limit: int | None = None,
        window: int | _dt.timedelta | None = None,
        key: KeyFunc = client_ip,
        endpoint: str | None = None,
        fail_open: bool | None = None,
        timeout_ms: int | None = None,
        on_decision: DecisionHook | None = None,
    ) -> None:
        if not callable(key):
            raise ConfigurationError("key", f"must be a function of the request, got {key!r}")
        if endpoint is not None and not (isinstance(endpoint, str) and endpoint):
            raise ConfigurationError("endpoint", "must be a non-empty string")
        self._limit = _Limit(
            cache,
            limit=limit,
            window=window,
            fail_open=fail_open,
            timeout_ms=timeout_ms,
            on_decision=on_decision,
        )
        self._key = key
        self._endpoint = endpoint

    def _endpoint_of(self, request: Request) -> str:
        if self._endpoint is not None:
            return self._endpoint
        route = request.scope.get("route")
        template = getattr(route, "path", None)
        return template if isinstance(template, str) and template else request.url.path

    async def __call__(self, request: Request, response: Response) -> RateLimitResult:
        who = await call_key(self._key, request)
        try:
            result, window = await self._limit.check(who, self._endpoint_of(request))
        except RateLimitUnavailableError:
            raise HTTPException(503, detail=_UNAVAILABLE, headers={"Retry-After": "1"}) from None
        headers = rate_limit_headers(result, window)
        if not result.allowed:
            raise HTTPException(429, detail=_refusal(result, window), headers=headers)
        response.headers.update(headers)
        return result
