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

from berthcache.ops.alarm_catalogue import (
    CATALOGUE,
    is_allkeys_policy,
    serverless_specs,
    specs_for,
)
from infra.cidrs import PRIVATE_NETWORKS_TEXT, is_private_network, parse_network
from infra.config import NODE_VCPUS

__all__ = [
    "REPLACE_ON_CHANGE",
    "RESOURCE_RULES",
    "STACK_RULES",
    "Rule",
    "StackRule",
    "auth_required",
    "automatic_failover",
    "backups_enabled",
    "cluster_mode_parameter_group",
    "custom_subnet_group",
    "encryption_at_rest",
    "encryption_in_transit",
    "events_topic_unencrypted",
    "every_node_alarmed",
    "every_serverless_cache_alarmed",
    "log_delivery_applies_immediately",
    "memory_alarm_fits_eviction_policy",
    "minor_version_upgrade",
    "no_open_ingress",
    "node_type_exists",
    "replace_safe_names",
    "serverless_in_named_subnets",
    "serverless_usage_limits",
]

RG = "aws:elasticache/replicationGroup:ReplicationGroup"
CLUSTER = "aws:elasticache/cluster:Cluster"
SERVERLESS = "aws:elasticache/serverlessCache:ServerlessCache"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
PARAMS = "aws:elasticache/parameterGroup:ParameterGroup"
TOPIC = "aws:sns/topic:Topic"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
# What the engine sends for a value not known until the update (preview).
_UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"

Props = Mapping[str, Any]
Rule = Callable[[str, Props], list[str]]
StackRule = Callable[[Sequence[tuple[str, Props]]], list[str]]
"""(type, props) of every resource of the stack -> violation messages."""


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
    """ElastiCache.1: automatic backups kept at least one day (serverless caches too)."""
    if rtype not in (RG, CLUSTER, SERVERLESS):
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
    """ElastiCache.3: automatic failover on, which needs at least one replica. In cluster mode
    (``numNodeGroups``) AWS refuses a group without it: a shard's primary could not fail over,
    so each shard needs a replica too."""
    if rtype != RG:
        return []
    out = []
    cluster = _cluster_mode(props)
    if not _is_true(props.get("automaticFailoverEnabled")):
        out.append(
            "automaticFailoverEnabled must be true (ElastiCache.3"
            + ("; cluster mode cannot run without it)" if cluster else ")")
        )
    nodes = _plain(props.get("numCacheClusters"))
    if not cluster and isinstance(nodes, int | float) and nodes < 2:
        out.append(f"numCacheClusters must be >= 2 for failover (ElastiCache.3), got {nodes}")
    replicas = _plain(props.get("replicasPerNodeGroup"))
    if cluster and isinstance(replicas, int | float) and replicas < 1:
        out.append(
            f"replicasPerNodeGroup must be >= 1 for each shard to fail over (ElastiCache.3), "
            f"got {replicas}"
        )
    return out


def _cluster_mode(props: Props) -> bool:
    """A cluster-mode replication group: node groups (shards) or cluster mode enabled."""
    return props.get("numNodeGroups") is not None or _plain(props.get("clusterMode")) == "enabled"


def encryption_at_rest(rtype: str, props: Props) -> list[str]:
    """ElastiCache.4: encrypted at rest, with a customer-managed key. A serverless cache is
    always encrypted, but with an AWS-owned key unless it names one: it needs ``kmsKeyId``."""
    if rtype == SERVERLESS:
        if not _truthy(props.get("kmsKeyId")):
            return ["kmsKeyId must name a customer-managed KMS key (ElastiCache.4, serverless)"]
        return []
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
    """ElastiCache.6: clients authenticate, with an AUTH token or RBAC user groups. A
    serverless cache takes no token: it needs ``userGroupId`` (else any client in the VPC
    connects as the default user)."""
    if rtype == SERVERLESS:
        if not _truthy(props.get("userGroupId")):
            return ["userGroupId must name an RBAC user group (ElastiCache.6, serverless)"]
        return []
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


