"""SessionMiddleware in real FastAPI and Starlette apps under uvicorn: the cookie's defaults,
login, reading, changing (a new id), logout, stale cookies, and no session id in any log."""

from __future__ import annotations

import logging
from http.cookies import SimpleCookie
from typing import Any

import httpx
import pytest
import redis
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from berthcache import AsyncCache, Cache, ConfigurationError
from berthcache.testing import serve_asgi
from berthcache.web import Session, SessionMiddleware, get_session


def _fastapi(cache: Cache | AsyncCache, **options: Any) -> FastAPI:
    app = FastAPI()
    app.add_middleware(SessionMiddleware, cache=cache, **options)

    @app.post("/login/{user_id}")
    async def login(user_id: str, session: Session = Depends(get_session)) -> dict[str, bool]:  # noqa: B008
        session.start(user_id, {"role": "reader"})
        return {"ok": True}

    @app.get("/me")
    def me(session: Session = Depends(get_session)) -> dict[str, Any]:  # noqa: B008 - sync
        return {"user": session.user_id, "data": dict(session), "active": session.active}

    @app.post("/promote")
    async def promote(request: Request) -> dict[str, bool]:
        request.session["role"] = "admin"  # Starlette's request.session works too
        return {"ok": True}

    @app.post("/logout")
    async def logout(session: Session = Depends(get_session)) -> dict[str, bool]:  # noqa: B008
        session.end()
        return {"ok": True}

    return app


def _cookie(response: httpx.Response) -> tuple[str, dict[str, Any]]:
    """The session cookie's value and attributes from Set-Cookie."""
    jar: SimpleCookie = SimpleCookie()
    jar.load(response.headers["set-cookie"])
    morsel = jar["session"]
    header = response.headers["set-cookie"]
    flags = {"httponly": "HttpOnly" in header, "secure": "; Secure" in header}
    return morsel.value, {**{k: v for k, v in morsel.items() if v}, **flags}


