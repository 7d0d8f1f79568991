"""Every setting the program reads, typed and validated before any resource is declared.

``SETTINGS`` is the one table of settings: ``Pulumi.yaml``'s ``config:`` block declares exactly
these keys with the same types and defaults (a test pins that), so a stack file can never set
something the program silently ignores. A bad value raises :class:`InfraConfigError` naming the
setting as ``berthcache:<key>``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from typing import Any, Literal

import pulumi

from infra.cidrs import PRIVATE_NETWORKS_TEXT, is_private_network, parse_network

__all__ = [
    "NAMESPACE",
    "NODE_VCPUS",
    "SETTINGS",
    "InfraConfigError",
    "Setting",
    "StackConfig",
    "from_pulumi",
    "load",
]

NAMESPACE = "berthcache"

SettingType = Literal["string", "integer", "boolean", "array"]


class InfraConfigError(pulumi.RunError):
    """A stack setting is invalid; the message names it. Pulumi prints it without a traceback."""


@dataclasses.dataclass(frozen=True)
class Setting:
    """One stack setting: its Pulumi type, default and what it does."""

    key: str
    type: SettingType
    default: Any
    description: str


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "environment",
        "string",
        "dev",
        "dev, staging or prod. prod protects the group, key and secret from deletion.",
    ),
    Setting("engine", "string", "redis", "Cache engine: redis (default) or valkey."),
    Setting(
        "engineVersion",
        "string",
        "7.1",
        "Engine version, 7.x only (Redis 7.0/7.1, Valkey 7.2). Downgrades replace the group.",
    ),
    Setting(
        "nodeType",
        "string",
        "cache.t4g.small",
        "Node type, e.g. cache.t4g.small (Graviton). Its vCPUs set the CPUUtilization alarm.",
    ),
    Setting(
        "numNodes",
        "integer",
        2,
        "Nodes in the group (primary + replicas), 2 to 6; automatic failover needs >= 2.",
    ),
    Setting(
        "multiAz",
        "boolean",
        True,
        "Place replicas in other AZs (needs numNodes >= 2). Required in prod; dev and staging "
        "may turn it off.",
    ),
    Setting(
        "replicationGroupId",
        "string",
        "",
        "Replication group id (lowercase, <= 40 chars). Empty: berthcache-<stack>. "
        "Changing it replaces the group.",
    ),
    Setting(
        "keyPrefix",
        "string",
        "berthcare:",
        "The apps' key prefix; in RBAC mode the app user may only touch these keys.",
    ),
    Setting(
        "authMode",
        "string",
        "token",
        "token: one AUTH token (rotated in place); rbac: user group with a prefix-limited "
        "app user and the default user disabled.",
    ),
    Setting(
        "maxmemoryPolicy",
        "string",
        "allkeys-lru",
        "Eviction policy. allkeys-lru (seed default) may evict sessions under memory "
        "pressure; volatile-lru protects keys without TTL instead.",
    ),
    Setting(
        "maintenanceWindow",
        "string",
        "sun:05:00-sun:06:00",
        "Weekly maintenance window, ddd:hh24:mi-ddd:hh24:mi (UTC), at least 60 minutes.",
    ),
    Setting(
        "snapshotWindow",
        "string",
        "03:00-04:00",
        "Daily snapshot window, hh24:mi-hh24:mi (UTC), at least 60 minutes.",
    ),
    Setting("snapshotRetentionDays", "integer", 7, "Days automatic snapshots are kept, 1 to 35."),
    Setting(
        "logRetentionDays",
        "integer",
        30,
        "Retention of the slow-log and engine-log CloudWatch log groups (a CloudWatch value).",
    ),
    Setting(
        "vpcId",
        "string",
        "",
        "Existing VPC id. Empty: create a dedicated VPC with private subnets.",
    ),
    Setting(
        "subnetIds",
        "array",
        [],
        "Existing private subnet ids (>= 2, in different AZs); required with vpcId.",
    ),
    Setting(
        "vpcCidr",
        "string",
        "10.40.0.0/16",
        "CIDR of the VPC created when vpcId is empty; a private network, /16 to /24.",
    ),
    Setting("azCount", "integer", 2, "AZs (and private subnets) of a created VPC, 2 to 6."),
    Setting(
        "allowedSecurityGroupIds",
        "array",
        [],
        "Security groups whose members may connect on the cache port.",
    ),
    Setting(
        "allowedCidrs",
        "array",
        [],
        "CIDRs that may connect on the cache port; private networks only (10.0.0.0/8, "
        "172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10, fc00::/7). Empty with a created VPC: "
        "the VPC's CIDR.",
    ),
    Setting("alarmEmails", "array", [], "E-mail addresses subscribed to the alarm topic."),
    Setting(
        "hostCpuBudgetPercent",
        "integer",
        90,
        "Host CPU budget; the CPUUtilization alarm fires above budget / vCPUs on <= 2 vCPUs.",
    ),
    Setting("engineCpuThresholdPercent", "integer", 90, "EngineCPUUtilization alarm threshold."),
    Setting(
        "memoryThresholdPercent", "integer", 80, "DatabaseMemoryUsagePercentage alarm threshold."
    ),
    Setting("currConnectionsThreshold", "integer", 5000, "CurrConnections alarm threshold."),
    Setting("replicationLagThresholdSeconds", "integer", 10, "ReplicationLag alarm threshold."),
    Setting("evictionsThreshold", "integer", 500, "Evictions per 5 minutes that alarm."),
    Setting("swapThresholdMb", "integer", 50, "SwapUsage alarm threshold in MB (AWS: 50 MB)."),
    Setting(
        "hitRateThresholdPercent",
        "integer",
        80,
        "Cache hit rate below this alarms (the seed's 80% target).",
    ),
)
_BY_KEY = {s.key: s for s in SETTINGS}

# vCPUs per node type, for the CPUUtilization threshold. Unknown types are rejected.
NODE_VCPUS: dict[str, int] = {
    **{f"cache.t{g}.{s}": 2 for g in ("3", "4g") for s in ("micro", "small", "medium")},
    **{
        f"cache.{fam}.{size}": vcpus
        for fam in ("m6g", "m7g", "r6g", "r7g", "m5", "r5")
        for size, vcpus in (
            ("large", 2),
            ("xlarge", 4),
            ("2xlarge", 8),
            ("4xlarge", 16),
            ("8xlarge", 32),
            ("12xlarge", 48),
            ("16xlarge", 64),
        )
    },
}

_MAXMEMORY_POLICIES = (
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "noeviction",
)
_LOG_RETENTION = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_MW_RE = re.compile(
    r"^(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):([0-5]\d)-"
    r"(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):([0-5]\d)$"
)
_SW_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
_RG_ID_RE = re.compile(r"^[a-z](?!.*--)[a-z0-9-]{0,39}(?<!-)$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PREFIX_RE = re.compile(r"^[A-Za-z0-9:_.\-]{1,64}$")
_VPC_RE = re.compile(r"^vpc-[0-9a-f]{8,17}$")
_SUBNET_RE = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_SG_RE = re.compile(r"^sg-[0-9a-f]{8,17}$")


@dataclasses.dataclass(frozen=True, kw_only=True)
class StackConfig:
    """The validated settings of one stack (see ``SETTINGS`` for what each means)."""

    stack: str
    environment: str
    engine: str
    engine_version: str
    node_type: str
    node_vcpus: int
    num_nodes: int
    multi_az: bool
    replication_group_id: str
    key_prefix: str
    auth_mode: str
    maxmemory_policy: str
    maintenance_window: str
    snapshot_window: str
    snapshot_retention_days: int
    log_retention_days: int
    vpc_id: str | None
    subnet_ids: tuple[str, ...]
    vpc_cidr: str
    az_count: int
    allowed_security_group_ids: tuple[str, ...]
    allowed_cidrs: tuple[str, ...]
    alarm_emails: tuple[str, ...]
    thresholds: Mapping[str, float]

    @property
    def protect(self) -> bool:
        """Production stacks are protected against accidental deletion."""
        return self.environment == "prod"

    @property
    def member_cluster_ids(self) -> tuple[str, ...]:
        """ElastiCache names members ``<group-id>-001``…; known before the group exists."""
        return tuple(f"{self.replication_group_id}-{i:03d}" for i in range(1, self.num_nodes + 1))

    @property
    def tags(self) -> dict[str, str]:
        return {
            "Project": "berthcache",
            "Stack": self.stack,
            "Environment": self.environment,
            "ManagedBy": "pulumi",
        }


def _err(key: str, msg: str) -> InfraConfigError:
    return InfraConfigError(f"{NAMESPACE}:{key}: {msg}")


def _parse(setting: Setting, raw: str | None) -> Any:
    """Raw config text (as Pulumi passes it) -> a typed value, or the declared default."""
    if raw is None:
        return setting.default
    key = setting.key
    if setting.type == "string":
        return raw.strip()
    if setting.type == "integer":
        try:
            return int(raw)
        except ValueError:
            raise _err(key, f"must be an integer, got {raw!r}") from None
    if setting.type == "boolean":
        low = raw.strip().lower()
        if low not in ("true", "false"):
            raise _err(key, f"must be true or false, got {raw!r}")
        return low == "true"
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        raise _err(key, "must be a list (set it with `pulumi config set --path`)") from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _err(key, "must be a list of strings")
    return value


def _in_range(key: str, value: int, lo: int, hi: int) -> int:
    if not lo <= value <= hi:
        raise _err(key, f"must be between {lo} and {hi}, got {value}")
    return value


def _window_minutes(start: tuple[int, int, int], end: tuple[int, int, int]) -> int:
    week = 7 * 24 * 60
    a = (start[0] * 24 + start[1]) * 60 + start[2]
    b = (end[0] * 24 + end[1]) * 60 + end[2]
    return (b - a) % week


def _check_maintenance_window(value: str) -> str:
    m = _MW_RE.match(value)
    if not m:
        raise _err(
            "maintenanceWindow",
            f"must look like sun:05:00-sun:06:00 (ddd:hh24:mi-ddd:hh24:mi), got {value!r}",
        )
    d1, h1, m1, d2, h2, m2 = m.groups()
    minutes = _window_minutes(
        (_DAYS.index(d1), int(h1), int(m1)), (_DAYS.index(d2), int(h2), int(m2))
    )
    if not 60 <= minutes <= 24 * 60:
        raise _err("maintenanceWindow", f"must last 60 minutes to 24 hours, got {minutes} min")
    return value


def _check_snapshot_window(value: str) -> str:
    m = _SW_RE.match(value)
    if not m:
        raise _err("snapshotWindow", f"must look like 03:00-04:00 (hh24:mi-hh24:mi), got {value!r}")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    minutes = ((h2 * 60 + m2) - (h1 * 60 + m1)) % (24 * 60)
    if minutes < 60:
        raise _err("snapshotWindow", f"must last at least 60 minutes, got {minutes} min")
    return value


def _check_cidr(key: str, value: str) -> str:
    """A valid network inside the private ranges (``infra.cidrs``): the cache port is never
    offered to the internet, whole or in pieces (``0.0.0.0/1`` + ``128.0.0.0/1``)."""
    try:
        net = parse_network(value)
    except ValueError:
        raise _err(key, f"{value!r} is not a valid CIDR (like 10.0.0.0/16)") from None
    if not is_private_network(net):
        raise _err(
            key,
            f"{net} is not a private network; only networks inside {PRIVATE_NETWORKS_TEXT} "
            "may reach the cache (name the clients' private networks)",
        )
    return str(net)


def load(raw: Mapping[str, str], *, stack: str) -> StackConfig:
    """Validate raw settings (unnamespaced key -> text, as Pulumi passes them)."""
    unknown = sorted(set(raw) - set(_BY_KEY))
    if unknown:
        raise _err(unknown[0], f"unknown setting; known: {', '.join(sorted(_BY_KEY))}")
    v = {s.key: _parse(s, raw.get(s.key)) for s in SETTINGS}

    if v["environment"] not in ("dev", "staging", "prod"):
        raise _err("environment", f"must be dev, staging or prod, got {v['environment']!r}")
    if v["engine"] not in ("redis", "valkey"):
        raise _err("engine", f"must be redis or valkey, got {v['engine']!r}")
    if not re.fullmatch(r"7\.\d+", v["engineVersion"]):
        raise _err(
            "engineVersion",
            f"must be a 7.x version like 7.1 (this kit targets Redis 7), "
            f"got {v['engineVersion']!r}",
        )
    if v["engine"] == "valkey" and v["engineVersion"] != "7.2":
        raise _err("engineVersion", f"Valkey 7 is 7.2, got {v['engineVersion']!r}")
    if v["nodeType"] not in NODE_VCPUS:
        raise _err(
            "nodeType",
            f"unknown node type {v['nodeType']!r}; known: " + ", ".join(sorted(NODE_VCPUS)),
        )
    if v["numNodes"] < 2 and v["multiAz"]:
        raise _err("numNodes", f"multi-AZ needs at least 2 nodes, got {v['numNodes']}")
    if v["environment"] == "prod" and not v["multiAz"]:
        raise _err(
            "multiAz",
            "must be true when environment is prod: a single-AZ group loses its primary and "
            "replicas together when that AZ fails",
        )
    _in_range("numNodes", v["numNodes"], 2, 6)
    rg_id = v["replicationGroupId"] or f"berthcache-{stack}".lower()
    if not _RG_ID_RE.match(rg_id):
        raise _err(
            "replicationGroupId",
            f"{rg_id!r} must be 1-40 lowercase letters, digits or single hyphens, "
            "starting with a letter and not ending with a hyphen",
        )
    if not _PREFIX_RE.match(v["keyPrefix"]):
        raise _err("keyPrefix", "must be 1-64 characters of letters, digits, ':', '_', '.', '-'")
    if v["authMode"] not in ("token", "rbac"):
        raise _err("authMode", f"must be token or rbac, got {v['authMode']!r}")
    if v["maxmemoryPolicy"] not in _MAXMEMORY_POLICIES:
        raise _err("maxmemoryPolicy", f"must be one of {', '.join(_MAXMEMORY_POLICIES)}")
    _check_maintenance_window(v["maintenanceWindow"])
    _check_snapshot_window(v["snapshotWindow"])
    _in_range("snapshotRetentionDays", v["snapshotRetentionDays"], 1, 35)
    if v["logRetentionDays"] not in _LOG_RETENTION:
        raise _err("logRetentionDays", f"must be one of CloudWatch's values {_LOG_RETENTION}")

    vpc_id = v["vpcId"] or None
    if vpc_id is not None:
        if not _VPC_RE.match(vpc_id):
            raise _err("vpcId", f"must look like vpc-0123abcd, got {vpc_id!r}")
        if len(v["subnetIds"]) < 2:
            raise _err("subnetIds", "an existing VPC needs at least 2 private subnets in 2 AZs")
    elif v["subnetIds"]:
        raise _err("subnetIds", "only valid together with vpcId")
    for sid in v["subnetIds"]:
        if not _SUBNET_RE.match(sid):
            raise _err("subnetIds", f"must look like subnet-0123abcd, got {sid!r}")
    vpc_cidr = _check_cidr("vpcCidr", v["vpcCidr"])
    if not 16 <= ipaddress.ip_network(vpc_cidr).prefixlen <= 24:
        raise _err("vpcCidr", f"must be a /16 to /24 network, got {vpc_cidr}")
    _in_range("azCount", v["azCount"], 2, 6)
    for sg in v["allowedSecurityGroupIds"]:
        if not _SG_RE.match(sg):
            raise _err("allowedSecurityGroupIds", f"must look like sg-0123abcd, got {sg!r}")
    cidrs = [_check_cidr("allowedCidrs", c) for c in v["allowedCidrs"]]
    if not cidrs and not v["allowedSecurityGroupIds"]:
        if vpc_id is not None:
            raise _err(
                "allowedCidrs",
                "with an existing VPC, set allowedCidrs or "
                "allowedSecurityGroupIds: nothing could reach the cache otherwise",
            )
        cidrs = [vpc_cidr]
    for email in v["alarmEmails"]:
        if not _EMAIL_RE.match(email):
            raise _err("alarmEmails", f"{email!r} is not an e-mail address")

    thresholds = {
        "hostCpuBudgetPercent": float(
            _in_range("hostCpuBudgetPercent", v["hostCpuBudgetPercent"], 10, 100)
        ),
        "engineCpuThresholdPercent": float(
            _in_range("engineCpuThresholdPercent", v["engineCpuThresholdPercent"], 10, 100)
        ),
        "memoryThresholdPercent": float(
            _in_range("memoryThresholdPercent", v["memoryThresholdPercent"], 10, 100)
        ),
        "currConnectionsThreshold": float(
            _in_range("currConnectionsThreshold", v["currConnectionsThreshold"], 1, 65000)
        ),
        "replicationLagThresholdSeconds": float(
            _in_range(
                "replicationLagThresholdSeconds", v["replicationLagThresholdSeconds"], 1, 3600
            )
        ),
        "evictionsThreshold": float(
            _in_range("evictionsThreshold", v["evictionsThreshold"], 0, 10_000_000)
        ),
        "swapThresholdMb": float(_in_range("swapThresholdMb", v["swapThresholdMb"], 1, 10_240)),
        "hitRateThresholdPercent": float(
            _in_range("hitRateThresholdPercent", v["hitRateThresholdPercent"], 1, 99)
        ),
    }
    return StackConfig(
        stack=stack,
        environment=v["environment"],
        engine=v["engine"],
        engine_version=v["engineVersion"],
        node_type=v["nodeType"],
        node_vcpus=NODE_VCPUS[v["nodeType"]],
        num_nodes=v["numNodes"],
        multi_az=v["multiAz"],
        replication_group_id=rg_id,
        key_prefix=v["keyPrefix"],
        auth_mode=v["authMode"],
        maxmemory_policy=v["maxmemoryPolicy"],
        maintenance_window=v["maintenanceWindow"],
        snapshot_window=v["snapshotWindow"],
        snapshot_retention_days=v["snapshotRetentionDays"],
        log_retention_days=v["logRetentionDays"],
        vpc_id=vpc_id,
        subnet_ids=tuple(v["subnetIds"]),
        vpc_cidr=vpc_cidr,
        az_count=v["azCount"],
        allowed_security_group_ids=tuple(v["allowedSecurityGroupIds"]),
        allowed_cidrs=tuple(cidrs),
        alarm_emails=tuple(v["alarmEmails"]),
        thresholds=thresholds,
    )


def from_pulumi(get: Callable[[str], str | None] | None = None) -> StackConfig:
    """Read and validate this stack's settings from Pulumi config."""
    cfg = pulumi.Config(NAMESPACE)
    getter = get or cfg.get
    raw = {s.key: val for s in SETTINGS if (val := getter(s.key)) is not None}
    return load(raw, stack=pulumi.get_stack())
