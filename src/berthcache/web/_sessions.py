"""Cookie sessions for Starlette and FastAPI apps over the cache's session store.

:class:`SessionMiddleware` reads the session cookie, loads the session from
``cache.sessions`` (:class:`berthcache.SessionStore`) and hands the request a :class:`Session`
(``request.session``, or the :func:`get_session` dependency). What the endpoint did is written
back before the response's headers leave: a new session is created (``start``), a changed one is
stored under a new id (the old id stops working: no fixation, no lost logout), an ended one is
deleted, an untouched one has its TTL restarted (``sliding``).

The cookie is ``HttpOnly; Secure; SameSite=Lax`` unless told otherwise, and the session id (a
bearer token) is never logged, put in a repr or in an error message: log lines name the user.

No ``from __future__ import annotations`` here: FastAPI reads :func:`get_session`'s annotations
at run time.
"""

import logging
import urllib.parse
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any, Literal

from starlette.requests import HTTPConnection, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from berthcache import AsyncCache, CacheError, CacheUnavailableError, ConfigurationError
from berthcache.web._common import (
    CacheSource,
    ResolvedCache,
    check_source,
    in_thread,
    resolve_cache,
)

__all__ = ["Session", "SessionMiddleware", "get_session"]

logger = logging.getLogger("berthcache.web.sessions")

#: Where the middleware puts the request's Session (also under "session", for request.session).
SCOPE_KEY = "berthcache.session"
#: Longer cookie values are not looked up (no id the store makes is this long).
_MAX_COOKIE = 512
_SAMESITE = ("lax", "strict", "none")


class Session(MutableMapping[str, Any]):
    """The request's session: a mapping of its data, its user, and ``start`` / ``end``.

    ``session.start(user_id, data)`` logs a user in (a new session id; any previous session of
    this browser ends); ``session["k"] = v`` changes the data (stored under a new id when the
    response leaves); ``session.end()`` logs out. The id is never shown.
    """

    def __init__(self, session_id: str | None = None, data: Mapping[str, Any] | None = None):
        self._id = session_id
        self._data: dict[str, Any] = dict(data or {})
        self._user: str | None = _user_of(session_id) if session_id else None
        self._started = False
        self._ended = False
        self._changed = False
        #: A cookie that could not be checked (Redis unreachable): a logout still removes it.
        self._unverified: str | None = None

    @property
    def active(self) -> bool:
        """Whether the request has a session (loaded, or started by this request)."""
        return not self._ended and (self._id is not None or self._started)

    @property
    def user_id(self) -> str | None:
        """The session's user (as text), or None without a session."""
        return self._user if self.active else None

    def start(self, user_id: str | int, data: Mapping[str, Any] | None = None) -> None:
        """Begin a new session for ``user_id`` holding ``data`` (login)."""
        if isinstance(user_id, bool) or not isinstance(user_id, str | int) or user_id == "":
            raise ConfigurationError("user_id", "must be a non-empty string or integer")
        self._user, self._data = str(user_id), dict(data or {})
        self._started, self._ended, self._changed = True, False, False

    def end(self) -> None:
        """End the session (logout): it is deleted and the cookie removed."""
        self._ended, self._started, self._changed = True, False, False
        self._data = {}

    def _require(self) -> None:
        if not self.active:
            raise KeyError("no session: call session.start(user_id, data) first")

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._require()
        self._data[key] = value
        self._changed = True

    def __delitem__(self, key: str) -> None:
        self._require()
        del self._data[key]
        self._changed = True

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"Session(user_id={self.user_id!r}, keys={sorted(self._data)!r})"


def _user_of(session_id: str) -> str | None:
    """The user part of an id the store made: ``user-{id}-session-{uuid4}``."""
    head, sep, _ = session_id.rpartition("-session-")
    return head.removeprefix("user-") if sep and head.startswith("user-") else None


def get_session(request: Request) -> Session:
    """The request's :class:`Session` (a FastAPI dependency: ``Depends(get_session)``)."""
    session = request.scope.get(SCOPE_KEY)
    if not isinstance(session, Session):
        raise RuntimeError("no berthcache session: add berthcache.web.SessionMiddleware")
    return session


