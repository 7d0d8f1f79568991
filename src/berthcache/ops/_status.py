"""What ``status`` and ``alarms`` report: the replication group as ElastiCache describes it and
the stack's alarms as CloudWatch holds them, each alarm with its runbook link."""

from __future__ import annotations

import dataclasses
from typing import Any

from berthcache.ops._aws import AwsClients, aws_errors
from berthcache.ops._runbooks import alarm_key, find_spec, runbook_link

__all__ = [
    "AlarmState",
    "GroupStatus",
    "NodeCoverage",
    "NodeInfo",
    "describe_group",
    "list_alarms",
    "node_alarms",
]


@dataclasses.dataclass(frozen=True)
class NodeInfo:
    cluster_id: str
    node_group: str
    role: str
    availability_zone: str


@dataclasses.dataclass(frozen=True)
class GroupStatus:
    group_id: str
    status: str
    engine: str
    engine_version: str
    node_type: str
    automatic_failover: str
    multi_az: str
    transit_encryption: bool
    at_rest_encryption: bool
    auth_token_enabled: bool
    user_group_ids: tuple[str, ...]
    nodes: tuple[NodeInfo, ...]
    node_groups: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class AlarmState:
    name: str
    key: str | None
    state: str
    reason: str
    updated: str
    runbook: str | None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def describe_group(
    clients: AwsClients, group_id: str, *, engine_hint: str | None = None
) -> GroupStatus:
    """The group's state, nodes (role, AZ) and security flags; the engine version comes from
    its first member cluster (``engine_hint``, e.g. the ``engine`` output, where that fails)."""
    with aws_errors("elasticache", f"replication group {group_id!r}"):
        groups = clients.elasticache.describe_replication_groups(ReplicationGroupId=group_id)
    group: Any = groups["ReplicationGroups"][0]
    nodes: list[NodeInfo] = []
    node_groups: list[str] = []
    for node_group in group.get("NodeGroups", []):
        node_groups.append(str(node_group.get("NodeGroupId", "?")))
        for member in node_group.get("NodeGroupMembers", []):
            nodes.append(
                NodeInfo(
                    cluster_id=str(member.get("CacheClusterId", "?")),
                    node_group=str(node_group.get("NodeGroupId", "?")),
                    role=str(member.get("CurrentRole", "unknown")),
                    availability_zone=str(member.get("PreferredAvailabilityZone", "unknown")),
                )
            )
    engine = str(group.get("Engine") or "redis")
    version = _engine_version(clients, group, engine_hint)
    return GroupStatus(
        group_id=group_id,
        status=str(group.get("Status", "unknown")),
        engine=engine,
        engine_version=version,
        node_type=str(group.get("CacheNodeType", "unknown")),
        automatic_failover=str(group.get("AutomaticFailover", "unknown")),
        multi_az=str(group.get("MultiAZ", "unknown")),
        transit_encryption=bool(group.get("TransitEncryptionEnabled", False)),
        at_rest_encryption=bool(group.get("AtRestEncryptionEnabled", False)),
        auth_token_enabled=bool(group.get("AuthTokenEnabled", False)),
        user_group_ids=tuple(group.get("UserGroupIds", []) or []),
        nodes=tuple(nodes),
        node_groups=tuple(node_groups),
    )


def _engine_version(clients: AwsClients, group: Any, hint: str | None) -> str:
    """DescribeReplicationGroups has no engine version; a member cluster has it."""
    from botocore.exceptions import BotoCoreError, ClientError

    members = group.get("MemberClusters") or []
    if members:
        try:
            clusters = clients.elasticache.describe_cache_clusters(CacheClusterId=members[0])
            found = clusters.get("CacheClusters") or []
            if found and found[0].get("EngineVersion"):
                return str(found[0]["EngineVersion"])
        except (BotoCoreError, ClientError):
            pass  # the group itself was readable: show what the outputs say instead
    if hint:
        return hint.split()[-1]
    return "unknown"


