"""The /health app as docs/api.md shows it, in real FastAPI and Starlette apps under uvicorn:
mounted (``app.mount("/health", health_app(cache, path="/"))``) and routed."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from berthcache import AsyncCache, Cache
from berthcache.testing import serve_asgi
from berthcache.web import health_app


def _fastapi_mounted(cache: Cache | AsyncCache) -> FastAPI:
    app = FastAPI()
    app.mount("/health", health_app(cache, path="/"))
    return app


def _starlette_mounted(cache: Cache | AsyncCache) -> Starlette:
    return Starlette(routes=[Mount("/health", app=health_app(cache, path="/"))])


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "make", [_fastapi_mounted, _starlette_mounted], ids=["fastapi", "starlette"]
)
async def test_the_documented_mount_answers_200(make: object, twin: Cache | AsyncCache) -> None:
    app = make(twin)  # type: ignore[operator]
    async with serve_asgi(app) as base, httpx.AsyncClient(timeout=10) as http:
        slash = await http.get(f"{base}/health/")
        # Without the slash, Starlette's Mount redirects to it, as it does for any mount.
        bare = await http.get(f"{base}/health", follow_redirects=True)
        below = await http.get(f"{base}/health/deeper")

    assert slash.status_code == 200, slash.text
    assert slash.json()["status"] == "healthy"
    assert slash.json()["checks"]["cache"]["healthy"] is True
    assert bare.status_code == 200
    assert below.status_code == 404


@pytest.mark.asyncio
async def test_mounted_under_a_prefix_with_its_own_path(twin: Cache | AsyncCache) -> None:
    app = Starlette(routes=[Mount("/ops", app=health_app(twin, path="/live"))])
    async with serve_asgi(app) as base, httpx.AsyncClient(timeout=10) as http:
        ok = await http.get(f"{base}/ops/live")
        other = await http.get(f"{base}/ops/health")
    assert ok.status_code == 200
    assert other.status_code == 404


@pytest.mark.asyncio
async def test_routed_in_fastapi_and_starlette(twin: Cache | AsyncCache) -> None:
    api = FastAPI()
    api.router.routes.append(Route("/health", health_app(twin)))  # the default path
    plain = Starlette(routes=[Route("/healthz", health_app(twin, path=None))])
    async with serve_asgi(api) as base, httpx.AsyncClient(timeout=10) as http:
        routed = await http.get(f"{base}/health")
        head = await http.head(f"{base}/health")
    async with serve_asgi(plain) as base, httpx.AsyncClient(timeout=10) as http:
        any_path = await http.get(f"{base}/healthz")
    assert routed.status_code == 200
    assert head.status_code == 200
    assert head.content == b""
    assert any_path.status_code == 200


@pytest.mark.asyncio
async def test_mounted_health_says_503_when_redis_is_down(dead_twin: Cache | AsyncCache) -> None:
    app = _fastapi_mounted(dead_twin)
    async with serve_asgi(app) as base, httpx.AsyncClient(timeout=10) as http:
        response = await http.get(f"{base}/health/")
    assert response.status_code == 503
    assert response.json()["reason"] == "Redis is unreachable"


def test_a_path_without_a_leading_slash_is_refused(cache: Cache) -> None:
    with pytest.raises(ValueError, match="path must start with '/'"):
        health_app(cache, path="health")
