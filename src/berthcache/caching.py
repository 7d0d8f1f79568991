"""``@cached``: cache what a plain function returns, sync or async, in Redis.

    from berthcache.caching import cached

    @cached(cache, ttl=60)
    def price(sku: str, currency: str = "EUR") -> dict: ...

    @cached(acache, ttl=60)
    async def profile(user_id: int) -> dict: ...

It is :meth:`berthcache.ResponseCache.get_or_compute` under a function's name, so it keeps that
method's promises: the value is computed once per key however many threads, tasks and processes
miss at the same time (a stampede guard), every Redis step runs within
``response_cache_timeout_ms``, and when Redis is unreachable (or over budget) the function is
simply called and its value returned uncached (serve through the outage).

**Keys.** ``{prefix}api:fn:{module}.{qualname}:{args}``. ``{args}`` is built from the call bound
to the function's signature (defaults applied, so ``f(1)``, ``f(a=1)`` and ``f(1, b=2)`` with
``b=2`` the default are one key): ``name=value`` pairs in parameter order, each value as compact
JSON with sorted keys, joined by ``,`` — e.g. ``sku="A1",currency="EUR"`` — or ``-`` for a
function without arguments. When that text is longer than 64 characters or holds a ``:``, a
space or a control character, it is replaced by ``h-`` and the first 32 hex digits of its
SHA-256. Arguments must be JSON values (str, int, float, bool, None, lists, dicts with str
keys): anything else is refused with a ``TypeError`` naming the argument — leave it out with
``ignore=("self", "db")`` or build the key yourself with ``key=``. ``name=`` replaces
``{module}.{qualname}`` (keep it stable across refactors, or share entries between services).

**Values** are stored as JSON (``SerializationError`` for anything else); a hit returns the
decoded JSON, so a tuple comes back as a list. ``None`` is cached like any value.

The wrapper has ``invalidate(*args, **kwargs)`` (drop one call's entry), ``invalidate_all()``
(every entry of the function, without SCAN) and ``key(*args, **kwargs)`` (the ``{args}`` part);
on an async function the first two are coroutines.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
import json
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, ParamSpec, TypeVar, cast

from berthcache import AsyncCache, Cache, ConfigurationError

__all__ = ["cached"]

P = ParamSpec("P")
R = TypeVar("R")
#: The longest ``{args}`` kept readable; longer ones are hashed.
MAX_READABLE = 64
#: The endpoint namespace of function entries in the response cache.
NAMESPACE = "fn"

CacheSource = Cache | AsyncCache | Callable[[], Cache | AsyncCache]


def _resolve(source: CacheSource) -> Cache | AsyncCache:
    cache = source if isinstance(source, Cache | AsyncCache) else source()
    if not isinstance(cache, Cache | AsyncCache):
        raise ConfigurationError(
            "cache", f"the function given as cache returned {type(cache).__name__}, not a cache"
        )
    return cache


def _json(value: Any, argument: str, function: str) -> str:
    try:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError):
        raise TypeError(
            f"{function}: argument {argument!r} ({type(value).__name__}) is not a JSON value, so "
            f"@cached cannot build a key from it; pass ignore=({argument!r},) or key=..."
        ) from None


def args_key(text: str) -> str:
    """``text`` as the key's ``{args}`` part: itself when short and plain, else hashed."""
    if not text:
        return "-"
    if len(text) > MAX_READABLE or any(
        c == ":" or c.isspace() or not c.isprintable() for c in text
    ):
        return "h-" + hashlib.sha256(text.encode()).hexdigest()[:32]
    return text


