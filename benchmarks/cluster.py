"""The seed's four workloads in cluster mode: ``./scripts/bench --cluster``.

berthcache (``Cache`` and ``AsyncCache`` with ``cluster=True``) against a local Redis Cluster
(3 primaries x 1 replica, plain TCP, the app ACL user: ``berthcache.testing``'s LocalCluster,
the stand-in for ElastiCache cluster mode and Serverless), and the same clients against one
``redis-server`` in the same run, alternating rounds as ``./scripts/bench`` does. The ratio is
what cluster mode costs a caller: slot routing, a connection (or multiplexer) per node, and
for ``ping`` / health one PING per primary.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import time
from typing import Any

from benchmarks.bench import (
    API_ENDPOINT,
    API_PAYLOAD,
    API_USER,
    BUDGETS,
    CONCURRENT,
    WORKLOADS,
    Timed,
    _make_async_cache,
    alternate,
    berthcache_async,
    berthcache_sync,
)
from berthcache import DEFAULT_KEY_PREFIX, Cache, CacheConfig
from berthcache.testing._cluster import LocalCluster
from berthcache.testing._server import RedisServer

SIDES = ("cluster_sync", "cluster_async", "single_sync", "single_async")


def run(ops: int, rounds: int) -> dict[str, Any]:
    """``{"workloads": {workload: {side: ops/s}}, "ratios": …}`` from one run."""
    prefix = f"{DEFAULT_KEY_PREFIX}bench-{secrets.token_hex(4)}:"
    password = secrets.token_urlsafe(24)
    results: dict[str, dict[str, float]] = {}
    with (
        LocalCluster(tls=False, maxmemory="256mb") as cluster,
        RedisServer(password=password, appendonly=False, name="bench-single") as single,
    ):
        budgets: dict[str, Any] = dict(BUDGETS)
        on_cluster = CacheConfig.from_url(
            cluster.url("app"), cluster=True, key_prefix=prefix, **budgets
        )
        on_single = CacheConfig(
            host=single.host, port=single.port, password=password, key_prefix=prefix, **budgets
        )
        with asyncio.Runner() as runner, Cache(on_cluster) as cc, Cache(on_single) as sc:
            ac = runner.run(_make_async_cache(on_cluster))
            asc = runner.run(_make_async_cache(on_single))
            try:
                by_side: dict[str, dict[str, Timed]] = {
                    "cluster_sync": berthcache_sync(cc),
                    "cluster_async": berthcache_async(runner, ac),
                    "single_sync": berthcache_sync(sc),
                    "single_async": berthcache_async(runner, asc),
                }
                for workload in WORKLOADS:
                    if workload == CONCURRENT:  # just before it is read: TTL 300 s
                        for cache in (ac, asc):
                            runner.run(cache.responses.set(API_ENDPOINT, API_USER, API_PAYLOAD))
                    sides = {s: fns[workload] for s, fns in by_side.items() if workload in fns}
                    n = ops * 4 if workload == CONCURRENT else ops
                    start = time.perf_counter()
                    results[workload] = alternate(sides, n, rounds)
                    print(
                        f"  cluster {workload}: {time.perf_counter() - start:.1f} s",
                        file=sys.stderr,
                    )
            finally:
                runner.run(ac.close())
                runner.run(asc.close())
    return {
        "settings": {"ops": ops, "rounds": rounds, "shards": 3, "replicas_per_shard": 1},
        "workloads": results,
        "ratios": {
            w: {
                kind: round(r[f"cluster_{kind}"] / r[f"single_{kind}"], 3)
                for kind in ("sync", "async")
                if f"cluster_{kind}" in r and f"single_{kind}" in r
            }
            for w, r in results.items()
        },
    }


def markdown(payload: dict[str, Any]) -> str:
    """The cluster table of docs/benchmarks.md."""
    lines = [
        f"Cluster mode, plain TCP, ops/s (medians of {payload['settings']['rounds']} rounds):",
        "",
        "| workload | `Cache`, cluster | `Cache`, one node | ratio | `AsyncCache`, cluster | "
        "`AsyncCache`, one node | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in payload["workloads"].items():
        r = payload["ratios"][name]
        cells = [f"{row[side]:,.0f}" if side in row else "-" for side in SIDES]
        sync, asyncio_ = (f"{r[k]:.2f}" if k in r else "-" for k in ("sync", "async"))
        lines.append(
            f"| {name} | {cells[0]} | {cells[2]} | {sync} | {cells[1]} | {cells[3]} | {asyncio_} |"
        )
    return "\n".join(lines) + "\n"


def main(ops: int, rounds: int, *, as_json: bool) -> int:
    """Run, print the table (the docs' layout) and, with ``as_json``, one JSON line."""
    payload = run(ops, rounds)
    print(markdown(payload))
    if as_json:
        print(json.dumps(payload, sort_keys=True))
    return 0
