"""Memory of many concurrent callers: N asyncio tasks each awaiting one GET, all at once.

Each side runs in a fresh Python process (``python -m benchmarks.memory``, the connection
settings as one JSON line on stdin, so the password is never on a command line) so that one
side's allocations and high-water mark cannot hide another's. It prints one JSON line:

- ``ops_per_s``: the median over the untraced rounds of N GETs issued at once;
- ``rss_delta``: how far the resident set grew above its level before a round (the larger of
  the RSS read while every task is pending and the kernel's high-water mark when the round
  raised it), in bytes, the largest over the rounds;
- ``failed``: calls that raised in the untraced rounds (e.g. no pooled connection free within
  ``pool_timeout``: a pool of 50 serving 10,000 callers at once can run out of time);
- ``traced_peak``: tracemalloc's peak of Python allocations above the level before the round
  (one extra round, traced: tracemalloc slows it), in bytes. Both are also given per caller.

Sides: ``berthcache_async`` (``AsyncCache.get`` with the cache's default settings) and
``raw_async`` (``redis.asyncio`` with a ``BlockingConnectionPool`` of the same
``max_connections``: an unbounded pool would open one connection per caller).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aredis

from berthcache import AsyncCache, CacheConfig

__all__ = ["SIDES", "measure"]

SIDES = ("berthcache_async", "raw_async")
PROBE_KEY = "memory:probe"
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss() -> int:
    """The resident set size now, in bytes (Linux /proc; 0 where it is missing)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except OSError:
        return 0


def _max_rss() -> int:
    """The process's resident high-water mark so far, in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


async def _round(get: Callable[[], Awaitable[Any]], callers: int) -> tuple[float, int, int]:
    """Start ``callers`` tasks, each awaiting one GET: (ops/s of the answered ones, RSS while
    all pend, how many failed). A failure (e.g. no pooled connection free in time) is counted,
    not raised: it is part of the result."""
    start = time.perf_counter()
    tasks = [asyncio.ensure_future(get()) for _ in range(callers)]
    await asyncio.sleep(0)  # every task has run to its first await: all are pending now
    during = _rss()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    elapsed = time.perf_counter() - start
    failed = sum(1 for value in results if isinstance(value, BaseException))
    if any(value is None for value in results):
        raise RuntimeError("a GET found no value: the probe key is missing")
    return (callers - failed) / elapsed, during, failed


async def measure(side: str, settings: dict[str, Any], callers: int, rounds: int) -> dict[str, Any]:
    """Measure one side against the server ``settings`` describe (see :mod:`benchmarks.bench`)."""
    config = CacheConfig(**settings["config"])
    if side == "berthcache_async":
        cache = AsyncCache(config)
        await cache.set(PROBE_KEY, "x" * 32, 300)

        async def get() -> Any:
            return await cache.get(PROBE_KEY)

        close: Callable[[], Awaitable[None]] = cache.close
    elif side == "raw_async":
        kwargs = dict(settings["raw_kwargs"])
        if kwargs.pop("ssl", False):  # what redis.asyncio.Redis(ssl=True) does for its pool
            kwargs["connection_class"] = aredis.SSLConnection
        pool = aredis.BlockingConnectionPool(
            max_connections=config.max_connections, timeout=config.pool_timeout, **kwargs
        )
        raw = aredis.Redis(connection_pool=pool)
        key = f"{config.key_prefix}{PROBE_KEY}"
        await raw.set(key, "x" * 32, ex=300)

        async def get() -> Any:
            return await raw.get(key)

        close = raw.aclose
    else:
        raise ValueError(f"side must be one of {', '.join(SIDES)}, not {side!r}")
    try:
        await asyncio.gather(*(get() for _ in range(64)))  # connections up, code paths warm
        rates, rss_delta, failed = [], 0, 0
        for _ in range(rounds):
            gc.collect()
            before, high_before = _rss(), _max_rss()
            rate, during, errors = await _round(get, callers)
            rates.append(rate)
            failed += errors
            # The high-water mark counts only if this round raised it.
            high = _max_rss()
            rss_delta = max(rss_delta, during - before, high - before if high > high_before else 0)
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        await _round(get, callers)  # its failures are tracing's slowness: not counted
        traced_peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
    finally:
        await close()
    return {
        "callers": callers,
        "failed": failed,
        "ops_per_s": round(statistics.median(rates), 1),
        "rss_delta": rss_delta,
        "rss_per_caller": round(rss_delta / callers, 1),
        "traced_peak": traced_peak,
        "traced_per_caller": round(traced_peak / callers, 1),
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3 or args[0] not in SIDES:
        print(f"usage: python -m benchmarks.memory {{{','.join(SIDES)}}} CALLERS ROUNDS < settings")
        return 2
    settings = json.loads(sys.stdin.readline())
    result = asyncio.run(measure(args[0], settings, int(args[1]), int(args[2])))
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