def serverless_in_named_subnets(rtype: str, props: Props) -> list[str]:
    """ElastiCache.7 for serverless: named private subnets (at least 2 AZs) and security
    groups. Without ``subnetIds`` AWS places the endpoint in the default VPC's subnets, without
    ``securityGroupIds`` behind the VPC's default security group."""
    if rtype != SERVERLESS:
        return []
    out = []
    subnets = _plain(props.get("subnetIds")) or []
    if not isinstance(subnets, list) or len(subnets) < 2:
        out.append(
            "subnetIds must name at least 2 private subnets (ElastiCache.7, serverless: "
            "otherwise the default VPC's)"
        )
    if not _plain(props.get("securityGroupIds")):
        out.append("securityGroupIds must name the cache's security groups (not the default)")
    return out


def serverless_usage_limits(rtype: str, props: Props) -> list[str]:
    """A serverless cache has maximum data storage and ECPU-per-second limits: without them it
    scales, and bills, without bound, and no alarm can say how close it is to its limit."""
    if rtype != SERVERLESS:
        return []
    limits = _plain(props.get("cacheUsageLimits")) or {}
    out = []
    if not (limits.get("dataStorage") or {}).get("maximum"):
        out.append("cacheUsageLimits.dataStorage.maximum must be set (GB)")
    if not any((e or {}).get("maximum") for e in limits.get("ecpuPerSeconds") or []):
        out.append("cacheUsageLimits.ecpuPerSeconds maximum must be set (ECPUs per second)")
    return out


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


def log_delivery_applies_immediately(rtype: str, props: Props) -> list[str]:
    """AWS takes a log delivery change only with ApplyImmediately (AWS, "Specifying log
    delivery using the AWS CLI", modify-replication-group --apply-immediately): a group that
    delivers logs must apply immediately, or its next log change fails."""
    if rtype != RG or not _plain(props.get("logDeliveryConfigurations")):
        return []
    if _unknown(_plain(props.get("applyImmediately"))) or _is_true(props.get("applyImmediately")):
        return []
    return [
        "logDeliveryConfigurations need applyImmediately: true (AWS rejects a log delivery "
        "change that waits for the maintenance window)"
    ]


def node_type_exists(rtype: str, props: Props) -> list[str]:
    """Only node types in AWS's list of supported (current generation) ElastiCache node types
    (``infra.config.NODE_VCPUS``, with its source)."""
    if rtype not in (RG, CLUSTER):
        return []
    node_type = _plain(props.get("nodeType"))
    if node_type is None or _unknown(node_type) or node_type in NODE_VCPUS:
        return []
    return [
        f"nodeType {node_type!r} is not in AWS's list of supported ElastiCache node types "
        "(e.g. cache.m5 has 12xlarge and 24xlarge, no 8xlarge or 16xlarge)"
    ]


REPLACE_ON_CHANGE: dict[str, dict[str, tuple[str, ...]]] = {
    # Minimal, for the types this rule checks; the full table of every type the program
    # declares lives with the offline update check. Source: terraform-provider-aws
    # internal/service/elasticache/parameter_group.go (name, family, description: ForceNew;
    # parameter: updated in place).
    PARAMS: {"in_name": ("family",), "constant": ("description",)},
}
"""Per type with a fixed ``name``: the replace-on-change inputs that must show in the name (so a
replacement gets a new name and can be created before the old one is deleted), and those that
must be constant (not embed a value that changes with config)."""


