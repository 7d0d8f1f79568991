"""The rows of the faults table: one fault each, on a local Redis group the row starts itself.

Every row starts its own :class:`~berthcache.testing.LocalRedis` (admin capability: this run
started it, so it may kill, pause, reconfigure it), drives a bounded :class:`~faults.load.Load`
through the public ``Cache`` / ``AsyncCache`` with default settings (plus what the row is
about: a wrong password, a wrong CA), injects the fault, reads every acknowledged write back
from whichever node is primary afterwards, and closes the group before measuring the test
process again. Traffic goes to 127.0.0.1 only; whatever is still running when a row fails or is
interrupted is reaped by the group's ``with`` and the harness's clean-up registry.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from berthcache import DEFAULT_KEY_PREFIX, AsyncCache, Cache
from berthcache.testing import LocalRedis, make_tls_files
from berthcache.testing._cluster import LocalCluster
from faults.load import Load, run_tasks, run_threads

__all__ = ["FULL", "ROWS", "SHORT", "Plan", "Row", "process_usage", "run_rows"]


@dataclasses.dataclass(frozen=True)
class Plan:
    """How long each phase lasts (seconds) and how many clients run."""

    warmup: float
    after: float
    down: float  # a killed primary stays down this long before it restarts
    pause: float  # SIGSTOP .. SIGCONT
    cut: float  # network cut at the endpoint
    oom: float  # writes refused for OOM this long before maxmemory is raised
    soak: float
    soak_clients: int = 50
    threads: int = 8
    tasks: int = 64
    bad_config_calls: int = 25  # per client, for wrong password / wrong CA
    slots: int = 16  # slots the cluster migration row moves, one after another


#: The cut outlasts the default 5 s socket timeout, so callers see what a partition costs.
FULL = Plan(warmup=2.0, after=3.0, down=2.0, pause=5.0, cut=8.0, oom=3.0, soak=60.0)
SHORT = Plan(
    warmup=0.4,
    after=0.8,
    down=0.5,
    pause=2.0,
    cut=1.5,
    oom=0.8,
    soak=10.0,
    bad_config_calls=5,
    slots=2,
)
#: Safety margin on top of a row's phases before its clients are told to stop regardless.
ROW_MARGIN = 60.0


@dataclasses.dataclass
class Row:
    """One line of the table (times in seconds, memory in KiB)."""

    id: str
    title: str
    clients: str
    ops: int = 0
    errors: dict[str, int] = dataclasses.field(default_factory=dict)
    #: errors a caller saw outside the CacheError tree (must stay empty)
    foreign_errors: dict[str, int] = dataclasses.field(default_factory=dict)
    read_misses: int = 0
    wrong_values: int = 0
    longest_call: float = 0.0
    has_fault_end: bool = False
    recovery: float | None = None
    acked: int = 0
    lost: int | None = None
    lost_by_policy: bool = False  # allkeys-lru evicts acknowledged writes by design
    rss_kib: tuple[int, int] = (0, 0)
    open_files: tuple[int, int] = (0, 0)
    #: soak only: RSS (KiB) once warmed up (a fifth of the way) and at the end of the load
    rss_steady_kib: tuple[int, int] | None = None
    seconds: float = 0.0
    #: seconds each probe call took while the fault lasted (``None``: still running at the end)
    probes: dict[str, float | None] = dataclasses.field(default_factory=dict)
    failure: str | None = None  # the row itself could not run

    def take(self, load: Load) -> None:
        self.ops = load.ops
        self.errors = load.errors()
        self.foreign_errors = load.foreign_errors()
        self.read_misses = sum(s.read_misses for s in load.stats)
        self.wrong_values = sum(s.wrong_values for s in load.stats)
        self.longest_call = load.longest_call
        self.has_fault_end = load.marks.fault_end is not None
        self.recovery = load.recovery()
        self.acked = load.acked

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def process_usage() -> tuple[int, int]:
    """(RSS in KiB, open file descriptors) of this process, from ``/proc/self``."""
    rss = 0
    with contextlib.suppress(OSError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
                break
    return rss, len(os.listdir("/proc/self/fd"))


@contextlib.contextmanager
def _measured(row: Row) -> Iterator[Row]:
    gc.collect()
    before = process_usage()
    began = time.monotonic()
    try:
        yield row
    finally:
        gc.collect()
        after = process_usage()
        row.rss_kib = (before[0], after[0])
        row.open_files = (before[1], after[1])
        row.seconds = time.monotonic() - began


def _phase(load: Load, seconds: float) -> None:
    """Let the load run for ``seconds`` (ends early if every client has already stopped)."""
    load.all_done.wait(seconds)


def _lost(group: LocalRedis, load: Load) -> int:
    """Acknowledged writes the current primary does not hold with the value written."""
    admin = group.admin_client()
    lost = 0
    try:
        for client, stats in enumerate(load.stats):
            seqs = stats.acked
            for start in range(0, len(seqs), 1000):
                chunk = seqs[start : start + 1000]
                keys = [DEFAULT_KEY_PREFIX + load.key(client, seq) for seq in chunk]
                for seq, got in zip(chunk, admin.mget(keys), strict=True):
                    if got != load.value(client, seq).encode():
                        lost += 1
    finally:
        admin.close()
    return lost


def _cache_factory(group: LocalRedis, **overrides: Any) -> Callable[[], Cache]:
    return lambda: Cache.from_url(group.url("app"), tls_ca_file=group.ca_file, **overrides)


def _async_cache_factory(group: LocalRedis, **overrides: Any) -> Callable[[], AsyncCache]:
    return lambda: AsyncCache.from_url(group.url("app"), tls_ca_file=group.ca_file, **overrides)


def _drive(group: LocalRedis, load: Load, schedule: Callable[[], None], *, tasks: bool) -> None:
    limit = ROW_MARGIN + 120.0
    if tasks:
        run_tasks(_async_cache_factory(group), load, schedule, limit=limit)
    else:
        run_threads(_cache_factory(group), load, schedule, limit=limit)


def _clients(load: Load, tasks: bool) -> str:
    return f"{load.clients} {'async tasks' if tasks else 'threads'}"


# -- the rows ------------------------------------------------------------------------------------


def kill_primary(plan: Plan, *, tasks: bool) -> Row:
    """kill -9 the primary under load, restart it after ``down`` s (AOF brings data back)."""
    load = Load("kill-tasks" if tasks else "kill-threads", plan.tasks if tasks else plan.threads)
    row = Row(
        "kill9-tasks" if tasks else "kill9-threads",
        f"kill -9 primary, restart after {plan.down:g} s",
        _clients(load, tasks),
    )
    with _measured(row), LocalRedis(replica=False, maxmemory="512mb") as group:

        def schedule() -> None:
            _phase(load, plan.warmup)
            load.marks.fault_start = time.monotonic()
            group.kill()
            _phase(load, plan.down)
            group.primary.start()
            load.marks.fault_end = time.monotonic()
            _phase(load, plan.after)

        _drive(group, load, schedule, tasks=tasks)
        row.take(load)
        row.lost = _lost(group, load)
    return row


def pause_primary(plan: Plan) -> Row:
    """SIGSTOP the primary for ``pause`` s under load; probes time a health check and a rate
    limit check made while it hangs (the place for the time-budget figures)."""
    load = Load("pause", plan.threads)
    row = Row("pause", f"pause primary {plan.pause:g} s (SIGSTOP/SIGCONT)", _clients(load, False))
    with _measured(row), LocalRedis(replica=False, maxmemory="512mb") as group:
        probe_cache = _cache_factory(group)()
        probes: dict[str, Callable[[], object]] = {
            "check_health": probe_cache.check_health,
            "rate_limiter.check": lambda: probe_cache.rate_limiter.check("203.0.113.9", "/f"),
        }

        def schedule() -> None:
            _phase(load, plan.warmup)
            load.marks.fault_start = time.monotonic()
            with group.paused():
                running = _start_probes(probes, row.probes)
                _phase(load, plan.pause)
            load.marks.fault_end = time.monotonic()
            _phase(load, plan.after)
            for thread in running:
                thread.join(ROW_MARGIN)

        try:
            _drive(group, load, schedule, tasks=False)
        finally:
            probe_cache.close()
        row.take(load)
        row.lost = _lost(group, load)
    return row


def _start_probes(
    probes: dict[str, Callable[[], object]], results: dict[str, float | None]
) -> list[threading.Thread]:
    def timed(name: str, call: Callable[[], object]) -> None:
        began = time.monotonic()
        with contextlib.suppress(Exception):  # a failing probe still answered: its time counts
            call()
        results[name] = time.monotonic() - began

    threads = []
    for name, call in probes.items():
        results[name] = None
        thread = threading.Thread(target=timed, args=(name, call), daemon=True)
        thread.start()
        threads.append(thread)
    return threads


def failover(plan: Plan, *, planned: bool) -> Row:
    """Planned (``FAILOVER``) or unplanned (kill -9 + ``REPLICAOF NO ONE``) failover under
    load through the endpoint; acknowledged writes are read back from the new primary."""
    load = Load("planned" if planned else "unplanned", plan.threads)
    title = (
        "planned failover (FAILOVER)"
        if planned
        else "unplanned failover (kill -9 primary, promote replica)"
    )
    row = Row("planned-failover" if planned else "unplanned-failover", title, _clients(load, False))
    with _measured(row), LocalRedis(replica=True, maxmemory="512mb") as group:

        def schedule() -> None:
            _phase(load, plan.warmup)
            load.marks.fault_start = time.monotonic()
            if planned:
                group.failover()
            else:
                group.unplanned_failover(rejoin=True)
            load.marks.fault_end = group.endpoint_moved_at  # recovery from the endpoint move
            _phase(load, plan.after)

        _drive(group, load, schedule, tasks=False)
        row.take(load)
        row.lost = _lost(group, load)
    return row


def _cluster_lost(cluster: LocalCluster, load: Load) -> int:
    """Acknowledged writes the cluster (whichever shard serves each key now) does not hold."""
    admin = cluster.cluster_client("admin")
    lost = 0
    try:
        for client, stats in enumerate(load.stats):
            seqs = stats.acked
            for start in range(0, len(seqs), 1000):
                chunk = seqs[start : start + 1000]
                keys = [DEFAULT_KEY_PREFIX + load.key(client, seq) for seq in chunk]
                for seq, got in zip(chunk, admin.mget_nonatomic(keys), strict=True):
                    if got != load.value(client, seq).encode():
                        lost += 1
    finally:
        admin.close()
    return lost


def _cluster_row(row_id: str, title: str, plan: Plan, fault: Callable[[LocalCluster], None]) -> Row:
    """8 threads on one cluster-mode ``Cache`` (``cluster=True``) against a local Redis Cluster
    (3 primaries x 1 replica, TLS, ACL users); ``fault`` runs once the load is warm."""
    load = Load(row_id, plan.threads)
    row = Row(row_id, title, _clients(load, False))
    with _measured(row), LocalCluster(maxmemory="512mb") as cluster:

        def schedule() -> None:
            _phase(load, plan.warmup)
            load.marks.fault_start = time.monotonic()
            fault(cluster)
            load.marks.fault_end = time.monotonic()
            _phase(load, plan.after)

        def factory() -> Cache:
            return Cache.from_url(cluster.url("app"), tls_ca_file=cluster.ca_file, cluster=True)

        run_threads(factory, load, schedule, limit=ROW_MARGIN + 120.0)
        row.take(load)
        row.lost = _cluster_lost(cluster, load)
    return row


def cluster_failover(plan: Plan) -> Row:
    """A planned failover of one shard (``CLUSTER FAILOVER`` on its replica) under load."""
    return _cluster_row(
        "cluster-failover",
        "cluster mode: planned shard failover (CLUSTER FAILOVER)",
        plan,
        lambda cluster: cluster.failover(0),
    )


def cluster_migration(plan: Plan) -> Row:
    """Live resharding: slots of shard 0 move to shard 1 with their keys while written to
    (SETSLOT IMPORTING / MIGRATING, MIGRATE, SETSLOT NODE: callers see ASK, then MOVED)."""

    def migrate(cluster: LocalCluster) -> None:
        for slot in range(plan.slots):  # shard 0's first slots, each holding keys being written
            cluster.migrate_slot(slot, 1)

    return _cluster_row(
        "cluster-migration",
        f"cluster mode: live migration of {plan.slots} slots under load",
        plan,
        migrate,
    )


def network_cut(plan: Plan) -> Row:
    """Nothing passes the endpoint for ``cut`` s (timeouts, not resets), then it heals."""
    load = Load("cut", plan.threads)
    row = Row("network-cut", f"network cut at the endpoint {plan.cut:g} s", _clients(load, False))
    with _measured(row), LocalRedis(replica=False, maxmemory="512mb") as group:

        def schedule() -> None:
            _phase(load, plan.warmup)
            load.marks.fault_start = time.monotonic()
            with group.network_cut():
                _phase(load, plan.cut)
            load.marks.fault_end = time.monotonic()
            _phase(load, plan.after)

        _drive(group, load, schedule, tasks=False)
        row.take(load)
        row.lost = _lost(group, load)
    return row


def out_of_memory(plan: Plan, *, policy: str) -> Row:
    """maxmemory 16 MB, pre-filled to ~90 % by admin, 2 KB writes. Under ``noeviction`` writes
    fail until maxmemory is raised (the fault's end); under ``allkeys-lru`` nothing fails and
    old keys (acknowledged ones too) are evicted by design."""
    load = Load(f"oom-{policy}", plan.threads, value_size=2048)
    row = Row(f"oom-{policy}", f"OOM, maxmemory-policy {policy}", _clients(load, False))
    row.lost_by_policy = policy != "noeviction"
    with (
        _measured(row),
        LocalRedis(replica=False, maxmemory="16mb", maxmemory_policy=policy) as group,
    ):
        admin = group.admin_client()
        try:
            admin.execute_command("DEBUG", "POPULATE", 6000, "faults-fill", 2048)  # type: ignore[no-untyped-call]

            def schedule() -> None:
                load.marks.fault_start = time.monotonic()
                _phase(load, plan.warmup + plan.oom)
                if policy == "noeviction":
                    admin.config_set("maxmemory", "512mb")
                    load.marks.fault_end = time.monotonic()
                _phase(load, plan.after)

            _drive(group, load, schedule, tasks=False)
        finally:
            admin.close()
        row.take(load)
        row.lost = _lost(group, load)
    return row


def bad_credentials(plan: Plan, *, what: str) -> Row:
    """Every call with a wrong password / a CA that did not sign the server's certificate
    fails fast with the right error (neither is retried)."""
    load = Load(what, 4, max_ops=plan.bad_config_calls, reads=False)
    title = "wrong password" if what == "wrong-password" else "wrong CA"
    row = Row(what, title, f"4 threads, {plan.bad_config_calls} calls each")
    with (
        _measured(row),
        LocalRedis(replica=False) as group,
        tempfile.TemporaryDirectory(prefix="berthcache-faults-") as tmp,
    ):
        if what == "wrong-password":
            make = _cache_factory(group, password="wrong-" + secrets.token_hex(8))
        else:
            other_ca = make_tls_files(Path(tmp) / "other-ca").ca_file
            make = lambda: Cache.from_url(group.url("app"), tls_ca_file=str(other_ca))  # noqa: E731
        run_threads(make, load, lambda: _phase(load, ROW_MARGIN), limit=ROW_MARGIN)
        row.take(load)
    return row


def soak(plan: Plan) -> Row:
    """``soak_clients`` threads on one Cache for ``soak`` s: no fault, nothing may go wrong."""
    load = Load("soak", plan.soak_clients)
    row = Row("soak", f"soak {plan.soak:g} s", _clients(load, False))
    with _measured(row), LocalRedis(replica=False, maxmemory="1gb") as group:

        def schedule() -> None:
            _phase(load, plan.soak * 0.2)
            warm = process_usage()[0]
            _phase(load, plan.soak * 0.8)
            row.rss_steady_kib = (warm, process_usage()[0])

        _drive(group, load, schedule, tasks=False)
        row.take(load)
        row.lost = _lost(group, load)
    return row


#: id -> how to run it, in table order.
ROWS: dict[str, Callable[[Plan], Row]] = {
    "kill9-threads": lambda plan: kill_primary(plan, tasks=False),
    "kill9-tasks": lambda plan: kill_primary(plan, tasks=True),
    "pause": pause_primary,
    "planned-failover": lambda plan: failover(plan, planned=True),
    "unplanned-failover": lambda plan: failover(plan, planned=False),
    "cluster-failover": cluster_failover,
    "cluster-migration": cluster_migration,
    "network-cut": network_cut,
    "oom-noeviction": lambda plan: out_of_memory(plan, policy="noeviction"),
    "oom-allkeys-lru": lambda plan: out_of_memory(plan, policy="allkeys-lru"),
    "wrong-password": lambda plan: bad_credentials(plan, what="wrong-password"),
    "wrong-ca": lambda plan: bad_credentials(plan, what="wrong-ca"),
    "soak": soak,
}


def run_rows(
    plan: Plan,
    only: list[str] | None = None,
    *,
    on_row: Callable[[Row], None] | None = None,
) -> list[Row]:
    """Run the rows (all, or ``only`` those ids) in table order. A row that cannot run is
    reported with its failure and the others still run; Ctrl-C stops at once (the groups and
    the clean-up registry stop every server started)."""
    unknown = sorted(set(only or ()) - set(ROWS))
    if unknown:
        raise ValueError(f"unknown row(s) {', '.join(unknown)}; known: {', '.join(ROWS)}")
    rows = []
    for row_id, run in ROWS.items():
        if only and row_id not in only:
            continue
        try:
            row = run(plan)
        except Exception as exc:
            row = Row(row_id, row_id, "-", failure=f"{type(exc).__name__}: {exc}"[:300])
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return rows
