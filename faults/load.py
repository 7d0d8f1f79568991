"""The load a fault row runs: bounded writers and readers through the public cache API.

Every client writes unique keys (``faults:{row}:{client}:{seq}``) with a value derived from the
key, records the write as acknowledged only when ``Cache.set`` returned, and reads the key back.
What a row needs afterwards is kept per client, without locks and without growing with the
values: operations, errors by type (a type outside the ``CacheError`` tree is recorded apart),
the longest call, the first success that began after the fault ended, and the acknowledged
sequence numbers (an ``array``, 8 bytes each). Every loop is bounded in count and in time.
"""

from __future__ import annotations

import array
import asyncio
import collections
import dataclasses
import threading
import time
from collections.abc import Callable

from berthcache import AsyncCache, Cache, CacheError

__all__ = ["ClientStats", "Load", "Marks", "run_tasks", "run_threads"]

#: Seconds a driver waits for its clients to notice the stop, on top of the longest call.
JOIN_GRACE = 30.0


@dataclasses.dataclass
class Marks:
    """When the fault began and when it was removed (``time.monotonic()``); recovery is
    measured from ``fault_end``."""

    fault_start: float | None = None
    fault_end: float | None = None


@dataclasses.dataclass
class ClientStats:
    """What one client saw."""

    ops: int = 0
    errors: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    #: errors a caller saw that are not berthcache CacheErrors (must stay empty)
    foreign: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    read_misses: int = 0  # a read of a key this client had written and seen acknowledged
    wrong_values: int = 0
    longest: float = 0.0
    first_ok_after_fault: float | None = None
    acked: array.array[int] = dataclasses.field(default_factory=lambda: array.array("q"))


class Load:
    """The workload of one row: ``clients`` clients, each at most ``max_ops`` iterations of
    write-then-read (``reads=False``: writes only), values of ``value_size`` bytes."""

    def __init__(
        self,
        row: str,
        clients: int,
        *,
        max_ops: int = 2_000_000,
        value_size: int = 32,
        reads: bool = True,
        ttl: int = 3600,
    ) -> None:
        self.row = row
        self.clients = clients
        self.max_ops = max_ops
        self.value_size = value_size
        self.reads = reads
        self.ttl = ttl
        self.stats = [ClientStats() for _ in range(clients)]
        self.marks = Marks()
        self.stop = threading.Event()
        #: set when every client has left its loop (count or time bound reached, or stopped)
        self.all_done = threading.Event()
        self._running_clients = clients
        self._lock = threading.Lock()

    def key(self, client: int, seq: int) -> str:
        return f"faults:{self.row}:{client}:{seq}"

    def value(self, client: int, seq: int) -> str:
        stem = f"{client}:{seq}:"
        return stem + "v" * max(0, self.value_size - len(stem))

    # -- one call, timed and classified ----------------------------------------------------------

    def _done(self, stats: ClientStats, began: float, error: BaseException | None) -> None:
        ended = time.monotonic()
        stats.ops += 1
        stats.longest = max(stats.longest, ended - began)
        if error is not None:
            kind = type(error).__name__
            (stats.errors if isinstance(error, CacheError) else stats.foreign)[kind] += 1
            return
        fault_end = self.marks.fault_end
        if stats.first_ok_after_fault is None and fault_end is not None and began >= fault_end:
            stats.first_ok_after_fault = ended

    def _read_back(self, stats: ClientStats, client: int, seq: int, got: object) -> None:
        if got is None:
            stats.read_misses += 1
        elif got != self.value(client, seq):
            stats.wrong_values += 1

    def _running(self, seq: int, deadline: float) -> bool:
        return seq < self.max_ops and not self.stop.is_set() and time.monotonic() < deadline

    def _finished(self) -> None:
        with self._lock:
            self._running_clients -= 1
            if self._running_clients <= 0:
                self.all_done.set()

    def sync_client(self, cache: Cache, client: int, deadline: float) -> None:
        """One thread's loop."""
        try:
            self._sync_loop(cache, client, deadline)
        finally:
            self._finished()

    def _sync_loop(self, cache: Cache, client: int, deadline: float) -> None:
        stats = self.stats[client]
        seq = 0
        while self._running(seq, deadline):
            began = time.monotonic()
            try:
                cache.set(self.key(client, seq), self.value(client, seq), ttl=self.ttl)
            except Exception as exc:
                self._done(stats, began, exc)
            else:
                self._done(stats, began, None)
                stats.acked.append(seq)
                if self.reads:
                    began = time.monotonic()
                    try:
                        got = cache.get(self.key(client, seq))
                    except Exception as exc:
                        self._done(stats, began, exc)
                    else:
                        self._done(stats, began, None)
                        self._read_back(stats, client, seq, got)
            seq += 1

    async def async_client(self, cache: AsyncCache, client: int, deadline: float) -> None:
        """One task's loop (the twin of :meth:`sync_client`)."""
        try:
            await self._async_loop(cache, client, deadline)
        finally:
            self._finished()

    async def _async_loop(self, cache: AsyncCache, client: int, deadline: float) -> None:
        stats = self.stats[client]
        seq = 0
        while self._running(seq, deadline):
            began = time.monotonic()
            try:
                await cache.set(self.key(client, seq), self.value(client, seq), ttl=self.ttl)
            except Exception as exc:
                self._done(stats, began, exc)
            else:
                self._done(stats, began, None)
                stats.acked.append(seq)
                if self.reads:
                    began = time.monotonic()
                    try:
                        got = await cache.get(self.key(client, seq))
                    except Exception as exc:
                        self._done(stats, began, exc)
                    else:
                        self._done(stats, began, None)
                        self._read_back(stats, client, seq, got)
            seq += 1

    # -- what the row reports --------------------------------------------------------------------

    @property
    def ops(self) -> int:
        return sum(s.ops for s in self.stats)

    @property
    def acked(self) -> int:
        return sum(len(s.acked) for s in self.stats)

    def errors(self) -> dict[str, int]:
        total: collections.Counter[str] = collections.Counter()
        for s in self.stats:
            total.update(s.errors)
        return dict(total.most_common())

    def foreign_errors(self) -> dict[str, int]:
        total: collections.Counter[str] = collections.Counter()
        for s in self.stats:
            total.update(s.foreign)
        return dict(total.most_common())

    @property
    def longest_call(self) -> float:
        return max((s.longest for s in self.stats), default=0.0)

    def recovery(self) -> float | None:
        """Seconds from the fault's end until every client had a call succeed that began after
        it; ``None`` when some client never did (or the row has no fault end)."""
        end = self.marks.fault_end
        if end is None:
            return None
        firsts = [s.first_ok_after_fault for s in self.stats]
        if any(f is None for f in firsts):
            return None
        return max(f for f in firsts if f is not None) - end

    def acked_keys(self) -> list[tuple[str, str]]:
        return [
            (self.key(client, seq), self.value(client, seq))
            for client, stats in enumerate(self.stats)
            for seq in stats.acked
        ]


