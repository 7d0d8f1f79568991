"""The multiplexer against raw ``redis.asyncio`` (a pool of 64) in the same run, plain and TLS.

The workload of issue 10: 64 concurrent tasks each looping GET of one key + ``json.loads`` of a
20-client list; also one lone task looping PING (the sequential case) and the memory held by
10,000 concurrent callers. Sides alternate round by round on the same server and each reports
its median, and each alternative's ratio to its baseline is taken within each round (the
median of those is printed): on a shared machine only such ratios mean anything. Alternatives
measured: a per-call ``loop.call_at`` timer, a per-call ``asyncio.timeout``, a reader task on
redis-py's StreamReader instead of our protocol, a flush only at the end of each loop tick.

    .venv/bin/python -m benchmarks.mux_micro [--seconds 0.3] [--rounds 15] [--memory]
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
from berthcache._budget import Budget
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


#: The clock ``_rate`` divides by: wall time (throughput), or this process's CPU time (``--cpu``:
#: the client's cost per operation, much steadier than throughput on a shared machine).
CLOCK: list[Callable[[], float]] = [time.perf_counter]


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

    clock = CLOCK[0]
    start = clock()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    return done / (clock() - start)


class _TaskLink(_Link):
    """The alternative to handing the transport to our protocol: a reader task per connection
    awaiting redis-py's StreamReader and feeding hiredis."""

    def take_over(self) -> None:
        self.transport = self.connection._writer.transport
        self._task = self.loop.create_task(self._read(self.connection._reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while self.alive:
            data = await reader.read(65536)
            if not data:
                self.die(ConnectionError("closed"))
                return
            self.data_received(data)


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

    budget = Budget(5000, "socket_timeout")

    def mux_get_call_at() -> Awaitable[Any]:
        return mux.call(args, budget=budget)  # one loop.call_at handle per call

    async def mux_get_asyncio_timeout() -> Any:
        async with asyncio.timeout(5.0):
            return await mux.call(args)

    task_mux = AsyncMultiplexer(config, events)
    task_mux._link_class = _TaskLink

    def task_mux_get() -> Awaitable[Any]:
        return task_mux.call(args)

    async def ticked(get: Loop, loads: Callable[[str], Any], tasks: int) -> float:
        _Link.eager = False  # no lone caller's write at once: the end of the tick, or 32 sends
        try:
            return await _rate(get, loads, tasks, seconds)
        finally:
            _Link.eager = True

    # name -> (run, the side it is compared with in the same round)
    sides: dict[str, tuple[Callable[[], Awaitable[float]], str | None]] = {
        "mux64_json": (lambda: _rate(mux_get, json.loads, CONCURRENCY, seconds), None),
        "raw64_json": (lambda: _rate(raw_get, json.loads, CONCURRENCY, seconds), "mux64_json"),
        "mux1_ping": (lambda: _rate(mux_ping, nothing, 1, seconds), None),
        "raw1_ping": (lambda: _rate(raw_ping, nothing, 1, seconds), "mux1_ping"),
        "mux64_json_call_at": (
            lambda: _rate(mux_get_call_at, json.loads, CONCURRENCY, seconds),
            "mux64_json",
        ),
        "mux64_json_asyncio_timeout": (
            lambda: _rate(mux_get_asyncio_timeout, json.loads, CONCURRENCY, seconds),
            "mux64_json",
        ),
        "mux64_json_reader_task": (
            lambda: _rate(task_mux_get, json.loads, CONCURRENCY, seconds),
            "mux64_json",
        ),
        "mux64_json_tick": (lambda: ticked(mux_get, json.loads, CONCURRENCY), "mux64_json"),
        "mux1_ping_tick": (lambda: ticked(mux_ping, nothing, 1), "mux1_ping"),
    }
    if orjson_loads is not None:
        loads = orjson_loads
        sides["mux64_orjson"] = (
            lambda: _rate(mux_get, loads, CONCURRENCY, seconds),
            "mux64_json",
        )
    results: dict[str, list[float]] = {name: [] for name in sides}
    ratios: dict[str, list[float]] = {name: [] for name, (_, base) in sides.items() if base}
    try:
        await _rate(mux_get, json.loads, CONCURRENCY, 0.2)  # warm up
        await _rate(raw_get, json.loads, CONCURRENCY, 0.2)
        await _rate(task_mux_get, json.loads, CONCURRENCY, 0.2)
        for _ in range(rounds):
            this_round: dict[str, float] = {}
            for name, (run, base) in sides.items():
                this_round[name] = await run()
                results[name].append(this_round[name])
                if base is not None:
                    ratios[name].append(this_round[name] / this_round[base])
    finally:
        await raw.delete(KEY)
        await raw.aclose()
        await mux.aclose()
        await task_mux.aclose()
    found = {name: statistics.median(values) for name, values in results.items()}
    found.update({f"{name}/{sides[name][1]}": statistics.median(r) for name, r in ratios.items()})
    return found


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
    parser.add_argument("--seconds", type=float, default=0.3, help="length of one side's turn")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--memory", action="store_true", help="also the 10,000-callers figure")
    parser.add_argument(
        "--cpu", action="store_true", help="operations per CPU-second of this process, not wall"
    )
    args = parser.parse_args(argv)
    if args.cpu:
        CLOCK[0] = time.process_time
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
                unit = "ops per CPU-second" if args.cpu else "ops/s"
                print(f"{label} {unit} (medians):")
                for name, value in found.items():
                    if "/" not in name:
                        print(f"  {name:28} {value:>10,.0f}")
                print(f"{label} ratios (median of the per-round ratios):")
                for name, value in found.items():
                    if "/" in name:
                        print(f"  {name:40} {value:.2f}x")
                if args.memory and tls is None:
                    for callers in (1_000, 10_000):
                        print(f"memory: {asyncio.run(memory(config, callers))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
