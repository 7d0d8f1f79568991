"""``diagnose``: what the runbooks ask for, read from a live endpoint without changing anything.

Only read-only commands are sent (an allow-list enforced before each command): INFO sections,
SLOWLOG GET, LATENCY LATEST, SCAN (with COUNT, and a hard cap on keys examined) and
MEMORY USAGE (with SAMPLES). Whatever the user may not read (``NOPERM`` for the restricted
``app`` user, or a managed service that renames commands) is reported as unavailable rather
than failing the whole report.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import redis

from berthcache import CacheConfig, CacheError
from berthcache._exceptions import map_errors
from berthcache.acl import glob_escape
from berthcache.ops._errors import ExitCode, OpsError

__all__ = ["READ_ONLY_COMMANDS", "Diagnosis", "diagnose"]

#: Every command diagnose may send (first word, upper case). Nothing here writes.
READ_ONLY_COMMANDS = frozenset({"PING", "INFO", "SLOWLOG", "LATENCY", "SCAN", "MEMORY"})
_INFO_SECTIONS = ("server", "memory", "stats", "clients", "replication", "keyspace")
_MEMORY_KEYS = (
    "used_memory",
    "used_memory_human",
    "used_memory_peak_human",
    "maxmemory",
    "maxmemory_human",
    "maxmemory_policy",
    "mem_fragmentation_ratio",
)
_STATS_KEYS = (
    "keyspace_hits",
    "keyspace_misses",
    "evicted_keys",
    "expired_keys",
    "rejected_connections",
    "total_connections_received",
    "instantaneous_ops_per_sec",
)
_CLIENT_KEYS = ("connected_clients", "blocked_clients", "maxclients")
_REPLICATION_KEYS = ("role", "connected_slaves", "master_link_status", "master_repl_offset")


@dataclasses.dataclass
class Diagnosis:
    """The report. ``unavailable`` maps what could not be read to why (e.g. NOPERM)."""

    endpoint: str
    server: dict[str, Any] = dataclasses.field(default_factory=dict)
    memory: dict[str, Any] = dataclasses.field(default_factory=dict)
    stats: dict[str, Any] = dataclasses.field(default_factory=dict)
    clients: dict[str, Any] = dataclasses.field(default_factory=dict)
    replication: dict[str, Any] = dataclasses.field(default_factory=dict)
    hit_rate_percent: float | None = None
    slowlog: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    latency: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    largest_keys: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    keys_examined: int = 0
    scan_complete: bool = False
    unavailable: dict[str, str] = dataclasses.field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class _ReadOnly:
    """A redis-py client that refuses any command outside :data:`READ_ONLY_COMMANDS`."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    def run(self, *args: Any, **options: Any) -> Any:
        name = str(args[0]).upper()
        if name not in READ_ONLY_COMMANDS:
            raise AssertionError(f"diagnose must not send {name}")
        return self._client.execute_command(*args, **options)  # type: ignore[no-untyped-call]


def diagnose(
    config: CacheConfig,
    *,
    match: str | None = None,
    max_keys: int = 1000,
    scan_count: int = 100,
    top: int = 10,
    samples: int = 5,
    slowlog_entries: int = 10,
) -> Diagnosis:
    """Read the endpoint's health. At most ``max_keys`` keys are examined (SCAN ``COUNT
    scan_count``), each with ``MEMORY USAGE key SAMPLES samples``; ``match`` defaults to the
    config's key prefix so the restricted app user only looks at its own keys."""
    if max_keys < 0 or scan_count < 1 or top < 1 or samples < 0:
        raise OpsError(
            "diagnose: --max-keys must be >= 0 and --scan-count, --top >= 1", ExitCode.USAGE
        )
    client = redis.Redis(**{**config.connection_kwargs(), "max_connections": 2})
    report = Diagnosis(endpoint=config.url)
    ro = _ReadOnly(client)
    try:
        try:
            with map_errors(secrets=[config.password]):
                ro.run("PING")
        except CacheError as exc:
            code = ExitCode.REDIS
            raise OpsError(f"diagnose: cannot use {config.url}: {exc}", code) from None
        _info(ro, report)
        _slowlog(ro, report, slowlog_entries)
        _latency(ro, report)
        pattern = match if match is not None else (glob_escape(config.key_prefix) + "*")
        _largest_keys(ro, report, pattern, max_keys, scan_count, top, samples)
    finally:
        client.close()
    return report