def run_threads(
    make_cache: Callable[[], Cache],
    load: Load,
    schedule: Callable[[], None],
    *,
    limit: float,
) -> None:
    """``load.clients`` threads sharing one ``Cache`` while ``schedule`` (warm-up, fault,
    after) runs in this thread; every client stops when it returns, or after ``limit`` s."""
    deadline = time.monotonic() + limit
    cache = make_cache()
    threads = [
        threading.Thread(
            target=load.sync_client, args=(cache, n, deadline), name=f"faults-{n}", daemon=True
        )
        for n in range(load.clients)
    ]
    try:
        for thread in threads:
            thread.start()
        schedule()
    finally:
        load.stop.set()
        join_by = time.monotonic() + JOIN_GRACE
        for thread in threads:
            if thread.ident is not None:  # Ctrl-C may land while they are being started
                thread.join(max(0.0, join_by - time.monotonic()))
        cache.close()
    stuck = [t.name for t in threads if t.is_alive()]
    if stuck:
        raise RuntimeError(f"clients still running {JOIN_GRACE:g} s after the stop: {stuck}")


def run_tasks(
    make_cache: Callable[[], AsyncCache],
    load: Load,
    schedule: Callable[[], None],
    *,
    limit: float,
) -> None:
    """``load.clients`` asyncio tasks sharing one ``AsyncCache`` (in a loop of their own)
    while ``schedule`` runs in a worker thread; bounded like :func:`run_threads`."""

    async def main() -> None:
        deadline = time.monotonic() + limit
        cache = make_cache()
        tasks = [
            asyncio.create_task(load.async_client(cache, n, deadline)) for n in range(load.clients)
        ]
        try:
            await asyncio.to_thread(schedule)
        finally:
            load.stop.set()
            _, pending = await asyncio.wait(tasks, timeout=JOIN_GRACE)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            await cache.close()
        if pending:
            raise RuntimeError(f"{len(pending)} tasks still running {JOIN_GRACE:g} s after stop")

    asyncio.run(main())
