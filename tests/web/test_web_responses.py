"""cache_response on real FastAPI and Starlette endpoints under uvicorn: per-user keys, one
compute per stampede, Cache-Control / ETag / 304, invalidation, serving through an outage."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
import redis
from fastapi import FastAPI
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from berthcache import AsyncCache, Cache
from berthcache.testing import serve_asgi
from berthcache.web import cache_response


def _user(request: Request) -> str | None:
    return request.headers.get("x-user")


class Item(BaseModel):
    id: int
    name: str


def _app(cache: Cache | AsyncCache, calls: list[str]) -> FastAPI:
    app = FastAPI()

    @app.get("/me")
    @cache_response(cache, user=_user, ttl=60, name="me")
    async def me(request: Request) -> dict[str, object]:
        calls.append(f"me:{request.headers.get('x-user')}")
        await asyncio.sleep(0.2)  # slow enough for concurrent requests to overlap
        return {"user": request.headers.get("x-user"), "n": len(calls)}

    @app.get("/items/{item_id}")
    @cache_response(cache, user=None, ttl=30, name="items")
    def item(item_id: int, full: bool = False) -> Item:  # sync, no Request parameter
        calls.append(f"item:{item_id}:{full}")
        return Item(id=item_id, name="full" if full else "short")

    @app.post("/me")
    @cache_response(cache, user=_user, name="me")
    async def post_me(request: Request) -> dict[str, str]:
        calls.append("post")
        return {"posted": "yes"}

    return app


@pytest.mark.asyncio
async def test_per_user_entries_and_http_caching(
    twin: Cache | AsyncCache, raw: redis.Redis
) -> None:
    calls: list[str] = []
    async with serve_asgi(_app(twin, calls)) as base, httpx.AsyncClient(timeout=10) as http:
        first = await http.get(f"{base}/me", headers={"x-user": "42"})
        again = await http.get(f"{base}/me", headers={"x-user": "42"})
        other = await http.get(f"{base}/me", headers={"x-user": "7"})
        etag = first.headers["ETag"]
        not_modified = await http.get(
            f"{base}/me", headers={"x-user": "42", "If-None-Match": f'W/"x", {etag}'}
        )
        changed = await http.get(f"{base}/me", headers={"x-user": "42", "If-None-Match": '"x"'})
        posted = [await http.post(f"{base}/me", headers={"x-user": "42"}) for _ in range(2)]

    assert calls == ["me:42", "me:7", "post", "post"]  # GETs cached per user; POST never
    assert first.json() == again.json() == {"user": "42", "n": 1}
    assert other.json() == {"user": "7", "n": 2}
    assert first.headers["Cache-Control"] == "private, max-age=60"
    assert first.headers["content-type"] == "application/json"
    assert again.headers["ETag"] == etag
    assert other.headers["ETag"] != etag
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    assert not_modified.headers["ETag"] == etag
    assert changed.status_code == 200
    assert [p.json() for p in posted] == [{"posted": "yes"}] * 2
    key = f"{twin.config.key_prefix}api:me:42"
    assert 0 < raw.ttl(key) <= 60


@pytest.mark.asyncio
async def test_paths_and_queries_are_cached_apart_and_invalidated(
    twin: Cache | AsyncCache,
) -> None:
    calls: list[str] = []
    app = _app(twin, calls)
    item = next(r for r in app.routes if getattr(r, "path", "") == "/items/{item_id}")
    endpoint = item.endpoint  # type: ignore[attr-defined]
    async with serve_asgi(app) as base, httpx.AsyncClient(timeout=10) as http:
        one = [await http.get(f"{base}/items/1") for _ in range(2)]
        two = await http.get(f"{base}/items/2")
        full = await http.get(f"{base}/items/1", params={"full": "true"})
        assert await endpoint.invalidate(None, path="/items/1", query="") == 1
        one_again = await http.get(f"{base}/items/1")
        two_again = await http.get(f"{base}/items/2")
        assert await endpoint.invalidate() == 3  # every entry of the endpoint
        two_last = await http.get(f"{base}/items/2")

    assert one[0].json() == {"id": 1, "name": "short"}  # the pydantic model, as JSON
    assert two.json() == {"id": 2, "name": "short"}
    assert full.json() == {"id": 1, "name": "full"}
    assert one[0].headers["Cache-Control"] == "public, max-age=30"
    assert one_again.json() == one[0].json()
    assert two_again.json() == two.json()
    assert calls == ["item:1:False", "item:2:False", "item:1:True", "item:1:False", "item:2:False"]
    assert two_last.status_code == 200


@pytest.mark.asyncio
async def test_a_stampede_on_a_cold_entry_computes_once(twin: Cache | AsyncCache) -> None:
    calls: list[str] = []
    app = _app(twin, calls)
    async with serve_asgi(app) as base, httpx.AsyncClient(timeout=10) as http:
        responses = await asyncio.gather(
            *(http.get(f"{base}/me", headers={"x-user": "9"}) for _ in range(10))
        )
        me = next(r for r in app.routes if "GET" in getattr(r, "methods", ()) and r.path == "/me")  # type: ignore[attr-defined]
        invalidated = await me.endpoint.invalidate(9)  # type: ignore[attr-defined]
    assert calls == ["me:9"]
    assert {r.json()["n"] for r in responses} == {1}
    assert invalidated == 1


@pytest.mark.asyncio
async def test_redis_down_serves_every_request_from_the_endpoint(
    dead_twin: Cache | AsyncCache,
) -> None:
    calls: list[str] = []
    async with serve_asgi(_app(dead_twin, calls)) as base, httpx.AsyncClient(timeout=10) as http:
        started = time.monotonic()
        responses = [await http.get(f"{base}/me", headers={"x-user": "1"}) for _ in range(3)]
        elapsed = time.monotonic() - started
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert [r.json()["n"] for r in responses] == [1, 2, 3]  # computed each time, not cached
    assert "ETag" in responses[0].headers
    assert elapsed < 6  # within the response cache's budget, not a hang


@pytest.mark.asyncio
async def test_a_starlette_endpoint_returning_data(twin: Cache | AsyncCache) -> None:
    calls: list[str] = []

    @cache_response(twin, user=None, cache_control="no-cache")
    async def stats(request: Request) -> dict[str, int]:
        calls.append("stats")
        return {"visitors": 3}

    app = Starlette(routes=[Route("/stats", stats)])
    async with serve_asgi(app) as base, httpx.AsyncClient(timeout=10) as http:
        responses = [await http.get(f"{base}/stats") for _ in range(2)]
    assert calls == ["stats"]
    assert [r.json() for r in responses] == [{"visitors": 3}] * 2
    assert responses[0].headers["Cache-Control"] == "no-cache"
    assert stats.cache_endpoint.endswith("test_a_starlette_endpoint_returning_data.<locals>.stats")  # type: ignore[attr-defined]


def test_user_must_be_said_explicitly(cache: Cache) -> None:
    with pytest.raises(TypeError, match="user"):
        cache_response(cache)  # type: ignore[call-arg]
