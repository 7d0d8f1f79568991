"""Time berthcache and raw redis-py (hiredis) doing the same seed workloads on one local server.

Each workload runs both sides in alternating rounds on the same server and reports the median
operations per second of each side; compare the two as a ratio within one run (the machine is
shared and noisy). The raw side sends exactly the Redis commands berthcache sends, so the ratio
measures the module's own overhead: validation, key prefixing, JSON, error mapping, events.

    ./scripts/bench            # table
    ./scripts/bench --json     # table, then one JSON line: {"workloads": {...}}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aredis

from berthcache import DEFAULT_KEY_PREFIX, AsyncCache, Cache, CacheConfig
from berthcache._scripts import load_script
from berthcache.testing._certs import make_tls_files
from berthcache.testing._server import RedisServer

SESSION_DATA = {"role": "nurse", "name": "Ada", "unit": "3B", "shift": "night"}
API_PAYLOAD = {"clients": [{"id": i, "name": f"client {i}", "room": 100 + i} for i in range(20)]}
CONCURRENCY = 64


@dataclass
class Result:
    name: str
    berthcache: float
    raw: float

    @property
    def ratio(self) -> float:
        return self.berthcache / self.raw


def _ops_per_s(ops: int, seconds: float) -> float:
    return ops / seconds if seconds > 0 else float("inf")


def _time_sync(fn: Callable[[int], None], ops: int) -> float:
    start = time.perf_counter()
    fn(ops)
    return _ops_per_s(ops, time.perf_counter() - start)


def _time_async(fn: Callable[[int], Awaitable[None]], ops: int) -> float:
    async def run() -> float:
        start = time.perf_counter()
        await fn(ops)
        return _ops_per_s(ops, time.perf_counter() - start)

    return asyncio.run(run())


def _alternate(
    name: str, ours: Callable[[], float], theirs: Callable[[], float], rounds: int
) -> Result:
    """Alternate the two sides ``rounds`` times (after one warm-up each), swapping which goes
    first every round so neither side always runs on a warmer or colder machine; medians win."""
    ours()
    theirs()
    a, b = [], []
    for n in range(rounds):
        if n % 2:
            b.append(theirs())
            a.append(ours())
        else:
            a.append(ours())
            b.append(theirs())
    return Result(name, statistics.median(a), statistics.median(b))


def sequential(
    config: CacheConfig, raw_kwargs: dict[str, Any], ops: int, rounds: int
) -> list[Result]:
    """ping, set+get, session create+get and rate-limit check: one caller, one command after
    another."""
    results = []
    with Cache(config) as cache:
        raw = redis.Redis(**raw_kwargs)
        try:
            sessions, limiter = cache.sessions, cache.rate_limiter
            raw_script = raw.register_script(load_script("rate_limit.lua"))
            prefix = config.key_prefix

            def ping_ours(n: int) -> None:
                for _ in range(n):
                    cache.ping()

            def ping_raw(n: int) -> None:
                for _ in range(n):
                    raw.ping()

            def set_get_ours(n: int) -> None:
                for i in range(n // 2):
                    key = f"k{i % 500}"
                    cache.set(key, "value", 300)
                    cache.get(key)

            def set_get_raw(n: int) -> None:
                for i in range(n // 2):
                    key = f"{prefix}k{i % 500}"
                    raw.set(key, "value", 300)
                    raw.get(key)

            def session_ours(n: int) -> None:
                for i in range(n // 2):
                    sessions.get(sessions.create(i % 500, SESSION_DATA))

            def session_raw(n: int) -> None:
                ttl = 7 * 24 * 3600
                for i in range(n // 2):
                    user = i % 500
                    sid = f"user-{user}-session-{secrets.token_hex(16)}"
                    key, index = f"{prefix}session:{sid}", f"{prefix}session-index:user-{user}"
                    pipe = raw.pipeline(transaction=True)
                    pipe.set(key, json.dumps(SESSION_DATA, separators=(",", ":")), ex=ttl)
                    pipe.sadd(index, sid)
                    pipe.expire(index, ttl, nx=True)
                    pipe.expire(index, ttl, gt=True)
                    pipe.execute()
                    json.loads(raw.get(key) or "null")

            def ratelimit_ours(n: int) -> None:
                for i in range(n):
                    limiter.check(f"10.0.{i % 200}.{i % 250}", "/api/clients")

            def ratelimit_raw(n: int) -> None:
                for i in range(n):
                    key = f"{prefix}ratelimit:10.0.{i % 200}.{i % 250}:/api/clients"
                    count, pttl = raw_script(keys=[key], args=[60_000])
                    _ = (int(count) <= 100, int(pttl) / 1000.0)

            for name, ours, theirs in (
                ("ping", ping_ours, ping_raw),
                ("set_get", set_get_ours, set_get_raw),
                ("session_set_get", session_ours, session_raw),
                ("rate_limit_check", ratelimit_ours, ratelimit_raw),
            ):
                results.append(
                    _alternate(
                        name,
                        lambda f=ours: _time_sync(f, ops),  # type: ignore[misc]
                        lambda f=theirs: _time_sync(f, ops),  # type: ignore[misc]
                        rounds,
                    )
                )
        finally:
            raw.close()
    return results


def concurrent_api_get(
    config: CacheConfig, raw_kwargs: dict[str, Any], ops: int, rounds: int
) -> Result:
    """API-cache get of one warm response with 64 concurrent asyncio callers."""

    async def ours(n: int) -> None:
        async with AsyncCache(config.replace(max_connections=CONCURRENCY)) as cache:
            responses = cache.responses
            await responses.set("clients:list", 42, API_PAYLOAD)

            async def worker(count: int) -> None:
                for _ in range(count):
                    await responses.get("clients:list", 42)

            await asyncio.gather(*(worker(n // CONCURRENCY) for _ in range(CONCURRENCY)))

    async def theirs(n: int) -> None:
        raw = aredis.Redis(**raw_kwargs, max_connections=CONCURRENCY)
        key = f"{config.key_prefix}api:clients:list:42"
        try:
            await raw.set(key, json.dumps(API_PAYLOAD), ex=300)

            async def worker(count: int) -> None:
                for _ in range(count):
                    value = await raw.get(key)
                    json.loads(value) if value is not None else None

            await asyncio.gather(*(worker(n // CONCURRENCY) for _ in range(CONCURRENCY)))
        finally:
            await raw.aclose()

    return _alternate(
        "api_cache_get_async64",
        lambda: _time_async(ours, ops),
        lambda: _time_async(theirs, ops),
        rounds,
    )


def machine() -> str:
    cpu = "unknown cpu"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
        f"redis-py {redis.__version__}, {platform.system()} {platform.release()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="end with one JSON line of results")
    parser.add_argument("--ops", type=int, default=4000, help="operations per round (default 4000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per side (default 5)")
    parser.add_argument("--tls", action="store_true", help="talk TLS to the server (default: TCP)")
    args = parser.parse_args(argv)
    if args.ops < CONCURRENCY or args.rounds < 1:
        parser.error(f"--ops must be at least {CONCURRENCY} and --rounds at least 1")

    password = secrets.token_urlsafe(24)
    tls = None
    workdir = Path(tempfile.mkdtemp(prefix="berthcache-bench-"))
    if args.tls:
        tls = make_tls_files(workdir)
    with RedisServer(password=password, appendonly=False, tls=tls, name="bench") as server:
        prefix = f"{DEFAULT_KEY_PREFIX}bench-{secrets.token_hex(4)}:"
        config = CacheConfig(
            host=server.host,
            port=server.port,
            password=password,
            key_prefix=prefix,
            tls=tls is not None,
            tls_ca_file=str(tls.ca_file) if tls is not None else None,
        )
        # The same connection settings berthcache uses (timeouts make redis-py poll before
        # every read, which costs a syscall), so the ratio measures the module, not settings.
        raw_kwargs = server.connection_kwargs(user=None) | {
            "decode_responses": True,
            "socket_timeout": config.socket_timeout,
            "socket_connect_timeout": config.connect_timeout,
            "client_name": config.client_name,
        }
        print(
            f"machine: {machine()}; redis-server {'.'.join(map(str, server.version))}",
            file=sys.stderr,
        )
        results = sequential(config, raw_kwargs, args.ops, args.rounds)
        results.append(concurrent_api_get(config, raw_kwargs, args.ops * 4, args.rounds))
    shutil.rmtree(workdir, ignore_errors=True)

    print(f"{'workload':<24}{'berthcache ops/s':>18}{'raw ops/s':>14}{'ratio':>8}")
    for r in results:
        print(f"{r.name:<24}{r.berthcache:>18,.0f}{r.raw:>14,.0f}{r.ratio:>8.2f}")
    if args.json:
        payload = {
            "workloads": {
                r.name: {"berthcache": round(r.berthcache, 1), "raw": round(r.raw, 1)}
                for r in results
            }
        }
        print(json.dumps(payload, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
