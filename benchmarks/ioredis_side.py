"""The ioredis side of the benchmark: ``benchmarks/ioredis/bench.js`` as a child process.

The seed was a TypeScript/ioredis module; ``benchmarks/ioredis/cache.js`` is that module written
the way the seed wrote it (same keys, same commands), and ``bench.js`` times its helpers on
request. One long-lived ``node`` process serves every round (a warm JIT, like a running API),
so the Python benchmark can alternate rounds between it and its own sides on the same server.

It needs ``node`` and ``npm ci`` run in ``benchmarks/ioredis`` (``./scripts/bench`` does that);
without them :func:`start` returns ``None`` and a one-line reason, and the benchmark goes on.
"""

from __future__ import annotations

import contextlib
import json
import select
import shutil
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["IOREDIS_DIR", "IoredisSide", "start"]

IOREDIS_DIR = Path(__file__).resolve().parent / "ioredis"
#: How long one request to the node process may take before the benchmark gives up on it.
REQUEST_TIMEOUT = 300.0


class IoredisError(RuntimeError):
    """The node process failed a request or went away."""


class IoredisSide:
    """A running ``node bench.js``: :meth:`seconds` times one workload round."""

    def __init__(self, process: subprocess.Popen[str], versions: dict[str, Any]) -> None:
        self._process = process
        self.versions = versions

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send one request line and read its one reply line."""
        process = self._process
        assert process.stdin is not None
        assert process.stdout is not None
        try:
            process.stdin.write(json.dumps(message) + "\n")
            process.stdin.flush()
            ready, _, _ = select.select([process.stdout], [], [], REQUEST_TIMEOUT)
            if not ready:
                process.kill()
                raise IoredisError(f"no answer from node in {REQUEST_TIMEOUT:.0f} s")
            line = process.stdout.readline()
        except (BrokenPipeError, OSError) as exc:
            raise IoredisError(f"the node process went away: {exc}") from None
        if not line:
            raise IoredisError(f"the node process exited (status {process.poll()})")
        reply: dict[str, Any] = json.loads(line)
        if not reply.get("ok"):
            raise IoredisError(f"ioredis {message.get('op')}: {reply.get('error')}")
        return reply

    def ops_per_s(
        self,
        workload: str,
        ops: int,
        *,
        auto_pipelining: bool = False,
        concurrency: int = 64,
        same_commands: bool = False,
    ) -> float:
        """Run ``workload`` once in node and return its operations per second;
        ``same_commands``: the commands berthcache sends instead of the seed's (sessions and
        rate limit)."""
        reply = self.request(
            {
                "op": "run",
                "workload": workload,
                "ops": ops,
                "autoPipelining": auto_pipelining,
                "concurrency": concurrency,
                "sameCommands": same_commands,
            }
        )
        seconds = float(reply["seconds"])
        return float(reply["ops"]) / seconds if seconds > 0 else float("inf")

    def memory(self, callers: int, rounds: int) -> dict[str, Any]:
        """``callers`` GETs pending at once: memory while pending, and ops/s (median)."""
        return self.request({"op": "memory", "callers": callers, "rounds": rounds})

    def close(self) -> None:
        """Quit the clients and wait for node to exit (killed after 10 s)."""
        process = self._process
        if process.poll() is None:
            with contextlib.suppress(IoredisError, ValueError):
                self.request({"op": "quit"})
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()


def unavailable() -> str | None:
    """Why the ioredis side cannot run here (``None`` when it can)."""
    if shutil.which("node") is None:
        return "node not found on PATH"
    if not (IOREDIS_DIR / "node_modules" / "ioredis" / "package.json").is_file():
        return (
            "ioredis not installed (run `npm ci` in benchmarks/ioredis; ./scripts/bench and "
            "./scripts/test do)"
        )
    return None


def start(
    *,
    host: str,
    port: int,
    password: str | None,
    prefix: str,
    ca_file: str | None,
    rate_limit_script: str | None = None,
) -> tuple[IoredisSide | None, str | None]:
    """Start ``node bench.js`` connected to the server: ``(side, None)`` or ``(None, reason)``."""
    reason = unavailable()
    if reason is not None:
        return None, reason
    node = shutil.which("node")
    assert node is not None
    process = subprocess.Popen(
        [node, str(IOREDIS_DIR / "bench.js")],
        cwd=IOREDIS_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    side = IoredisSide(process, {})
    try:
        side.versions = side.request(
            {
                "op": "config",
                "host": host,
                "port": port,
                "password": password,
                "prefix": prefix,
                "caFile": ca_file,
                "rateLimitScript": rate_limit_script,
            }
        )
    except (IoredisError, ValueError) as exc:
        side.close()
        return None, f"node could not start the ioredis side: {exc}"
    return side, None
