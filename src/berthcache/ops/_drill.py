"""``failover-drill``: fail the primary over while a probe load runs, and measure what the app saw.

:func:`measure_failover` is the measuring loop, independent of what triggers the failover (the
AWS ``test_failover`` call in production, ``LocalRedis.failover()`` in the tests) and of what a
probe is (a write + read through :class:`berthcache.Cache`). It records each probe's outcome and
reports the errors seen, the longest window of consecutive errors and the time from the trigger
to the last recovery.
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from berthcache import Cache, CacheConfig
from berthcache.ops._aws import AwsClients, aws_errors
from berthcache.ops._errors import ExitCode, OpsError
from berthcache.ops._progress import Report, silent

__all__ = [
    "DrillReport",
    "aws_failover_trigger",
    "cache_probe",
    "group_available",
    "measure_failover",
]

Clock = Callable[[], float]


@dataclasses.dataclass
class DrillReport:
    """What the probe load saw. Times are seconds; ``error_times`` are relative to the trigger."""

    probes: int = 0
    errors: int = 0
    error_kinds: dict[str, int] = dataclasses.field(default_factory=dict)
    error_times: list[float] = dataclasses.field(default_factory=list)
    longest_error_window: float = 0.0
    time_to_recovery: float | None = None
    trigger_seconds: float | None = None
    trigger_error: str | None = None
    recovered: bool = False
    duration: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def measure_failover(
    probe: Callable[[], None],
    trigger: Callable[[], None],
    *,
    is_complete: Callable[[], bool] | None = None,
    interval: float = 0.05,
    settle: float = 1.0,
    timeout: float = 600.0,
    clock: Clock = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    progress: Report = silent,
    trigger_label: str = "the failover",
    complete_label: str = "the failover to complete",
) -> DrillReport:
    """Run ``probe`` every ``interval`` s while ``trigger`` runs in a thread.

    The drill ends when the trigger has returned, ``is_complete()`` (if given, e.g. the group is
    ``available`` again) says so, and the probes have succeeded for ``settle`` seconds on end —
    or after ``timeout`` seconds, unrecovered. An error window runs from a failed probe to the
    next successful one; recovery is the first success after the last error.

    ``progress(what, detail)`` hears, after every probe, what the drill waits for
    (``trigger_label`` to return, ``complete_label``, the probes to settle) with the counters.
    """
    report = DrillReport()
    started = clock()
    trigger_done = threading.Event()
    trigger_started: list[float] = []

    def run_trigger() -> None:
        trigger_started.append(clock())
        try:
            trigger()
        except Exception as exc:
            report.trigger_error = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
        finally:
            report.trigger_seconds = clock() - trigger_started[0]
            trigger_done.set()

    thread = threading.Thread(target=run_trigger, name="failover-trigger", daemon=True)
    window_start: float | None = None
    last_error: float | None = None
    ok_since: float | None = None
    complete = is_complete is None
    thread.start()
    try:
        while True:
            now = clock()
            try:
                probe()
            except Exception as exc:
                report.errors += 1
                kind = type(exc).__name__
                report.error_kinds[kind] = report.error_kinds.get(kind, 0) + 1
                origin = trigger_started[0] if trigger_started else started
                report.error_times.append(round(now - origin, 3))
                if window_start is None:
                    window_start = now
                last_error = now
                ok_since = None
            else:
                end = clock()
                if window_start is not None:
                    report.longest_error_window = max(
                        report.longest_error_window, end - window_start
                    )
                    window_start = None
                if ok_since is None:
                    ok_since = end
            report.probes += 1
            now = clock()
            if trigger_done.is_set() and report.trigger_error is not None:
                break
            if trigger_done.is_set() and not complete and is_complete is not None:
                complete = is_complete()
            if (
                trigger_done.is_set()
                and complete
                and ok_since is not None
                and now - ok_since >= settle
            ):
                report.recovered = True
                break
            if now - started >= timeout:
                break
            progress(
                _waiting_for(
                    trigger_done.is_set(),
                    complete,
                    ok_since,
                    now,
                    settle,
                    trigger_label,
                    complete_label,
                ),
                f"{report.probes} probes, {report.errors} errors; gives up at {timeout:.0f} s",
            )
            sleep(interval)
    finally:
        trigger_done.wait(timeout=max(1.0, timeout))
    report.duration = clock() - started
    if report.recovered and last_error is not None and ok_since is not None and trigger_started:
        report.time_to_recovery = max(0.0, ok_since - trigger_started[0])
    elif report.recovered:
        report.time_to_recovery = 0.0
    if window_start is not None:  # still failing at the end
        report.longest_error_window = max(report.longest_error_window, clock() - window_start)
    report.longest_error_window = round(report.longest_error_window, 3)
    return report


def _waiting_for(
    trigger_done: bool,
    complete: bool,
    ok_since: float | None,
    now: float,
    settle: float,
    trigger_label: str,
    complete_label: str,
) -> str:
    """What the drill loop waits for, in the order the drill goes through it."""
    if not trigger_done:
        return f"waiting for {trigger_label} to return"
    if not complete:
        return f"waiting for {complete_label}"
    if ok_since is None:
        return "waiting for the probes to succeed again"
    return f"waiting for the probes to succeed for {settle:g} s on end"


def cache_probe(cache: Cache, *, ttl: int = 60) -> Callable[[], None]:
    """A probe that writes and reads back one key under ``ops-drill:<random>`` of the cache's
    prefix (expiring after ``ttl`` s): what an app's request would do."""
    run = secrets.token_hex(4)
    counter = [0]

    def probe() -> None:
        counter[0] += 1
        key = f"ops-drill:{run}:{counter[0] % 50}"
        cache.set(key, str(counter[0]), ttl=ttl)
        if cache.get(key) is None:
            raise RuntimeError("probe key vanished right after it was written")

    return probe


