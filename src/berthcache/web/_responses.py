"""Response caching for Starlette and FastAPI endpoints: :func:`cache_response`.

The endpoint's JSON data is cached with :meth:`berthcache.ResponseCache.get_or_compute`, so it
inherits that method's guarantees: one compute per key however many requests miss at once (in
the process and across processes), and serving through an outage — with Redis unreachable the
endpoint runs and its data is returned uncached. On top, HTTP caching: ``Cache-Control``, a
strong ``ETag`` (SHA-256 of the body) and ``304 Not Modified`` for a matching ``If-None-Match``.

Keys are the response cache's ``{prefix}api:{endpoint}:{user_id}`` with ``endpoint`` the name
given (default: the function's qualified name) and ``user_id`` the ``user`` function's answer —
followed by ``~`` and a digest of the path and query when the request has path parameters or a
query string, so ``/items/1`` and ``/items/2`` are cached apart.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

import anyio.from_thread
from starlette.requests import Request
from starlette.responses import Response

from berthcache import AsyncCache, ConfigurationError
from berthcache.web._common import CacheSource, check_source, in_thread, resolve_cache

__all__ = ["cache_response"]

F = TypeVar("F", bound=Callable[..., Any])
#: The user a cached response belongs to: an id, or None for a request that has none.
UserFunc = Callable[[Request], "str | int | Awaitable[str | int | None] | None"]
#: The name of the request parameter added to an endpoint that has none (FastAPI fills it in).
_REQUEST_PARAM = "berthcache_request"
#: The user part of the key of a shared response (``user=None``) and of a request without one.
_SHARED = "shared"
_ANONYMOUS = "anonymous"
_DEFAULT: Any = object()


def _jsonable(value: Any) -> Any:
    """The endpoint's return value as JSON data (pydantic models and the like through FastAPI's
    encoder when FastAPI is installed)."""
    if isinstance(value, Response):
        raise TypeError(
            "cache_response caches JSON data: return the data from the endpoint, not a Response"
        )
    try:
        from fastapi.encoders import jsonable_encoder
    except ImportError:  # a Starlette app: the data must already be JSON data
        return value
    return jsonable_encoder(value)


def _body(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _matches(if_none_match: str, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (weak comparison, as RFC 9110 asks for GET)."""
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