def _unavailable(report: Diagnosis, what: str, exc: BaseException) -> None:
    text = " ".join(str(exc).split())[:200] or type(exc).__name__
    if isinstance(exc, redis.exceptions.NoPermissionError):
        text = f"NOPERM: {text}"  # redis-py drops the error code from the message
    report.unavailable[what] = text


def _info(ro: _ReadOnly, report: Diagnosis) -> None:
    picks = {
        "server": (("redis_version", "uptime_in_seconds", "redis_mode"), report.server),
        "memory": (_MEMORY_KEYS, report.memory),
        "stats": (_STATS_KEYS, report.stats),
        "clients": (_CLIENT_KEYS, report.clients),
        "replication": (_REPLICATION_KEYS, report.replication),
    }
    for section in _INFO_SECTIONS:
        try:
            info = ro.run("INFO", section)
        except redis.RedisError as exc:
            _unavailable(report, f"INFO {section}", exc)
            continue
        if section in picks:
            keys, into = picks[section]
            into.update({k: info[k] for k in keys if k in info})
    hits, misses = report.stats.get("keyspace_hits"), report.stats.get("keyspace_misses")
    if isinstance(hits, int) and isinstance(misses, int) and hits + misses > 0:
        report.hit_rate_percent = round(100.0 * hits / (hits + misses), 2)


def _slowlog(ro: _ReadOnly, report: Diagnosis, entries: int) -> None:
    try:
        raw = ro.run("SLOWLOG", "GET", entries)
    except redis.RedisError as exc:
        _unavailable(report, "SLOWLOG GET", exc)
        return
    for entry in raw or []:
        if isinstance(entry, dict):  # redis-py's parsed form
            command = entry.get("command", b"")
            args = command.split() if isinstance(command, bytes | str) else []
            item = {
                "id": entry.get("id"),
                "start": entry.get("start_time"),
                "duration_us": entry.get("duration"),
                "args": args,
            }
        else:
            item = {"id": entry[0], "start": entry[1], "duration_us": entry[2], "args": entry[3]}
        item["command"] = _shorten(item.pop("args"))
        report.slowlog.append(item)


def _shorten(args: Any) -> str:
    """The command name and first argument only (values may hold user data)."""
    words = [a.decode(errors="replace") if isinstance(a, bytes) else str(a) for a in args or []]
    shown = " ".join(w[:60] for w in words[:2])
    return shown + (f" … (+{len(words) - 2} args)" if len(words) > 2 else "")


def _latency(ro: _ReadOnly, report: Diagnosis) -> None:
    try:
        raw = ro.run("LATENCY", "LATEST")
    except redis.RedisError as exc:
        _unavailable(report, "LATENCY LATEST", exc)
        return
    for event in raw or []:
        name = event[0].decode() if isinstance(event[0], bytes) else str(event[0])
        report.latency.append(
            {"event": name, "time": event[1], "latest_ms": event[2], "max_ms": event[3]}
        )


def _largest_keys(
    ro: _ReadOnly,
    report: Diagnosis,
    pattern: str,
    max_keys: int,
    scan_count: int,
    top: int,
    samples: int,
) -> None:
    sizes: list[tuple[int, str]] = []
    cursor: int | bytes = 0
    calls = 0
    max_calls = max(1, max_keys // max(1, scan_count) * 4 + 4)  # SCAN may return few per call
    while report.keys_examined < max_keys and calls < max_calls:
        calls += 1
        try:
            cursor, keys = ro.run("SCAN", cursor, "MATCH", pattern, "COUNT", scan_count)
        except redis.RedisError as exc:
            _unavailable(report, "SCAN", exc)
            return
        for key in keys[: max_keys - report.keys_examined]:
            report.keys_examined += 1
            try:
                size = ro.run("MEMORY", "USAGE", key, "SAMPLES", samples)
            except redis.RedisError as exc:
                _unavailable(report, "MEMORY USAGE", exc)
                continue
            if size is not None:
                name = key.decode(errors="replace") if isinstance(key, bytes) else str(key)
                sizes.append((int(size), name))
        if int(cursor) == 0:
            report.scan_complete = True
            break
    sizes.sort(reverse=True)
    report.largest_keys = [{"key": name, "bytes": size} for size, name in sizes[:top]]