class SessionMiddleware:
    """ASGI middleware: session cookie ↔ ``cache.sessions``.

    ``max_age`` (seconds) is the cookie's and defaults to the store's TTL (7 days); with
    ``sliding`` (default) every request with a session restarts both. ``secure``, ``httponly``
    and ``samesite="lax"`` are on by default; turn ``secure`` off only for plain-HTTP
    development. When Redis is unreachable a request's session cannot be read: it runs without
    one (the cookie is kept, a warning logged) rather than failing.
    """

    def __init__(
        self,
        app: ASGIApp,
        cache: CacheSource,
        *,
        cookie_name: str = "session",
        max_age: int | None = None,
        path: str = "/",
        domain: str | None = None,
        secure: bool = True,
        httponly: bool = True,
        samesite: Literal["lax", "strict", "none"] = "lax",
        sliding: bool = True,
    ) -> None:
        check_source(cache)
        if not cookie_name or not all(c.isalnum() or c in "-_." for c in cookie_name):
            raise ConfigurationError("cookie_name", f"must be a cookie token, got {cookie_name!r}")
        if max_age is not None and (
            isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 1
        ):
            raise ConfigurationError(
                "max_age", f"must be a positive number of seconds, got {max_age!r}"
            )
        if samesite not in _SAMESITE:
            raise ConfigurationError("samesite", f"must be one of {_SAMESITE}, got {samesite!r}")
        if samesite == "none" and not secure:
            raise ConfigurationError("samesite", "'none' needs secure=True (browsers refuse it)")
        self.app = app
        self._source = cache
        self._name = cookie_name
        self._max_age = max_age
        self._sliding = sliding
        attributes = [f"Path={path}"]
        if domain:
            attributes.append(f"Domain={domain}")
        if secure:
            attributes.append("Secure")
        if httponly:
            attributes.append("HttpOnly")
        attributes.append(f"SameSite={samesite.capitalize()}")
        self._attributes = "; ".join(attributes)

    def __repr__(self) -> str:
        return f"SessionMiddleware(cookie_name={self._name!r}, {self._attributes})"

    # -- the store, sync or async ---------------------------------------------------------

    @staticmethod
    async def _call(cache: ResolvedCache, method: str, *args: Any) -> Any:
        if isinstance(cache, AsyncCache):
            return await getattr(cache.sessions, method)(*args)
        return await in_thread(getattr(cache.sessions, method), *args)

    # -- the cookie -------------------------------------------------------------------------

    def _cookie(self, session_id: str | None, max_age: int) -> tuple[bytes, bytes]:
        value = urllib.parse.quote(session_id, safe="-_.") if session_id else ""
        text = f"{self._name}={value}; Max-Age={max_age if session_id else 0}; {self._attributes}"
        return b"set-cookie", text.encode("latin-1")

    def _read_cookie(self, scope: Scope) -> str | None:
        raw = HTTPConnection(scope).cookies.get(self._name)
        if not raw or len(raw) > _MAX_COOKIE:
            return None
        return urllib.parse.unquote(raw)

    # -- the request --------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        cache = resolve_cache(self._source)
        cookie = self._read_cookie(scope)
        session = Session()
        stale = False  # a cookie whose session no longer exists: remove it
        if cookie is not None:
            try:
                data = await self._call(cache, "get", cookie)
            except CacheUnavailableError as exc:
                logger.warning("session not read, request runs without one: %s", exc)
                session._unverified = cookie
            except CacheError:  # not an id the store accepts: a forged or damaged cookie
                stale = True
            else:
                if data is None:
                    stale = True
                else:
                    session = Session(cookie, data)
        scope[SCOPE_KEY] = session
        scope["session"] = session
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                header = await self._write_back(cache, session, stale)
                if header is not None:
                    message = dict(message)
                    message["headers"] = [*message.get("headers", []), header]
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    async def _write_back(
        self, cache: ResolvedCache, session: Session, stale: bool
    ) -> tuple[bytes, bytes] | None:
        """Store what the endpoint did; the Set-Cookie header to send, if any."""
        old = session._id
        max_age = self._max_age or cache.sessions.ttl
        if session._ended:
            old = old or session._unverified
            if old is not None:
                try:
                    await self._call(cache, "invalidate", old)
                except CacheUnavailableError as exc:  # the cookie goes anyway; the TTL ends it
                    logger.warning("session of user %r not deleted: %s", session._user, exc)
            return self._cookie(None, 0) if old is not None or stale else None
        if session._started or (old is not None and session._changed):
            new = await self._call(cache, "create", session._user, session._data)
            existed = old is None or await self._call(cache, "invalidate", old)
            if not existed and not session._started:  # ended elsewhere meanwhile (logout)
                await self._call(cache, "invalidate", new)
                logger.info("session of user %r ended while a request changed it", session._user)
                return self._cookie(None, 0)
            return self._cookie(new, max_age)
        if old is not None and self._sliding:
            try:
                alive = await self._call(cache, "refresh", old)
            except CacheUnavailableError as exc:
                logger.warning("session of user %r not refreshed: %s", session._user, exc)
                return None
            return self._cookie(old if alive else None, max_age)
        return self._cookie(None, 0) if stale else None
