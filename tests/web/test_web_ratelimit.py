"""Rate limiting in real FastAPI and Starlette apps under uvicorn: the middleware, the
per-route dependency, the headers, the 429 body, the key functions and outages."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from berthcache import AsyncCache, Cache, ConfigurationError, RateLimitResult
from berthcache.testing import serve_asgi
from berthcache.web import (
    RateLimit,
    RateLimitMiddleware,
    client_ip,
    forwarded_client_ip,
    health_app,
)


async def _hello(request: Request) -> JSONResponse:
    return JSONResponse({"hello": "world"})


def _starlette(cache: Cache | AsyncCache, **limits: Any) -> Starlette:
    return Starlette(
        routes=[Route("/", _hello), Mount("/health", app=health_app(cache, path="/"))],
        middleware=[Middleware(RateLimitMiddleware, cache=cache, **limits)],
    )


@pytest.mark.asyncio
async def test_the_middleware_refuses_past_the_limit_with_headers_and_json(
    twin: Cache | AsyncCache,
) -> None:
    app = _starlette(twin, limit=3, window=60)
    async with serve_asgi(app) as base, httpx.AsyncClient(timeout=10) as http:
        allowed = [await http.get(f"{base}/") for _ in range(3)]
        refused = await http.get(f"{base}/")
        health = [await http.get(f"{base}/health/") for _ in range(5)]  # exempt by default

    assert [r.status_code for r in allowed] == [200, 200, 200]
    assert [r.headers["RateLimit-Remaining"] for r in allowed] == ["2", "1", "0"]
    assert allowed[0].headers["RateLimit-Limit"] == "3"
    assert allowed[0].headers["RateLimit-Policy"] == "3;w=60"
    assert 0 < int(allowed[0].headers["RateLimit-Reset"]) <= 60
    assert "Retry-After" not in allowed[0].headers
    assert allowed[0].json() == {"hello": "world"}

    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/json"
    assert refused.json()["detail"].startswith("Too Many Requests: the limit of 3 requests")
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["Retry-After"] == refused.headers["RateLimit-Reset"]
    assert all(r.status_code == 200 for r in health)


@pytest.mark.asyncio
async def test_a_starlette_route_can_have_its_own_limit(twin: Cache | AsyncCache) -> None:
    login = Route(
        "/login",
        _hello,
        middleware=[Middleware(RateLimitMiddleware, cache=twin, limit=1, endpoint="login")],
    )
    app = Starlette(routes=[login, Route("/", _hello)])
    async with serve_asgi(app) as base, httpx.AsyncClient(timeout=10) as http:
        first = await http.get(f"{base}/login")
        second = await http.get(f"{base}/login")
        elsewhere = await http.get(f"{base}/")
    assert (first.status_code, second.status_code, elsewhere.status_code) == (200, 429, 200)
    assert "RateLimit-Limit" not in elsewhere.headers


def _fastapi(cache: Cache | AsyncCache) -> FastAPI:
    app = FastAPI()
    strict = RateLimit(cache, limit=2, window=30)

    @app.get("/login")
    async def login(limit: RateLimitResult = Depends(strict)) -> dict[str, int]:  # noqa: B008
        return {"remaining": limit.remaining}

    @app.get("/items/{item_id}", dependencies=[Depends(strict)])
    def item(item_id: int) -> dict[str, int]:  # a sync route, run in the threadpool
        return {"item": item_id}

    @app.get("/free")
    async def free() -> dict[str, bool]:
        return {"free": True}

    return app


@pytest.mark.asyncio
async def test_the_fastapi_dependency_limits_each_route_on_its_own(
    twin: Cache | AsyncCache,
) -> None:
    async with serve_asgi(_fastapi(twin)) as base, httpx.AsyncClient(timeout=10) as http:
        logins = [await http.get(f"{base}/login") for _ in range(3)]
        # One counter per route template: /items/1 and /items/2 share it.
        items = [await http.get(f"{base}/items/{n}") for n in (1, 2, 3)]
        free = await http.get(f"{base}/free")

    assert [r.status_code for r in logins] == [200, 200, 429]
    assert logins[0].json() == {"remaining": 1}
    assert logins[0].headers["RateLimit-Limit"] == "2"
    assert logins[1].headers["RateLimit-Remaining"] == "0"
    refused = logins[2]
    assert refused.json()["detail"].startswith("Too Many Requests")
    assert 1 <= int(refused.headers["Retry-After"]) <= 30
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert [r.status_code for r in items] == [200, 200, 429]
    assert items[0].headers["RateLimit-Remaining"] == "1"
    assert free.status_code == 200
    assert "RateLimit-Limit" not in free.headers


@pytest.mark.asyncio
async def test_a_routes_own_headers_win_over_the_middlewares(twin: Cache | AsyncCache) -> None:
    app = _fastapi(twin)
    app.add_middleware(RateLimitMiddleware, cache=twin, limit=50)
    async with serve_asgi(app) as base, httpx.AsyncClient(timeout=10) as http:
        login = await http.get(f"{base}/login")
        free = await http.get(f"{base}/free")
    assert login.headers.get_list("RateLimit-Limit") == ["2"]
    assert free.headers.get_list("RateLimit-Limit") == ["50"]


@pytest.mark.asyncio
async def test_proxy_headers_are_used_only_when_asked_for(twin: Cache | AsyncCache) -> None:
    behind_proxy = _starlette(twin, limit=1, endpoint="proxied", key=forwarded_client_ip())
    async with serve_asgi(behind_proxy) as base, httpx.AsyncClient(timeout=10) as http:
        a = await http.get(f"{base}/", headers={"X-Forwarded-For": "198.51.100.1"})
        b = await http.get(f"{base}/", headers={"X-Forwarded-For": "198.51.100.2"})
        a_again = await http.get(f"{base}/", headers={"X-Forwarded-For": "198.51.100.1"})
    assert (a.status_code, b.status_code, a_again.status_code) == (200, 200, 429)


def _conn(forwarded: list[str], peer: str = "10.0.0.9") -> HTTPConnection:
    headers = [(b"x-forwarded-for", v.encode()) for v in forwarded]
    return HTTPConnection({"type": "http", "headers": headers, "client": (peer, 1234)})


def test_forwarded_client_ip_takes_the_entry_the_trusted_proxies_wrote() -> None:
    one, two = forwarded_client_ip(), forwarded_client_ip(trusted_hops=2)
    # The client forged the first entry; the proxy appended the address it saw.
    assert one(_conn(["6.6.6.6, 203.0.113.7"])) == "203.0.113.7"
    assert two(_conn(["6.6.6.6, 203.0.113.7", "10.0.0.2"])) == "203.0.113.7"
    assert two(_conn(["203.0.113.7"])) == "10.0.0.9"  # bypassed a proxy: the peer
    assert one(_conn(["not-an-address"])) == "10.0.0.9"
    assert one(_conn([])) == "10.0.0.9"
    # The default key reads the peer only: a header cannot move a client to a fresh counter.
    # (uvicorn itself rewrites the peer from X-Forwarded-For for the addresses in its
    # --forwarded-allow-ips, 127.0.0.1 by default: that is the server's setting.)
    assert client_ip(_conn(["198.51.100.4"])) == "10.0.0.9"
    with pytest.raises(ConfigurationError, match="trusted_hops"):
        forwarded_client_ip(trusted_hops=0)


@pytest.mark.asyncio
async def test_redis_down_fails_open_by_default_and_503_when_closed(
    dead_twin: Cache | AsyncCache,
) -> None:
    open_app = _starlette(dead_twin, limit=1, endpoint="open")
    closed_app = _starlette(dead_twin, limit=1, endpoint="closed", fail_open=False)
    async with serve_asgi(open_app) as base, httpx.AsyncClient(timeout=10) as http:
        served = [await http.get(f"{base}/") for _ in range(3)]
    async with serve_asgi(closed_app) as base, httpx.AsyncClient(timeout=10) as http:
        refused = await http.get(f"{base}/")
    assert [r.status_code for r in served] == [200, 200, 200]
    assert refused.status_code == 503
    assert refused.json() == {"detail": "rate limit cannot be checked now; try again shortly"}
    assert refused.headers["Retry-After"] == "1"


@pytest.mark.asyncio
async def test_a_cache_made_in_the_lifespan_is_found_on_first_use(
    web_config: Any,
) -> None:
    holder: dict[str, AsyncCache] = {}
    app = Starlette(
        routes=[Route("/", _hello)],
        middleware=[Middleware(RateLimitMiddleware, cache=lambda: holder["cache"], limit=1)],
    )
    holder["cache"] = AsyncCache(web_config)
    try:
        async with serve_asgi(app) as base, httpx.AsyncClient(timeout=10) as http:
            codes = [(await http.get(f"{base}/")).status_code for _ in range(2)]
    finally:
        await holder["cache"].close()
    assert codes == [200, 429]


def test_bad_settings_are_refused_naming_them(cache: Cache) -> None:
    with pytest.raises(ConfigurationError, match="limit"):
        RateLimit(cache, limit=0)
    with pytest.raises(ConfigurationError, match="cache"):
        RateLimit("redis://localhost")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="window"):
        RateLimitMiddleware(_hello, cache, window="60")  # type: ignore[arg-type]
