"""The alarm catalogue: every alarm the program creates per node (or per serverless cache),
as data in one place.

The program, the dashboard, the policy pack, the runbooks (``runbooks.md`` beside this module,
shipped in the package) and the ops CLI all read this list, so an alarm cannot exist without a
runbook section (``src/berthcache/ops/runbooks.md#<runbook_anchor>``; a test checks every anchor
has its heading). Sources: AWS's recommended ElastiCache (Redis OSS)
alarms and the seed module's monitoring list (hit rate above 80%, memory, connections).

``threshold_rule``:
  * ``setting``  - the threshold is the stack setting ``threshold_setting``;
  * ``per_vcpu`` - CPUUtilization: Redis runs commands on one core, so on nodes with 2 vCPUs or
    fewer the host budget (``hostCpuBudgetPercent``) is divided by the vCPUs; larger nodes are
    watched by EngineCPUUtilization and keep the whole budget here;
  * ``fixed``    - ``fixed_threshold`` (any non-zero count of shaped packets matters);
  * ``percent_of_limit`` - serverless: ``threshold_setting`` percent of the usage limit
    ``limit_setting`` (``serverlessMaxEcpuPerSecond``, ``serverlessMaxDataStorageGb``), in the
    metric's unit (``unit_scale``: ECPUs per second -> per period, GB -> bytes).

``scope`` says what an alarm watches:
  * ``node``       - every node of a replication group, one shard or cluster mode (dimensions
    ``CacheClusterId`` + ``CacheNodeId``);
  * ``serverless`` - a serverless cache as a whole (dimension ``clusterId``: AWS, "Serverless
    metrics and events for Valkey and Redis OSS"), named ``<cache>-000-<key>``.

``only_when`` says which groups get an alarm (``specs_for``):
  * ``always``;
  * ``memory-bounded`` - eviction policy ``noeviction`` or ``volatile-*``: an ``allkeys-*`` cache
    fills its memory by design (a warm cache sits near 100%), so DatabaseMemoryUsagePercentage
    would never leave ALARM there; Evictions and the hit rate watch it instead;
  * ``burstable``  - ``cache.t*`` node types, which run on CPU credits (CPUCreditBalance).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Literal

__all__ = [
    "CATALOGUE",
    "RUNBOOK_PATH",
    "AlarmSpec",
    "by_key",
    "is_allkeys_policy",
    "is_burstable",
    "runbook_url",
    "serverless_specs",
    "specs_for",
    "threshold_for",
]

RUNBOOK_PATH = "src/berthcache/ops/runbooks.md"

Comparison = Literal["GreaterThanThreshold", "LessThanThreshold"]
MissingData = Literal["missing", "breaching", "notBreaching", "ignore"]
OnlyWhen = Literal["always", "memory-bounded", "burstable"]
Scope = Literal["node", "serverless"]
ThresholdRule = Literal["setting", "per_vcpu", "fixed", "percent_of_limit"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class AlarmSpec:
    """One per-node (or per serverless cache) alarm. ``metric`` is the CloudWatch metric, or
    ``None`` for metric math."""

    key: str
    title: str
    metric: str | None
    statistic: str
    comparison: Comparison
    threshold_rule: ThresholdRule
    threshold_setting: str | None
    fixed_threshold: float | None
    unit_scale: float
    period_seconds: int
    evaluation_periods: int
    datapoints_to_alarm: int
    treat_missing_data: MissingData
    missing_data_reason: str
    runbook_anchor: str
    meaning: str
    first_steps: str
    math_expression: str | None = None
    math_metrics: tuple[str, ...] = ()
    only_when: OnlyWhen = "always"
    scope: Scope = "node"
    limit_setting: str | None = None
    """``percent_of_limit``: the usage limit setting the percentage applies to."""

    @property
    def dashboard_metrics(self) -> tuple[str, ...]:
        """The CloudWatch metrics this alarm watches (what the dashboard must show)."""
        return (self.metric,) if self.metric else self.math_metrics


NAMESPACE = "AWS/ElastiCache"

CATALOGUE: tuple[AlarmSpec, ...] = (
    AlarmSpec(
        key="cpu-utilization",
        title="CPU utilization",
        metric="CPUUtilization",
        statistic="Average",
        comparison="GreaterThanThreshold",
        threshold_rule="per_vcpu",
        threshold_setting="hostCpuBudgetPercent",
        fixed_threshold=None,
        unit_scale=1.0,
        period_seconds=60,
        evaluation_periods=5,
        datapoints_to_alarm=5,
        treat_missing_data="missing",
        missing_data_reason="a node that stops reporting keeps its last state; "
        "node health is covered by ElastiCache events",
        runbook_anchor="cpu-utilization",
        meaning="The host's CPU is above its budget; on small nodes Redis' single command "
        "thread is close to saturation and latency rises.",
        first_steps="Check EngineCPUUtilization and the slow log; look for expensive commands "
        "(large MGET/HGETALL, Lua scripts); scale up the node type if load is organic.",
    ),
    AlarmSpec(
        key="engine-cpu-utilization",
        title="Engine CPU utilization",
        metric="EngineCPUUtilization",
        statistic="Average",
        comparison="GreaterThanThreshold",
        threshold_rule="setting",
        threshold_setting="engineCpuThresholdPercent",
        fixed_threshold=None,
        unit_scale=1.0,
        period_seconds=60,
        evaluation_periods=5,
        datapoints_to_alarm=5,
        treat_missing_data="missing",
        missing_data_reason="keeps the last state rather than flapping on a delayed datapoint",
        runbook_anchor="engine-cpu-utilization",
        meaning="The Redis engine thread is busy most of the time; commands queue and clients "
        "time out.",
        first_steps="Read the slow log (berthcache-ops or the slow-log log group); find hot "
        "keys and O(N) commands; add replicas for reads or scale up.",
    ),
    AlarmSpec(
        key="database-memory-usage",
        title="Database memory usage",
        metric="DatabaseMemoryUsagePercentage",
        statistic="Average",
        comparison="GreaterThanThreshold",
        threshold_rule="setting",
        threshold_setting="memoryThresholdPercent",
        fixed_threshold=None,
        unit_scale=1.0,
        period_seconds=60,
        evaluation_periods=5,
        datapoints_to_alarm=5,
        treat_missing_data="missing",
        missing_data_reason="keeps the last state rather than flapping on a delayed datapoint",
        runbook_anchor="database-memory-usage",
        meaning="The dataset is near maxmemory; evictions (or OOM errors with noeviction) follow.",
        first_steps="Check Evictions and key counts per prefix; confirm TTLs follow the "
        "guidelines (session 7 d, API 5 min); scale up if the working set grew.",
        only_when="memory-bounded",
    ),
    AlarmSpec(
        key="current-connections",
        title="Current connections",
        metric="CurrConnections",
        statistic="Maximum",
        comparison="GreaterThanThreshold",
        threshold_rule="setting",
        threshold_setting="currConnectionsThreshold",
        fixed_threshold=None,
        unit_scale=1.0,
        period_seconds=60,
        evaluation_periods=5,
        datapoints_to_alarm=5,
        treat_missing_data="breaching",
        missing_data_reason="a node that reports no connection count is unreachable: page",
        runbook_anchor="current-connections",
        meaning="Clients hold more connections than expected: a connection leak or a retry storm.",
        first_steps="Compare with NewConnections; check app deploys and pool sizes "
        "(max_connections); look for reconnect loops in app logs.",
    ),
    AlarmSpec(
        key="replication-lag",
        title="Replication lag",
        metric="ReplicationLag",
        statistic="Maximum",
        comparison="GreaterThanThreshold",
        threshold_rule="setting",
        threshold_setting="replicationLagThresholdSeconds",
        fixed_threshold=None,
        unit_scale=1.0,
        period_seconds=60,
        evaluation_periods=3,
        datapoints_to_alarm=3,
        treat_missing_data="notBreaching",
        missing_data_reason="only replicas report it; the primary's missing data is normal",
        runbook_anchor="replication-lag",
        meaning="A replica is behind the primary; reads from it are stale and a failover "
        "would lose writes.",
        first_steps="Check the primary's write rate and NetworkBandwidthOutAllowanceExceeded; "
        "look for large writes; consider a bigger node type.",
    ),
    AlarmSpec(
        key="evictions",
        title="Evictions",
        metric="Evictions",
        statistic="Sum",
        comparison="GreaterThanThreshold",
        threshold_rule="setting",
        threshold_setting="evictionsThreshold",
        fixed_threshold=None,
        unit_scale=1.0,
        period_seconds=300,
        evaluation_periods=1,
        datapoints_to_alarm=1,
        treat_missing_data="notBreaching",
        missing_data_reason="no datapoint means no evictions",
        runbook_anchor="evictions",
        meaning="Keys are evicted to make room: with allkeys-lru even sessions can go.",
        first_steps="Check DatabaseMemoryUsagePercentage; find keys without TTL; "
        "scale up or switch maxmemoryPolicy to volatile-lru to protect sessions.",
    ),
    AlarmSpec(
        key="swap-usage",
        title="Swap usage",
        metric="SwapUsage",
        statistic="Maximum",
        comparison="GreaterThanThreshold",
        threshold_rule="setting",
        threshold_setting="swapThresholdMb",
        fixed_threshold=None,
        unit_scale=1024 * 1024,
        period_seconds=300,
        evaluation_periods=1,
        datapoints_to_alarm=1,
        treat_missing_data="missing",
        missing_data_reason="keeps the last state rather than flapping on a delayed datapoint",
        runbook_anchor="swap-usage",
        meaning="The host swaps; Redis latency becomes erratic.",
        first_steps="Check reserved memory (reserved-memory-percent) and FreeableMemory; "
        "scale up the node type.",
    ),
    AlarmSpec(
        key="cache-hit-rate",
        title="Cache hit rate",
        metric=None,
        statistic="Sum",
        comparison="LessThanThreshold",
        threshold_rule="setting",
        threshold_setting="hitRateThresholdPercent",
        fixed_threshold=None,
        unit_scale=1.0,
        period_seconds=300,
        evaluation_periods=3,
        datapoints_to_alarm=3,
        treat_missing_data="notBreaching",
        missing_data_reason="no hits and no misses means no traffic, not a bad hit rate",
        runbook_anchor="cache-hit-rate",
        meaning="Fewer than the seed's 80% of reads are hits: the cache is not saving the "
        "backend work (keys expire too early, are evicted, or are never cached).",
        first_steps="Check Evictions and TTLs (API responses 5 min); check invalidation "
        "storms after deploys; compare with the app's ResponseCache stats.",
        math_expression="100 * hits / (hits + misses)",
        math_metrics=("CacheHits", "CacheMisses"),
    ),
    AlarmSpec(
        key="cpu-credit-balance",
        title="CPU credit balance",
        metric="CPUCreditBalance",
        statistic="Minimum",
        comparison="LessThanThreshold",
        threshold_rule="fixed",
        threshold_setting=None,
        fixed_threshold=10.0,
        unit_scale=1.0,
        period_seconds=300,
        evaluation_periods=2,
        datapoints_to_alarm=2,
        treat_missing_data="missing",
        missing_data_reason="keeps the last state rather than flapping on a delayed datapoint",
        runbook_anchor="cpu-credit-balance",
        meaning="A burstable (cache.t*) node has almost spent its CPU credits; it is about to "
        "be held to its baseline CPU and latency will jump.",
        first_steps="Check CPUUtilization against the node type's baseline; find the load "
        "that burns credits (slow log); move to a non-burstable node type (m7g/r7g).",
        only_when="burstable",
    ),
    AlarmSpec(
        key="network-bandwidth-in-allowance-exceeded",
        title="Network bandwidth in allowance exceeded",
        metric="NetworkBandwidthInAllowanceExceeded",
        statistic="Sum",
        comparison="GreaterThanThreshold",
        threshold_rule="fixed",
        threshold_setting=None,
        fixed_threshold=0.0,
        unit_scale=1.0,
        period_seconds=300,
        evaluation_periods=1,
        datapoints_to_alarm=1,
        treat_missing_data="notBreaching",
        missing_data_reason="no datapoint means no packets were shaped",
        runbook_anchor="network-bandwidth-in-allowance-exceeded",
        meaning="Inbound packets were queued or dropped because the node exceeded its "
        "network allowance.",
        first_steps="Look for large values being written; batch less per pipeline; "
        "move to a node type with more bandwidth.",
    ),
    AlarmSpec(
        key="network-bandwidth-out-allowance-exceeded",
        title="Network bandwidth out allowance exceeded",
        metric="NetworkBandwidthOutAllowanceExceeded",
        statistic="Sum",
        comparison="GreaterThanThreshold",
        threshold_rule="fixed",
        threshold_setting=None,
        fixed_threshold=0.0,
        unit_scale=1.0,
        period_seconds=300,
        evaluation_periods=1,
        datapoints_to_alarm=1,
        treat_missing_data="notBreaching",
        missing_data_reason="no datapoint means no packets were shaped",
        runbook_anchor="network-bandwidth-out-allowance-exceeded",
        meaning="Outbound packets were queued or dropped: large reads or replication traffic "
        "exceed the node's network allowance.",
        first_steps="Look for large values read often (hot keys); spread reads over replicas; "
        "move to a node type with more bandwidth.",
    ),
    AlarmSpec(
        key="serverless-ecpu-usage",
        title="Serverless ECPU usage",
        metric="ElastiCacheProcessingUnits",
        statistic="Sum",
        comparison="GreaterThanThreshold",
        threshold_rule="percent_of_limit",
        threshold_setting="serverlessEcpuThresholdPercent",
        limit_setting="serverlessMaxEcpuPerSecond",
        fixed_threshold=None,
        unit_scale=60.0,  # the limit is per second; the datapoint sums a 60 s period
        period_seconds=60,
        evaluation_periods=5,
        datapoints_to_alarm=5,
        treat_missing_data="notBreaching",
        missing_data_reason="no datapoint means no commands, hence no ECPUs",
        runbook_anchor="serverless-ecpu-usage",
        meaning="The serverless cache uses most of its ECPU-per-second limit; at the limit "
        "ElastiCache throttles commands.",
        first_steps="Check ThrottledCmds and the slow commands (large values, O(N) commands "
        "cost more ECPUs); raise serverlessMaxEcpuPerSecond if the load is organic.",
        scope="serverless",
    ),
    AlarmSpec(
        key="serverless-data-storage-usage",
        title="Serverless data storage usage",
        metric="BytesUsedForCache",
        statistic="Maximum",
        comparison="GreaterThanThreshold",
        threshold_rule="percent_of_limit",
        threshold_setting="serverlessStorageThresholdPercent",
        limit_setting="serverlessMaxDataStorageGb",
        fixed_threshold=None,
        unit_scale=1e9,  # GB -> bytes (decimal GB: the alarm fires a little early, never late)
        period_seconds=300,
        evaluation_periods=2,
        datapoints_to_alarm=2,
        treat_missing_data="missing",
        missing_data_reason="keeps the last state rather than flapping on a delayed datapoint",
        runbook_anchor="serverless-data-storage-usage",
        meaning="The serverless cache holds most of the data its storage limit allows; at the "
        "limit it evicts keys (or refuses writes).",
        first_steps="Check Evictions and key counts per prefix; confirm TTLs follow the "
        "guidelines (session 7 d, API 5 min); raise serverlessMaxDataStorageGb if the data grew.",
        scope="serverless",
    ),
    AlarmSpec(
        key="serverless-throttled-commands",
        title="Serverless throttled commands",
        metric="ThrottledCmds",
        statistic="Sum",
        comparison="GreaterThanThreshold",
        threshold_rule="fixed",
        threshold_setting=None,
        fixed_threshold=0.0,
        unit_scale=1.0,
        period_seconds=60,
        evaluation_periods=5,
        datapoints_to_alarm=3,
        treat_missing_data="notBreaching",
        missing_data_reason="no datapoint means nothing was throttled",
        runbook_anchor="serverless-throttled-commands",
        meaning="ElastiCache throttled commands in 3 of the last 5 minutes: the load grows "
        "faster than the cache scales, or it is held at serverlessMaxEcpuPerSecond.",
        first_steps="Compare ElastiCacheProcessingUnits with the ECPU limit; raise the limit "
        "or its minimum ahead of known peaks; smooth bursts (client-side batching).",
        scope="serverless",
    ),
    AlarmSpec(
        key="serverless-current-connections",
        title="Serverless current connections",
        metric="CurrConnections",
        statistic="Maximum",
        comparison="GreaterThanThreshold",
        threshold_rule="setting",
        threshold_setting="currConnectionsThreshold",
        fixed_threshold=None,
        unit_scale=1.0,
        period_seconds=60,
        evaluation_periods=5,
        datapoints_to_alarm=5,
        treat_missing_data="missing",
        missing_data_reason="keeps the last state rather than flapping on a delayed datapoint",
        runbook_anchor="serverless-current-connections",
        meaning="Clients hold more connections to the serverless cache than expected: a "
        "connection leak or a retry storm (AWS caps a serverless cache at 65,000).",
        first_steps="Compare with NewConnections; check app deploys and pool sizes "
        "(max_connections); look for reconnect loops in app logs.",
        scope="serverless",
    ),
    AlarmSpec(
        key="serverless-cache-hit-rate",
        title="Serverless cache hit rate",
        metric="CacheHitRate",
        statistic="Average",
        comparison="LessThanThreshold",
        threshold_rule="setting",
        threshold_setting="hitRateThresholdPercent",
        fixed_threshold=None,
        unit_scale=1.0,
        period_seconds=300,
        evaluation_periods=3,
        datapoints_to_alarm=3,
        treat_missing_data="notBreaching",
        missing_data_reason="no hits and no misses means no traffic, not a bad hit rate",
        runbook_anchor="serverless-cache-hit-rate",
        meaning="Fewer than the seed's 80% of reads on the serverless cache are hits: the "
        "cache is not saving the backend work.",
        first_steps="Check Evictions and TTLs (API responses 5 min); check invalidation "
        "storms after deploys; compare with the app's ResponseCache stats.",
        scope="serverless",
    ),
    AlarmSpec(
        key="serverless-evictions",
        title="Serverless evictions",
        metric="Evictions",
        statistic="Sum",
        comparison="GreaterThanThreshold",
        threshold_rule="setting",
        threshold_setting="evictionsThreshold",
        fixed_threshold=None,
        unit_scale=1.0,
        period_seconds=300,
        evaluation_periods=1,
        datapoints_to_alarm=1,
        treat_missing_data="notBreaching",
        missing_data_reason="no datapoint means no evictions",
        runbook_anchor="serverless-evictions",
        meaning="The serverless cache evicts keys: it is at its data storage limit.",
        first_steps="Check BytesUsedForCache against serverlessMaxDataStorageGb; find keys "
        "without TTL; raise the limit.",
        scope="serverless",
    ),
)


def by_key(key: str) -> AlarmSpec:
    """The catalogue entry with ``key``; ``KeyError`` naming it otherwise."""
    for spec in CATALOGUE:
        if spec.key == key:
            return spec
    raise KeyError(f"no alarm {key!r} in the catalogue")


def is_allkeys_policy(maxmemory_policy: str) -> bool:
    """``allkeys-*``: any key may be evicted, so memory use near 100% is the normal state."""
    return maxmemory_policy.startswith("allkeys-")


def is_burstable(node_type: str) -> bool:
    """``cache.t*`` node types run on CPU credits."""
    return node_type.startswith("cache.t")


def specs_for(maxmemory_policy: str, node_type: str) -> tuple[AlarmSpec, ...]:
    """The per-node catalogue entries a group with this eviction policy and node type gets."""

    def applies(spec: AlarmSpec) -> bool:
        if spec.scope != "node":
            return False
        if spec.only_when == "memory-bounded":
            return not is_allkeys_policy(maxmemory_policy)
        if spec.only_when == "burstable":
            return is_burstable(node_type)
        return True

    return tuple(spec for spec in CATALOGUE if applies(spec))


def serverless_specs() -> tuple[AlarmSpec, ...]:
    """The catalogue entries a serverless cache gets (one alarm each, for the whole cache)."""
    return tuple(spec for spec in CATALOGUE if spec.scope == "serverless")


def runbook_url(spec: AlarmSpec) -> str:
    return f"{RUNBOOK_PATH}#{spec.runbook_anchor}"


def threshold_for(spec: AlarmSpec, settings: Mapping[str, float], vcpus: int) -> float:
    """The alarm threshold in the metric's unit, from the stack's threshold settings."""
    if spec.threshold_rule == "fixed":
        assert spec.fixed_threshold is not None
        return spec.fixed_threshold
    assert spec.threshold_setting is not None
    value = settings[spec.threshold_setting]
    if spec.threshold_rule == "percent_of_limit":
        assert spec.limit_setting is not None
        return value / 100 * settings[spec.limit_setting] * spec.unit_scale
    if spec.threshold_rule == "per_vcpu" and vcpus <= 2:
        value = value / vcpus
    return value * spec.unit_scale
