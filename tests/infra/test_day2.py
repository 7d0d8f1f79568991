"""Day 2 on real AWS (issue 9, F1-F8): what the mocks cannot see, checked on the real program
under mocks with Pulumi.dev.yaml, in dev and in prod settings. Each test names the AWS rule it
holds the program to; the sources are cited where the program implements the rule."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.config import NODE_VCPUS, InfraConfigError, load
from infra.offline import OfflineRun, RunProgram

RG = "aws:elasticache/replicationGroup:ReplicationGroup"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
PARAMS = "aws:elasticache/parameterGroup:ParameterGroup"
TOPIC = "aws:sns/topic:Topic"
SECRET = "aws:secretsmanager/secret:Secret"
# The inputs the provider replaces a parameter group on (terraform-provider-aws
# internal/service/elasticache/parameter_group.go: ForceNew on name, family, description).
PARAMS_REPLACE_ON = ("name", "family", "description")

STAGES = {
    "dev": {},
    "prod": {"stack": "prod", "environment": "prod", "replicationGroupId": "berthcache-prod"},
}


@pytest.fixture(params=sorted(STAGES))
def stage_run(request: pytest.FixtureRequest, run_program: RunProgram) -> OfflineRun:
    return run_program(**STAGES[request.param])


def _topics(run: OfflineRun) -> dict[str, Any]:
    return {t.state["arn"]: t for t in run.of_type(TOPIC)}


def _metrics(run: OfflineRun) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for alarm in run.of_type(ALARM):
        if "metricName" in alarm.inputs:
            out.setdefault(alarm.inputs["metricName"], []).append(alarm.inputs)
    return out


def test_f1_events_go_to_an_unencrypted_topic(stage_run: OfflineRun) -> None:
    topics = _topics(stage_run)
    rg = stage_run.one(RG).inputs
    events = topics[rg["notificationTopicArn"]]
    assert not events.inputs.get("kmsMasterKeyId"), "ElastiCache cannot publish to it"
    # The alarms keep the CMK-encrypted topic.
    alarm_topics = {a.inputs["alarmActions"][0] for a in stage_run.of_type(ALARM)}
    assert len(alarm_topics) == 1
    assert topics[alarm_topics.pop()].inputs["kmsMasterKeyId"].startswith("arn:aws:kms:")


def test_f2_changing_the_eviction_policy_updates_the_parameter_group_in_place(
    run_program: RunProgram,
) -> None:
    before = run_program().one(PARAMS).inputs
    after = run_program(maxmemoryPolicy="volatile-lru").one(PARAMS).inputs
    assert before["parameters"] != after["parameters"]
    for key in PARAMS_REPLACE_ON:
        assert before[key] == after[key], f"{key} changed: the provider would replace the group"


def test_f2_a_replaced_parameter_group_gets_a_new_name(run_program: RunProgram) -> None:
    """Engine change: the family changes (replace); the new group must not collide with the
    attached old one, so it can be created first and the old one deleted after."""
    redis = run_program().one(PARAMS).inputs["name"]
    valkey = run_program(engine="valkey", engineVersion="7.2").one(PARAMS).inputs["name"]
    assert redis != valkey


def test_f3_log_delivery_applies_immediately(stage_run: OfflineRun) -> None:
    rg = stage_run.one(RG).inputs
    assert rg["logDeliveryConfigurations"]
    assert rg["applyImmediately"] is True


def test_f4_secret_is_recreatable_at_once_outside_prod(run_program: RunProgram) -> None:
    dev = run_program().one(SECRET).inputs
    assert dev["recoveryWindowInDays"] == 0  # force delete: destroy + up works at once
    prod = run_program(**STAGES["prod"]).one(SECRET).inputs
    assert prod["recoveryWindowInDays"] == 30


@pytest.mark.parametrize("policy", ["allkeys-lru", "allkeys-lfu", "allkeys-random"])
def test_f5_no_memory_percentage_alarm_when_evicting_from_all_keys(
    run_program: RunProgram, policy: str
) -> None:
    metrics = _metrics(run_program(maxmemoryPolicy=policy))
    assert "DatabaseMemoryUsagePercentage" not in metrics
    assert len(metrics["Evictions"]) == 2


@pytest.mark.parametrize("policy", ["noeviction", "volatile-lru", "volatile-ttl"])
def test_f5_memory_alarm_kept_when_memory_is_bounded(run_program: RunProgram, policy: str) -> None:
    alarms = _metrics(run_program(maxmemoryPolicy=policy))["DatabaseMemoryUsagePercentage"]
    assert [a["threshold"] for a in alarms] == [80, 80]


def test_f6_alarms_cover_the_groups_real_members(stage_run: OfflineRun) -> None:
    members = stage_run.outputs["memberClusters"]
    group = stage_run.outputs["replicationGroupId"]
    # The mocks answer other names than the first-creation formula, like AWS after a
    # failover and a scale change.
    assert set(members) != {f"{group}-{i:03d}" for i in range(1, len(members) + 1)}
    for metric, alarms in _metrics(stage_run).items():
        watched = sorted(a["dimensions"]["CacheClusterId"] for a in alarms)
        assert watched == sorted(members), metric
    body = json.loads(stage_run.one("aws:cloudwatch/dashboard:Dashboard").inputs["dashboardBody"])
    shown = {m[3] for w in body["widgets"] for m in w["properties"]["metrics"]}
    assert shown == set(members)


@pytest.mark.parametrize(
    ("node_type", "ok"),
    [
        ("cache.m5.24xlarge", True),
        ("cache.r5.24xlarge", True),
        ("cache.m7g.16xlarge", True),
        ("cache.r6g.8xlarge", True),
        ("cache.t3.micro", True),
        ("cache.m5.8xlarge", False),
        ("cache.m5.16xlarge", False),
        ("cache.r5.8xlarge", False),
        ("cache.m7g.24xlarge", False),
        ("cache.t4g.large", False),
    ],
)
def test_f7_node_types_are_awss_list(node_type: str, ok: bool) -> None:
    if ok:
        assert load({"nodeType": node_type}, stack="dev").node_type == node_type
    else:
        with pytest.raises(InfraConfigError, match="berthcache:nodeType"):
            load({"nodeType": node_type}, stack="dev")


def test_f7_large_m5_node_keeps_its_vcpus() -> None:
    assert NODE_VCPUS["cache.m5.24xlarge"] == 96
    assert NODE_VCPUS["cache.m5.12xlarge"] == 48


def test_f8_log_groups_are_vended_logs(stage_run: OfflineRun) -> None:
    names = [g.inputs["name"] for g in stage_run.of_type("aws:cloudwatch/logGroup:LogGroup")]
    assert len(names) == 2
    assert all(n.startswith("/aws/vendedlogs/") for n in names)
    destinations = {d["destination"] for d in stage_run.one(RG).inputs["logDeliveryConfigurations"]}
    assert destinations == set(names)


def _statements(policy: str) -> list[dict[str, Any]]:
    return list(json.loads(policy)["Statement"])


def test_f8_service_grants_are_limited_to_this_account(stage_run: OfflineRun) -> None:
    key = stage_run.one("aws:kms/key:Key").inputs
    services = [s for s in _statements(key["policy"]) if "Service" in s["Principal"]]
    assert services
    for statement in services:
        condition = json.dumps(statement.get("Condition", {}))
        assert "123456789012" in condition, statement["Sid"]
    topics = _topics(stage_run)
    policies = {
        topics[p.inputs["arn"]].inputs["name"]: _statements(p.inputs["policy"])
        for p in stage_run.of_type("aws:sns/topicPolicy:TopicPolicy")
    }
    assert len(policies) == 2
    for name, statements in policies.items():
        service = [s for s in statements if "Service" in s["Principal"]]
        assert len(service) == 1, name
        cond = service[0]["Condition"]
        if name.endswith("-alerts"):
            assert cond["StringEquals"] == {"aws:SourceAccount": "123456789012"}
            assert cond["ArnLike"]["aws:SourceArn"].endswith(":123456789012:alarm:*")
        else:
            # ElastiCache publishes only under aws:SourceOwner (AWS ElastiCacheSNS docs).
            assert cond == {"StringEquals": {"aws:SourceOwner": "123456789012"}}


def test_f8_burstable_nodes_have_a_cpu_credit_alarm(run_program: RunProgram) -> None:
    burstable = _metrics(run_program())["CPUCreditBalance"]
    assert len(burstable) == 2
    assert all(a["comparisonOperator"] == "LessThanThreshold" for a in burstable)
    assert "CPUCreditBalance" not in _metrics(run_program(nodeType="cache.m7g.large"))


def test_f8_docs_say_the_token_is_in_the_pulumi_state() -> None:
    from infra.offline import REPO_ROOT

    text = (REPO_ROOT / "docs" / "platform.md").read_text(encoding="utf-8")
    assert "nowhere else" not in text
    assert "Pulumi state" in text
