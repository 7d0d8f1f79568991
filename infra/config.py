"""Every setting the program reads, declared once, and the validated :class:`StackConfig`.

``SETTINGS`` is the one table: type, default, allowed values, range, pattern, and what changing
a setting replaces. ``Pulumi.yaml``'s ``config:`` block and docs/platform.md's table say the same
(tests keep all three equal; ``python -m infra.config [pulumi-yaml]`` prints them). Each value is
checked against its own declaration (``infra.settings.parse_setting``); then ``RULES``, short
named functions, check what involves several settings. A bad value raises
:class:`InfraConfigError` naming the setting as ``berthcache:<key>``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any

import pulumi

from berthcache.acl import glob_escape
from infra.cidrs import PRIVATE_NETWORKS_TEXT, is_private_network, parse_network
from infra.settings import InfraConfigError, Setting, markdown_table, parse_setting, setting_error

__all__ = [
    "BURSTABLE_PREFIXES",
    "ENGINE_VERSIONS",
    "LIMIT_SETTINGS",
    "MAX_CLUSTER_NODES",
    "NAMESPACE",
    "NODE_VCPUS",
    "OWNED_PARAMETERS",
    "OWNED_TAGS",
    "RESERVED_USERS",
    "RULES",
    "SETTINGS",
    "THRESHOLD_SETTINGS",
    "TOPOLOGIES",
    "InfraConfigError",
    "Rule",
    "Setting",
    "StackConfig",
    "from_pulumi",
    "load",
    "pulumi_config_block",
    "topology_settings_fit",
]

NAMESPACE = "berthcache"

# vCPUs per node type, for the CPUUtilization threshold. Unknown types are rejected.
# The types are AWS's list of supported ElastiCache node types (current generation), from
# https://docs.aws.amazon.com/AmazonElastiCache/latest/APIReference/API_CacheNode.html
# ("Supported node types"): M5 and R5 have no 8xlarge/16xlarge but do have 24xlarge; the
# Graviton families (M6g, M7g, R6g, R7g) run large..16xlarge; T3/T4g are micro/small/medium.
# vCPUs as EC2 gives them for the same instance size.
_SIZES_VCPUS = {
    "large": 2,
    "xlarge": 4,
    "2xlarge": 8,
    "4xlarge": 16,
    "8xlarge": 32,
    "12xlarge": 48,
    "16xlarge": 64,
    "24xlarge": 96,
}
_FAMILY_SIZES: dict[str, tuple[str, ...]] = {
    **{
        fam: ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge")
        for fam in ("m6g", "m7g", "r6g", "r7g")
    },
    **{
        fam: ("large", "xlarge", "2xlarge", "4xlarge", "12xlarge", "24xlarge")
        for fam in ("m5", "r5")
    },
}
NODE_VCPUS: dict[str, int] = {
    **{f"cache.t{g}.{s}": 2 for g in ("3", "4g") for s in ("micro", "small", "medium")},
    **{
        f"cache.{fam}.{size}": _SIZES_VCPUS[size]
        for fam, sizes in _FAMILY_SIZES.items()
        for size in sizes
    },
}
# The engine versions this program runs, per engine (AWS, "Supported engines and versions" and
# "Engine specific parameters": Valkey 7.2 takes family valkey7, Valkey 8.0/8.1/8.2 valkey8;
# Redis OSS 7.0/7.1 redis7). The parameter group family is engine + major version.
ENGINE_VERSIONS: dict[str, tuple[str, ...]] = {
    "redis": ("7.0", "7.1"),
    "valkey": ("7.2", "8.0", "8.1", "8.2"),
}
TOPOLOGIES = ("replication-group", "cluster", "serverless")
"""``replication-group``: one shard, a primary and replicas (cluster mode off); ``cluster``: a
cluster-mode replication group of ``shards`` shards; ``serverless``: an ElastiCache Serverless
cache (``aws.elasticache.ServerlessCache``)."""
MAX_CLUSTER_NODES = 500
"""AWS: a cluster-mode replication group holds at most 500 nodes (shards x (1 + replicas));
beyond the default quota (90 nodes) it needs a quota increase ("Quotas for ElastiCache")."""
BURSTABLE_PREFIXES = ("cache.t",)
"""Burstable (CPU-credit) node types: they get a CPUCreditBalance alarm."""
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
# The retention periods CloudWatch Logs accepts.
_LOG_RETENTION: tuple[int, ...] = (
    *(1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827),
    *(2192, 2557, 2922, 3288, 3653),
)
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY = f"({'|'.join(_DAYS)})"
_TIME = r"([01]\d|2[0-3]):([0-5]\d)"
_GROUP_ID = r"[a-z](?!.*--)[a-z0-9-]{0,39}(?<!-)"  # ElastiCache: 1-40, no "--", no trailing "-"


# Bring-your-own resources: ARNs in the standard, China and GovCloud partitions.
_ARN = r"arn:aws(-cn|-us-gov)?"
_REGION = r"[a-z]{2}(-[a-z]+)+-\d"
_KEY_ID = r"(mrk-[0-9a-f]{32}|[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12})"
_KMS_KEY_ARN = rf"{_ARN}:kms:{_REGION}:\d{{12}}:key/{_KEY_ID}"
_SNS_TOPIC_ARN = rf"{_ARN}:sns:{_REGION}:\d{{12}}:[A-Za-z0-9_-]{{1,256}}"
_SNAPSHOT = r"[A-Za-z](?!.*--)[A-Za-z0-9-]{0,254}(?<!-)"
_RDB_S3_ARN = rf"{_ARN}:s3:::[a-z0-9][a-z0-9.-]{{1,61}}[a-z0-9]/\S+\.rdb"
_SUBNET_GROUP_NAME = r"[a-z](?!.*--)[a-z0-9-]{0,254}(?<!-)"


def _private_cidr(value: str) -> str:
    """Inside the private ranges (``infra.cidrs``): the cache port is never offered to the
    internet, whole or in pieces (``0.0.0.0/1`` + ``128.0.0.0/1``)."""
    try:
        net = parse_network(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a valid CIDR (like 10.0.0.0/16)") from None
    if not is_private_network(net):
        raise ValueError(
            f"{net} is not a private network; only networks inside {PRIVATE_NETWORKS_TEXT} "
            "may reach the cache (name the clients' private networks)"
        )
    return str(net)


def _vpc_cidr(value: str) -> str:
    cidr = _private_cidr(value)
    if not 16 <= parse_network(cidr).prefixlen <= 24:
        raise ValueError(f"must be a /16 to /24 network, got {cidr}")
    return cidr


def _minutes(hour: str, minute: str, day: str = "mon") -> int:
    return (_DAYS.index(day) * 24 + int(hour)) * 60 + int(minute)


def _weekly_window(value: str) -> str:
    d1, h1, m1, d2, h2, m2 = re.split("[:-]", value)
    length = (_minutes(h2, m2, d2) - _minutes(h1, m1, d1)) % (7 * 24 * 60)
    if not 60 <= length <= 24 * 60:
        raise ValueError(f"must last 60 minutes to 24 hours, got {length} min")
    return value


def _daily_window(value: str) -> str:
    h1, m1, h2, m2 = re.split("[:-]", value)
    length = (_minutes(h2, m2) - _minutes(h1, m1)) % (24 * 60)
    if length < 60:
        raise ValueError(f"must last at least 60 minutes, got {length} min")
    return value


OWNED_TAGS = ("Project", "Stack", "Environment", "ManagedBy", "Name", "Tier")
"""Tag keys the program sets itself; ``tags`` may not override them."""


def _user_tag(value: str) -> str:
    """``Key=Value`` (AWS's tag characters); not an ``aws:`` key, not a key the program owns."""
    key = value.partition("=")[0]
    if key.lower().startswith("aws:"):
        raise ValueError(f"tag key {key!r}: the aws: prefix is reserved by AWS")
    if key in OWNED_TAGS:
        raise ValueError(f"tag key {key!r} is set by the program ({', '.join(OWNED_TAGS)})")
    return value


OWNED_PARAMETERS = ("maxmemory-policy", "cluster-enabled")
"""Engine parameters the program sets or relies on: ``maxmemoryPolicy`` owns the first, and
``topology`` the second (``yes`` for ``cluster``, the family's ``no`` otherwise)."""


def _extra_parameter(value: str) -> str:
    name = value.partition("=")[0]
    if name in OWNED_PARAMETERS:
        owner = (
            "maxmemoryPolicy"
            if name == "maxmemory-policy"
            else "the program (topology cluster sets it)"
        )
        raise ValueError(f"{name!r} is set by {owner}, not here")
    return value


RESERVED_USERS = ("default", "app")
"""User names the program gives its own RBAC users."""
# Rules that reach past the key prefix (every key, every tenant, the server itself): ``SCAN``,
# ``KEYS`` and ``RANDOMKEY`` list other tenants' keys whatever the key pattern, ``FLUSHALL``
# and ``FLUSHDB`` drop them, ``SELECT``/``SWAPDB``/``MOVE`` leave the database (berthcache.acl).
_GRANTS_PAST_THE_PREFIX = frozenset(
    {"+@all", "allcommands", "+@dangerous", "+@admin", "+@keyspace"}
    | {f"+{c}" for c in ("scan", "keys", "randomkey", "flushall", "flushdb", "select")}
    | {f"+{c}" for c in ("swapdb", "move", "config", "debug", "function", "script", "acl")}
)
# Passwords belong to the program (generated, stored in the user's secret); so does on/off.
_PROGRAM_RULES = ("on", "off", "reset", "nopass", "resetpass", "allkeys", "allchannels")
_KEY_RULE = re.compile(r"(%R|%W|%RW)?~(?P<pattern>\S+)")


def _rbac_user(value: str) -> str:
    """``name=access rules``: the rules an allow-list of command and key rules, with no grant
    that reaches past the key prefix (checked against ``keyPrefix`` by a rule)."""
    name, _, access = value.partition("=")
    if name in RESERVED_USERS:
        raise ValueError(f"user name {name!r} is the program's own ({', '.join(RESERVED_USERS)})")
    for rule in access.split():
        low = rule.lower()
        if low in _GRANTS_PAST_THE_PREFIX or low.split("|")[0] in _GRANTS_PAST_THE_PREFIX:
            raise ValueError(f"user {name!r}: {rule!r} reaches past the key prefix")
        if low in _PROGRAM_RULES or rule[:1] in (">", "<", "#", "!") or rule[:1] == "(":
            raise ValueError(
                f"user {name!r}: {rule!r} is not yours to set (the program sets on, the "
                "password and the key and channel scope; no selectors)"
            )
        if not (rule[:1] in "+-&~" or _KEY_RULE.fullmatch(rule) or low == "resetchannels"):
            raise ValueError(f"user {name!r}: {rule!r} is not an ACL rule (+cmd, -@cat, ~key*)")
    return value


def _threshold(key: str, default: int, lo: int, hi: int, doc: str) -> Setting:
    return Setting(key=key, type="integer", default=default, minimum=lo, maximum=hi, doc=doc)


# The alarm thresholds the catalogue (berthcache.ops.alarm_catalogue) reads by key.
_THRESHOLDS = (
    _threshold(
        "hostCpuBudgetPercent",
        90,
        10,
        100,
        "Host CPU budget; the CPUUtilization alarm fires above budget / vCPUs on <= 2 vCPUs.",
    ),
    _threshold("engineCpuThresholdPercent", 90, 10, 100, "EngineCPUUtilization alarm threshold."),
    _threshold(
        "memoryThresholdPercent",
        80,
        10,
        100,
        "DatabaseMemoryUsagePercentage alarm threshold (noeviction and volatile-* only: "
        "an allkeys-* cache runs near 100% by design and is watched by Evictions instead).",
    ),
    _threshold("currConnectionsThreshold", 5000, 1, 65000, "CurrConnections alarm threshold."),
    _threshold("replicationLagThresholdSeconds", 10, 1, 3600, "ReplicationLag alarm threshold."),
    _threshold("evictionsThreshold", 500, 0, 10_000_000, "Evictions per 5 minutes that alarm."),
    _threshold("swapThresholdMb", 50, 1, 10_240, "SwapUsage alarm threshold in MB (AWS: 50 MB)."),
    _threshold(
        "hitRateThresholdPercent", 80, 1, 99, "Cache hit rate below this alarms (the seed's 80%)."
    ),
    _threshold(
        "serverlessEcpuThresholdPercent",
        80,
        10,
        100,
        "topology serverless: ECPU use, in % of serverlessMaxEcpuPerSecond, that alarms.",
    ),
    _threshold(
        "serverlessStorageThresholdPercent",
        80,
        10,
        100,
        "topology serverless: data stored, in % of serverlessMaxDataStorageGb, that alarms.",
    ),
)
LIMIT_SETTINGS = ("serverlessMaxDataStorageGb", "serverlessMaxEcpuPerSecond")
"""The serverless usage limits; the catalogue's ``percent_of_limit`` alarms read them by key."""
_GROUP = "the replication group"
SETTINGS: tuple[Setting, ...] = (
    Setting(
        key="environment",
        type="string",
        default="dev",
        choices=("dev", "staging", "prod"),
        doc="Stage of the stack; prod protects the group, key and secret from deletion and "
        "requires multiAz.",
    ),
    Setting(
        key="topology",
        type="string",
        default="replication-group",
        choices=TOPOLOGIES,
        replaces="the cache (a new, empty one: keep the old until the apps have moved)",
        doc="replication-group: one primary and numNodes - 1 replicas (cluster mode off); "
        "cluster: cluster mode, shards x (1 + replicasPerShard) nodes behind a configuration "
        "endpoint; serverless: an ElastiCache Serverless cache within the serverless* limits "
        "(authMode rbac). Settings of another topology are refused.",
    ),
    Setting(
        key="engine",
        type="string",
        default="redis",
        choices=("redis", "valkey"),
        doc="Cache engine (valkey needs engineVersion 7.2 or 8.x, redis 7.0 or 7.1).",
    ),
    Setting(
        key="engineVersion",
        type="string",
        default="7.1",
        choices=tuple(v for versions in ENGINE_VERSIONS.values() for v in versions),
        doc="Engine version: Redis 7.0/7.1 (family redis7), Valkey 7.2 (valkey7) or 8.0/8.1/8.2 "
        "(valkey8). Downgrades replace the group.",
    ),
    Setting(
        key="nodeType",
        type="string",
        default="cache.t4g.small",
        choices=tuple(sorted(NODE_VCPUS)),
        doc="Node type, e.g. cache.t4g.small (Graviton). Its vCPUs set the CPUUtilization alarm.",
    ),
    Setting(
        key="numNodes",
        type="integer",
        default=2,
        minimum=2,
        maximum=6,
        doc="Nodes in the group (primary + replicas); automatic failover and multiAz need >= 2.",
    ),
    Setting(
        key="multiAz",
        type="boolean",
        default=True,
        doc="Place replicas in other AZs. Required in prod; dev and staging may turn it off.",
    ),
    Setting(
        key="shards",
        type="integer",
        default=2,
        minimum=1,
        maximum=500,
        doc="topology cluster: shards (node groups) the keyspace is split over; changed online "
        "(resharding moves slots while the cache serves). shards x (1 + replicasPerShard) "
        "<= 500 nodes.",
    ),
    Setting(
        key="replicasPerShard",
        type="integer",
        default=1,
        minimum=1,
        maximum=5,
        doc="topology cluster: replicas of each shard's primary (automatic failover needs 1).",
    ),
    Setting(
        key="serverlessMaxDataStorageGb",
        type="integer",
        default=10,
        minimum=1,
        maximum=5000,
        doc="topology serverless: the most data the cache may hold (GB); past it ElastiCache "
        "evicts (or refuses writes). The storage alarm fires before.",
    ),
    Setting(
        key="serverlessMaxEcpuPerSecond",
        type="integer",
        default=5000,
        minimum=1000,
        maximum=15_000_000,
        doc="topology serverless: the most ElastiCache Processing Units per second the cache "
        "may use (and bill); past it commands are throttled. The ECPU alarm fires before.",
    ),
    Setting(
        key="replicationGroupId",
        type="string",
        default="",
        pattern=f"({_GROUP_ID})?",
        example="berthcache-dev",
        replaces=_GROUP,
        doc="Replication group id (lowercase, <= 40 chars); with topology serverless the "
        "serverless cache's name. Empty: berthcache-<stack>.",
    ),
    Setting(
        key="keyPrefix",
        type="string",
        default="berthcare:",
        pattern=r"[A-Za-z0-9:_.\-]{0,63}:",
        example="berthcare:",
        # Ends with ':' (berthcache.acl.KEY_PREFIX_DELIMITERS): tenant1 would also cover tenant10:.
        doc="The apps' key prefix; in RBAC mode the app user may only touch these keys.",
    ),
    Setting(
        key="appUserChannels",
        type="array",
        default=[],
        pattern=r"[A-Za-z0-9:_.\-]{1,64}",
        example="alerts",
        doc="Bare pub/sub channel names the RBAC app user may use besides its prefix: for "
        "services that publish without it (REDIS_PREFIX_CHANNELS=false, as the seed does).",
    ),
    Setting(
        key="rbacUsers",
        type="array",
        default=[],
        pattern=r"[a-z][a-z0-9-]{0,19}=\S.{0,1000}",
        example="reports=~berthcare:reports:* -@all +get +mget",
        check=_rbac_user,
        doc="More RBAC users (authMode rbac), as name=access rules: an allow-list of commands on "
        "keys (~) and channels (&) under keyPrefix; nothing that reaches past it (+@all, "
        "+@dangerous, +scan, allkeys…). Each gets a generated password in its own secret "
        "(berthcache/<stack>/<group>/<name>), never in outputs.",
    ),
    Setting(
        key="authMode",
        type="string",
        default="token",
        choices=("token", "rbac"),
        doc="token: one AUTH token (rotated in place); rbac: user group with a prefix-limited "
        "app user and the default user disabled.",
    ),
    Setting(
        key="maxmemoryPolicy",
        type="string",
        default="allkeys-lru",
        choices=_MAXMEMORY_POLICIES,
        doc="Eviction policy. allkeys-lru (seed default) may evict sessions under memory "
        "pressure; volatile-lru protects keys without TTL instead.",
    ),
    Setting(
        key="parameters",
        type="array",
        default=[],
        pattern=r"[a-z][a-z0-9-]{0,63}=\S.{0,255}",
        example="notify-keyspace-events=Ex",
        check=_extra_parameter,
        doc="Extra engine parameters for the group's parameter group, as name=value (e.g. "
        "timeout=300); the family's rules apply (AWS checks names and values). Not "
        "maxmemory-policy (use maxmemoryPolicy) nor cluster-enabled.",
    ),
    Setting(
        key="maintenanceWindow",
        type="string",
        default="sun:05:00-sun:06:00",
        pattern=f"{_DAY}:{_TIME}-{_DAY}:{_TIME}",
        example="sun:05:00-sun:06:00",
        check=_weekly_window,
        doc="Weekly maintenance window (UTC), 60 minutes to 24 hours.",
    ),
    Setting(
        key="snapshotWindow",
        type="string",
        default="03:00-04:00",
        pattern=f"{_TIME}-{_TIME}",
        example="03:00-04:00",
        check=_daily_window,
        doc="Daily snapshot window (UTC), at least 60 minutes.",
    ),
    Setting(
        key="dailySnapshotTime",
        type="string",
        default="03:00",
        pattern=_TIME,
        example="03:00",
        doc="topology serverless: when the daily snapshot starts (UTC, HH:MM).",
    ),
    Setting(
        key="finalSnapshot",
        type="string",
        default="auto",
        choices=("auto", "true", "false"),
        doc="Take a final snapshot (<group>-final) when the group is deleted. auto: in prod "
        "only (protected there anyway); true keeps dev/staging data past `pulumi destroy`.",
    ),
    Setting(
        key="restoreFromSnapshot",
        type="string",
        default="",
        pattern=f"({_SNAPSHOT}|{_RDB_S3_ARN})?",
        example="berthcache-prod-final",
        replaces=_GROUP + " (keep it set after the restore: removing it replaces the group too)",
        doc="Create the group from an ElastiCache snapshot (its name) or an .rdb file in S3 "
        "(arn:aws:s3:::bucket/key.rdb). Empty: an empty cache.",
    ),
    Setting(
        key="snapshotRetentionDays",
        type="integer",
        default=7,
        minimum=1,
        maximum=35,
        doc="Days automatic snapshots are kept.",
    ),
    Setting(
        key="logRetentionDays",
        type="integer",
        default=30,
        choices=_LOG_RETENTION,
        doc="Retention of the slow-log and engine-log CloudWatch log groups.",
    ),
    Setting(
        key="vpcId",
        type="string",
        default="",
        pattern="(vpc-[0-9a-f]{8,17})?",
        example="vpc-0123456789abcdef0",
        replaces="the subnet group and security group, and so " + _GROUP,
        doc="Existing VPC id. Empty: create a dedicated VPC with private subnets.",
    ),
    Setting(
        key="subnetIds",
        type="array",
        default=[],
        pattern="subnet-[0-9a-f]{8,17}",
        example="subnet-0123456789abcdef0",
        doc="Existing private subnet ids (>= 2, in different AZs); required with vpcId.",
    ),
    Setting(
        key="vpcCidr",
        type="string",
        default="10.40.0.0/16",
        check=_vpc_cidr,
        replaces="the created VPC and its subnets, and so " + _GROUP,
        doc="CIDR of the VPC created when vpcId is empty; a private network, /16 to /24.",
    ),
    Setting(
        key="azCount",
        type="integer",
        default=2,
        minimum=2,
        maximum=6,
        doc="AZs (and private subnets) of a created VPC.",
    ),
    Setting(
        key="allowedSecurityGroupIds",
        type="array",
        default=[],
        pattern="sg-[0-9a-f]{8,17}",
        example="sg-0123456789abcdef0",
        doc="Security groups whose members may connect on the cache port.",
    ),
    Setting(
        key="allowedCidrs",
        type="array",
        default=[],
        check=_private_cidr,
        doc=f"CIDRs that may connect on the cache port; private networks only "
        f"({PRIVATE_NETWORKS_TEXT}). Empty with a created VPC: the VPC's CIDR.",
    ),
    Setting(
        key="kmsKeyArn",
        type="string",
        default="",
        pattern=f"({_KMS_KEY_ARN})?",
        example="arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        replaces=_GROUP + " (its at-rest key)",
        doc="Your KMS key (a key ARN, not an alias) for the group, snapshots, logs, secret and "
        "alarm topic; the program then creates no key. Its policy must let CloudWatch Logs and "
        "CloudWatch alarms use it (as docs/platform.md shows). Empty: a key per stack.",
    ),
    Setting(
        key="alarmTopicArn",
        type="string",
        default="",
        pattern=f"({_SNS_TOPIC_ARN})?",
        example="arn:aws:sns:eu-west-1:123456789012:platform-alarms",
        doc="Your SNS topic for the alarms; the program then creates no alarm topic (and "
        "subscribes no alarmEmails to it). CloudWatch must be allowed to publish (and to use "
        "its key, if encrypted). Empty: an encrypted topic per stack.",
    ),
    Setting(
        key="eventsTopicArn",
        type="string",
        default="",
        pattern=f"({_SNS_TOPIC_ARN})?",
        example="arn:aws:sns:eu-west-1:123456789012:platform-cache-events",
        doc="Your SNS topic for the group's events; it must NOT be KMS-encrypted (ElastiCache "
        "cannot publish to it) and must let elasticache.amazonaws.com publish. Empty: an "
        "unencrypted topic per stack.",
    ),
    Setting(
        key="securityGroupIds",
        type="array",
        default=[],
        pattern="sg-[0-9a-f]{8,17}",
        example="sg-0123456789abcdef0",
        doc="Your security groups for the group (with vpcId); the program then creates no "
        "security group, and allowedCidrs / allowedSecurityGroupIds do not apply: your groups "
        "say who may connect. Empty: one security group per stack.",
    ),
    Setting(
        key="subnetGroupName",
        type="string",
        default="",
        pattern=f"({_SUBNET_GROUP_NAME})?",
        example="platform-private-cache",
        replaces=_GROUP,
        doc="Your ElastiCache subnet group (with vpcId, instead of subnetIds); the program then "
        "creates no subnet group. Empty: <group>-subnets over subnetIds or the created VPC.",
    ),
    Setting(
        key="alarmEmails",
        type="array",
        default=[],
        pattern=r"[^@\s]+@[^@\s]+\.[^@\s]+",
        example="platform-alerts@example.com",
        doc="E-mail addresses subscribed to the alarm topic.",
    ),
    Setting(
        key="tags",
        type="array",
        default=[],
        pattern=r"[\w .:/+\-@]{1,128}=[\w .:/=+\-@]{0,256}",
        example="team=platform",
        check=_user_tag,
        doc="Your tags, as Key=Value, on every taggable resource (cost allocation, ownership); "
        "the program's own tags (Project, Stack, Environment, ManagedBy, Name) stay.",
    ),
    *_THRESHOLDS,
)
_BY_KEY = {s.key: s for s in SETTINGS}
THRESHOLD_SETTINGS = tuple(s.key for s in _THRESHOLDS)

Violation = tuple[str, str]
Rule = Callable[[Mapping[str, Any], str], Violation | None]
"""(checked values by key, stack name) -> (offending key, message), or None when it holds."""


def engine_has_the_version(v: Mapping[str, Any], stack: str) -> Violation | None:
    versions = ENGINE_VERSIONS[v["engine"]]
    if v["engineVersion"] not in versions:
        return "engineVersion", (
            f"{v['engine']} runs {', '.join(versions)} on ElastiCache, got {v['engineVersion']!r}"
        )
    return None


def prod_is_multi_az(v: Mapping[str, Any], stack: str) -> Violation | None:
    if v["environment"] == "prod" and not v["multiAz"]:
        return "multiAz", (
            "must be true when environment is prod: a single-AZ group loses its primary and "
            "replicas together when that AZ fails"
        )
    return None


def existing_vpc_has_subnets(v: Mapping[str, Any], stack: str) -> Violation | None:
    if v["subnetGroupName"]:
        if v["subnetIds"]:
            return "subnetIds", "set subnetIds or subnetGroupName, not both"
        if not v["vpcId"]:
            return "subnetGroupName", "only valid together with vpcId (the group's VPC)"
        return None
    if v["vpcId"] and len(v["subnetIds"]) < 2:
        return "subnetIds", "an existing VPC needs at least 2 private subnets in 2 AZs"
    if not v["vpcId"] and v["subnetIds"]:
        return "subnetIds", "only valid together with vpcId"
    return None


def own_security_groups_come_alone(v: Mapping[str, Any], stack: str) -> Violation | None:
    if not v["securityGroupIds"]:
        return None
    if not v["vpcId"]:
        return "securityGroupIds", "only valid together with vpcId (the groups' VPC)"
    for key in ("allowedCidrs", "allowedSecurityGroupIds"):
        if v[key]:
            return key, (
                "does not apply with securityGroupIds: the program adds no rule to your "
                "security groups; allow the clients there"
            )
    return None


def existing_vpc_admits_someone(v: Mapping[str, Any], stack: str) -> Violation | None:
    if v["securityGroupIds"]:
        return None
    if v["vpcId"] and not v["allowedCidrs"] and not v["allowedSecurityGroupIds"]:
        return "allowedCidrs", (
            "with an existing VPC, set allowedCidrs or allowedSecurityGroupIds: nothing could "
            "reach the cache otherwise"
        )
    return None


def group_id_from_stack_is_valid(v: Mapping[str, Any], stack: str) -> Violation | None:
    derived = _group_id(v, stack)
    if not re.fullmatch(_GROUP_ID, derived):
        return "replicationGroupId", (
            f"{derived!r} (from the stack name) must be 1-40 lowercase letters, digits or single "
            "hyphens, starting with a letter and not ending with a hyphen: set it explicitly"
        )
    return None


def parameter_names_are_unique(v: Mapping[str, Any], stack: str) -> Violation | None:
    names = [p.partition("=")[0] for p in v["parameters"]]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        return "parameters", f"each parameter once; repeated: {', '.join(twice)}"
    return None


def rbac_users_stay_under_the_prefix(v: Mapping[str, Any], stack: str) -> Violation | None:
    if not v["rbacUsers"]:
        return None
    if v["authMode"] != "rbac":
        return "rbacUsers", "only valid with authMode rbac"
    names = [u.partition("=")[0] for u in v["rbacUsers"]]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        return "rbacUsers", f"each user once; repeated: {', '.join(twice)}"
    prefix = glob_escape(v["keyPrefix"])
    bare = {glob_escape(c) for c in v["appUserChannels"]}
    for user in v["rbacUsers"]:
        name, _, access = user.partition("=")
        for rule in access.split():
            key = _KEY_RULE.fullmatch(rule)
            if key and not key["pattern"].startswith(prefix):
                return "rbacUsers", f"user {name!r}: key pattern {rule!r} is not under {prefix}"
            if rule.startswith("&") and not (rule[1:].startswith(prefix) or rule[1:] in bare):
                return "rbacUsers", (
                    f"user {name!r}: channel {rule!r} is neither under {prefix} nor one of "
                    "appUserChannels"
                )
    return None


def emails_have_a_topic(v: Mapping[str, Any], stack: str) -> Violation | None:
    no_events_topic = v["eventsTopicArn"] or v["topology"] == "serverless"
    if v["alarmEmails"] and v["alarmTopicArn"] and no_events_topic:
        return "alarmEmails", (
            "no topic of this stack to subscribe them to (alarmTopicArn is yours, and the "
            "events topic too or, serverless, none): subscribe them to your topics"
        )
    return None


def tag_keys_are_unique(v: Mapping[str, Any], stack: str) -> Violation | None:
    keys = [t.partition("=")[0] for t in v["tags"]]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        return "tags", f"each tag key once; repeated: {', '.join(twice)}"
    return None


def cluster_fits_the_node_limit(v: Mapping[str, Any], stack: str) -> Violation | None:
    if v["topology"] != "cluster":
        return None
    nodes = v["shards"] * (1 + v["replicasPerShard"])
    if nodes > MAX_CLUSTER_NODES:
        return "shards", (
            f"{v['shards']} shards x (1 + {v['replicasPerShard']} replicas) = {nodes} nodes; a "
            f"cluster holds at most {MAX_CLUSTER_NODES}: fewer shards or replicasPerShard"
        )
    return None


def serverless_uses_rbac(v: Mapping[str, Any], stack: str) -> Violation | None:
    if v["topology"] == "serverless" and v["authMode"] != "rbac":
        return "authMode", (
            "must be rbac with topology serverless: a serverless cache takes no AUTH token, "
            "only an RBAC user group (without one any client in the VPC could connect)"
        )
    return None


def serverless_restores_from_an_arn(v: Mapping[str, Any], stack: str) -> Violation | None:
    restore = v["restoreFromSnapshot"]
    if v["topology"] == "serverless" and restore and not restore.startswith("arn:"):
        return "restoreFromSnapshot", (
            "with topology serverless, an ARN (arn:aws:s3:::bucket/key.rdb): a serverless cache "
            "is created from snapshot ARNs, not from a snapshot name"
        )
    return None


# numNodes' minimum of 2 already gives automatic failover and multiAz their replica.
RULES: tuple[Rule, ...] = (
    engine_has_the_version,
    prod_is_multi_az,
    existing_vpc_has_subnets,
    own_security_groups_come_alone,
    existing_vpc_admits_someone,
    group_id_from_stack_is_valid,
    tag_keys_are_unique,
    emails_have_a_topic,
    rbac_users_stay_under_the_prefix,
    parameter_names_are_unique,
    cluster_fits_the_node_limit,
    serverless_uses_rbac,
    serverless_restores_from_an_arn,
)

# Settings only one topology reads: refused with any other when set at all.
_ONLY_FOR: Mapping[str, str] = {
    "shards": "cluster",
    "replicasPerShard": "cluster",
    "serverlessMaxDataStorageGb": "serverless",
    "serverlessMaxEcpuPerSecond": "serverless",
    "dailySnapshotTime": "serverless",
    "serverlessEcpuThresholdPercent": "serverless",
    "serverlessStorageThresholdPercent": "serverless",
}
# Node settings a topology has no use for: refused there unless left at their default (a stack
# file may spell the defaults out), with what takes their place.
_UNUSED: Mapping[str, Mapping[str, str]] = {
    "cluster": {"numNodes": "use shards and replicasPerShard"},
    "serverless": {
        "numNodes": "a serverless cache has no nodes (serverlessMaxEcpuPerSecond bounds it)",
        "nodeType": "a serverless cache has no nodes (serverlessMaxEcpuPerSecond bounds it)",
        "multiAz": "a serverless cache always runs across AZs",
        "maxmemoryPolicy": "a serverless cache has no parameter group (it evicts volatile-lru)",
        "parameters": "a serverless cache has no parameter group",
        "maintenanceWindow": "AWS patches a serverless cache without a window",
        "snapshotWindow": "use dailySnapshotTime",
        "logRetentionDays": "a serverless cache delivers no slow or engine logs",
        "subnetGroupName": "a serverless cache takes subnetIds (with vpcId), not a subnet group",
        "eventsTopicArn": "a serverless cache sends its events to EventBridge, not SNS",
    },
}


def topology_settings_fit(v: Mapping[str, Any], explicit: frozenset[str]) -> Violation | None:
    """Each setting given (``explicit``) is one the topology reads: ``shards`` with
    replication-group, ``nodeType`` with serverless... are refused, naming what applies."""
    topology = v["topology"]
    for key in sorted(explicit):
        wanted = _ONLY_FOR.get(key)
        if wanted is not None and wanted != topology:
            return key, f"only applies with topology {wanted} (topology is {topology})"
    for key, instead in _UNUSED.get(topology, {}).items():
        if v[key] != _BY_KEY[key].default:
            return key, f"does not apply with topology {topology}: {instead}"
    if topology == "serverless" and v["finalSnapshot"] == "true":
        return "finalSnapshot", (
            "the provider deletes a serverless cache without a final snapshot: take one "
            "yourself first (aws elasticache create-serverless-snapshot)"
        )
    return None


def _final_snapshot(v: Mapping[str, Any]) -> bool:
    """``auto``: prod only (today's behaviour); otherwise as set, in any stage. Never for a
    serverless cache (the provider deletes it without one)."""
    if v["topology"] == "serverless":
        return False
    if v["finalSnapshot"] == "auto":
        return bool(v["environment"] == "prod")
    return bool(v["finalSnapshot"] == "true")


def _group_id(v: Mapping[str, Any], stack: str) -> str:
    return str(v["replicationGroupId"] or f"berthcache-{stack}".lower())


@dataclasses.dataclass(frozen=True, kw_only=True)
class StackConfig:
    """The validated settings of one stack (see ``SETTINGS`` for what each means)."""

    stack: str
    environment: str
    topology: str
    """``replication-group``, ``cluster`` or ``serverless`` (``TOPOLOGIES``)."""
    shards: int
    """Cluster: node groups; 1 otherwise."""
    replicas_per_shard: int
    """Cluster: replicas per shard; ``num_nodes - 1`` otherwise."""
    serverless_max_data_storage_gb: int
    serverless_max_ecpu_per_second: int
    daily_snapshot_time: str
    engine: str
    engine_version: str
    node_type: str
    node_vcpus: int
    num_nodes: int
    multi_az: bool
    replication_group_id: str
    key_prefix: str
    auth_mode: str
    app_user_channels: tuple[str, ...]
    rbac_users: tuple[tuple[str, str], ...]
    """More RBAC users: (name, access rules without ``on``)."""
    maxmemory_policy: str
    extra_parameters: Mapping[str, str]
    maintenance_window: str
    final_snapshot: bool
    restore_from_snapshot: str | None
    """An ElastiCache snapshot name or an S3 ``.rdb`` ARN to create the group from."""
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
    kms_key_arn: str | None
    """Your key, or ``None``: the program creates one."""
    alarm_topic_arn: str | None
    events_topic_arn: str | None
    security_group_ids: tuple[str, ...]
    """Your security groups, or empty: the program creates one."""
    subnet_group_name: str | None
    user_tags: Mapping[str, str]
    thresholds: Mapping[str, float]

    @property
    def protect(self) -> bool:
        """Production stacks are protected against accidental deletion."""
        return self.environment == "prod"

    @property
    def cluster_nodes(self) -> int:
        """Every node of the group: ``numNodes``, or shards x (1 + replicas) in cluster mode;
        0 for serverless (no nodes)."""
        if self.topology == "serverless":
            return 0
        return self.shards * (1 + self.replicas_per_shard)

    @property
    def limits(self) -> dict[str, float]:
        """The serverless usage limits by setting key (``LIMIT_SETTINGS``)."""
        return {
            "serverlessMaxDataStorageGb": float(self.serverless_max_data_storage_gb),
            "serverlessMaxEcpuPerSecond": float(self.serverless_max_ecpu_per_second),
        }

    @property
    def burstable(self) -> bool:
        """A CPU-credit (``cache.t*``) node type."""
        return self.node_type.startswith(BURSTABLE_PREFIXES)

    @property
    def tags(self) -> dict[str, str]:
        """The user's ``tags`` plus the program's own (which they cannot override)."""
        return {
            **self.user_tags,
            "Project": "berthcache",
            "Stack": self.stack,
            "Environment": self.environment,
            "ManagedBy": "pulumi",
        }


_REGIONAL_ARNS = ("kmsKeyArn", "alarmTopicArn", "eventsTopicArn")


def _arns_in_region(v: Mapping[str, Any], region: str) -> Violation | None:
    """A key or topic you bring must be in the stack's region: ElastiCache, Logs and
    CloudWatch alarm actions use only keys and topics of their own region."""
    for key in _REGIONAL_ARNS:
        if v[key] and v[key].split(":")[3] != region:
            return key, f"is in {v[key].split(':')[3]}, but the stack runs in {region} (aws:region)"
    return None


def load(raw: Mapping[str, str], *, stack: str, region: str | None = None) -> StackConfig:
    """Validate raw settings (unnamespaced key -> text, as Pulumi passes them); ``region``
    (``aws:region``), when known, is where the ARNs you bring must be."""
    unknown = sorted(set(raw) - set(_BY_KEY))
    if unknown:
        raise setting_error(
            NAMESPACE, unknown[0], f"unknown setting; known: {', '.join(sorted(_BY_KEY))}"
        )
    v = {s.key: parse_setting(s, raw.get(s.key), namespace=NAMESPACE) for s in SETTINGS}
    for rule in RULES:
        violation = rule(v, stack)
        if violation is not None:
            raise setting_error(NAMESPACE, *violation)
    if (violation := topology_settings_fit(v, frozenset(raw))) is not None:
        raise setting_error(NAMESPACE, *violation)
    cluster = v["topology"] == "cluster"
    if region and (violation := _arns_in_region(v, region)) is not None:
        raise setting_error(NAMESPACE, *violation)
    # A created VPC admits its own CIDR when nobody is named (an existing one must name them).
    named = v["allowedSecurityGroupIds"] or v["securityGroupIds"]
    cidrs = v["allowedCidrs"] or ([] if named else [v["vpcCidr"]])
    return StackConfig(
        stack=stack,
        environment=v["environment"],
        topology=v["topology"],
        shards=v["shards"] if cluster else 1,
        replicas_per_shard=v["replicasPerShard"] if cluster else v["numNodes"] - 1,
        serverless_max_data_storage_gb=v["serverlessMaxDataStorageGb"],
        serverless_max_ecpu_per_second=v["serverlessMaxEcpuPerSecond"],
        daily_snapshot_time=v["dailySnapshotTime"],
        engine=v["engine"],
        engine_version=v["engineVersion"],
        node_type=v["nodeType"],
        node_vcpus=NODE_VCPUS[v["nodeType"]],
        num_nodes=v["numNodes"],
        multi_az=v["multiAz"],
        replication_group_id=_group_id(v, stack),
        key_prefix=v["keyPrefix"],
        auth_mode=v["authMode"],
        app_user_channels=tuple(v["appUserChannels"]),
        rbac_users=tuple((u.partition("=")[0], u.partition("=")[2]) for u in v["rbacUsers"]),
        maxmemory_policy=v["maxmemoryPolicy"],
        extra_parameters=dict(p.partition("=")[::2] for p in v["parameters"]),
        maintenance_window=v["maintenanceWindow"],
        final_snapshot=_final_snapshot(v),
        restore_from_snapshot=v["restoreFromSnapshot"] or None,
        snapshot_window=v["snapshotWindow"],
        snapshot_retention_days=v["snapshotRetentionDays"],
        log_retention_days=v["logRetentionDays"],
        vpc_id=v["vpcId"] or None,
        subnet_ids=tuple(v["subnetIds"]),
        vpc_cidr=v["vpcCidr"],
        az_count=v["azCount"],
        allowed_security_group_ids=tuple(v["allowedSecurityGroupIds"]),
        allowed_cidrs=tuple(cidrs),
        alarm_emails=tuple(v["alarmEmails"]),
        kms_key_arn=v["kmsKeyArn"] or None,
        alarm_topic_arn=v["alarmTopicArn"] or None,
        events_topic_arn=v["eventsTopicArn"] or None,
        security_group_ids=tuple(v["securityGroupIds"]),
        subnet_group_name=v["subnetGroupName"] or None,
        user_tags=dict(t.partition("=")[::2] for t in v["tags"]),
        thresholds={key: float(v[key]) for key in THRESHOLD_SETTINGS},
    )


def from_pulumi(get: Callable[[str], str | None] | None = None) -> StackConfig:
    """Read and validate this stack's settings from Pulumi config."""
    getter = get or pulumi.Config(NAMESPACE).get
    raw = {s.key: val for s in SETTINGS if (val := getter(s.key)) is not None}
    return load(raw, stack=pulumi.get_stack(), region=pulumi.Config("aws").get("region"))


def pulumi_config_block() -> dict[str, Any]:
    """``Pulumi.yaml``'s ``config:`` block as the table declares it."""
    return {s.key: s.pulumi_declaration() for s in SETTINGS}


if __name__ == "__main__":
    # `python -m infra.config` prints docs/platform.md's table; `... pulumi-yaml` the config block.
    import sys

    import yaml

    if sys.argv[1:] == ["pulumi-yaml"]:
        block = {"config": pulumi_config_block()}
        print(yaml.safe_dump(block, sort_keys=False, width=100, allow_unicode=True), end="")
    else:
        print(markdown_table(SETTINGS))
