"""The faults suite, short version (about 35 s): every row once on servers it starts, then the
checks ``./scripts/faults`` applies to the full run. The report helpers are tested directly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from berthcache import CacheConfig
from faults.report import BEGIN, END, RECOVERY_BOUND, problems, render_table, write_doc
from faults.rows import ROWS, SHORT, Row, run_rows

pytestmark = pytest.mark.timeout(300)  # the short run is one fixture, counted in the first test
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def rows() -> dict[str, Row]:
    return {row.id: row for row in run_rows(SHORT)}


def test_every_row_ran_under_load(rows: dict[str, Row]) -> None:
    assert list(rows) == list(ROWS)
    assert not [r.id for r in rows.values() if r.failure], [r.failure for r in rows.values()]
    loaded = [r for r in rows.values() if r.id not in ("wrong-password", "wrong-ca")]
    # Throughput depends on how busy the machine is; every row must have done real work.
    idle = [r.id for r in loaded if r.ops < 2 * SHORT.threads or r.acked < SHORT.threads]
    assert idle == [], render_table(list(rows.values()))


@pytest.mark.parametrize("row_id", ["cluster-failover", "cluster-migration"])
def test_planned_cluster_operations_lose_nothing_and_fail_no_caller(
    rows: dict[str, Row], row_id: str
) -> None:
    """A shard failover and a live slot migration: MOVED / ASK followed, no error, no loss."""
    row = rows[row_id]
    assert row.errors == {}, row
    assert row.acked > 0
    assert row.lost == 0, row


def test_planned_failover_loses_no_acknowledged_write(rows: dict[str, Row]) -> None:
    row = rows["planned-failover"]
    assert row.acked >= SHORT.threads
    assert row.lost == 0
    assert row.read_misses == 0


def test_every_error_a_caller_sees_is_a_cache_error(rows: dict[str, Row]) -> None:
    assert {r.id: r.foreign_errors for r in rows.values() if r.foreign_errors} == {}
    assert {r.id: r.wrong_values for r in rows.values() if r.wrong_values} == {}
    calls = 4 * SHORT.bad_config_calls
    assert rows["wrong-password"].errors == {"AuthenticationError": calls}
    assert rows["wrong-ca"].errors == {"TLSError": calls}
    assert rows["oom-noeviction"].errors.get("OutOfMemoryError", 0) > 0
    assert rows["oom-allkeys-lru"].errors == {}
    assert rows["soak"].errors == {}


def test_bad_credentials_fail_fast_without_retries(rows: dict[str, Row]) -> None:
    for row_id in ("wrong-password", "wrong-ca"):
        assert rows[row_id].longest_call < 2.0, rows[row_id]


def test_every_client_recovers_within_the_bound(rows: dict[str, Row]) -> None:
    faulted = [r for r in rows.values() if r.has_fault_end]
    assert {r.id for r in faulted} >= {"kill9-threads", "kill9-tasks", "pause", "network-cut"}
    slow = {r.id: r.recovery for r in faulted if r.recovery is None or r.recovery > RECOVERY_BOUND}
    assert slow == {}


def test_no_open_files_leak(rows: dict[str, Row]) -> None:
    leaked = {r.id: r.open_files for r in rows.values() if r.open_files[1] > r.open_files[0]}
    assert leaked == {}


def test_the_run_passes_every_check(rows: dict[str, Row]) -> None:
    assert problems(list(rows.values())) == []


# -- time budgets while Redis hangs ---------------------------------------------------------------
# The pause row times one check_health() and one rate_limiter.check() made while the primary is
# stopped (row.probes): check_health within its budget + 100 ms, a fail-open check allowed
# within the rate limiter's budget + 100 ms.


def test_budget_probes_while_redis_hangs(rows: dict[str, Row]) -> None:
    probes = rows["pause"].probes
    assert set(probes) == {"check_health", "rate_limiter.check"}
    assert all(t is not None for t in probes.values()), probes  # each answered, bounded
    # The defaults: the health check answers within its 1 s budget, the limiter decides within
    # its 250 ms, each + 100 ms (the bound), while Redis is stopped.
    defaults = CacheConfig()
    health, limiter = probes["check_health"], probes["rate_limiter.check"]
    assert health is not None
    assert limiter is not None
    assert health <= defaults.health_timeout_ms / 1000 + 0.1, probes
    assert limiter <= defaults.rate_limit_timeout_ms / 1000 + 0.1, probes


# -- the report, without servers ------------------------------------------------------------------


def _row(**fields: object) -> Row:
    row = Row("planned-failover", "planned failover", "8 threads", ops=10, acked=5, lost=0)
    row.open_files = (6, 6)
    for name, value in fields.items():
        setattr(row, name, value)
    return row


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"lost": 3}, "3 acknowledged writes lost"),
        ({"foreign_errors": {"RecursionError": 1}}, "outside the CacheError tree"),
        ({"has_fault_end": True, "recovery": None}, "not every client recovered"),
        ({"has_fault_end": True, "recovery": RECOVERY_BOUND + 1}, "not every client recovered"),
        ({"open_files": (6, 9)}, "open files 6 -> 9"),
        ({"wrong_values": 2}, "different value"),
        ({"failure": "HarnessError: boom"}, "the row failed"),
    ],
)
def test_problems_name_what_went_wrong(fields: dict[str, object], expected: str) -> None:
    assert problems([_row()]) == []
    found = problems([_row(**fields)])
    assert len(found) == 1
    assert expected in found[0]


def test_an_unplanned_failover_may_lose_writes_a_planned_one_may_not() -> None:
    unplanned = _row(lost=2)
    unplanned.id = "unplanned-failover"
    assert problems([unplanned]) == []
    assert problems([_row(lost=2)]) != []


def test_write_doc_replaces_only_the_table(tmp_path: Path) -> None:
    doc = tmp_path / "reliability.md"
    doc.write_text("# Reliability\n\nprose before\n")
    write_doc(doc, "first table")
    text = doc.read_text()
    assert text.startswith("# Reliability\n\nprose before\n")
    assert f"{BEGIN}\nfirst table\n{END}" in text
    doc.write_text(text + "\nprose after\n")
    write_doc(doc, "second table")
    text = doc.read_text()
    assert "first table" not in text
    assert "second table" in text
    assert text.endswith("prose after\n")
    assert text.count(BEGIN) == 1


# -- interrupted ----------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def test_ctrl_c_stops_every_server_the_run_started() -> None:
    run = subprocess.Popen(
        [sys.executable, "-m", "faults", "--short", "--rows", "soak", "--no-doc"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        servers: list[int] = []
        while not servers and time.monotonic() < deadline and run.poll() is None:
            servers = _children(run.pid)
            time.sleep(0.05)  # polling /proc: nothing to await
        assert servers, "the run started no server within 30 s"
        time.sleep(1.0)  # let the load run: Ctrl-C lands mid-row
        run.send_signal(signal.SIGINT)
        _, err = run.communicate(timeout=60)
        assert run.returncode == 130, err
        assert "interrupted" in err
        gone_by = time.monotonic() + 10
        while [p for p in servers if _alive(p)] and time.monotonic() < gone_by:
            time.sleep(0.05)
        assert not [p for p in servers if _alive(p)]
    finally:
        if run.poll() is None:
            run.kill()
            run.wait(timeout=10)
        for pid in servers if "servers" in locals() else []:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
