"""Micro-benchmark of the sync per-call path (issue 10 part 4): ``LeanTransport`` against raw
redis-py on the same server, in alternating rounds of one run (compare ratios: the machine is
shared and noisy).

Workloads, each sequential:

* ``ping``: ``PING`` — redis-py ``Redis.ping()``; redis-py's ``Connection`` used directly
  (``send_command`` / ``read_response``: no pool, no client layer); the floor, a bare socket
  with hiredis (no checkout, no retries, no error handling); ``LeanTransport.call(("PING",))``;
* ``session``: the session store's write and read — MULTI (SET EX, SADD, EXPIRE, EXPIRE) EXEC,
  then GET — as a redis-py transaction pipeline + ``get`` and as ``LeanTransport.batch(...,
  transaction=True)`` + ``call``, and over redis-py's ``Connection`` (``send_packed_command`` of
  the six commands, six ``read_response``, then GET).

    .venv/bin/python -m benchmarks.lean_micro                 # plain and TLS
    .venv/bin/python -m benchmarks.lean_micro --ops 5000 --rounds 5 --json
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import hiredis
import redis

from berthcache._config import CacheConfig
from berthcache._events import ConnectionEvents
from berthcache._lean import LeanTransport
from berthcache.testing._certs import make_tls_files
from berthcache.testing._server import RedisServer

SESSION = '{"role": "nurse", "name": "Ada", "unit": "3B", "shift": "night"}'


def _rate(fn: Callable[[int], None], ops: int) -> float:
    start = time.perf_counter()
    fn(ops)
    return ops / (time.perf_counter() - start)


def _sides(config: CacheConfig, raw_kwargs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    client = redis.Redis(**raw_kwargs)
    client.ping()
    conn_kwargs = {k: v for k, v in raw_kwargs.items() if k != "ssl"}
    conn_class = redis.SSLConnection if raw_kwargs.get("ssl") else redis.Connection
    conn = conn_class(**conn_kwargs)
    conn.connect()  # type: ignore[no-untyped-call]
    lean = LeanTransport(config, ConnectionEvents(config.url, secrets=[config.password]))
    lean.call(("PING",))
    prefix = config.key_prefix

    def redis_ping(n: int) -> None:
        for _ in range(n):
            client.ping()

    def conn_ping(n: int) -> None:
        for _ in range(n):
            conn.send_command("PING")  # type: ignore[no-untyped-call]
            conn.read_response()

    # The floor: a socket after the handshake, hiredis, nothing else (no checkout, no retries).
    raw_conn = conn_class(**conn_kwargs)
    raw_conn.connect()  # type: ignore[no-untyped-call]
    sock = cast(socket.socket, raw_conn._sock)  # redis-py types it as None until connected
    reader = hiredis.Reader(encoding="utf-8")
    buf = bytearray(65536)

    def socket_ping(n: int) -> None:
        packed = hiredis.pack_command(("PING",))
        for _ in range(n):
            sock.sendall(packed)
            reply = reader.gets()
            while reply is False:
                reader.feed(buf, 0, sock.recv_into(buf))  # type: ignore[arg-type]
                reply = reader.gets()

    def lean_ping(n: int) -> None:
        call = lean.call
        for _ in range(n):
            call(("PING",))

    def redis_session(n: int) -> None:
        for i in range(n):
            key, index = f"{prefix}session:{i % 64}", f"{prefix}user:{i % 8}:sessions"
            pipe = client.pipeline(transaction=True)
            pipe.set(key, SESSION, ex=3600)
            pipe.sadd(index, key)
            pipe.expire(index, 3600)
            pipe.expire(key, 3600)
            pipe.execute()
            client.get(key)

    def conn_session(n: int) -> None:
        for i in range(n):
            key, index = f"{prefix}session:{i % 64}", f"{prefix}user:{i % 8}:sessions"
            commands = [
                ("MULTI",),
                ("SET", key, SESSION, "EX", 3600),
                ("SADD", index, key),
                ("EXPIRE", index, 3600),
                ("EXPIRE", key, 3600),
                ("EXEC",),
            ]
            packed = conn.pack_commands(commands)  # type: ignore[no-untyped-call]
            conn.send_packed_command(packed)  # type: ignore[no-untyped-call]
            for _ in commands:
                conn.read_response()
            conn.send_command("GET", key)  # type: ignore[no-untyped-call]
            conn.read_response()

    def lean_session(n: int) -> None:
        batch, call = lean.batch, lean.call
        for i in range(n):
            key, index = f"{prefix}session:{i % 64}", f"{prefix}user:{i % 8}:sessions"
            batch(
                [
                    ("SET", key, SESSION, "EX", 3600),
                    ("SADD", index, key),
                    ("EXPIRE", index, 3600),
                    ("EXPIRE", key, 3600),
                ],
                transaction=True,
            )
            call(("GET", key))

    def close() -> None:
        client.close()
        conn.disconnect()  # type: ignore[no-untyped-call]
        raw_conn.disconnect()  # type: ignore[no-untyped-call]
        lean.close()

    return {
        "ping": {
            "redis-py": redis_ping,
            "redis-py Connection": conn_ping,
            "socket+hiredis": socket_ping,
            "lean": lean_ping,
        },
        "session": {
            "redis-py": redis_session,
            "redis-py Connection": conn_session,
            "lean": lean_session,
        },
        "_close": {"close": close},
    }


def measure(tls: bool, ops: int, rounds: int, workdir: Path) -> dict[str, dict[str, float]]:
    password = secrets.token_urlsafe(24)
    files = make_tls_files(workdir / "tls") if tls else None
    with RedisServer(password=password, appendonly=False, tls=files, name="lean-micro") as server:
        config = CacheConfig(
            host=server.host,
            port=server.port,
            password=password,
            key_prefix=f"bc-lean-micro-{secrets.token_hex(4)}:",
            tls=tls,
            tls_ca_file=str(files.ca_file) if files is not None else None,
        )
        raw_kwargs = server.connection_kwargs(user=None) | {
            "decode_responses": True,
            "socket_timeout": config.socket_timeout,
            "socket_connect_timeout": config.connect_timeout,
            "client_name": config.client_name,
        }
        sides = _sides(config, raw_kwargs)
        close = sides.pop("_close")["close"]
        results: dict[str, dict[str, float]] = {}
        try:
            for workload, fns in sides.items():
                n = ops if workload == "ping" else ops // 2
                for fn in fns.values():
                    fn(n // 10)  # warm up
                samples: dict[str, list[float]] = {name: [] for name in fns}
                for _ in range(rounds):
                    for name, fn in fns.items():
                        samples[name].append(_rate(fn, n))
                results[workload] = {name: statistics.median(s) for name, s in samples.items()}
        finally:
            close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=5000, help="operations per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per side")
    parser.add_argument("--only", choices=["plain", "tls"], help="one transport only")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="berthcache-lean-micro-"))
    report: dict[str, Any] = {}
    try:
        for mode in ("plain", "tls"):
            if args.only and args.only != mode:
                continue
            results = measure(mode == "tls", args.ops, args.rounds, workdir)
            report[mode] = results
            for workload, sides in results.items():
                base = sides["redis-py"]
                for name, rate in sides.items():
                    print(
                        f"{mode:<6}{workload:<9}{name:<22}{rate:>10,.0f} ops/s"
                        f"{rate / base:>7.2f}x redis-py"
                    )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
