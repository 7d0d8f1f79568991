"""What the web helpers share: which cache they were given, calling the sync one off the event
loop, the client's identity, and answering JSON from plain ASGI middleware.

Only public names of :mod:`berthcache` are used, so the helpers keep working while the cache
module's internals change.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, Union

import anyio.to_thread
from starlette.requests import HTTPConnection
from starlette.types import Send

from berthcache import AsyncCache, Cache, ConfigurationError

__all__ = [
    "CacheSource",
    "KeyFunc",
    "ResolvedCache",
    "client_ip",
    "forwarded_client_ip",
    "in_thread",
    "resolve_cache",
    "send_json",
]

T = TypeVar("T")
#: A cache, or a function returning one (called on first use: apps often create the cache in
#: their lifespan, after the middleware stack is built).
CacheSource = Union[Cache, AsyncCache, Callable[[], Union[Cache, AsyncCache]]]  # noqa: UP007
#: Who a request counts as: the client address by default; may be async.
KeyFunc = Callable[[HTTPConnection], Union[str, Awaitable[str]]]  # noqa: UP007
ResolvedCache = Cache | AsyncCache


def check_source(cache: object, name: str = "cache") -> None:
    """Refuse, at construction, what is neither a cache nor a function returning one."""
    if not isinstance(cache, Cache | AsyncCache) and not callable(cache):
        raise ConfigurationError(
            name,
            "must be a berthcache.Cache, an AsyncCache or a function returning one, "
            f"got {type(cache).__name__}",
        )


def resolve_cache(source: CacheSource, name: str = "cache") -> ResolvedCache:
    """The cache itself: ``source``, or what ``source()`` returns (checked)."""
    cache = source if isinstance(source, Cache | AsyncCache) else source()
    if not isinstance(cache, Cache | AsyncCache):
        raise ConfigurationError(
            name, f"the function given as {name} returned {type(cache).__name__}, not a cache"
        )
    return cache


async def in_thread(func: Callable[..., T], *args: Any) -> T:
    """``func(*args)`` in a worker thread: a sync :class:`~berthcache.Cache` call blocks."""
    return await anyio.to_thread.run_sync(func, *args)


def client_ip(conn: HTTPConnection) -> str:
    """The peer address of the connection (``"unknown"`` when the server gives none).

    The default key: behind a proxy every request shares the proxy's address — use
    :func:`forwarded_client_ip` there, and only there (the header is the client's to forge).
    """
    return conn.client.host if conn.client and conn.client.host else "unknown"


def forwarded_client_ip(
    trusted_hops: int = 1, header: str = "x-forwarded-for"
) -> Callable[[HTTPConnection], str]:
    """A key function reading the client address from ``X-Forwarded-For`` (opt-in).

    Each proxy appends the address it received from, so the ``trusted_hops`` right-most entries
    were written by your own proxies and the entry ``trusted_hops`` from the right is the
    client as the outermost trusted proxy saw it. Entries further left are whatever the client
    sent and are ignored. With fewer entries than that (a request that bypassed the proxies), or
    an entry that is not an IP address, the peer address is used.
    """
    if isinstance(trusted_hops, bool) or not isinstance(trusted_hops, int) or trusted_hops < 1:
        raise ConfigurationError("trusted_hops", f"must be an integer >= 1, got {trusted_hops!r}")
    name = header.lower()

    def key(conn: HTTPConnection) -> str:
        entries = [
            part.strip()
            for value in conn.headers.getlist(name)
            for part in value.split(",")
            if part.strip()
        ]
        if len(entries) < trusted_hops:
            return client_ip(conn)
        candidate = entries[-trusted_hops]
        try:
            ipaddress.ip_address(candidate)
        except ValueError:
            return client_ip(conn)
        return candidate

    key.__name__ = f"forwarded_client_ip(trusted_hops={trusted_hops})"
    return key


async def call_key(func: KeyFunc, conn: HTTPConnection) -> str:
    """The key function's answer (awaited when it is async)."""
    value = func(conn)
    if isinstance(value, Awaitable):
        value = await value
    return value


async def send_json(
    send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> None:
    """A whole JSON response from plain ASGI code (middleware answering on its own)."""
    payload = json.dumps(body, separators=(",", ":")).encode()
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})