def list_alarms(
    clients: AwsClients,
    group_id: str,
    *,
    state: str | None = None,
    expected: tuple[str, ...] = (),
) -> list[AlarmState]:
    """The stack's alarms (``<group>-<NNN>-<key>``) with state, reason and runbook link.

    ``expected`` (the ``alarmNames`` output) adds any alarm that CloudWatch lacks, as
    ``MISSING``, so a deleted alarm does not look like a quiet one.
    """
    found: dict[str, AlarmState] = {}
    with aws_errors("cloudwatch", f"alarms of {group_id!r}"):
        paginator = clients.cloudwatch.get_paginator("describe_alarms")
        kwargs: dict[str, Any] = {"AlarmNamePrefix": f"{group_id}-", "AlarmTypes": ["MetricAlarm"]}
        if state:
            kwargs["StateValue"] = state
        for page in paginator.paginate(**kwargs):
            for alarm in page.get("MetricAlarms", []):
                name = str(alarm["AlarmName"])
                key = alarm_key(name, group_id)
                if key is None and name not in expected:
                    continue  # another group sharing the prefix, or not ours
                if state and alarm.get("StateValue") != state:
                    continue  # (some CloudWatch stand-ins ignore StateValue with a prefix)
                updated = alarm.get("StateUpdatedTimestamp")
                found[name] = AlarmState(
                    name=name,
                    key=key,
                    state=str(alarm.get("StateValue", "UNKNOWN")),
                    reason=" ".join(str(alarm.get("StateReason", "")).split()),
                    updated=updated.isoformat() if updated is not None else "",
                    runbook=runbook_link(find_spec(key)) if key else None,
                )
    if state is None:
        for name in expected:
            if name not in found:
                key = alarm_key(name)
                found[name] = AlarmState(
                    name=name,
                    key=key,
                    state="MISSING",
                    reason="in the stack outputs but not in CloudWatch",
                    updated="",
                    runbook=runbook_link(find_spec(key)) if key else None,
                )
    order = {"ALARM": 0, "MISSING": 1, "INSUFFICIENT_DATA": 2, "OK": 3}
    return sorted(found.values(), key=lambda a: (order.get(a.state, 9), a.name))


@dataclasses.dataclass(frozen=True)
class NodeCoverage:
    """The group's alarms as its nodes see them: every alarm in ALARM that names one of the
    group's nodes in its dimensions (whatever the alarm is called) or carries the stack's
    ``<group>-<NNN>-<key>`` name, and the nodes no alarm watches at all."""

    firing: list[AlarmState]
    unwatched: tuple[str, ...]


def _alarm_nodes(alarm: Any) -> set[str]:
    """The ``CacheClusterId`` values an alarm's metric (or metric-math inputs) names."""
    dims = list(alarm.get("Dimensions") or [])
    for query in alarm.get("Metrics") or []:
        dims += ((query.get("MetricStat") or {}).get("Metric") or {}).get("Dimensions") or []
    return {str(d.get("Value")) for d in dims if d.get("Name") == "CacheClusterId"}


def node_alarms(clients: AwsClients, group: GroupStatus) -> NodeCoverage:
    """Read every metric alarm of the account once and match it to the group's real nodes (as
    ElastiCache lists them now, after any failover or scale change), not to names: an alarm
    someone added by hand still shows when it fires, and a node nothing watches is named."""
    nodes = {node.cluster_id for node in group.nodes}
    watched: set[str] = set()
    firing: dict[str, AlarmState] = {}
    with aws_errors("cloudwatch", f"alarms of {group.group_id!r}"):
        paginator = clients.cloudwatch.get_paginator("describe_alarms")
        for page in paginator.paginate(AlarmTypes=["MetricAlarm"]):
            for alarm in page.get("MetricAlarms", []):
                name = str(alarm["AlarmName"])
                on_nodes = _alarm_nodes(alarm) & nodes
                watched |= on_nodes
                key = alarm_key(name, group.group_id)
                if not on_nodes and key is None:
                    continue  # neither names a node of the group nor is one of the stack's
                if alarm.get("StateValue") != "ALARM":
                    continue
                updated = alarm.get("StateUpdatedTimestamp")
                firing[name] = AlarmState(
                    name=name,
                    key=key,
                    state="ALARM",
                    reason=" ".join(str(alarm.get("StateReason", "")).split()),
                    updated=updated.isoformat() if updated is not None else "",
                    runbook=runbook_link(find_spec(key)) if key else None,
                )
    return NodeCoverage(
        firing=sorted(firing.values(), key=lambda a: a.name),
        unwatched=tuple(sorted(nodes - watched)),
    )