def replace_safe_names(rtype: str, props: Props) -> list[str]:
    """A fixed name on a replace-on-change resource must change whenever the resource is
    replaced; otherwise the replacement collides with, or must first delete, the old one
    (a parameter group still attached cannot be deleted: InvalidCacheParameterGroupState)."""
    table = REPLACE_ON_CHANGE.get(rtype)
    name = _plain(props.get("name"))
    if table is None or not isinstance(name, str) or _unknown(name):
        return []
    out = []
    for key in table["in_name"]:
        value = _plain(props.get(key))
        if isinstance(value, str) and not _unknown(value) and value not in name:
            out.append(
                f"fixed name {name!r} does not carry {key} {value!r}, which replaces the "
                "resource on change: put it in the name, or let Pulumi autoname it"
            )
    values = [
        str(_plain(p.get("value"))) for p in _plain(props.get("parameters")) or [] if p.get("value")
    ]
    for key in table["constant"]:
        text = _plain(props.get(key))
        if not isinstance(text, str):
            continue
        for value in values:
            # As a word: a value like "no" is not embedded in "not".
            if value and re.search(rf"(?<![\w-]){re.escape(value)}(?![\w-])", text):
                out.append(
                    f"{key} embeds the parameter value {value!r}: {key} replaces the resource "
                    "on change, so changing the parameter would replace it; keep it constant"
                )
    return out


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
    "log-delivery-applies-immediately": (
        "A group that delivers logs applies changes immediately (AWS requires it).",
        log_delivery_applies_immediately,
    ),
    "node-type-exists": (
        "Only node types AWS lists as supported by ElastiCache.",
        node_type_exists,
    ),
    "replace-safe-names": (
        "Fixed names on replace-on-change resources change with each replacement.",
        replace_safe_names,
    ),
    "serverless-in-named-subnets": (
        "A serverless cache in named private subnets behind named security groups.",
        serverless_in_named_subnets,
    ),
    "serverless-usage-limits": (
        "A serverless cache has maximum data storage and ECPU-per-second limits.",
        serverless_usage_limits,
    ),
}

REQUIRED_ALARM_METRICS: tuple[str, ...] = tuple(
    m for spec in CATALOGUE for m in spec.dashboard_metrics
)
"""Every metric any group may need; ``_required_metrics`` picks a group's own."""
# AWS's default parameter groups (default.redis7) evict volatile-lru.
_AWS_DEFAULT_POLICY = "volatile-lru"


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


def _eviction_policy(rg: Props, resources: Sequence[tuple[str, Props]]) -> str:
    """The group's maxmemory-policy, from the parameter group it names in this stack."""
    name = _plain(rg.get("parameterGroupName"))
    for rtype, props in resources:
        if rtype == PARAMS and _plain(props.get("name")) == name:
            for param in _plain(props.get("parameters")) or []:
                if param.get("name") == "maxmemory-policy":
                    return str(param.get("value"))
    return _AWS_DEFAULT_POLICY


def _required_metrics(rg: Props, resources: Sequence[tuple[str, Props]]) -> tuple[str, ...]:
    node_type = _plain(rg.get("nodeType"))
    specs = specs_for(_eviction_policy(rg, resources), str(node_type or ""))
    return tuple(m for spec in specs for m in spec.dashboard_metrics)


def _node_count(rg: Props) -> int | None:
    """Every node of the group: ``numCacheClusters``, or in cluster mode ``numNodeGroups`` x
    (1 + ``replicasPerNodeGroup``); ``None`` when unknown."""
    if _cluster_mode(rg):
        shards = _plain(rg.get("numNodeGroups"))
        replicas = _plain(rg.get("replicasPerNodeGroup"))
        if isinstance(shards, int | float) and isinstance(replicas, int | float):
            return int(shards * (1 + replicas))
        return None
    nodes = _plain(rg.get("numCacheClusters"))
    return int(nodes) if isinstance(nodes, int | float) else None


def _members(rg: Props) -> list[str] | None:
    """The group's real member list when known (after the update), else None (preview)."""
    members = _plain(rg.get("memberClusters"))
    if isinstance(members, list) and members and not any(_unknown(m) for m in members):
        return [str(m) for m in members]
    return None