def cached(
    cache: CacheSource,
    ttl: int | None = None,
    *,
    name: str | None = None,
    key: Callable[..., str] | None = None,
    ignore: Iterable[str] = (),
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Cache the decorated function's return value for ``ttl`` seconds (default: the response
    cache's, 5 minutes); see the module docstring for keys, values and outages.

    ``cache`` is a :class:`~berthcache.Cache`, an :class:`~berthcache.AsyncCache` or a function
    returning one (called at each call, so a cache created later works). A sync function needs
    a sync cache; an async function takes either (a sync cache is called in a worker thread).
    """
    if not isinstance(cache, Cache | AsyncCache) and not callable(cache):
        raise ConfigurationError(
            "cache", f"must be a Cache, an AsyncCache or a function returning one, got {cache!r}"
        )
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 1):
        raise ConfigurationError("ttl", f"must be a positive number of seconds, got {ttl!r}")
    if name is not None and not (isinstance(name, str) and name):
        raise ConfigurationError("name", "must be a non-empty string")
    if key is not None and not callable(key):
        raise ConfigurationError("key", "must be a function taking the call's arguments")
    if isinstance(ignore, str):
        ignore = (ignore,)
    skipped = frozenset(ignore)

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        label = name or f"{func.__module__}.{func.__qualname__}"
        endpoint = f"{NAMESPACE}:{label}"
        signature = inspect.signature(func)
        unknown = sorted(skipped - set(signature.parameters))
        if unknown:
            raise ConfigurationError("ignore", f"{label} has no parameter {unknown[0]!r}")

        def call_key(*args: Any, **kwargs: Any) -> str:
            if key is not None:
                text = key(*args, **kwargs)
                if not isinstance(text, str):
                    raise TypeError(f"{label}: key= returned {type(text).__name__}, not str")
                return args_key(text)
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            parts = [
                f"{param}={_json(value, param, label)}"
                for param, value in bound.arguments.items()
                if param not in skipped
            ]
            return args_key(",".join(parts))

        def seconds(target: Cache | AsyncCache) -> int:
            return ttl or target.responses.ttl

        if inspect.iscoroutinefunction(func):
            async_func = cast("Callable[..., Coroutine[Any, Any, Any]]", func)

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                target = _resolve(cache)
                part = call_key(*args, **kwargs)
                if isinstance(target, AsyncCache):
                    return await target.responses.get_or_compute(
                        endpoint, part, lambda: async_func(*args, **kwargs), seconds(target)
                    )
                loop = asyncio.get_running_loop()

                def compute() -> Any:  # in the worker thread: run the coroutine on the loop
                    future = asyncio.run_coroutine_threadsafe(async_func(*args, **kwargs), loop)
                    return future.result()

                return await asyncio.to_thread(
                    target.responses.get_or_compute, endpoint, part, compute, seconds(target)
                )

            async def invalidate_async(*args: Any, **kwargs: Any) -> int:
                target = _resolve(cache)
                part = call_key(*args, **kwargs)
                if isinstance(target, AsyncCache):
                    return await target.responses.invalidate(endpoint, part)
                return await asyncio.to_thread(target.responses.invalidate, endpoint, part)

            async def invalidate_all_async() -> int:
                target = _resolve(cache)
                if isinstance(target, AsyncCache):
                    return await target.responses.invalidate(endpoint)
                return await asyncio.to_thread(target.responses.invalidate, endpoint)

            wrapper: Any = async_wrapper
            wrapper.invalidate = invalidate_async
            wrapper.invalidate_all = invalidate_all_async
        else:

            @functools.wraps(func)
            def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
                target = _sync(_resolve(cache), label)
                part = call_key(*args, **kwargs)
                return target.responses.get_or_compute(
                    endpoint, part, lambda: func(*args, **kwargs), seconds(target)
                )

            def invalidate(*args: Any, **kwargs: Any) -> int:
                target = _sync(_resolve(cache), label)
                return target.responses.invalidate(endpoint, call_key(*args, **kwargs))

            def invalidate_all() -> int:
                return _sync(_resolve(cache), label).responses.invalidate(endpoint)

            wrapper = sync_wrapper
            wrapper.invalidate = invalidate
            wrapper.invalidate_all = invalidate_all
        wrapper.key = call_key
        wrapper.cache_endpoint = endpoint
        return cast("Callable[P, R]", wrapper)

    return decorate


def _sync(cache: Cache | AsyncCache, label: str) -> Cache:
    if isinstance(cache, AsyncCache):
        raise ConfigurationError(
            "cache", f"{label} is a sync function: it needs a berthcache.Cache, not an AsyncCache"
        )
    return cache
