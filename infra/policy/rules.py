"""Policy logic as pure functions over (resource type, props), so tests can call it directly.

Each resource rule returns the list of violation messages for one resource (empty: compliant).
Props use Pulumi's camelCase names, as both the policy engine and the mocks hand them over.
Secret values may arrive wrapped (``{<sig>: <secret sig>, "value": ...}``) or as
``pulumi_policy`` ``Secret`` objects; unknown values during preview arrive as a sentinel string,
which counts as "set" (the value will exist, it is just not known yet).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from berthcache.ops.alarm_catalogue import CATALOGUE
from infra.cidrs import PRIVATE_NETWORKS_TEXT, is_private_network, parse_network

__all__ = [
    "RESOURCE_RULES",
    "Rule",
    "auth_required",
    "automatic_failover",
    "backups_enabled",
    "custom_subnet_group",
    "encryption_at_rest",
    "encryption_in_transit",
    "every_node_alarmed",
    "minor_version_upgrade",
    "no_open_ingress",
]

RG = "aws:elasticache/replicationGroup:ReplicationGroup"
CLUSTER = "aws:elasticache/cluster:Cluster"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
# What the engine sends for a value not known until the update (preview).
_UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"

Props = Mapping[str, Any]
Rule = Callable[[str, Props], list[str]]


def _plain(value: Any) -> Any:
    """Unwrap a secret marker so rules see the value (never print it)."""
    if isinstance(value, Mapping) and value.get("4dabf18193072939515e22adb298388d") == _SECRET_SIG:
        return _plain(value.get("value"))
    inner = getattr(value, "value", None)
    if type(value).__name__ == "Secret" and inner is not None:
        return _plain(inner)
    return value


def _truthy(value: Any) -> bool:
    value = _plain(value)
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "0")
    return bool(value)


def _is_true(value: Any) -> bool:
    value = _plain(value)
    return value is True or (isinstance(value, str) and value.lower() == "true")


def backups_enabled(rtype: str, props: Props) -> list[str]:
    """ElastiCache.1: automatic backups kept at least one day."""
    if rtype not in (RG, CLUSTER):
        return []
    limit = _plain(props.get("snapshotRetentionLimit"))
    if not isinstance(limit, int | float) or limit < 1:
        return [f"snapshotRetentionLimit must be >= 1 day (ElastiCache.1), got {limit!r}"]
    return []


def minor_version_upgrade(rtype: str, props: Props) -> list[str]:
    """ElastiCache.2: automatic minor version upgrades on."""
    if rtype not in (RG, CLUSTER):
        return []
    if not _is_true(props.get("autoMinorVersionUpgrade")):
        return ["autoMinorVersionUpgrade must be true (ElastiCache.2)"]
    return []


def automatic_failover(rtype: str, props: Props) -> list[str]:
    """ElastiCache.3: automatic failover on, which needs at least one replica."""
    if rtype != RG:
        return []
    out = []
    if not _is_true(props.get("automaticFailoverEnabled")):
        out.append("automaticFailoverEnabled must be true (ElastiCache.3)")
    nodes = _plain(props.get("numCacheClusters"))
    if isinstance(nodes, int | float) and nodes < 2:
        out.append(f"numCacheClusters must be >= 2 for failover (ElastiCache.3), got {nodes}")
    return out


def encryption_at_rest(rtype: str, props: Props) -> list[str]:
    """ElastiCache.4: encrypted at rest, with a customer-managed key."""
    if rtype != RG:
        return []
    out = []
    if not _is_true(props.get("atRestEncryptionEnabled")):
        out.append("atRestEncryptionEnabled must be true (ElastiCache.4)")
    if not _truthy(props.get("kmsKeyId")):
        out.append("kmsKeyId must name a customer-managed KMS key (ElastiCache.4)")
    return out


def encryption_in_transit(rtype: str, props: Props) -> list[str]:
    """ElastiCache.5: TLS on and required (not 'preferred', which admits plain text)."""
    if rtype != RG:
        return []
    out = []
    if not _is_true(props.get("transitEncryptionEnabled")):
        out.append("transitEncryptionEnabled must be true (ElastiCache.5)")
    mode = _plain(props.get("transitEncryptionMode"))
    if mode is not None and mode != "required":
        out.append(f"transitEncryptionMode must be 'required' (ElastiCache.5), got {mode!r}")
    return out


def auth_required(rtype: str, props: Props) -> list[str]:
    """ElastiCache.6: clients authenticate, with an AUTH token or RBAC user groups."""
    if rtype != RG:
        return []
    groups = _plain(props.get("userGroupIds")) or []
    if (
        _truthy(props.get("authToken"))
        or _truthy(props.get("authTokenWo"))
        or any(_truthy(g) for g in groups)
    ):
        return []
    return ["set authToken or userGroupIds: the group must require AUTH or RBAC (ElastiCache.6)"]


def custom_subnet_group(rtype: str, props: Props) -> list[str]:
    """ElastiCache.7: not the default subnet group (which sits in the default VPC)."""
    if rtype not in (RG, CLUSTER):
        return []
    name = _plain(props.get("subnetGroupName"))
    if not _truthy(name) or name == "default":
        return ["subnetGroupName must name a custom subnet group (ElastiCache.7)"]
    return []


def _unknown(value: Any) -> bool:
    """A preview-time unknown (the engine's sentinel): not known yet, so not judged."""
    return bool(value == _UNKNOWN)


def _public(cidrs: Any) -> list[str]:
    """The CIDRs among ``cidrs`` that are not inside the private ranges (``infra.cidrs``)."""
    values = _plain(cidrs)
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    found = []
    for item in values:
        cidr = _plain(item)
        if cidr is None or _unknown(cidr):
            continue
        try:
            net = parse_network(str(cidr), strict=False)
        except ValueError:
            found.append(f"{cidr} (not a valid CIDR)")
            continue
        if not is_private_network(net):
            found.append(str(cidr))
    return found


def no_open_ingress(rtype: str, props: Props) -> list[str]:
    """Ingress only from private networks (RFC 1918, 100.64.0.0/10, fc00::/7) — the same list
    ``infra/config.py`` enforces on ``allowedCidrs``: not 0.0.0.0/0 or ::/0, nor the internet
    in pieces (0.0.0.0/1 + 128.0.0.0/1), nor any public range."""
    found: list[str] = []
    if rtype == "aws:ec2/securityGroup:SecurityGroup":
        for rule in _plain(props.get("ingress")) or []:
            found += _public(rule.get("cidrBlocks")) + _public(rule.get("ipv6CidrBlocks"))
    elif rtype == "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule":
        found += _public(props.get("cidrIpv4")) + _public(props.get("cidrIpv6"))
    elif (
        rtype == "aws:ec2/securityGroupRule:SecurityGroupRule"
        and _plain(props.get("type")) == "ingress"
    ):
        found += _public(props.get("cidrBlocks")) + _public(props.get("ipv6CidrBlocks"))
    return [
        f"ingress from {c} is not a private network (allowed: {PRIVATE_NETWORKS_TEXT})"
        for c in found
    ]


RESOURCE_RULES: dict[str, tuple[str, Rule]] = {
    "elasticache-1-backups": ("Automatic backups retained for at least one day.", backups_enabled),
    "elasticache-2-minor-version-upgrade": (
        "Automatic minor version upgrades enabled.",
        minor_version_upgrade,
    ),
    "elasticache-3-automatic-failover": ("Automatic failover enabled.", automatic_failover),
    "elasticache-4-encryption-at-rest": (
        "Encrypted at rest with a customer-managed key.",
        encryption_at_rest,
    ),
    "elasticache-5-encryption-in-transit": ("TLS in transit, required.", encryption_in_transit),
    "elasticache-6-auth": ("AUTH token or RBAC user groups required.", auth_required),
    "elasticache-7-custom-subnet-group": (
        "A custom subnet group, not the default.",
        custom_subnet_group,
    ),
    "no-open-ingress": (
        "Ingress only from private networks (RFC 1918, 100.64.0.0/10, fc00::/7).",
        no_open_ingress,
    ),
}

REQUIRED_ALARM_METRICS: tuple[str, ...] = tuple(
    m for spec in CATALOGUE for m in spec.dashboard_metrics
)


def _alarm_coverage(props: Props) -> list[tuple[str, str]]:
    """(CacheClusterId, metric) pairs an alarm watches, if it has alarm actions."""
    if not _plain(props.get("alarmActions")):
        return []
    pairs: list[tuple[str, str]] = []
    dims = _plain(props.get("dimensions")) or {}
    if props.get("metricName") and "CacheClusterId" in dims:
        pairs.append((str(_plain(dims["CacheClusterId"])), str(_plain(props["metricName"]))))
    for query in _plain(props.get("metricQueries")) or []:
        metric = query.get("metric") or {}
        qdims = metric.get("dimensions") or {}
        if metric.get("metricName") and "CacheClusterId" in qdims:
            pairs.append((str(qdims["CacheClusterId"]), str(metric["metricName"])))
    return pairs


_RG_ID_RE = re.compile(r"^[a-z][a-z0-9-]*$")


def every_node_alarmed(resources: Sequence[tuple[str, Props]]) -> list[str]:
    """Every member node of every replication group has an alarm, with actions, per catalogue
    metric. Members are derived as ``<group-id>-001``… so this works at preview time."""
    covered: set[tuple[str, str]] = set()
    for rtype, props in resources:
        if rtype == ALARM:
            covered.update(_alarm_coverage(props))
    out: list[str] = []
    for rtype, props in resources:
        if rtype != RG:
            continue
        rg_id = _plain(props.get("replicationGroupId"))
        nodes = _plain(props.get("numCacheClusters"))
        if not isinstance(rg_id, str) or not _RG_ID_RE.match(rg_id):
            out.append(
                "replication group without a literal replicationGroupId: "
                "its nodes' alarms cannot be checked"
            )
            continue
        if not isinstance(nodes, int | float):
            out.append(f"{rg_id}: numCacheClusters unknown; set it explicitly")
            continue
        for i in range(1, int(nodes) + 1):
            member = f"{rg_id}-{i:03d}"
            missing = [m for m in REQUIRED_ALARM_METRICS if (member, m) not in covered]
            if missing:
                out.append(f"{member} has no alarm with actions on {', '.join(missing)}")
    return out