def _variant(request: Request) -> str | None:
    """What tells this request's response from others of the same user: the path and the
    query, when there are path parameters or a query string; None otherwise."""
    if not request.path_params and not request.url.query:
        return None
    text = f"{request.url.path}?{request.url.query}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cache_response(
    cache: CacheSource,
    *,
    user: UserFunc | None,
    ttl: int | None = None,
    name: str | None = None,
    cache_control: str | None = _DEFAULT,
) -> Callable[[F], F]:
    """Cache a GET endpoint's JSON data per user; see the module docstring for the keys.

    ``user`` is required on purpose — the one mistake that leaks data is sharing a per-user
    response: pass a function of the request returning the user id (None: the anonymous
    entry), or ``None`` for a response that is the same for everyone. ``ttl`` defaults to the
    response cache's (5 minutes). ``cache_control`` defaults to ``private, max-age={ttl}`` for
    per-user responses and ``public, max-age={ttl}`` for shared ones; None sends none.

    Works on FastAPI endpoints (sync or async; a ``Request`` parameter is added to the
    signature when the endpoint has none) and on Starlette endpoints ``f(request)`` returning
    data. Only GET requests are cached; other methods call the endpoint as it is. The wrapped
    endpoint gets ``invalidate(user=…, path=…)``: see :func:`_invalidator`.
    """
    check_source(cache)
    if user is not None and not callable(user):
        raise ConfigurationError("user", "must be a function of the request, or None (shared)")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 1):
        raise ConfigurationError("ttl", f"must be a positive number of seconds, got {ttl!r}")
    if name is not None and not (isinstance(name, str) and name):
        raise ConfigurationError("name", "must be a non-empty string")

    def decorate(func: F) -> F:
        endpoint = name or f"{func.__module__}.{func.__qualname__}"
        signature = inspect.signature(func)
        request_param = next(
            (
                p.name
                for p in signature.parameters.values()
                if p.annotation in (Request, "Request") or p.name == "request"
            ),
            None,
        )
        is_async = inspect.iscoroutinefunction(func)

        def header_value(seconds: int) -> str | None:
            if cache_control is not _DEFAULT:
                return cache_control
            return f"{'public' if user is None else 'private'}, max-age={seconds}"

        async def user_id(request: Request) -> str:
            if user is None:
                who: Any = _SHARED
            else:
                who = user(request)
                if inspect.isawaitable(who):
                    who = await who
                who = _ANONYMOUS if who is None else who
            variant = _variant(request)
            return f"{who}~{variant}" if variant else str(who)

        async def run(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            result = (
                await func(*args, **kwargs)
                if is_async
                else await in_thread(functools.partial(func, *args, **kwargs))
            )
            return _jsonable(result)

        @functools.wraps(func)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            request = kwargs.pop(_REQUEST_PARAM, None)
            if request is None:
                request = kwargs.get(request_param) if request_param else None
                if request is None:
                    request = next((a for a in args if isinstance(a, Request)), None)
            if not isinstance(request, Request):
                raise TypeError(f"{endpoint}: cache_response found no Request to cache for")
            if request.method != "GET":
                result = (
                    await func(*args, **kwargs)
                    if is_async
                    else await in_thread(functools.partial(func, *args, **kwargs))
                )
                return result
            target = resolve_cache(cache)
            who = await user_id(request)
            seconds = ttl or target.responses.ttl
            if isinstance(target, AsyncCache):
                data = await target.responses.get_or_compute(
                    endpoint, who, lambda: run(args, kwargs), ttl=seconds
                )
            else:

                def compute() -> Any:  # in the worker thread get_or_compute runs in
                    return anyio.from_thread.run(run, args, kwargs)

                data = await in_thread(
                    functools.partial(
                        target.responses.get_or_compute, endpoint, who, compute, seconds
                    )
                )
            body = _body(data)
            headers = {"ETag": _etag(body)}
            if (value := header_value(seconds)) is not None:
                headers["Cache-Control"] = value
            if _matches(request.headers.get("if-none-match", ""), headers["ETag"]):
                return Response(status_code=304, headers=headers)
            return Response(body, media_type="application/json", headers=headers)

        if request_param is None:  # FastAPI: ask for the request under a name of our own
            extra = inspect.Parameter(
                _REQUEST_PARAM, inspect.Parameter.KEYWORD_ONLY, annotation=Request
            )
            params = list(signature.parameters.values())
            at = next(
                (i for i, p in enumerate(params) if p.kind is inspect.Parameter.VAR_KEYWORD),
                len(params),
            )
            wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
                parameters=[*params[:at], extra, *params[at:]]
            )
        wrapper.invalidate = _invalidator(cache, endpoint)  # type: ignore[attr-defined]
        wrapper.cache_endpoint = endpoint  # type: ignore[attr-defined]
        return cast("F", wrapper)

    return decorate


def _invalidator(source: CacheSource, endpoint: str) -> Callable[..., Awaitable[int]]:
    async def invalidate(
        user: str | int | None = _DEFAULT, *, path: str | None = None, query: str = ""
    ) -> int:
        """Drop cached responses; how many there were.

        ``invalidate()``: every user's (and every path's) entry of this endpoint.
        ``invalidate(user=42)``: user 42's entry of a request without path parameters or query
        (``invalidate(user=None)`` the shared one of a ``user=None`` endpoint);
        ``invalidate(user=42, path="/items/7", query="full=1")``: that request's entry.
        """
        target = resolve_cache(source)
        if user is _DEFAULT:
            who: str | None = None
        else:
            who = _SHARED if user is None else str(user)
            if path is not None:
                text = f"{path}?{query}"
                who += "~" + hashlib.sha256(text.encode()).hexdigest()[:16]
        if isinstance(target, AsyncCache):
            return await target.responses.invalidate(endpoint, who)
        return await in_thread(target.responses.invalidate, endpoint, who)

    return invalidate
