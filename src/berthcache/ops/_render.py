"""How ``berthcache-ops`` shows its results: human text (rich) on stdout, or JSON with
``--output json`` (indented, keys sorted, nothing else on stdout).

Every command's output lives here, so the CLI module only wires options to operations. Values
that come from outside (alarm reasons, key names, Redis commands) are printed without rich
markup, so a ``[`` in them is shown, not interpreted. Nothing here ever sees a token.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markdown import Markdown
from rich.markup import escape
from rich.table import Table

from berthcache.ops._errors import OpsError

if TYPE_CHECKING:
    from berthcache.ops._diagnose import Diagnosis
    from berthcache.ops._drill import DrillReport
    from berthcache.ops._rotate import RotationReport
    from berthcache.ops._serverless import ServerlessStatus
    from berthcache.ops._status import AlarmState, GroupStatus
    from berthcache.ops.alarm_catalogue import AlarmSpec

__all__ = [
    "error_line",
    "note",
    "print_json",
    "runbook_ref",
    "show_alarms",
    "show_diagnosis",
    "show_drill",
    "show_rotation",
    "show_runbook",
    "show_serverless_status",
    "show_status",
    "warning",
]

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    """Indented, key-sorted JSON on stdout (dates and other objects as strings)."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def error_line(exc: OpsError) -> None:
    """The one stderr line every failure becomes."""
    err.print(f"berthcache-ops: error: {exc.message}", markup=False)


def warning(message: str) -> None:
    """A warning on stderr (a deprecated option, say): the command still runs."""
    err.print(f"berthcache-ops: warning: {message}", markup=False)


def note(message: str) -> None:
    """A progress line on stderr (stdout stays the command's result)."""
    err.print(f"berthcache-ops: {message}", markup=False)


def _on_off(flag: bool) -> str:
    return "on" if flag else "off"


def show_status(
    group: GroupStatus,
    firing: list[AlarmState],
    *,
    as_json: bool,
    unwatched: tuple[str, ...] = (),
    region: str | None = None,
) -> None:
    """``unwatched``: the group's nodes that no alarm names in its dimensions; ``region``: where
    the group was looked up (shown, so a wrong region is noticed)."""
    if as_json:
        print_json(
            {
                **group.as_dict(),
                "region": region,
                "alarms_in_alarm": [a.as_dict() for a in firing],
                "nodes_without_alarm": list(unwatched),
            }
        )
        return
    where = f"  region: {escape(region)}" if region else ""
    out.print(f"[bold]{escape(group.group_id)}[/]  status: {escape(group.status)}{where}")
    out.print(
        f"engine: {group.engine} {group.engine_version}   node type: {group.node_type}",
        markup=False,
    )
    out.print(
        f"automatic failover: {group.automatic_failover}   multi-AZ: {group.multi_az}   "
        f"TLS in transit: {_on_off(group.transit_encryption)}   "
        f"at rest: {_on_off(group.at_rest_encryption)}   "
        f"AUTH token: {_on_off(group.auth_token_enabled)}"
        + (
            f"   RBAC user groups: {', '.join(group.user_group_ids)}"
            if group.user_group_ids
            else ""
        ),
        markup=False,
    )
    table = Table("node", "node group", "role", "AZ", "alarms")
    for node in group.nodes:
        table.add_row(
            escape(node.cluster_id),
            escape(node.node_group),
            escape(node.role),
            escape(node.availability_zone),
            "[bold red]NONE[/]" if node.cluster_id in unwatched else "yes",
        )
    out.print(table)
    if unwatched:
        out.print(
            f"[bold red]{len(unwatched)} node(s) with no alarm:[/] "
            f"{escape(', '.join(unwatched))} (run `pulumi up` to cover the group's members)"
        )
    _firing_lines(firing)


def _firing_lines(firing: list[AlarmState]) -> None:
    if firing:
        out.print(f"[bold red]{len(firing)} alarm(s) in ALARM:[/]")
        for alarm in firing:
            out.print(f"  {alarm.name}: {alarm.reason}", markup=False)
            out.print(f"    runbook: {runbook_ref(alarm.runbook, alarm.name)}", markup=False)
    else:
        out.print("no alarm in ALARM")


def _or_dash(value: object) -> str:
    return "-" if value in (None, "", ()) else str(value)


