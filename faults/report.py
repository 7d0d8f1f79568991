"""The faults table, the machine it ran on, the checks a run must pass, and docs/reliability.md.

The table is Markdown, so the same text is printed and written between the markers of
``docs/reliability.md`` (the prose around the markers is kept as it is).
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis

from berthcache.testing import find_redis_server
from faults.rows import Row

__all__ = [
    "BEGIN",
    "END",
    "RECOVERY_BOUND",
    "machine",
    "problems",
    "render_machine",
    "render_table",
    "write_doc",
]

BEGIN = "<!-- faults:begin (written by ./scripts/faults; edit the prose outside) -->"
END = "<!-- faults:end -->"
#: Seconds within which every client must work again after a fault ends.
RECOVERY_BOUND = 10.0


def machine() -> dict[str, Any]:
    """What the figures depend on: cores, memory, versions, date, load at the time."""
    mem_kib = 0
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    mem_kib = int(line.split()[1])
                    break
    except OSError:
        pass
    _, version = find_redis_server()
    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "redis_py": redis.__version__,
        "redis_server": ".".join(map(str, version)),
        "os": f"{platform.system()} {platform.release()}",
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def render_machine(info: dict[str, Any], plan_name: str, seconds: float) -> str:
    load = " / ".join(f"{x:g}" for x in info["load_average"])
    return (
        f"{plan_name} run, {info['date']}, {seconds:.0f} s: {info['nproc']} cores, "
        f"{info['memory_gib']:g} GiB, {info['os']}, Python {info['python']}, "
        f"redis-py {info['redis_py']}, redis-server {info['redis_server']}; "
        f"load average at the start {load} (1 / 5 / 15 min)"
    )


def _seconds(value: float) -> str:
    return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"


def _errors(row: Row) -> str:
    parts = [f"{name} {count:,}" for name, count in row.errors.items()]
    foreign = row.foreign_errors.items()
    parts += [f"**not a CacheError: {name} {count:,}**" for name, count in foreign]
    if row.read_misses:
        parts.append(f"**read missed {row.read_misses:,}**")
    if row.wrong_values:
        parts.append(f"**wrong value {row.wrong_values:,}**")
    return ", ".join(parts) or "none"


def _recovery(row: Row) -> str:
    if not row.has_fault_end:
        return "—"
    return _seconds(row.recovery) if row.recovery is not None else "**not recovered**"


def _lost(row: Row) -> str:
    if row.lost is None or row.acked == 0:
        return "— (none acknowledged)" if row.acked == 0 else "—"
    text = f"{row.lost:,} of {row.acked:,}"
    return f"{text} (evicted: allkeys-lru)" if row.lost_by_policy else text


def render_table(rows: Sequence[Row]) -> str:
    head = (
        "| fault | clients | operations | errors by type | longest call | recovery "
        "| acknowledged writes lost | RSS MiB before → after | open files before → after |\n"
        "|---|---|--:|---|--:|--:|--:|--:|--:|\n"
    )
    lines = []
    for row in rows:
        if row.failure is not None:
            lines.append(f"| {row.title} | — | **row failed: {row.failure}** | | | | | | |")
            continue
        rss = f"{row.rss_kib[0] / 1024:.0f} → {row.rss_kib[1] / 1024:.0f}"
        if row.rss_steady_kib is not None:
            warm, end = (kib / 1024 for kib in row.rss_steady_kib)
            rss += f" (warm {warm:.0f} → end of load {end:.0f})"
        files = f"{row.open_files[0]} → {row.open_files[1]}"
        probes = "".join(
            f"; {name} answered in {_seconds(t)}" if t is not None else f"; {name} never answered"
            for name, t in row.probes.items()
        )
        lines.append(
            f"| {row.title} | {row.clients} | {row.ops:,} | {_errors(row)}{probes} "
            f"| {_seconds(row.longest_call)} | {_recovery(row)} | {_lost(row)} | {rss} | {files} |"
        )
    return head + "\n".join(lines) + "\n"


def problems(rows: Sequence[Row], *, recovery_bound: float = RECOVERY_BOUND) -> list[str]:
    """What a run must not show: a row that failed to run, an error outside the CacheError tree,
    a wrong value read, a client that did not recover within ``recovery_bound`` s, an
    acknowledged write lost in a planned failover (or where neither a crash nor an eviction
    policy explains it), open files left behind."""
    found = []
    may_lose = {"unplanned-failover", "kill9-threads", "kill9-tasks", "oom-allkeys-lru"}
    for row in rows:
        if row.failure is not None:
            found.append(f"{row.id}: the row failed: {row.failure}")
            continue
        if row.foreign_errors:
            found.append(f"{row.id}: errors outside the CacheError tree: {row.foreign_errors}")
        if row.wrong_values:
            found.append(f"{row.id}: {row.wrong_values} reads returned a different value")
        if row.has_fault_end and (row.recovery is None or row.recovery > recovery_bound):
            found.append(f"{row.id}: not every client recovered within {recovery_bound:g} s")
        if row.lost and row.id not in may_lose:
            found.append(f"{row.id}: {row.lost} acknowledged writes lost")
        if row.open_files[1] > row.open_files[0]:
            found.append(f"{row.id}: open files {row.open_files[0]} -> {row.open_files[1]}")
    return found


def write_doc(path: Path, section: str) -> None:
    """Put ``section`` between the markers of ``path`` (the markers are added at the end of
    the file when missing)."""
    text = path.read_text() if path.exists() else ""
    block = f"{BEGIN}\n{section.rstrip()}\n{END}"
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = (text.rstrip() + "\n\n" if text else "") + block + "\n"
    path.write_text(text)