def every_node_alarmed(resources: Sequence[tuple[str, Props]]) -> list[str]:
    """Every member node of every replication group (every shard's, in cluster mode) has an
    alarm, with actions, per metric the catalogue gives that group (``specs_for`` its eviction
    policy and node type). Members are the group's real ``memberClusters`` when known (no
    ``<group>-00N`` assumption); at preview, when they are not, each metric needs as many
    alarms named for the group as it has nodes."""
    covered: set[tuple[str, str]] = set()
    for rtype, props in resources:
        if rtype == ALARM:
            covered.update(_alarm_coverage(props))
    out: list[str] = []
    for rtype, props in resources:
        if rtype != RG:
            continue
        rg_id = _plain(props.get("replicationGroupId"))
        nodes = _node_count(props)
        if not isinstance(rg_id, str) or not _RG_ID_RE.match(rg_id):
            out.append(
                "replication group without a literal replicationGroupId: "
                "its nodes' alarms cannot be checked"
            )
            continue
        if nodes is None:
            out.append(
                f"{rg_id}: node count unknown; set numCacheClusters (or numNodeGroups and "
                "replicasPerNodeGroup) explicitly"
            )
            continue
        required = _required_metrics(props, resources)
        members = _members(props)
        if members is None:
            out += _slots_alarmed(rg_id, int(nodes), required, resources)
            continue
        for member in sorted(members):
            missing = [m for m in required if (member, m) not in covered]
            if missing:
                out.append(f"{member} has no alarm with actions on {', '.join(missing)}")
    return out


def _slots_alarmed(
    rg_id: str, nodes: int, required: Sequence[str], resources: Sequence[tuple[str, Props]]
) -> list[str]:
    """Preview: members unknown; count the group's alarms (named ``<group>-``) per metric."""
    counts: dict[str, int] = {}
    for rtype, props in resources:
        name = _plain(props.get("name"))
        if rtype != ALARM or not isinstance(name, str) or not name.startswith(f"{rg_id}-"):
            continue
        if not _plain(props.get("alarmActions")):
            continue
        metrics = {str(_plain(props.get("metricName")))} if props.get("metricName") else set()
        for query in _plain(props.get("metricQueries")) or []:
            metric = (query.get("metric") or {}).get("metricName")
            if metric:
                metrics.add(str(metric))
        for metric in metrics:
            counts[metric] = counts.get(metric, 0) + 1
    missing = [m for m in required if counts.get(m, 0) < nodes]
    if missing:
        return [f"{rg_id}: fewer than {nodes} alarms with actions on {', '.join(missing)}"]
    return []


def events_topic_unencrypted(resources: Sequence[tuple[str, Props]]) -> list[str]:
    """ElastiCache cannot publish to a KMS-encrypted SNS topic: the topic turns inactive and
    events (failover, node replacement) are lost (AWS, "Event Notifications and Amazon SNS",
    https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/ElastiCacheSNS.html). Judged once
    the topics' ARNs are known (at ``pulumi up``; a new stack's preview cannot match them)."""
    encrypted = {
        str(_plain(props.get("arn")))
        for rtype, props in resources
        if rtype == TOPIC and _truthy(props.get("kmsMasterKeyId")) and props.get("arn")
    }
    out = []
    for rtype, props in resources:
        if rtype not in (RG, CLUSTER):
            continue
        topic = _plain(props.get("notificationTopicArn"))
        if topic and str(topic) in encrypted:
            out.append(
                f"{_plain(props.get('replicationGroupId')) or 'cluster'}: notificationTopicArn "
                f"{topic} is KMS-encrypted; ElastiCache cannot publish to it (use an "
                "unencrypted events topic)"
            )
    return out


