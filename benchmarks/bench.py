"""Time berthcache, raw redis-py (hiredis) and the seed's ioredis module on the seed's workloads.

Every side runs against the same local ``redis-server`` this script starts, in alternating
rounds (the order rotates every round, so no side always runs on a warmer or colder machine),
and the median operations per second of each side is reported. Compare sides as ratios within
one run: the machine is shared and noisy.

Sides (see docs/benchmarks.md):
  berthcache_sync   ``Cache`` (one thread, one call after another)
  berthcache_async  ``AsyncCache`` (a lone awaiting caller; 64 tasks on the concurrent workload)
  berthcache_async_uvloop  the same 64 tasks on uvloop's event loop (what ``uvicorn[standard]``
                    runs an API on); concurrent workload only, skipped when uvloop is missing
  raw_sync          ``redis.Redis`` with hiredis, the same Redis commands berthcache sends
  raw_async         ``redis.asyncio.Redis`` likewise
  ioredis           the seed's module on ioredis 5 (benchmarks/ioredis/, a node child process)
  ioredis_autopipelining   the same with ``enableAutoPipelining: true`` (concurrent workload)

    ./scripts/bench                 # plain TCP and TLS, tables
    ./scripts/bench --json          # tables, then one JSON line (see docs/benchmarks.md)
    ./scripts/bench --markdown      # also the tables in docs/benchmarks.md's layout
    ./scripts/bench --plain --ops 1000 --rounds 1 --callers 1000   # quick look
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.resources
import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aredis

from benchmarks import ioredis_side, memory
from berthcache import DEFAULT_KEY_PREFIX, AsyncCache, Cache, CacheConfig
from berthcache.testing import RedisServer, make_tls_files

SESSION_DATA = {"role": "nurse", "name": "Ada", "unit": "3B", "shift": "night"}
API_PAYLOAD = {"clients": [{"id": i, "name": f"client {i}", "room": 100 + i} for i in range(20)]}
CONCURRENCY = 64
SESSION_TTL = 7 * 24 * 3600
#: The seed's four workloads (issue 10) plus set_get; the last one runs 64 concurrent callers.
SEQUENTIAL = ("ping", "set_get", "session_set_get", "rate_limit_check")
CONCURRENT = "api_cache_get_async64"
WORKLOADS = (*SEQUENTIAL, CONCURRENT)
#: Column order of the table and the JSON objects.
SIDES = (
    "berthcache_sync",
    "berthcache_async",
    "berthcache_async_uvloop",
    "raw_sync",
    "raw_async",
    "ioredis",
    "ioredis_autopipelining",
    "ioredis_same_commands",
)
#: The workloads where berthcache sends other commands than the seed (its guarantees: a
#: session index written atomically with the session, an atomic counter that says when its
#: window ends): the ioredis side runs them a second time with berthcache's commands.
SAME_COMMANDS = ("session_set_get", "rate_limit_check")
#: The time budgets (issue 8) raised from 250-1000 ms, so a stall of the shared machine fails
#: no round (a fail-open rate-limit check would even count as a fast one); what a budget costs
#: per call does not depend on its length.
BUDGETS = {
    "health_timeout_ms": 10_000,
    "rate_limit_timeout_ms": 10_000,
    "response_cache_timeout_ms": 10_000,
}
#: Untraced rounds of the memory figure per side (one traced round follows).
MEMORY_ROUNDS = 2
#: The concurrent workload's API response, as the seed's module reads it.
API_ENDPOINT, API_USER = "clients:list", 42

Timed = Callable[[int], float]  # ops -> ops/s


def _ops_per_s(ops: int, seconds: float) -> float:
    return ops / seconds if seconds > 0 else float("inf")


def _timed_sync(fn: Callable[[int], int]) -> Timed:
    def run(ops: int) -> float:
        start = time.perf_counter()
        done = fn(ops)
        return _ops_per_s(done, time.perf_counter() - start)

    return run


def _timed_async(runner: asyncio.Runner, fn: Callable[[int], Awaitable[int]]) -> Timed:
    """Time ``fn`` on the long-lived loop of ``runner`` (clients stay connected between
    rounds, as in a running service; only the workload is inside the timed span)."""

    async def timed(ops: int) -> float:
        start = time.perf_counter()
        done = await fn(ops)
        return _ops_per_s(done, time.perf_counter() - start)

    return lambda ops: runner.run(timed(ops))


def rate_limit_script() -> str:
    """The Lua script berthcache's rate limiter runs, read from the installed package so the
    raw side sends exactly the same EVALSHA."""
    resource = importlib.resources.files("berthcache") / "resources" / "rate_limit.lua"
    return resource.read_text(encoding="utf-8")


# -- the Python sides --------------------------------------------------------------------------


def berthcache_sync(cache: Cache) -> dict[str, Timed]:
    """The sync twin, one caller."""
    sessions, limiter = cache.sessions, cache.rate_limiter

    def ping(n: int) -> int:
        for _ in range(n):
            cache.ping()
        return n

    def set_get(n: int) -> int:
        for i in range(n // 2):
            key = f"k{i % 500}"
            cache.set(key, "value", 300)
            cache.get(key)
        return n // 2 * 2

    def session(n: int) -> int:
        for i in range(n // 2):
            sessions.get(sessions.create(i % 500, SESSION_DATA))
        return n // 2 * 2

    def rate_limit(n: int) -> int:
        for i in range(n):
            limiter.check(f"10.0.{i % 200}.{i % 250}", "/api/clients")
        return n

    return {
        "ping": _timed_sync(ping),
        "set_get": _timed_sync(set_get),
        "session_set_get": _timed_sync(session),
        "rate_limit_check": _timed_sync(rate_limit),
    }


def berthcache_async(runner: asyncio.Runner, cache: AsyncCache) -> dict[str, Timed]:
    """The async twin: a lone awaiting caller, and 64 tasks on the concurrent workload."""
    sessions, limiter, responses = cache.sessions, cache.rate_limiter, cache.responses

    async def ping(n: int) -> int:
        for _ in range(n):
            await cache.ping()
        return n

    async def set_get(n: int) -> int:
        for i in range(n // 2):
            key = f"k{i % 500}"
            await cache.set(key, "value", 300)
            await cache.get(key)
        return n // 2 * 2

    async def session(n: int) -> int:
        for i in range(n // 2):
            await sessions.get(await sessions.create(i % 500, SESSION_DATA))
        return n // 2 * 2

    async def rate_limit(n: int) -> int:
        for i in range(n):
            await limiter.check(f"10.0.{i % 200}.{i % 250}", "/api/clients")
        return n

    async def api_get(n: int) -> int:
        each = n // CONCURRENCY

        async def worker() -> None:
            for _ in range(each):
                if await responses.get(API_ENDPOINT, API_USER) is None:
                    raise RuntimeError("the API response is not cached")

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return each * CONCURRENCY

    return {
        "ping": _timed_async(runner, ping),
        "set_get": _timed_async(runner, set_get),
        "session_set_get": _timed_async(runner, session),
        "rate_limit_check": _timed_async(runner, rate_limit),
        CONCURRENT: _timed_async(runner, api_get),
    }


def raw_sync(raw: redis.Redis, prefix: str) -> dict[str, Timed]:
    """redis-py sending exactly berthcache's commands (MULTI for sessions, the Lua limiter)."""
    script = raw.register_script(rate_limit_script())

    def ping(n: int) -> int:
        for _ in range(n):
            raw.ping()
        return n

    def set_get(n: int) -> int:
        for i in range(n // 2):
            key = f"{prefix}k{i % 500}"
            raw.set(key, "value", 300)
            raw.get(key)
        return n // 2 * 2

    def session(n: int) -> int:
        for i in range(n // 2):
            user = i % 500
            sid = f"user-{user}-session-{secrets.token_hex(16)}"
            key, index = f"{prefix}session:{sid}", f"{prefix}session-index:user-{user}"
            pipe = raw.pipeline(transaction=True)
            pipe.set(key, json.dumps(SESSION_DATA, separators=(",", ":")), ex=SESSION_TTL)
            pipe.sadd(index, sid)
            pipe.expire(index, SESSION_TTL, nx=True)
            pipe.expire(index, SESSION_TTL, gt=True)
            pipe.execute()
            json.loads(raw.get(key) or "null")
        return n // 2 * 2

    def rate_limit(n: int) -> int:
        for i in range(n):
            key = f"{prefix}ratelimit:10.0.{i % 200}.{i % 250}:/api/clients"
            count, pttl = script(keys=[key], args=[60_000])
            _ = (int(count) <= 100, int(pttl) / 1000.0)
        return n

    return {
        "ping": _timed_sync(ping),
        "set_get": _timed_sync(set_get),
        "session_set_get": _timed_sync(session),
        "rate_limit_check": _timed_sync(rate_limit),
    }


def raw_async(runner: asyncio.Runner, raw: aredis.Redis, prefix: str) -> dict[str, Timed]:
    """redis.asyncio sending exactly berthcache's commands; 64 tasks share its pool of 64."""
    script = raw.register_script(rate_limit_script())
    api_key = f"{prefix}api:{API_ENDPOINT}:{API_USER}"

    async def ping(n: int) -> int:
        for _ in range(n):
            await raw.ping()
        return n

    async def set_get(n: int) -> int:
        for i in range(n // 2):
            key = f"{prefix}k{i % 500}"
            await raw.set(key, "value", 300)
            await raw.get(key)
        return n // 2 * 2

    async def session(n: int) -> int:
        for i in range(n // 2):
            user = i % 500
            sid = f"user-{user}-session-{secrets.token_hex(16)}"
            key, index = f"{prefix}session:{sid}", f"{prefix}session-index:user-{user}"
            pipe = raw.pipeline(transaction=True)
            pipe.set(key, json.dumps(SESSION_DATA, separators=(",", ":")), ex=SESSION_TTL)
            pipe.sadd(index, sid)
            pipe.expire(index, SESSION_TTL, nx=True)
            pipe.expire(index, SESSION_TTL, gt=True)
            await pipe.execute()
            json.loads(await raw.get(key) or "null")
        return n // 2 * 2

    async def rate_limit(n: int) -> int:
        for i in range(n):
            key = f"{prefix}ratelimit:10.0.{i % 200}.{i % 250}:/api/clients"
            count, pttl = await script(keys=[key], args=[60_000])
            _ = (int(count) <= 100, int(pttl) / 1000.0)
        return n

    async def api_get(n: int) -> int:
        each = n // CONCURRENCY

        async def worker() -> None:
            for _ in range(each):
                value = await raw.get(api_key)
                if value is None:
                    raise RuntimeError("the API response is not cached")
                json.loads(value)

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return each * CONCURRENCY

    return {
        "ping": _timed_async(runner, ping),
        "set_get": _timed_async(runner, set_get),
        "session_set_get": _timed_async(runner, session),
        "rate_limit_check": _timed_async(runner, rate_limit),
        CONCURRENT: _timed_async(runner, api_get),
    }


def ioredis_sides(node: ioredis_side.IoredisSide) -> dict[str, dict[str, Timed]]:
    """The seed's module in node. Auto-pipelining (off in the seed) only on the concurrent
    workload: a lone caller has nothing to pipeline, so there it could only add a tick. And,
    for context, ioredis sending berthcache's commands where they differ from the seed's."""

    def timed(workload: str, auto_pipelining: bool = False, same: bool = False) -> Timed:
        return lambda ops: node.ops_per_s(
            workload,
            ops,
            auto_pipelining=auto_pipelining,
            concurrency=CONCURRENCY,
            same_commands=same,
        )

    return {
        "ioredis": {name: timed(name) for name in WORKLOADS},
        "ioredis_autopipelining": {CONCURRENT: timed(CONCURRENT, auto_pipelining=True)},
        "ioredis_same_commands": {name: timed(name, same=True) for name in SAME_COMMANDS},
    }


# -- running ----------------------------------------------------------------------------------


def alternate(sides: dict[str, Timed], ops: int, rounds: int) -> dict[str, float]:
    """One warm-up each, then ``rounds`` rounds in a rotating order; the median per side."""
    names = list(sides)
    for name in names:
        sides[name](max(ops // 4, CONCURRENCY))
    results: dict[str, list[float]] = {name: [] for name in names}
    for n in range(rounds):
        shift = n % len(names)
        order = names[shift:] + names[:shift]
        if n % 2:
            order.reverse()
        for name in order:
            results[name].append(sides[name](ops))
    return {name: statistics.median(values) for name, values in results.items()}


class Transport:
    """One server (plain TCP or TLS) and the settings every side uses to reach it."""

    def __init__(self, server: RedisServer, password: str, ca_file: str | None) -> None:
        self.server = server
        self.prefix = f"{DEFAULT_KEY_PREFIX}bench-{secrets.token_hex(4)}:"
        self.ca_file = ca_file
        self.password = password
        self.name = "TLS" if ca_file is not None else "plain TCP"
        self.config = CacheConfig(
            host=server.host,
            port=server.port,
            password=password,
            key_prefix=self.prefix,
            tls=ca_file is not None,
            tls_ca_file=ca_file,
            health_timeout_ms=BUDGETS["health_timeout_ms"],
            rate_limit_timeout_ms=BUDGETS["rate_limit_timeout_ms"],
            response_cache_timeout_ms=BUDGETS["response_cache_timeout_ms"],
        )
        # The same connection settings berthcache uses (timeouts make redis-py poll before
        # every read, which costs a syscall), so the ratio measures the module, not settings.
        self.raw_kwargs = server.connection_kwargs(user=None) | {
            "decode_responses": True,
            "socket_timeout": self.config.socket_timeout,
            "socket_connect_timeout": self.config.connect_timeout,
            "client_name": self.config.client_name,
        }

    def memory_settings(self) -> dict[str, Any]:
        """What a ``benchmarks.memory`` child needs to reach the server (sent on its stdin)."""
        config = {
            "host": self.config.host,
            "port": self.config.port,
            "password": self.password,
            "key_prefix": self.prefix,
            "tls": self.config.tls,
            "tls_ca_file": self.ca_file,
        } | BUDGETS
        return {"config": config, "raw_kwargs": self.raw_kwargs}


def run_workloads(
    transport: Transport, node: ioredis_side.IoredisSide | None, ops: int, rounds: int
) -> dict[str, dict[str, float]]:
    """Every workload on every side against ``transport``'s server:
    ``{workload: {side: ops/s}}``."""
    config, prefix = transport.config, transport.prefix
    results: dict[str, dict[str, float]] = {}
    uv_factory = _uvloop_factory()
    with (
        asyncio.Runner() as runner,
        asyncio.Runner(loop_factory=uv_factory) as uv_runner,
        Cache(config) as cache,
    ):
        raw = redis.Redis(**transport.raw_kwargs)
        acache = runner.run(_make_async_cache(config.replace(max_connections=CONCURRENCY)))
        uv_cache = (
            uv_runner.run(_make_async_cache(config.replace(max_connections=CONCURRENCY)))
            if uv_factory is not None
            else None
        )
        araw = aredis.Redis(**transport.raw_kwargs, max_connections=CONCURRENCY)
        try:
            by_side: dict[str, dict[str, Timed]] = {
                "berthcache_sync": berthcache_sync(cache),
                "berthcache_async": berthcache_async(runner, acache),
                "raw_sync": raw_sync(raw, prefix),
                "raw_async": raw_async(runner, araw, prefix),
            }
            if uv_cache is not None:
                on_uvloop = berthcache_async(uv_runner, uv_cache)
                by_side["berthcache_async_uvloop"] = {CONCURRENT: on_uvloop[CONCURRENT]}
            if node is not None:
                by_side |= ioredis_sides(node)
            for workload in WORKLOADS:
                if workload == CONCURRENT:
                    # Written again just before it is read: the workloads before it can outlast
                    # the response's TTL (the seed's 300 s) on a slow machine.
                    runner.run(acache.responses.set(API_ENDPOINT, API_USER, API_PAYLOAD))
                sides = {side: fns[workload] for side, fns in by_side.items() if workload in fns}
                n = ops * 4 if workload == CONCURRENT else ops
                start = time.perf_counter()
                results[workload] = alternate(sides, n, rounds)
                took = time.perf_counter() - start
                print(f"  {transport.name} {workload}: {took:.1f} s", file=sys.stderr)
        finally:
            raw.close()
            runner.run(araw.aclose())
            runner.run(acache.close())
            if uv_cache is not None:
                uv_runner.run(uv_cache.close())
    return results


def _uvloop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory (a dev dependency), or None where it is not installed."""
    try:
        import uvloop
    except ImportError:
        print(
            "uvloop is not installed: the berthcache_async_uvloop side is skipped",
            file=sys.stderr,
        )
        return None
    return uvloop.new_event_loop


async def _make_async_cache(config: CacheConfig) -> AsyncCache:
    """Build the AsyncCache inside the runner's loop (its connections belong to that loop)."""
    return AsyncCache(config)


def run_memory(
    transport: Transport, node: ioredis_side.IoredisSide | None, callers: int, rounds: int
) -> dict[str, Any]:
    """``callers`` concurrent GETs per side, each Python side in a fresh process."""
    settings = json.dumps(transport.memory_settings())
    out: dict[str, Any] = {"callers": callers}
    for side in memory.SIDES:
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.memory", side, str(callers), str(rounds)],
            input=settings + "\n",
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            cwd=Path(__file__).resolve().parents[1],
        )
        if done.returncode != 0:
            tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(f"memory {side} failed: {tail[0]}")
        out[side] = json.loads(done.stdout.strip().splitlines()[-1])
    if node is not None:
        reply = node.memory(callers, rounds)
        out["ioredis"] = {
            "callers": callers,
            "failed": 0,
            "ops_per_s": round(reply["ops_per_s"], 1),
            "rss_delta": reply["rss_delta"],
            "rss_per_caller": round(reply["rss_delta"] / callers, 1),
            "heap_delta": reply["heap_delta"],
            "heap_per_caller": round(reply["heap_delta"] / callers, 1),
        }
    return out


@contextmanager
def started(tls: bool, workdir: Path) -> Iterator[Transport]:
    """A fresh redis-server (AUTH, no persistence), TLS-only when ``tls``."""
    password = secrets.token_urlsafe(24)
    files = make_tls_files(workdir / "tls") if tls else None
    with RedisServer(password=password, appendonly=False, tls=files, name="bench") as server:
        yield Transport(server, password, str(files.ca_file) if files is not None else None)


@contextmanager
def node_side(
    transport: Transport, skipped: list[str]
) -> Iterator[ioredis_side.IoredisSide | None]:
    """The ioredis child for this server, or ``None`` (reason appended to ``skipped``)."""
    side, reason = ioredis_side.start(
        host=transport.config.host,
        port=transport.config.port,
        password=transport.password,
        prefix=transport.prefix,
        ca_file=transport.ca_file,
        rate_limit_script=rate_limit_script(),
    )
    if reason is not None and reason not in skipped:
        skipped.append(reason)
    try:
        yield side
    finally:
        if side is not None:
            side.close()


# -- reporting --------------------------------------------------------------------------------


def headline(workload: str, figures: dict[str, float]) -> tuple[float | None, float | None]:
    """The twin the issue's goal names (async on the concurrent workload, sync otherwise) and
    the raw side of the same kind."""
    if workload == CONCURRENT:
        return figures.get("berthcache_async"), figures.get("raw_async")
    return figures.get("berthcache_sync"), figures.get("raw_sync")


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def ratios(results: dict[str, dict[str, float]]) -> dict[str, dict[str, float | None]]:
    out = {}
    for workload, figures in results.items():
        ours, raw = headline(workload, figures)
        ioredis = figures.get("ioredis")
        out[workload] = {
            "berthcache/ioredis": _ratio(ours, ioredis),
            "berthcache/raw": _ratio(ours, raw),
            "berthcache_async/ioredis": _ratio(figures.get("berthcache_async"), ioredis),
            "berthcache_async_uvloop/ioredis": _ratio(
                figures.get("berthcache_async_uvloop"), ioredis
            ),
            "berthcache_async/raw_async": _ratio(
                figures.get("berthcache_async"), figures.get("raw_async")
            ),
            "berthcache/ioredis_same_commands": _ratio(ours, figures.get("ioredis_same_commands")),
        }
    return out


def json_workloads(results: dict[str, dict[str, float]]) -> dict[str, dict[str, float | None]]:
    """Per workload: every side, plus the keys older readers know (``berthcache``, ``raw``:
    the headline twin and its raw counterpart) and ``ioredis`` (``None`` when skipped)."""
    out = {}
    for workload, figures in results.items():
        ours, raw = headline(workload, figures)
        row: dict[str, float | None] = {
            "berthcache": ours,
            "raw": raw,
            "ioredis": figures.get("ioredis"),
        }
        row |= figures
        out[workload] = {k: (round(v, 1) if v is not None else None) for k, v in row.items()}
    return out


def _cell(value: float | None, width: int, fmt: str = ",.0f") -> str:
    return f"{format(value, fmt) if value is not None else '-':>{width}}"


def print_table(title: str, results: dict[str, dict[str, float]]) -> None:
    short = (
        "bc sync",
        "bc async",
        "bc uvloop",
        "raw sync",
        "raw async",
        "ioredis",
        "ioredis AP",
        "io same",
    )
    print(f"\n{title} (ops/s, medians)")
    print(
        f"{'workload':<24}"
        + "".join(f"{s:>11}" for s in short)
        + f"{'bc/ioredis':>12}{'bc/raw':>8}{'async/io':>10}{'uvloop/io':>11}{'bc/io same':>12}"
    )
    for workload, figures in results.items():
        r = ratios({workload: figures})[workload]
        print(
            f"{workload:<24}"
            + "".join(_cell(figures.get(side), 11) for side in SIDES)
            + _cell(r["berthcache/ioredis"], 12, ".2f")
            + _cell(r["berthcache/raw"], 8, ".2f")
            + _cell(r["berthcache_async/ioredis"], 10, ".2f")
            + _cell(r["berthcache_async_uvloop/ioredis"], 11, ".2f")
            + _cell(r["berthcache/ioredis_same_commands"], 12, ".2f")
        )


def print_memory(figures: dict[str, Any]) -> None:
    print(f"\n{figures['callers']:,} concurrent callers, one GET each ({figures['transport']})")
    print(
        f"{'side':<20}{'ops/s':>10}{'failed':>8}{'RSS +MiB':>10}{'RSS B/caller':>14}"
        f"{'traced B/caller':>17}"
    )
    for side in (*memory.SIDES, "ioredis"):
        if side not in figures:
            continue
        f = figures[side]
        traced = f.get("traced_per_caller", f.get("heap_per_caller"))
        print(
            f"{side:<20}{f['ops_per_s']:>10,.0f}{f.get('failed', 0):>8}"
            f"{f['rss_delta'] / 2**20:>10.1f}"
            f"{f['rss_per_caller']:>14,.0f}{traced:>17,.0f}"
        )


#: The issue-10 goal per workload (berthcache/ioredis), for the markdown tables.
GOALS = {
    "ping": "≥ 1.0",
    "set_get": "-",
    "session_set_get": "≥ 0.95",
    "rate_limit_check": "≥ 1.0",
    CONCURRENT: "≥ 1.0 (1.2)",
}


def _md(value: float | None, fmt: str = ",.0f") -> str:
    return format(value, fmt) if value is not None else "-"


def markdown(payload: dict[str, Any]) -> str:
    """The side-by-side tables of docs/benchmarks.md, filled from one run's JSON payload."""
    lines: list[str] = []
    for key, title in (("workloads", "Plain TCP"), ("workloads_tls", "TLS")):
        if key not in payload:
            continue
        lines += [
            f"{title}, ops/s (medians of {payload['settings']['rounds']} rounds):",
            "",
            "| workload | ioredis (seed) | ioredis auto-pipelining | raw redis-py | "
            "raw redis.asyncio | `Cache` | `AsyncCache` | `AsyncCache` on uvloop | "
            "berthcache / ioredis | on uvloop / ioredis | berthcache / raw | goal | "
            "ioredis, berthcache's commands | berthcache / that |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
        ]
        tag = "tls" if key == "workloads_tls" else "plain"
        for name in (name for name in WORKLOADS if name in payload[key]):
            row, r = payload[key][name], payload["ratios"][tag][name]
            lines.append(
                f"| {name} | {_md(row.get('ioredis'))} | "
                f"{_md(row.get('ioredis_autopipelining'))} | {_md(row.get('raw_sync'))} | "
                f"{_md(row.get('raw_async'))} | {_md(row.get('berthcache_sync'))} | "
                f"{_md(row.get('berthcache_async'))} | "
                f"{_md(row.get('berthcache_async_uvloop'))} | "
                f"**{_md(r['berthcache/ioredis'], '.2f')}** | "
                f"{_md(r.get('berthcache_async_uvloop/ioredis'), '.2f')} | "
                f"{_md(r['berthcache/raw'], '.2f')} | {GOALS.get(name, '-')} | "
                f"{_md(row.get('ioredis_same_commands'))} | "
                f"{_md(r.get('berthcache/ioredis_same_commands'), '.2f')} |"
            )
        lines.append("")
    if "memory" in payload:
        m = payload["memory"]
        lines += [
            f"{m['callers']:,} concurrent callers, one GET each ({m['transport']}):",
            "",
            "| side | ops/s | failed | RSS rise | RSS / caller | traced peak / caller |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for side in (*memory.SIDES, "ioredis"):
            if side in m:
                f = m[side]
                traced = f.get("traced_per_caller", f.get("heap_per_caller"))
                note = " (V8 heap)" if "heap_per_caller" in f else ""
                lines.append(
                    f"| {side} | {f['ops_per_s']:,.0f} | {f.get('failed', 0):,} | "
                    f"{f['rss_delta'] / 2**20:.1f} MiB | {f['rss_per_caller']:,.0f} B | "
                    f"{traced:,.0f} B{note} |"
                )
        lines.append("")
    return "\n".join(lines)


def machine(server: RedisServer) -> str:
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
        f"{os.cpu_count()} cores ({cpu}), load {os.getloadavg()[0]:.1f}, Python "
        f"{platform.python_version()}, redis-py {redis.__version__}, "
        f"{platform.system()} {platform.release()}, "
        f"redis-server {'.'.join(map(str, server.version))}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="./scripts/bench", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--json", action="store_true", help="end with one JSON line of results")
    parser.add_argument(
        "--markdown",
        action="store_true",
        help="also print the tables in docs/benchmarks.md's layout",
    )
    parser.add_argument(
        "--ops",
        type=int,
        default=12_000,
        help="operations per round (default 12000, about a second a side; 4x on the "
        "concurrent one)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="rounds per side (default 5: the median of five shorter rounds drifts less with "
        "a shared machine's speed than that of three longer ones)",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--tls", action="store_true", help="TLS only (default: plain, then TLS)")
    which.add_argument("--plain", action="store_true", help="plain TCP only")
    parser.add_argument(
        "--callers",
        type=int,
        default=10_000,
        help="concurrent callers of the memory figure (default 10000; 0 skips it)",
    )
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="the workloads in cluster mode: a local Redis Cluster against one node",
    )
    args = parser.parse_args(argv)
    if args.cluster:
        from benchmarks import cluster

        return cluster.main(args.ops, args.rounds, as_json=args.json)
    if args.ops < CONCURRENCY or args.rounds < 1 or args.callers < 0:
        parser.error(f"--ops must be at least {CONCURRENCY}, --rounds at least 1, --callers >= 0")

    transports = [False, True]
    if args.tls:
        transports = [True]
    elif args.plain:
        transports = [False]
    payload: dict[str, Any] = {
        "settings": {"ops": args.ops, "rounds": args.rounds, "concurrency": CONCURRENCY}
    }
    skipped: list[str] = []
    tables: list[tuple[str, dict[str, dict[str, float]]]] = []
    workdir = Path(tempfile.mkdtemp(prefix="berthcache-bench-"))
    try:
        for tls in transports:
            with started(tls, workdir) as transport, node_side(transport, skipped) as node:
                if "machine" not in payload:
                    payload["machine"] = machine(transport.server)
                    print(f"machine: {payload['machine']}", file=sys.stderr)
                    if node is not None:
                        payload["ioredis"] = {k: v for k, v in node.versions.items() if k != "ok"}
                if node is None:
                    print(f"ioredis: skipped ({skipped[-1]})", file=sys.stderr)
                results = run_workloads(transport, node, args.ops, args.rounds)
                key = "workloads_tls" if tls else "workloads"
                payload[key] = json_workloads(results)
                payload.setdefault("ratios", {})["tls" if tls else "plain"] = ratios(results)
                tables.append(("TLS" if tls else "plain TCP", results))
                if args.callers and "memory" not in payload:
                    start = time.perf_counter()
                    payload["memory"] = run_memory(transport, node, args.callers, MEMORY_ROUNDS)
                    took = time.perf_counter() - start
                    print(
                        f"  {transport.name} {args.callers} callers: {took:.1f} s", file=sys.stderr
                    )
                    payload["memory"]["transport"] = "TLS" if tls else "plain TCP"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if skipped:
        payload["ioredis"] = {"skipped": skipped[0]}

    for title, results in tables:
        print_table(title, results)
    if "memory" in payload:
        print_memory(payload["memory"])
    if args.markdown:
        print("\n" + markdown(payload))
    if args.json:
        print(json.dumps(payload, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
