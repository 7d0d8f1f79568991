"""Issue 11, infra: the ``topology`` setting end to end under Pulumi mocks with the real
Pulumi.dev.yaml — a cluster-mode replication group, a serverless cache, and a replication group
exactly as before; the combinations AWS (or the program) refuses; the policy pack and the day-2
update check on all three."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from berthcache.ops.alarm_catalogue import CATALOGUE, serverless_specs, specs_for, threshold_for
from infra.api_requests import problems, to_requests
from infra.config import InfraConfigError, load
from infra.offline import OfflineRun, RunProgram, plain
from infra.plan import main
from infra.policy import rules
from infra.update_check import plan_update, with_overrides

RG = "aws:elasticache/replicationGroup:ReplicationGroup"
SERVERLESS = "aws:elasticache/serverlessCache:ServerlessCache"
PARAMS = "aws:elasticache/parameterGroup:ParameterGroup"
SUBNET_GROUP = "aws:elasticache/subnetGroup:SubnetGroup"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TOPIC = "aws:sns/topic:Topic"
USER = "aws:elasticache/user:User"

CLUSTER: dict[str, Any] = {"topology": "cluster"}
SERVERLESS_RBAC: dict[str, Any] = {"topology": "serverless", "authMode": "rbac"}


def _violations(run: OfflineRun, *, preview: bool = False) -> list[str]:
    """Every policy of the pack on the run: resource rules on the inputs, stack rules on what
    the engine hands them (after the update: inputs and outputs; at preview: inputs only)."""
    found = []
    for name, (_, rule) in rules.RESOURCE_RULES.items():
        for res in run.resources:
            found += [f"{name} {res.name}: {m}" for m in rule(res.type, res.inputs)]
    stack = [(r.type, r.inputs if preview else r.state) for r in run.resources]
    for name, (_, stack_rule) in rules.STACK_RULES.items():
        found += [f"{name}: {m}" for m in stack_rule(stack)]
    return found


def _stack(run: OfflineRun) -> list[tuple[str, dict[str, Any]]]:
    return [(r.type, copy.deepcopy(r.state)) for r in run.resources]


# --- cluster ---------------------------------------------------------------------------------


def test_cluster_is_one_cluster_mode_group_with_two_shards_and_a_cluster_enabled_group(
    run_program: RunProgram,
) -> None:
    run = run_program(**CLUSTER)
    group = run.one(RG).inputs
    assert group["numNodeGroups"] >= 2
    assert group["replicasPerNodeGroup"] == 1
    assert group["clusterMode"] == "enabled"
    assert group["automaticFailoverEnabled"] is True
    assert "numCacheClusters" not in group  # conflicts with num_node_groups in the provider
    params = run.one(PARAMS).inputs
    assert params["name"] == group["parameterGroupName"] == "berthcache-dev-redis7-cluster"
    assert params["family"] == "redis7"
    values = {p["name"]: p["value"] for p in params["parameters"]}
    assert values == {"cluster-enabled": "yes", "maxmemory-policy": "allkeys-lru"}
    assert run.outputs["topology"] == "cluster"
    endpoint = run.outputs["configurationEndpoint"]
    assert endpoint.startswith("clustercfg.berthcache-dev.")
    assert run.outputs["primaryEndpoint"] == endpoint  # what the apps and tools connect to


@pytest.mark.parametrize(
    ("engine", "version", "family"), [("valkey", "7.2", "valkey7"), ("valkey", "8.1", "valkey8")]
)
def test_the_cluster_parameter_group_is_in_the_engines_family(
    run_program: RunProgram, engine: str, version: str, family: str
) -> None:
    params = run_program(**CLUSTER, engine=engine, engineVersion=version).one(PARAMS).inputs
    assert params["family"] == family
    assert params["name"] == f"berthcache-dev-{family}-cluster"


def test_every_node_of_every_shard_is_alarmed_from_the_real_member_list(
    run_program: RunProgram,
) -> None:
    run = run_program(**CLUSTER, shards=3, replicasPerShard=2)
    members = run.outputs["memberClusters"]
    assert len(members) == 9
    # The mocks answer shard numbers as after a resharding (not <group>-0001-001...).
    assert "berthcache-dev-0001-001" not in members
    per_metric: dict[str, list[str]] = {}
    for alarm in run.of_type(ALARM):
        if "metricName" in alarm.inputs:
            per_metric.setdefault(alarm.inputs["metricName"], []).append(
                alarm.inputs["dimensions"]["CacheClusterId"]
            )
    expected = {s.metric for s in specs_for("allkeys-lru", "cache.t4g.small") if s.metric}
    assert set(per_metric) == expected
    for metric, watched in per_metric.items():
        assert sorted(watched) == sorted(members), metric
    assert len(run.of_type(ALARM)) == 9 * len(specs_for("allkeys-lru", "cache.t4g.small"))
    body = json.loads(run.one("aws:cloudwatch/dashboard:Dashboard").inputs["dashboardBody"])
    shown = {m[3] for w in body["widgets"] for m in w["properties"]["metrics"]}
    assert shown == set(members)


def test_a_large_cluster_spreads_its_dashboard_over_widgets_of_500_metrics(
    run_program: RunProgram,
) -> None:
    run = run_program(**CLUSTER, shards=100, replicasPerShard=2)  # 300 nodes
    body = json.loads(run.one("aws:cloudwatch/dashboard:Dashboard").inputs["dashboardBody"])
    assert all(len(w["properties"]["metrics"]) <= 500 for w in body["widgets"])
    hit_rate = [w for w in body["widgets"] if w["properties"]["title"].startswith("Cache hit")]
    assert [w["properties"]["title"] for w in hit_rate] == [
        "Cache hit rate (1/2)",
        "Cache hit rate (2/2)",
    ]


@pytest.mark.parametrize("overrides", [{}, {"authMode": "rbac"}, {"environment": "prod"}])
def test_cluster_passes_the_policy_pack_after_the_update_and_at_preview(
    run_program: RunProgram, overrides: dict[str, Any]
) -> None:
    run = run_program(**CLUSTER, **overrides)
    assert _violations(run) == []
    assert _violations(run, preview=True) == []


def test_an_rbac_cluster_app_user_may_read_the_slot_map(run_program: RunProgram) -> None:
    users = {
        u.inputs["userName"]: u.inputs
        for u in run_program(**CLUSTER, authMode="rbac").of_type(USER)
    }
    rules_ = users["app"]["accessString"].split()
    assert {"+cluster|slots", "+cluster|shards", "+readonly"} <= set(rules_)
    one_shard = {u.inputs["userName"]: u.inputs for u in run_program(authMode="rbac").of_type(USER)}
    assert "+cluster|slots" not in one_shard["app"]["accessString"].split()


def test_the_cluster_connection_secret_names_the_configuration_endpoint(
    run_program: RunProgram,
) -> None:
    run = run_program(**CLUSTER)
    value = json.loads(
        plain(run.one("aws:secretsmanager/secretVersion:SecretVersion").inputs["secretString"])
    )
    assert value["topology"] == "cluster"
    assert value["cluster"] is True
    assert value["host"] == value["configuration_endpoint"] == run.outputs["configurationEndpoint"]


# --- serverless ------------------------------------------------------------------------------


def test_serverless_declares_a_serverless_cache_and_no_node_resources(
    run_program: RunProgram,
) -> None:
    run = run_program(**SERVERLESS_RBAC)
    cache = run.one(SERVERLESS).inputs
    assert cache["name"] == "berthcache-dev"
    assert cache["engine"] == "redis"
    assert cache["majorEngineVersion"] == "7"
    assert cache["cacheUsageLimits"] == {
        "dataStorage": {"maximum": 10, "unit": "GB"},
        "ecpuPerSeconds": [{"maximum": 5000}],
    }
    assert cache["kmsKeyId"].startswith("arn:aws:kms:eu-west-1:")
    assert cache["userGroupId"] == "berthcache-dev-users"
    assert len(cache["subnetIds"]) == 2
    assert cache["securityGroupIds"] == ["berthcache-dev-network-sg-id"]
    assert cache["snapshotRetentionLimit"] == 3
    assert cache["dailySnapshotTime"] == "03:00"
    for absent in (RG, PARAMS, SUBNET_GROUP, "aws:cloudwatch/logGroup:LogGroup"):
        assert run.of_type(absent) == [], absent
    # No SNS events topic: a serverless cache sends its events to EventBridge.
    assert [t.inputs["name"] for t in run.of_type(TOPIC)] == ["berthcache-dev-alerts"]
    assert "eventsTopicArn" not in run.outputs
    assert run.outputs["topology"] == "serverless"
    assert run.outputs["primaryEndpoint"].endswith(".serverless.eu-west-1.cache.amazonaws.com")
    assert run.outputs["port"] == 6379
    assert run.outputs["readerPort"] == 6380
    assert run.outputs["memberClusters"] == []
    assert run.outputs["engine"] == "redis 7"  # the major: AWS keeps the newest minor
    # The clients reach the endpoint (6379) and the reader endpoint (6380).
    (ingress,) = run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert (ingress.inputs["fromPort"], ingress.inputs["toPort"]) == (6379, 6380)


def test_serverless_valkey_takes_its_major_version(run_program: RunProgram) -> None:
    cache = run_program(**SERVERLESS_RBAC, engine="valkey", engineVersion="8.1").one(SERVERLESS)
    assert (cache.inputs["engine"], cache.inputs["majorEngineVersion"]) == ("valkey", "8")


def test_serverless_alarms_watch_the_cache_against_its_limits(run_program: RunProgram) -> None:
    run = run_program(
        **SERVERLESS_RBAC, serverlessMaxEcpuPerSecond=20000, serverlessMaxDataStorageGb=50
    )
    alarms = {a.inputs["name"]: a.inputs for a in run.of_type(ALARM)}
    assert set(alarms) == {f"berthcache-dev-000-{s.key}" for s in serverless_specs()}
    for alarm in alarms.values():
        assert alarm["dimensions"] == {"clusterId": "berthcache-dev"}
        assert alarm["namespace"] == "AWS/ElastiCache"
        assert alarm["alarmActions"] == [run.outputs["alarmTopicArn"]]
    ecpu = alarms["berthcache-dev-000-serverless-ecpu-usage"]
    assert (ecpu["metricName"], ecpu["statistic"], ecpu["period"]) == (
        "ElastiCacheProcessingUnits",
        "Sum",
        60,
    )
    assert ecpu["threshold"] == pytest.approx(0.80 * 20000 * 60)  # 80% of the limit, per minute
    storage = alarms["berthcache-dev-000-serverless-data-storage-usage"]
    assert storage["metricName"] == "BytesUsedForCache"
    assert storage["threshold"] == pytest.approx(0.80 * 50e9)
    throttled = alarms["berthcache-dev-000-serverless-throttled-commands"]
    assert (throttled["metricName"], throttled["threshold"]) == ("ThrottledCmds", 0)
    body = json.loads(run.one("aws:cloudwatch/dashboard:Dashboard").inputs["dashboardBody"])
    assert {m[1] for w in body["widgets"] for m in w["properties"]["metrics"]} == {
        s.metric for s in serverless_specs()
    }


def test_every_alarm_of_the_catalogue_has_a_scope_and_serverless_thresholds_resolve() -> None:
    assert {s.scope for s in CATALOGUE} == {"node", "serverless"}
    assert not set(serverless_specs()) & set(specs_for("noeviction", "cache.t4g.small"))
    settings = {**load({}, stack="dev").thresholds, **load({}, stack="dev").limits}
    for spec in serverless_specs():
        assert threshold_for(spec, settings, 2) >= 0


@pytest.mark.parametrize(
    "overrides", [{}, {"environment": "prod"}, {"engine": "valkey", "engineVersion": "8.0"}]
)
def test_serverless_passes_the_policy_pack(
    run_program: RunProgram, overrides: dict[str, Any]
) -> None:
    run = run_program(**SERVERLESS_RBAC, **overrides)
    assert _violations(run) == []
    assert _violations(run, preview=True) == []


def test_a_prod_serverless_cache_is_protected(run_program: RunProgram) -> None:
    run = run_program(**SERVERLESS_RBAC, environment="prod", multiAz=None)
    assert run.one(SERVERLESS).protect


# --- replication-group: unchanged ------------------------------------------------------------


def test_replication_group_named_explicitly_is_todays_program(run_program: RunProgram) -> None:
    default = run_program()
    explicit = run_program(topology="replication-group")

    def shape(run: OfflineRun) -> list[str]:
        return sorted(
            json.dumps([r.type, r.name, plain(r.inputs)], sort_keys=True) for r in run.resources
        )

    assert shape(explicit) == shape(default)
    assert explicit.outputs == default.outputs
    assert list(explicit.outputs) == list(default.outputs)
    assert "topology" not in default.outputs
    assert "configurationEndpoint" not in default.outputs
    group = default.one(RG).inputs
    assert group["numCacheClusters"] == 2
    assert "numNodeGroups" not in group
    assert "clusterMode" not in group
    assert default.one(PARAMS).inputs["name"] == "berthcache-dev-redis7"
    secret = json.loads(
        plain(default.one("aws:secretsmanager/secretVersion:SecretVersion").inputs["secretString"])
    )
    assert "topology" not in secret


# --- settings: combinations refused ----------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"shards": "3"}, "berthcache:shards: only applies with topology cluster"),
        (
            {"topology": "serverless", "authMode": "rbac", "replicasPerShard": "2"},
            "berthcache:replicasPerShard: only applies with topology cluster",
        ),
        (
            {"serverlessMaxEcpuPerSecond": "2000"},
            "berthcache:serverlessMaxEcpuPerSecond: only applies with topology serverless",
        ),
        ({"topology": "cluster", "dailySnapshotTime": "04:00"}, "berthcache:dailySnapshotTime"),
        (
            {"topology": "cluster", "numNodes": "3"},
            "berthcache:numNodes: does not apply with topology cluster: use shards",
        ),
        ({"topology": "serverless"}, "berthcache:authMode: must be rbac with topology serverless"),
        (
            {"topology": "serverless", "authMode": "rbac", "nodeType": "cache.m7g.large"},
            "berthcache:nodeType: does not apply with topology serverless",
        ),
        (
            {"topology": "serverless", "authMode": "rbac", "maxmemoryPolicy": "noeviction"},
            "berthcache:maxmemoryPolicy: does not apply with topology serverless",
        ),
        (
            {"topology": "serverless", "authMode": "rbac", "multiAz": "false"},
            "berthcache:multiAz: does not apply with topology serverless",
        ),
        (
            {"topology": "serverless", "authMode": "rbac", "finalSnapshot": "true"},
            "berthcache:finalSnapshot: the provider deletes a serverless cache without",
        ),
        (
            {"topology": "serverless", "authMode": "rbac", "restoreFromSnapshot": "old-final"},
            "berthcache:restoreFromSnapshot: with topology serverless, an ARN",
        ),
        (
            {"topology": "cluster", "shards": "250", "replicasPerShard": "1"},
            "berthcache:shards: 250 shards x (1 + 1 replicas) = 500 nodes",
        ),
        (
            {"topology": "cluster", "shards": "84", "replicasPerShard": "5"},
            "berthcache:shards: 84 shards x (1 + 5 replicas) = 504 nodes; a cluster holds at most",
        ),
        ({"topology": "cluster", "shards": "0"}, "berthcache:shards: must be between 1 and 500"),
        (
            {"topology": "cluster", "replicasPerShard": "0"},
            "berthcache:replicasPerShard: must be between 1 and 5",
        ),
        ({"topology": "mesh"}, "berthcache:topology: must be one of replication-group, cluster"),
        (
            {"topology": "serverless", "authMode": "rbac", "serverlessMaxEcpuPerSecond": "999"},
            "berthcache:serverlessMaxEcpuPerSecond: must be between 1000 and 15000000",
        ),
    ],
)
def test_combinations_aws_or_the_program_refuses_name_the_setting(
    raw: dict[str, str], message: str
) -> None:
    if message.startswith("berthcache:shards: 250"):  # exactly at the limit: allowed
        assert load(raw, stack="dev").cluster_nodes == 500
        return
    with pytest.raises(InfraConfigError) as info:
        load(raw, stack="dev")
    assert str(info.value).startswith(message)


def test_a_stack_file_that_spells_out_the_defaults_may_switch_topology(
    dev_config: dict[str, Any],
) -> None:
    """Pulumi.dev.yaml sets numNodes, nodeType, the windows... to their defaults."""
    raw = {k.split(":", 1)[1]: v for k, v in dev_config.items() if k.startswith("berthcache:")}
    texts = {k: v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}
    assert load({**texts, "topology": "cluster"}, stack="dev").cluster_nodes == 4
    cfg = load({**texts, "topology": "serverless", "authMode": "rbac"}, stack="dev")
    assert cfg.cluster_nodes == 0
    assert cfg.final_snapshot is False


# --- policy rules on good and bad inputs -----------------------------------------------------

GOOD_SERVERLESS: dict[str, Any] = {
    "name": "cache-x",
    "engine": "valkey",
    "kmsKeyId": "arn:aws:kms:eu-west-1:123456789012:key/k",
    "userGroupId": "cache-x-users",
    "subnetIds": ["subnet-1", "subnet-2"],
    "securityGroupIds": ["sg-1"],
    "snapshotRetentionLimit": 7,
    "cacheUsageLimits": {
        "dataStorage": {"maximum": 10, "unit": "GB"},
        "ecpuPerSeconds": [{"maximum": 5000}],
    },
}


def test_a_good_serverless_cache_passes_every_resource_rule() -> None:
    for _, rule in rules.RESOURCE_RULES.values():
        assert rule(SERVERLESS, GOOD_SERVERLESS) == []


@pytest.mark.parametrize(
    ("rule", "change", "expected"),
    [
        (rules.encryption_at_rest, {"kmsKeyId": None}, "ElastiCache.4, serverless"),
        (rules.auth_required, {"userGroupId": None}, "ElastiCache.6, serverless"),
        (rules.backups_enabled, {"snapshotRetentionLimit": 0}, "ElastiCache.1"),
        (rules.serverless_in_named_subnets, {"subnetIds": None}, "at least 2 private subnets"),
        (rules.serverless_in_named_subnets, {"subnetIds": ["subnet-1"]}, "at least 2"),
        (rules.serverless_in_named_subnets, {"securityGroupIds": []}, "securityGroupIds"),
        (rules.serverless_usage_limits, {"cacheUsageLimits": None}, "dataStorage.maximum"),
        (
            rules.serverless_usage_limits,
            {"cacheUsageLimits": {"dataStorage": {"maximum": 10, "unit": "GB"}}},
            "ecpuPerSeconds maximum",
        ),
    ],
)
def test_each_serverless_rule_fires_on_a_bad_cache(
    rule: rules.Rule, change: dict[str, Any], expected: str
) -> None:
    messages = rule(SERVERLESS, {**GOOD_SERVERLESS, **change})
    assert any(expected in m for m in messages), messages


GOOD_CLUSTER: dict[str, Any] = {
    "replicationGroupId": "cache-x",
    "numNodeGroups": 3,
    "replicasPerNodeGroup": 1,
    "clusterMode": "enabled",
    "automaticFailoverEnabled": True,
}


def test_cluster_mode_without_automatic_failover_or_replicas_is_refused() -> None:
    assert rules.automatic_failover(RG, GOOD_CLUSTER) == []
    off = rules.automatic_failover(RG, {**GOOD_CLUSTER, "automaticFailoverEnabled": False})
    assert off == [
        "automaticFailoverEnabled must be true (ElastiCache.3; cluster mode cannot run without it)"
    ]
    bare = rules.automatic_failover(RG, {**GOOD_CLUSTER, "replicasPerNodeGroup": 0})
    assert bare
    assert "replicasPerNodeGroup must be >= 1" in bare[0]


def test_cluster_mode_and_the_parameter_group_must_agree(run_program: RunProgram) -> None:
    cluster = _stack(run_program(**CLUSTER))
    assert rules.cluster_mode_parameter_group(cluster) == []
    for rtype, props in cluster:
        if rtype == PARAMS:
            props["parameters"] = [p for p in props["parameters"] if p["name"] != "cluster-enabled"]
    assert rules.cluster_mode_parameter_group(cluster) == [
        "berthcache-dev: cluster mode needs a parameter group with cluster-enabled yes; "
        "berthcache-dev-redis7-cluster has none"
    ]
    one_shard = _stack(run_program())
    for rtype, props in one_shard:
        if rtype == PARAMS:
            props["parameters"].append({"name": "cluster-enabled", "value": "yes"})
    (message,) = rules.cluster_mode_parameter_group(one_shard)
    assert message.startswith("berthcache-dev: one shard (numCacheClusters) with")


def test_an_unwatched_shard_node_fires_after_the_update_and_at_preview(
    run_program: RunProgram,
) -> None:
    run = run_program(**CLUSTER)
    gone = "berthcache-dev-004-replication-lag"
    after = [(t, p) for t, p in _stack(run) if not (t == ALARM and p.get("name") == gone)]
    (message,) = rules.every_node_alarmed(after)
    assert message.endswith("has no alarm with actions on ReplicationLag")
    preview = [
        (t, copy.deepcopy(r.inputs))
        for r in run.resources
        if not ((t := r.type) == ALARM and r.inputs.get("name") == gone)
    ]
    assert rules.every_node_alarmed(preview) == [
        "berthcache-dev: fewer than 4 alarms with actions on ReplicationLag"
    ]


def test_a_serverless_cache_missing_an_alarm_fires(run_program: RunProgram) -> None:
    resources = _stack(run_program(**SERVERLESS_RBAC))
    assert rules.every_serverless_cache_alarmed(resources) == []
    without = [
        (t, p) for t, p in resources if not (t == ALARM and p.get("metricName") == "ThrottledCmds")
    ]
    assert rules.every_serverless_cache_alarmed(without) == [
        "serverless cache berthcache-dev has no alarm with actions on ThrottledCmds"
    ]


# --- API request shapes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [CLUSTER, {**CLUSTER, "authMode": "rbac", "shards": 5, "replicasPerShard": 2}, SERVERLESS_RBAC],
)
def test_every_request_of_each_topology_is_valid_for_aws(
    run_program: RunProgram, overrides: dict[str, Any]
) -> None:
    requests = to_requests(run_program(**overrides))
    bad = {f"{r.operation} {r.resource}": p for r in requests if (p := problems(r))}
    assert not bad, bad
    ops = {r.operation for r in requests}
    if overrides["topology"] == "serverless":
        assert {"CreateServerlessCache", "ModifyServerlessCache"} <= ops
        (create,) = [r for r in requests if r.operation == "CreateServerlessCache"]
        assert create.params["CacheUsageLimits"] == {
            "DataStorage": {"Maximum": 10, "Unit": "GB"},
            "ECPUPerSecond": {"Maximum": 5000},
        }
    else:
        (create,) = [r for r in requests if r.operation == "CreateReplicationGroup"]
        assert create.params["NumNodeGroups"] == overrides.get("shards", 2)
        assert create.params["ClusterMode"] == "enabled"
        assert "NumCacheClusters" not in create.params


def test_a_wrong_serverless_request_is_caught(run_program: RunProgram) -> None:
    (create,) = [
        r
        for r in to_requests(run_program(**SERVERLESS_RBAC))
        if r.operation == "CreateServerlessCache"
    ]
    broken = copy.deepcopy(create)
    broken.params["CacheUsageLimits"]["DataStorage"]["Unit"] = "TB"
    assert any("Unit" in p for p in problems(broken))


# --- day 2 -----------------------------------------------------------------------------------


def test_a_topology_change_on_a_running_group_is_refused_with_how_to_move(
    dev_config: dict[str, Any],
) -> None:
    plan = plan_update(dev_config, with_overrides(dev_config, CLUSTER))
    assert plan.verdict == "replace refused"
    (refused,) = plan.of("replace refused")
    assert refused.name == "berthcache-dev-cache-cluster-group"
    assert "fixed" in refused.reason
    assert "new replicationGroupId" in refused.reason
    moved = plan_update(
        dev_config, with_overrides(dev_config, {**CLUSTER, "replicationGroupId": "berthcache-dev2"})
    )
    assert moved.verdict == "replace"  # the old group (and its data) goes: a new cache


def test_a_prod_topology_change_never_deletes_the_protected_group(
    dev_config: dict[str, Any],
) -> None:
    prod = with_overrides(dev_config, {"environment": "prod"})
    after = with_overrides(prod, {**CLUSTER, "replicationGroupId": "berthcache-prod2"})
    plan = plan_update(prod, after)
    assert plan.verdict == "replace refused"
    assert any("protected" in c.reason for c in plan.of("replace refused"))


@pytest.mark.parametrize(
    ("change", "updated"),
    [
        ({"shards": 3}, "numNodeGroups"),  # online resharding
        ({"replicasPerShard": 2}, "replicasPerNodeGroup"),
    ],
)
def test_resharding_and_replicas_are_updates_in_place(
    dev_config: dict[str, Any], change: dict[str, Any], updated: str
) -> None:
    base = with_overrides(dev_config, CLUSTER)
    plan = plan_update(base, with_overrides(base, change))
    assert plan.verdict == "in place", plan
    (group,) = [c for c in plan.changes if c.type == RG]
    assert group.action == "update"
    assert updated in group.inputs


_YOUR_KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.mark.parametrize(
    ("change", "verdict", "action"),
    [
        ({"serverlessMaxEcpuPerSecond": 10000}, "in place", "update"),
        ({"serverlessMaxDataStorageGb": 20}, "in place", "update"),
        ({"dailySnapshotTime": "05:00"}, "in place", "update"),
        ({"snapshotRetentionDays": 7}, "in place", "update"),
        # replace-on-change, and the name is fixed: the data would be gone first (refused).
        ({"kmsKeyArn": _YOUR_KEY}, "replace refused", "replace refused"),
        # redis -> valkey (and a major upgrade) is in place on the cache itself; the RBAC user
        # group's engine is replace-on-change and its fixed id is in use: refused, as for an
        # RBAC replication group (docs/platform.md, day 2).
        ({"engine": "valkey", "engineVersion": "7.2"}, "replace refused", "update"),
        ({"engine": "valkey", "engineVersion": "8.0"}, "replace refused", "update"),
    ],
)
def test_serverless_day2_changes(
    dev_config: dict[str, Any], change: dict[str, Any], verdict: str, action: str
) -> None:
    base = with_overrides(dev_config, SERVERLESS_RBAC)
    plan = plan_update(base, with_overrides(base, change))
    assert plan.verdict == verdict, plan
    (cache,) = [c for c in plan.changes if c.type == SERVERLESS]
    assert cache.action == action
    if verdict == "replace refused" and action == "update":
        (refused,) = plan.of("replace refused")
        assert refused.type == "aws:elasticache/userGroup:UserGroup"


def test_a_serverless_major_downgrade_replaces_the_cache(dev_config: dict[str, Any]) -> None:
    base = with_overrides(
        dev_config, {**SERVERLESS_RBAC, "engine": "valkey", "engineVersion": "8.0"}
    )
    plan = plan_update(base, with_overrides(base, {"engineVersion": "7.2"}))
    (cache,) = [c for c in plan.changes if c.type == SERVERLESS]
    assert cache.action == "replace refused"  # its name is fixed: the data would go first
    assert "majorEngineVersion replaces when the version goes down" in cache.reason
    assert "name 'berthcache-dev' is fixed" in cache.reason


# --- ./scripts/infra-plan --------------------------------------------------------------------


def test_infra_plan_checks_a_topology_change_and_shows_each_topology(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["dev", "--set", "topology=cluster"]) == 3  # refused: same group id
    out = capsys.readouterr().out
    assert "replace refused  aws:elasticache/replicationGroup:ReplicationGroup" in out
    assert main(["dev", "--set", "topology=cluster", "--set", "shards=3", "--show"]) == 0
    out = capsys.readouterr().out
    assert "numNodeGroups=3 replicasPerNodeGroup=1 clusterMode=enabled" in out
    assert "configurationEndpoint: clustercfg.berthcache-dev." in out
    assert main(["dev", "--set", "topology=serverless", "--set", "authMode=rbac", "--show"]) == 0
    out = capsys.readouterr().out
    assert "aws:elasticache/serverlessCache:ServerlessCache" in out
    assert "majorEngineVersion=7" in out
    assert main(["dev", "--set", "topology=serverless", "--show"]) == 1
    assert "berthcache:authMode: must be rbac" in capsys.readouterr().err
