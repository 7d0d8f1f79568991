"""Item 3: AWS's rules as policy, each on good and bad inputs, and on the program's own run."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from infra.offline import OfflineRun, RunProgram
from infra.policy import rules

RG = rules.RG
KEY = "arn:aws:kms:eu-west-1:123456789012:key/k"
ALERTS = "arn:aws:sns:eu-west-1:123456789012:g-alerts"
EVENTS = "arn:aws:sns:eu-west-1:123456789012:g-events"
GROUP: dict[str, Any] = {
    "replicationGroupId": "g",
    "nodeType": "cache.r7g.large",
    "numCacheClusters": 2,
    "parameterGroupName": "g-redis7",
    "notificationTopicArn": EVENTS,
    "applyImmediately": True,
    "logDeliveryConfigurations": [{"logType": "slow-log", "destination": "/aws/vendedlogs/x"}],
    "memberClusters": ["g-004", "g-007"],
}
TOPICS = [
    (rules.TOPIC, {"name": "g-alerts", "arn": ALERTS, "kmsMasterKeyId": KEY}),
    (rules.TOPIC, {"name": "g-events", "arn": EVENTS}),
]


def _params(policy: str) -> tuple[str, dict[str, Any]]:
    return (
        rules.PARAMS,
        {
            "name": "g-redis7",
            "family": "redis7",
            "description": "constant",
            "parameters": [{"name": "maxmemory-policy", "value": policy}],
        },
    )


def _memory_alarm(member: str) -> tuple[str, dict[str, Any]]:
    return (
        rules.ALARM,
        {
            "name": f"g-001-memory-{member}",
            "metricName": "DatabaseMemoryUsagePercentage",
            "dimensions": {"CacheClusterId": member, "CacheNodeId": "0001"},
            "alarmActions": [ALERTS],
        },
    )


def test_events_topic_unencrypted_good_and_bad() -> None:
    assert rules.events_topic_unencrypted([(RG, GROUP), *TOPICS]) == []
    bad = {**GROUP, "notificationTopicArn": ALERTS}
    messages = rules.events_topic_unencrypted([(RG, bad), *TOPICS])
    assert len(messages) == 1
    assert "KMS-encrypted" in messages[0]
    assert ALERTS in messages[0]


@pytest.mark.parametrize(
    ("change", "fires"),
    [
        ({}, False),
        ({"applyImmediately": False}, True),
        ({"applyImmediately": None}, True),
        ({"applyImmediately": False, "logDeliveryConfigurations": []}, False),
        ({"applyImmediately": "04da6b54-80e4-46f7-96ec-b56ff0331ba9"}, False),  # unknown
    ],
)
def test_log_delivery_applies_immediately(change: dict[str, Any], fires: bool) -> None:
    messages = rules.log_delivery_applies_immediately(RG, {**GROUP, **change})
    assert bool(messages) == fires
    if fires:
        assert "applyImmediately" in messages[0]


@pytest.mark.parametrize(
    ("node_type", "fires"),
    [
        ("cache.r7g.large", False),
        ("cache.m5.24xlarge", False),
        ("cache.m5.8xlarge", True),
        ("cache.m5.16xlarge", True),
        ("cache.t4g.xlarge", True),
    ],
)
def test_node_type_exists(node_type: str, fires: bool) -> None:
    messages = rules.node_type_exists(RG, {**GROUP, "nodeType": node_type})
    assert bool(messages) == fires
    if fires:
        assert node_type in messages[0]


def test_replace_safe_names_good_and_bad() -> None:
    _, good = _params("allkeys-lru")
    assert rules.replace_safe_names(rules.PARAMS, good) == []
    # The family, a replace trigger, missing from a fixed name: a replacement collides.
    no_family = {**good, "name": "g-params"}
    assert any("family" in m for m in rules.replace_safe_names(rules.PARAMS, no_family))
    # The description, a replace trigger, embedding the eviction policy (today's F2).
    changing = {**good, "description": "g: eviction policy allkeys-lru"}
    messages = rules.replace_safe_names(rules.PARAMS, changing)
    assert any("allkeys-lru" in m and "description" in m for m in messages)
    # Autonamed (no fixed name): nothing to check.
    assert rules.replace_safe_names(rules.PARAMS, {**changing, "name": None}) == []
    # Types outside the (minimal) table are not judged here.
    assert rules.replace_safe_names(RG, GROUP) == []


@pytest.mark.parametrize(
    ("policy", "fires"),
    [("allkeys-lru", True), ("allkeys-lfu", True), ("volatile-lru", False), ("noeviction", False)],
)
def test_memory_alarm_fits_eviction_policy(policy: str, fires: bool) -> None:
    stack = [(RG, GROUP), _params(policy), _memory_alarm("g-004")]
    messages = rules.memory_alarm_fits_eviction_policy(stack)
    assert bool(messages) == fires
    if fires:
        assert policy in messages[0]


def test_memory_alarm_on_another_group_does_not_count() -> None:
    stack = [(RG, GROUP), _params("allkeys-lru"), _memory_alarm("other-001")]
    stack[2][1]["name"] = "other-001-memory"
    assert rules.memory_alarm_fits_eviction_policy(stack) == []


def test_required_alarms_follow_eviction_policy_and_node_type(dev_run: OfflineRun) -> None:
    """allkeys-lru on cache.t4g.small: no memory alarm is required, a CPU-credit one is."""
    stack = [(r.type, copy.deepcopy(r.state)) for r in dev_run.resources]
    assert rules.every_node_alarmed(stack) == []
    stack = [
        (t, p)
        for t, p in stack
        if not (t == rules.ALARM and p.get("metricName") == "CPUCreditBalance")
    ]
    messages = rules.every_node_alarmed(stack)
    assert len(messages) == 2
    assert all("CPUCreditBalance" in m for m in messages)


@pytest.mark.parametrize(
    "overrides", [{}, {"maxmemoryPolicy": "noeviction", "nodeType": "cache.m5.24xlarge"}]
)
def test_the_program_passes_the_aws_rules(run_program: RunProgram, overrides: Any) -> None:
    run = run_program(**overrides)
    stack = [(r.type, r.state) for r in run.resources]
    for rule in (
        rules.log_delivery_applies_immediately,
        rules.node_type_exists,
        rules.replace_safe_names,
    ):
        for rtype, props in stack:
            assert rule(rtype, props) == [], rule.__name__
    for name, (_, stack_rule) in rules.STACK_RULES.items():
        assert stack_rule(stack) == [], name


def test_the_fixed_name_rule_covers_every_replace_on_change_input_of_the_update_check_table() -> (
    None
):
    """One source of facts: for each type the fixed-name rule checks, every input the provider
    replaces on change (infra/replacements.py, with its provider source) other than the name
    itself must either show in the name or stay constant — else a replace collides with the
    old, still attached resource."""
    from infra.policy.rules import REPLACE_ON_CHANGE
    from infra.replacements import rule_for

    for rtype, table in REPLACE_ON_CHANGE.items():
        facts = rule_for(rtype)
        must_cover = set(facts.replace_on_change) - set(facts.physical_name)
        assert set(table["in_name"]) | set(table["constant"]) == must_cover, rtype