@pytest.mark.asyncio
async def test_login_read_change_logout(
    twin: Cache | AsyncCache, raw: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with serve_asgi(_fastapi(twin)) as base, httpx.AsyncClient(timeout=10) as http:
        anonymous = await http.get(f"{base}/me")
        login = await http.post(f"{base}/login/42")
        sid, attributes = _cookie(login)
        me = await http.get(f"{base}/me", headers={"cookie": f"session={sid}"})
        promoted = await http.post(f"{base}/promote", headers={"cookie": f"session={sid}"})
        new_sid, _ = _cookie(promoted)
        old = await http.get(f"{base}/me", headers={"cookie": f"session={sid}"})
        new = await http.get(f"{base}/me", headers={"cookie": f"session={new_sid}"})
        logout = await http.post(f"{base}/logout", headers={"cookie": f"session={new_sid}"})
        after = await http.get(f"{base}/me", headers={"cookie": f"session={new_sid}"})

    assert anonymous.json() == {"user": None, "data": {}, "active": False}
    assert "set-cookie" not in anonymous.headers
    # Secure defaults: HttpOnly, Secure, SameSite=Lax, for the store's TTL (7 days).
    assert attributes["httponly"]
    assert attributes["secure"]
    assert attributes["samesite"] == "Lax"
    assert attributes["path"] == "/"
    assert attributes["max-age"] == str(7 * 24 * 3600)
    assert sid.startswith("user-42-session-")
    assert me.json() == {"user": "42", "data": {"role": "reader"}, "active": True}
    assert "set-cookie" in me.headers  # sliding: the cookie's Max-Age restarts too
    # A change is stored under a new id; the old id no longer works (and its cookie goes).
    assert new_sid != sid
    assert old.json()["active"] is False
    assert "Max-Age=0" in old.headers["set-cookie"]
    assert new.json() == {"user": "42", "data": {"role": "admin"}, "active": True}
    assert "Max-Age=0" in logout.headers["set-cookie"]
    assert after.json()["active"] is False
    assert raw.keys(f"{twin.config.key_prefix}session:*") == []
    # The session id is a bearer token: nothing on the server side logs it (berthcache, redis,
    # uvicorn, starlette; the test's own HTTP client, httpx/httpcore, logs headers at DEBUG).
    for record in caplog.records:
        if record.name.startswith(("httpx", "httpcore")):
            continue
        text = record.getMessage()
        assert sid not in text
        assert new_sid not in text


@pytest.mark.asyncio
async def test_forged_and_damaged_cookies_are_dropped(twin: Cache | AsyncCache) -> None:
    async with serve_asgi(_fastapi(twin)) as base, httpx.AsyncClient(timeout=10) as http:
        forged = await http.get(f"{base}/me", headers={"cookie": "session=user-1-session-x"})
        long = await http.get(f"{base}/me", headers={"cookie": "session=" + "a" * 600})
    assert forged.json()["active"] is False
    assert "Max-Age=0" in forged.headers["set-cookie"]
    assert long.json()["active"] is False


@pytest.mark.asyncio
async def test_options_in_a_starlette_app(twin: Cache | AsyncCache) -> None:
    async def login(request: Request) -> JSONResponse:
        request.session.start(7)  # type: ignore[attr-defined]
        return JSONResponse({"user": request.session.user_id})  # type: ignore[attr-defined]

    async def me(request: Request) -> JSONResponse:
        return JSONResponse({"user": request.session.user_id})  # type: ignore[attr-defined]

    app = Starlette(
        routes=[Route("/login", login, methods=["POST"]), Route("/me", me)],
        middleware=[
            Middleware(
                SessionMiddleware,
                cache=twin,
                cookie_name="sid",
                secure=False,
                samesite="strict",
                max_age=600,
                sliding=False,
            )
        ],
    )
    async with serve_asgi(app) as base, httpx.AsyncClient(timeout=10) as http:
        login_response = await http.post(f"{base}/login")
        # Not Secure: httpx's cookie jar sends it back over plain HTTP by itself.
        me_response = await http.get(f"{base}/me")
    header = login_response.headers["set-cookie"]
    assert header.startswith("sid=user-7-session-")
    assert "Max-Age=600" in header
    assert "SameSite=Strict" in header
    assert "Secure" not in header
    assert me_response.json() == {"user": "7"}
    assert "set-cookie" not in me_response.headers  # not sliding: nothing to re-send


@pytest.mark.asyncio
async def test_redis_down_runs_the_request_without_a_session(
    dead_twin: Cache | AsyncCache, caplog: pytest.LogCaptureFixture
) -> None:
    cookie = "user-1-session-0b7b6e0c-6a8e-4a57-9a53-2b8f1f2ad1c5"
    async with serve_asgi(_fastapi(dead_twin)) as base, httpx.AsyncClient(timeout=10) as http:
        me = await http.get(f"{base}/me", headers={"cookie": f"session={cookie}"})
        logout = await http.post(f"{base}/logout", headers={"cookie": f"session={cookie}"})
    assert me.status_code == 200
    assert me.json()["active"] is False
    assert "set-cookie" not in me.headers  # the cookie is kept for when Redis is back
    assert all(cookie not in r.getMessage() for r in caplog.records)
    assert any("session not read" in r.getMessage() for r in caplog.records)
    # A logout still removes the cookie (the stored session expires by its TTL).
    assert logout.status_code == 200
    assert "Max-Age=0" in logout.headers["set-cookie"]


def test_session_repr_hides_the_id() -> None:
    session = Session("user-5-session-0b7b6e0c-6a8e-4a57-9a53-2b8f1f2ad1c5", {"a": 1})
    assert "0b7b6e0c" not in repr(session)
    assert repr(session) == "Session(user_id='5', keys=['a'])"


def test_bad_options_are_refused(cache: Cache) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None: ...

    with pytest.raises(ConfigurationError, match="samesite"):
        SessionMiddleware(app, cache, samesite="none", secure=False)
    with pytest.raises(ConfigurationError, match="cookie_name"):
        SessionMiddleware(app, cache, cookie_name="a b")
