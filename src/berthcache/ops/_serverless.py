"""What ``status`` reports for a serverless cache (``topology: serverless``): the cache as
ElastiCache describes it and the alarms that watch it.

A serverless cache is no replication group: ``DescribeReplicationGroups`` does not know it, it has
no nodes, and its alarms (catalogue scope ``serverless``, named ``<cache>-000-<key>``) watch the
cache as a whole through the ``clusterId`` dimension. ``berthcache-ops status`` picks this when
the stack outputs say ``topology: serverless`` (the ``serverlessCacheName`` output names the
cache) or ``--serverless-cache NAME`` is given; ``list_alarms`` in ``_status`` already lists
these alarms by name (``alarms``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from berthcache.ops._aws import AwsClients, aws_errors
from berthcache.ops._errors import ExitCode, OpsError
from berthcache.ops._runbooks import alarm_key, find_spec, runbook_link
from berthcache.ops._status import AlarmState

__all__ = ["ServerlessCoverage", "ServerlessStatus", "describe_serverless", "serverless_alarms"]


@dataclasses.dataclass(frozen=True)
class ServerlessStatus:
    """The serverless cache's state, endpoints, usage limits and security settings."""

    name: str
    status: str
    engine: str
    major_engine_version: str
    full_engine_version: str
    endpoint: str
    reader_endpoint: str
    max_data_storage_gb: int | None
    max_ecpu_per_second: int | None
    kms_key_id: str
    user_group_id: str
    security_group_ids: tuple[str, ...]
    subnet_ids: tuple[str, ...]
    snapshot_retention_limit: int | None
    daily_snapshot_time: str

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _address(endpoint: Any) -> str:
    if not endpoint:
        return ""
    return f"{endpoint.get('Address', '?')}:{endpoint.get('Port', '?')}"


def describe_serverless(clients: AwsClients, name: str) -> ServerlessStatus:
    """The cache ``name`` as ``DescribeServerlessCaches`` answers (not found: an AWS error)."""
    with aws_errors("elasticache", f"serverless cache {name!r}"):
        answer = clients.elasticache.describe_serverless_caches(ServerlessCacheName=name)
    caches: list[Any] = list(answer.get("ServerlessCaches") or [])
    if not caches:
        raise OpsError(f"serverless cache {name!r}: not found", ExitCode.AWS)
    cache = caches[0]
    limits = cache.get("CacheUsageLimits") or {}
    return ServerlessStatus(
        name=name,
        status=str(cache.get("Status", "unknown")),
        engine=str(cache.get("Engine", "unknown")),
        major_engine_version=str(cache.get("MajorEngineVersion", "unknown")),
        full_engine_version=str(cache.get("FullEngineVersion", "unknown")),
        endpoint=_address(cache.get("Endpoint")),
        reader_endpoint=_address(cache.get("ReaderEndpoint")),
        max_data_storage_gb=(limits.get("DataStorage") or {}).get("Maximum"),
        max_ecpu_per_second=(limits.get("ECPUPerSecond") or {}).get("Maximum"),
        kms_key_id=str(cache.get("KmsKeyId") or ""),
        user_group_id=str(cache.get("UserGroupId") or ""),
        security_group_ids=tuple(cache.get("SecurityGroupIds") or ()),
        subnet_ids=tuple(cache.get("SubnetIds") or ()),
        snapshot_retention_limit=cache.get("SnapshotRetentionLimit"),
        daily_snapshot_time=str(cache.get("DailySnapshotTime") or ""),
    )


@dataclasses.dataclass(frozen=True)
class ServerlessCoverage:
    """The alarms in ALARM that watch the cache (its ``clusterId``, whatever they are called,
    or the stack's ``<cache>-000-<key>`` names), and whether any alarm watches it at all."""

    firing: list[AlarmState]
    watched: bool


def _watches(alarm: Any, name: str) -> bool:
    dims = list(alarm.get("Dimensions") or [])
    for query in alarm.get("Metrics") or []:
        dims += ((query.get("MetricStat") or {}).get("Metric") or {}).get("Dimensions") or []
    return any(d.get("Name") == "clusterId" and d.get("Value") == name for d in dims)


def serverless_alarms(clients: AwsClients, name: str) -> ServerlessCoverage:
    """Read every metric alarm once and keep those on the cache: an alarm added by hand shows
    when it fires too; a cache that no alarm watches says so."""
    watched = False
    firing: dict[str, AlarmState] = {}
    with aws_errors("cloudwatch", f"alarms of {name!r}"):
        paginator = clients.cloudwatch.get_paginator("describe_alarms")
        for page in paginator.paginate(AlarmTypes=["MetricAlarm"]):
            for alarm in page.get("MetricAlarms", []):
                alarm_name = str(alarm["AlarmName"])
                on_cache = _watches(alarm, name)
                watched |= on_cache
                key = alarm_key(alarm_name, name)
                if (not on_cache and key is None) or alarm.get("StateValue") != "ALARM":
                    continue
                updated = alarm.get("StateUpdatedTimestamp")
                firing[alarm_name] = AlarmState(
                    name=alarm_name,
                    key=key,
                    state="ALARM",
                    reason=" ".join(str(alarm.get("StateReason", "")).split()),
                    updated=updated.isoformat() if updated is not None else "",
                    runbook=runbook_link(find_spec(key)) if key else None,
                )
    return ServerlessCoverage(firing=sorted(firing.values(), key=lambda a: a.name), watched=watched)