def show_serverless_status(
    cache: ServerlessStatus,
    firing: list[AlarmState],
    *,
    as_json: bool,
    watched: bool,
    region: str | None = None,
) -> None:
    """A serverless cache: no nodes, so ``watched`` says whether any alarm watches the cache
    (its ``clusterId``) at all; ``region`` as for :func:`show_status`."""
    if as_json:
        print_json(
            {
                **cache.as_dict(),
                "topology": "serverless",
                "region": region,
                "alarms_in_alarm": [a.as_dict() for a in firing],
                "watched_by_alarms": watched,
            }
        )
        return
    where = f"  region: {escape(region)}" if region else ""
    out.print(f"[bold]{escape(cache.name)}[/]  serverless  status: {escape(cache.status)}{where}")
    storage = f"{cache.max_data_storage_gb} GB" if cache.max_data_storage_gb is not None else "-"
    lines = [
        f"engine: {cache.engine} {cache.full_engine_version or cache.major_engine_version}",
        f"endpoint: {_or_dash(cache.endpoint)}   reader endpoint: "
        f"{_or_dash(cache.reader_endpoint)}",
        f"limits: data storage {storage}   ECPU/s {_or_dash(cache.max_ecpu_per_second)}",
        f"KMS key: {_or_dash(cache.kms_key_id)}   RBAC user group: {_or_dash(cache.user_group_id)}",
        f"security groups: {_or_dash(', '.join(cache.security_group_ids))}   subnets: "
        f"{_or_dash(', '.join(cache.subnet_ids))}",
        f"snapshots: kept {_or_dash(cache.snapshot_retention_limit)} day(s), daily at "
        f"{_or_dash(cache.daily_snapshot_time)}",
    ]
    for line in lines:
        out.print(line, markup=False)
    if not watched:
        out.print(
            "[bold red]no alarm watches this cache[/] (run `pulumi up` to create the "
            "serverless alarms)"
        )
    _firing_lines(firing)


def show_alarms(found: list[AlarmState], group_id: str, *, as_json: bool) -> None:
    if as_json:
        print_json([a.as_dict() for a in found])
        return
    if not found:
        out.print(f"no alarms named {group_id}-<NNN>-<key> in CloudWatch", markup=False)
    for alarm in found:  # plain lines: a table would cut the runbook link on narrow terminals
        style = {"ALARM": "bold red", "MISSING": "yellow"}.get(alarm.state, "bold")
        out.print(f"[{style}]{alarm.state:<17}[/] {escape(alarm.name)}")
        if alarm.reason:
            out.print(f"    reason: {alarm.reason}", markup=False)
        out.print(f"    runbook: {runbook_ref(alarm.runbook, alarm.name)}", markup=False)


def runbook_ref(link: str | None, alarm_name: str) -> str:
    """A runbook link as a human reads it: the URL, and how to read the section offline
    (``berthcache-ops runbook NAME`` prints it from the installed package)."""
    if link is None:
        return "not in the catalogue"
    return f"{link} (offline: berthcache-ops runbook {alarm_name})"


def show_runbook(spec: AlarmSpec, text: str, link: str, *, as_json: bool) -> None:
    if as_json:
        print_json({"key": spec.key, "title": spec.title, "runbook": link, "text": text})
        return
    out.print(f"runbook: {link}", markup=False)
    out.print(Markdown(text))


def show_diagnosis(report: Diagnosis, *, max_keys: int, as_json: bool) -> None:
    if as_json:
        print_json(report.as_dict())
        return
    out.print(f"[bold]{escape(report.endpoint)}[/]")
    for title, section in (
        ("server", report.server),
        ("memory", report.memory),
        ("stats", report.stats),
        ("clients", report.clients),
        ("replication", report.replication),
    ):
        if section:
            out.print(
                f"{title}: " + ", ".join(f"{k}={v}" for k, v in section.items()), markup=False
            )
    rate = (
        "n/a (no reads yet)" if report.hit_rate_percent is None else f"{report.hit_rate_percent}%"
    )
    out.print(f"hit rate: {rate} (the seed's target: above 80%)", markup=False)
    if report.slowlog:
        out.print("slowlog:")
        for entry in report.slowlog:
            out.print(
                f"  #{entry['id']} {entry['duration_us']} us  {entry['command']}", markup=False
            )
    if report.latency:
        out.print("latency latest:")
        for event in report.latency:
            out.print(
                f"  {event['event']}: latest {event['latest_ms']} ms, max {event['max_ms']} ms",
                markup=False,
            )
    scan = "complete" if report.scan_complete else f"stopped at the cap of {max_keys}"
    out.print(f"largest keys ({report.keys_examined} examined, scan {scan}):", markup=False)
    for item in report.largest_keys:
        out.print(f"  {item['bytes']:>10} B  {item['key']}", markup=False)
    for what, why in report.unavailable.items():
        out.print(f"not readable: {what}: {why}", markup=False)


def show_drill(report: DrillReport, *, as_json: bool) -> None:
    if as_json:
        print_json(report.as_dict())
        return
    recovery = f"{report.time_to_recovery:.2f} s" if report.time_to_recovery is not None else "-"
    out.print(
        f"probes: {report.probes}, errors: {report.errors} {report.error_kinds or ''}\n"
        f"longest error window: {report.longest_error_window:.2f} s\n"
        f"time to recovery: {recovery}\n"
        f"recovered: {_on_off(report.recovered)}",
        markup=False,
    )


def show_rotation(report: RotationReport, *, as_json: bool) -> None:
    if as_json:
        print_json(report.as_dict())
        return
    for step in report.steps:
        out.print(f"ok  {step}", markup=False)