def probe_cache(config: CacheConfig) -> Cache:
    """A cache client for the probe: the app's settings (its retries hide blips, as in the app)."""
    return Cache(config)


def aws_failover_trigger(clients: AwsClients, group_id: str, node_group: str) -> Callable[[], None]:
    """``elasticache:TestFailover`` for ``node_group`` of ``group_id`` (after checking both)."""
    with aws_errors("elasticache", f"replication group {group_id!r}"):
        group: Any = clients.elasticache.describe_replication_groups(ReplicationGroupId=group_id)[
            "ReplicationGroups"
        ][0]
    known = [str(ng.get("NodeGroupId")) for ng in group.get("NodeGroups", [])]
    if node_group not in known:
        raise OpsError(
            f"node group {node_group!r} is not in replication group {group_id!r} "
            f"(it has: {', '.join(known) or 'none'})",
            ExitCode.USAGE,
        )
    if group.get("AutomaticFailover") not in ("enabled", "enabling"):
        raise OpsError(
            f"replication group {group_id!r} has automatic failover "
            f"{group.get('AutomaticFailover', 'disabled')}: test_failover needs it enabled",
            ExitCode.USAGE,
        )

    def trigger() -> None:
        with aws_errors("elasticache", f"test_failover on {group_id!r}/{node_group}"):
            clients.elasticache.test_failover(ReplicationGroupId=group_id, NodeGroupId=node_group)

    return trigger


def group_available(
    clients: AwsClients, group_id: str, *, every: float = 10.0, clock: Clock = time.monotonic
) -> Callable[[], bool]:
    """``is_complete`` for :func:`measure_failover`: the group is ``available`` again (asked at
    most every ``every`` s, so the probe loop is not slowed by API calls)."""
    last = [float("-inf")]

    def check() -> bool:
        now = clock()
        if now - last[0] < every:
            return False
        last[0] = now
        with aws_errors("elasticache", f"replication group {group_id!r}"):
            status = clients.elasticache.describe_replication_groups(ReplicationGroupId=group_id)[
                "ReplicationGroups"
            ][0].get("Status")
        return status == "available"

    return check
