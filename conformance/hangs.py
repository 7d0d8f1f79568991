"""A Redis that hangs, for the time-budget tests: a separate local server (never the shared
target) stopped with SIGSTOP. The kernel still accepts TCP connections for it, so a client
connects — and then waits for an answer that never comes, as with a hung or paused node.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from berthcache import CacheConfig

from .support import server_config, start_server

#: What each budget may be overrun by: the thread hop, the JSON, a loaded 2-core machine.
SLACK = 0.1


class HangingRedis:
    """A local server of this test's own that :meth:`paused` stops and always resumes."""

    def __init__(self, local_redis_factory: Any, conf: CacheConfig) -> None:
        self.server = start_server(local_redis_factory)  # stopped by the factory at teardown
        self.config = server_config(self.server, conf)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """SIGSTOP the server for the block; SIGCONT whatever happens."""
        with self.server.paused():
            yield


@contextlib.contextmanager
def within(seconds: float) -> Iterator[None]:
    """Assert the block took at most ``seconds`` (+ :data:`SLACK`)."""
    start = time.perf_counter()
    yield
    took = time.perf_counter() - start
    assert took <= seconds + SLACK, f"took {took:.3f} s, budget {seconds} s + {SLACK} s"
