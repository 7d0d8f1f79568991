"""The multiplexer against raw ``redis.asyncio`` (a pool of 64) in the same run, plain and TLS.

The workload of issue 10: 64 concurrent tasks each looping GET of one key + ``json.loads`` of a
20-client list; also one lone task looping PING (the sequential case) and the memory held by
10,000 concurrent callers. Sides alternate round by round on the same server and each reports
its median; on a shared machine only the ratios within one run mean anything.

    .venv/bin/python -m benchmarks.mux_micro [--seconds 1.0] [--rounds 3] [--memory]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import secrets
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import redis.asyncio as aredis

from berthcache import CacheConfig
from berthcache._events import ConnectionEvents
from berthcache._mux import AsyncMultiplexer, _Link
from berthcache.testing._certs import make_tls_files
from berthcache.testing._server import RedisServer

try:
    import orjson

    orjson_loads: Callable[[str], Any] | None = orjson.loads
except ImportError:  # pragma: no cover - orjson is optional here
    orjson_loads = None

API_PAYLOAD = {"clients": [{"id": i, "name": f"client {i}", "room": 100 + i} for i in range(20)]}
CONCURRENCY = 64
KEY = "bench:mux:clients"

Loop = Callable[[], Awaitable[Any]]


async def _rate(get: Loop, loads: Callable[[str], Any], tasks: int, seconds: float) -> float:
    """Operations per second of ``tasks`` tasks each looping ``loads(await get())``."""
    done = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        count = 0
        while True:
            for _ in range(50):
                value = await get()
                if value is not None:
                    loads(value)
            count += 50
            if time.perf_counter() >= stop:
                break
        done += count

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    return done / (time.perf_counter() - start)


async def measure(
    config: CacheConfig, raw_kwargs: dict[str, Any], seconds: float, rounds: int
) -> dict[str, float]:
    events = ConnectionEvents(config.url)
    mux = AsyncMultiplexer(config, events)
    raw = aredis.Redis(**raw_kwargs, max_connections=CONCURRENCY)
    await raw.set(KEY, json.dumps(API_PAYLOAD))
    args = ("GET", KEY)

    def mux_get() -> Awaitable[Any]:
        return mux.call(args)

    def raw_get() -> Awaitable[Any]:
        return raw.get(KEY)

    def mux_ping() -> Awaitable[Any]:
        return mux.call(("PING",))

    def raw_ping() -> Awaitable[Any]:
        return raw.ping()

    def nothing(value: Any) -> None:
        return None

    sides: dict[str, Callable[[], Awaitable[float]]] = {
        "mux64_json": lambda: _rate(mux_get, json.loads, CONCURRENCY, seconds),
        "raw64_json": lambda: _rate(raw_get, json.loads, CONCURRENCY, seconds),
        "mux1_ping": lambda: _rate(mux_ping, nothing, 1, seconds),
        "raw1_ping": lambda: _rate(raw_ping, nothing, 1, seconds),
    }
    if orjson_loads is not None:
        loads = orjson_loads
        sides["mux64_orjson"] = lambda: _rate(mux_get, loads, CONCURRENCY, seconds)
    results: dict[str, list[float]] = {name: [] for name in sides}
    results["mux64_json_tick"] = []
    results["mux1_ping_tick"] = []
    try:
        await _rate(mux_get, json.loads, CONCURRENCY, 0.2)  # warm up both
        await _rate(raw_get, json.loads, CONCURRENCY, 0.2)
        for _ in range(rounds):
            for name, run in sides.items():
                results[name].append(await run())
            # The alternative: every write waits for the end of the loop tick.
            _Link.eager = False
            try:
                results["mux64_json_tick"].append(
                    await _rate(mux_get, json.loads, CONCURRENCY, seconds)
                )
                results["mux1_ping_tick"].append(await _rate(mux_ping, nothing, 1, seconds))
            finally:
                _Link.eager = True
    finally:
        await raw.delete(KEY)
        await raw.aclose()
        await mux.aclose()
    return {name: statistics.median(values) for name, values in results.items()}


async def memory(config: CacheConfig, callers: int) -> dict[str, float]:
    """Bytes traced while ``callers`` tasks each have one GET in flight on the multiplexer."""
    mux = AsyncMultiplexer(config, ConnectionEvents(config.url))
    await mux.call(("SET", KEY, json.dumps(API_PAYLOAD)))
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    await asyncio.gather(*(mux.call(("GET", KEY)) for _ in range(callers)))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    await mux.call(("DEL", KEY))
    await mux.aclose()
    return {
        "callers": callers,
        "peak_bytes": peak - before,
        "per_caller": (peak - before) / callers,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--memory", action="store_true", help="also the 10,000-callers figure")
    args = parser.parse_args(argv)
    password = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory(prefix="berthcache-mux-") as tmp:
        tls_files = make_tls_files(Path(tmp))
        for tls in (None, tls_files):
            with RedisServer(password=password, appendonly=False, tls=tls, name="mux") as server:
                config = CacheConfig(
                    host=server.host,
                    port=server.port,
                    password=password,
                    tls=tls is not None,
                    tls_ca_file=str(tls.ca_file) if tls is not None else None,
                )
                raw_kwargs = server.connection_kwargs(user=None) | {
                    "decode_responses": True,
                    "socket_timeout": config.socket_timeout,
                    "socket_connect_timeout": config.connect_timeout,
                    "client_name": config.client_name,
                }
                found = asyncio.run(measure(config, raw_kwargs, args.seconds, args.rounds))
                label = "tls" if tls is not None else "plain"
                shown = "  ".join(f"{k}={v:,.0f}" for k, v in found.items())
                print(f"{label}: {shown}")
                print(
                    f"{label}: mux/raw 64 gets {found['mux64_json'] / found['raw64_json']:.2f}x, "
                    f"lone ping {found['mux1_ping'] / found['raw1_ping']:.2f}x, eager/tick-only "
                    f"64 gets {found['mux64_json'] / found['mux64_json_tick']:.2f}x "
                    f"lone ping {found['mux1_ping'] / found['mux1_ping_tick']:.2f}x"
                )
                if args.memory and tls is None:
                    for callers in (1_000, 10_000):
                        print(f"memory: {asyncio.run(memory(config, callers))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