def memory_alarm_fits_eviction_policy(resources: Sequence[tuple[str, Props]]) -> list[str]:
    """No DatabaseMemoryUsagePercentage alarm on a group with an ``allkeys-*`` eviction policy:
    such a cache fills its memory by design, so the alarm would never leave ALARM."""
    out = []
    for rtype, props in resources:
        if rtype != RG:
            continue
        policy = _eviction_policy(props, resources)
        if not is_allkeys_policy(policy):
            continue
        rg_id = str(_plain(props.get("replicationGroupId")))
        members = set(_members(props) or ())
        for atype, alarm in resources:
            if atype != ALARM:
                continue
            name = str(_plain(alarm.get("name")))
            watched = {
                node
                for node, metric in _alarm_coverage({**alarm, "alarmActions": [True]})
                if metric == "DatabaseMemoryUsagePercentage"
            }
            if watched and (watched & members or name.startswith(f"{rg_id}-")):
                out.append(
                    f"{name}: a DatabaseMemoryUsagePercentage alarm on {rg_id}, whose eviction "
                    f"policy {policy} keeps memory near 100% by design; watch Evictions instead"
                )
    return out


def every_serverless_cache_alarmed(resources: Sequence[tuple[str, Props]]) -> list[str]:
    """Every serverless cache has an alarm, with actions, per serverless catalogue metric
    (ECPUs and storage against the limits, throttled commands, ...) on its ``clusterId``."""
    covered: set[tuple[str, str]] = set()
    for rtype, props in resources:
        if rtype != ALARM or not _plain(props.get("alarmActions")):
            continue
        dims = _plain(props.get("dimensions")) or {}
        if props.get("metricName") and "clusterId" in dims:
            covered.add((str(dims["clusterId"]), str(_plain(props["metricName"]))))
    required = [m for spec in serverless_specs() for m in spec.dashboard_metrics]
    out = []
    for rtype, props in resources:
        if rtype != SERVERLESS:
            continue
        name = _plain(props.get("name"))
        if not isinstance(name, str) or _unknown(name):
            out.append("serverless cache without a literal name: its alarms cannot be checked")
            continue
        missing = [m for m in required if (name, m) not in covered]
        if missing:
            out.append(f"serverless cache {name} has no alarm with actions on {', '.join(missing)}")
    return out


def cluster_mode_parameter_group(resources: Sequence[tuple[str, Props]]) -> list[str]:
    """A cluster-mode group names a parameter group with ``cluster-enabled yes`` (AWS refuses
    one without), and a one-shard group none with it (AWS refuses that too)."""
    enabled: dict[str, bool] = {}
    for rtype, props in resources:
        if rtype == PARAMS:
            params = {p.get("name"): p.get("value") for p in _plain(props.get("parameters")) or []}
            enabled[str(_plain(props.get("name")))] = params.get("cluster-enabled") == "yes"
    out = []
    for rtype, props in resources:
        if rtype != RG:
            continue
        name = _plain(props.get("parameterGroupName"))
        if not isinstance(name, str) or name not in enabled:
            continue  # a default or external group: AWS checks it
        rg_id = _plain(props.get("replicationGroupId"))
        if _cluster_mode(props) and not enabled[name]:
            out.append(
                f"{rg_id}: cluster mode needs a parameter group with cluster-enabled yes; "
                f"{name} has none"
            )
        if not _cluster_mode(props) and enabled[name]:
            out.append(
                f"{rg_id}: one shard (numCacheClusters) with {name}, whose cluster-enabled is "
                "yes: use numNodeGroups, or a parameter group without it"
            )
    return out


STACK_RULES: dict[str, tuple[str, StackRule]] = {
    "every-node-alarmed": (
        "Every member node of every replication group has the catalogue's alarms, each with "
        "alarm actions.",
        every_node_alarmed,
    ),
    "events-topic-unencrypted": (
        "ElastiCache event notifications go to an unencrypted SNS topic (AWS requires it).",
        events_topic_unencrypted,
    ),
    "memory-alarm-fits-eviction-policy": (
        "No memory-percentage alarm on a group that evicts from all keys.",
        memory_alarm_fits_eviction_policy,
    ),
    "every-serverless-cache-alarmed": (
        "Every serverless cache has the serverless catalogue's alarms, each with alarm actions.",
        every_serverless_cache_alarmed,
    ),
    "cluster-mode-parameter-group": (
        "A cluster-mode group has a cluster-enabled parameter group; a one-shard group none.",
        cluster_mode_parameter_group,
    ),
}
