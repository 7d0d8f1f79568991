"""The policy pack: every validator passes on the program's own resources and fires on bad ones."""

from __future__ import annotations

import copy
import types
from typing import Any

import pytest

from infra.offline import OfflineRun, RunProgram
from infra.policy import pack, rules

RG = rules.RG
GOOD_RG: dict[str, Any] = {
    "replicationGroupId": "cache-x",
    "numCacheClusters": 2,
    "snapshotRetentionLimit": 7,
    "autoMinorVersionUpgrade": True,
    "automaticFailoverEnabled": True,
    "atRestEncryptionEnabled": True,
    "kmsKeyId": "arn:aws:kms:eu-west-1:123456789012:key/k",
    "transitEncryptionEnabled": True,
    "transitEncryptionMode": "required",
    "authToken": "04da6b54-80e4-46f7-96ec-b56ff0331ba9",  # unknown at preview counts as set
    "subnetGroupName": "cache-x-subnets",
}


def _violations(run: OfflineRun) -> list[str]:
    found = []
    for name, (_, rule) in rules.RESOURCE_RULES.items():
        for res in run.resources:
            found += [f"{name} {res.name}: {m}" for m in rule(res.type, res.inputs)]
    # Stack rules see what the engine hands them after the update: inputs and outputs
    # (the group's real memberClusters, the topics' ARNs).
    for name, (_, stack_rule) in rules.STACK_RULES.items():
        found += [f"{name}: {m}" for m in stack_rule([(r.type, r.state) for r in run.resources])]
    return found


def test_program_resources_pass_every_policy(dev_run: OfflineRun) -> None:
    assert _violations(dev_run) == []


@pytest.mark.parametrize(
    "overrides",
    [
        {"authMode": "rbac"},
        {"numNodes": 3},
        {"engine": "valkey", "engineVersion": "7.2"},
        {"maxmemoryPolicy": "volatile-lru", "nodeType": "cache.r7g.large"},
        {"environment": "prod"},
    ],
)
def test_program_variants_pass_every_policy(
    run_program: RunProgram, overrides: dict[str, Any]
) -> None:
    assert _violations(run_program(**overrides)) == []


def test_good_group_passes_every_rule() -> None:
    for _, rule in rules.RESOURCE_RULES.values():
        assert rule(RG, GOOD_RG) == []


@pytest.mark.parametrize(
    ("rule", "change", "expected"),
    [
        (rules.backups_enabled, {"snapshotRetentionLimit": 0}, "ElastiCache.1"),
        (rules.minor_version_upgrade, {"autoMinorVersionUpgrade": False}, "ElastiCache.2"),
        (rules.automatic_failover, {"automaticFailoverEnabled": False}, "ElastiCache.3"),
        (rules.automatic_failover, {"numCacheClusters": 1}, "ElastiCache.3"),
        (rules.encryption_at_rest, {"atRestEncryptionEnabled": False}, "ElastiCache.4"),
        (rules.encryption_at_rest, {"kmsKeyId": None}, "customer-managed"),
        (rules.encryption_in_transit, {"transitEncryptionEnabled": False}, "ElastiCache.5"),
        (rules.encryption_in_transit, {"transitEncryptionMode": "preferred"}, "required"),
        (rules.auth_required, {"authToken": None}, "ElastiCache.6"),
        (rules.custom_subnet_group, {"subnetGroupName": "default"}, "ElastiCache.7"),
        (rules.custom_subnet_group, {"subnetGroupName": None}, "ElastiCache.7"),
    ],
)
def test_each_elasticache_rule_fires_on_a_bad_group(
    rule: rules.Rule, change: dict[str, Any], expected: str
) -> None:
    props = {**GOOD_RG, **change}
    messages = rule(RG, props)
    assert messages
    assert any(expected in m for m in messages)


@pytest.mark.parametrize(
    ("rtype", "props"),
    [
        (
            "aws:ec2/securityGroup:SecurityGroup",
            {"ingress": [{"fromPort": 6379, "toPort": 6379, "cidrBlocks": ["0.0.0.0/0"]}]},
        ),
        (
            "aws:ec2/securityGroup:SecurityGroup",
            {"ingress": [{"fromPort": 6379, "toPort": 6379, "ipv6CidrBlocks": ["::/0"]}]},
        ),
        ("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", {"cidrIpv4": "0.0.0.0/0"}),
        (
            "aws:ec2/securityGroupRule:SecurityGroupRule",
            {"type": "ingress", "cidrBlocks": ["10.0.0.0/8", "0.0.0.0/0"]},
        ),
    ],
)
def test_open_ingress_fires(rtype: str, props: dict[str, Any]) -> None:
    assert rules.no_open_ingress(rtype, props)


INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"


@pytest.mark.parametrize(
    ("props", "public"),
    [
        ({"cidrIpv4": "0.0.0.0/1"}, ["0.0.0.0/1"]),
        ({"cidrIpv4": "128.0.0.0/1"}, ["128.0.0.0/1"]),
        ({"cidrIpv4": "203.0.113.0/24"}, ["203.0.113.0/24"]),
        ({"cidrIpv4": "10.0.0.0/7"}, ["10.0.0.0/7"]),
        ({"cidrIpv6": "::/0"}, ["::/0"]),
        ({"cidrIpv6": "2001:db8::/32"}, ["2001:db8::/32"]),
        ({"cidrIpv4": "not-a-cidr"}, ["not-a-cidr (not a valid CIDR)"]),
    ],
)
def test_any_public_range_fires_naming_the_cidr(props: dict[str, Any], public: list[str]) -> None:
    messages = rules.no_open_ingress(INGRESS_RULE, props)
    assert [m.split(" is not a private network")[0] for m in messages] == [
        f"ingress from {c}" for c in public
    ]


def test_internet_split_in_halves_fires_twice() -> None:
    messages = rules.no_open_ingress(
        "aws:ec2/securityGroup:SecurityGroup",
        {
            "ingress": [
                {"fromPort": 6379, "toPort": 6379, "cidrBlocks": ["0.0.0.0/1", "128.0.0.0/1"]}
            ]
        },
    )
    assert len(messages) == 2


@pytest.mark.parametrize(
    "props",
    [
        {"cidrIpv4": "10.0.0.0/8"},
        {"cidrIpv4": "172.16.0.0/12"},
        {"cidrIpv4": "192.168.1.0/24"},
        {"cidrIpv4": "100.64.0.0/10"},
        {"cidrIpv6": "fd00:1::/64"},
        {"referencedSecurityGroupId": "sg-0123456789abcdef0"},
        {"cidrIpv4": "04da6b54-80e4-46f7-96ec-b56ff0331ba9"},  # unknown at preview
    ],
)
def test_private_or_unknown_ingress_does_not_fire(props: dict[str, Any]) -> None:
    assert rules.no_open_ingress(INGRESS_RULE, props) == []


def test_policy_and_config_agree_on_what_is_private() -> None:
    from infra.config import InfraConfigError, load

    for cidr in ("0.0.0.0/1", "203.0.113.0/24", "::/0", "100.128.0.0/10", "10.0.0.0/8", "fc00::/7"):
        policy_ok = rules.no_open_ingress(INGRESS_RULE, {"cidrIpv4": cidr}) == []
        try:
            load({"allowedCidrs": f'["{cidr}"]'}, stack="dev")
            config_ok = True
        except InfraConfigError:
            config_ok = False
        assert policy_ok == config_ok, cidr


def test_egress_and_private_ingress_do_not_fire() -> None:
    assert (
        rules.no_open_ingress(
            "aws:ec2/securityGroupRule:SecurityGroupRule",
            {"type": "egress", "cidrBlocks": ["0.0.0.0/0"]},
        )
        == []
    )
    assert (
        rules.no_open_ingress(
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", {"cidrIpv4": "10.0.0.0/8"}
        )
        == []
    )


def _stack(run: OfflineRun) -> list[tuple[str, dict[str, Any]]]:
    """Inputs and outputs, as a stack policy sees them after the update."""
    return [(r.type, copy.deepcopy(r.state)) for r in run.resources]


def _preview(run: OfflineRun) -> list[tuple[str, dict[str, Any]]]:
    """Inputs only, as at preview (the group's members not known yet)."""
    return [(r.type, copy.deepcopy(r.inputs)) for r in run.resources]


def test_missing_node_alarm_fires(dev_run: OfflineRun) -> None:
    # Slot 002 watches the second real member, berthcache-dev-004.
    resources = [
        (t, p)
        for t, p in _stack(dev_run)
        if not (t == rules.ALARM and p.get("name") == "berthcache-dev-002-replication-lag")
    ]
    messages = rules.every_node_alarmed(resources)
    assert messages == ["berthcache-dev-004 has no alarm with actions on ReplicationLag"]
    assert rules.every_node_alarmed(_preview(dev_run)) == []
    preview = [
        (t, p)
        for t, p in _preview(dev_run)
        if not (t == rules.ALARM and p.get("name") == "berthcache-dev-002-replication-lag")
    ]
    assert rules.every_node_alarmed(preview) == [
        "berthcache-dev: fewer than 2 alarms with actions on ReplicationLag"
    ]


def test_alarm_without_actions_does_not_count(dev_run: OfflineRun) -> None:
    resources = _stack(dev_run)
    for t, p in resources:
        if t == rules.ALARM and p.get("name") == "berthcache-dev-001-evictions":
            p["alarmActions"] = []
    assert rules.every_node_alarmed(resources) == [
        "berthcache-dev-003 has no alarm with actions on Evictions"
    ]


def test_a_member_under_another_name_is_unwatched(dev_run: OfflineRun) -> None:
    """Coverage follows the group's real member list, not a <group>-00N formula."""
    resources = _stack(dev_run)
    for t, p in resources:
        if t == RG:
            p["memberClusters"] = ["berthcache-dev-003", "berthcache-dev-009"]
    messages = rules.every_node_alarmed(resources)
    assert len(messages) == 1
    assert messages[0].startswith("berthcache-dev-009 has no alarm")


def test_more_nodes_than_alarms_fires_at_preview(dev_run: OfflineRun) -> None:
    resources = _preview(dev_run)
    for t, p in resources:
        if t == RG:
            p["numCacheClusters"] = 3
    messages = rules.every_node_alarmed(resources)
    assert len(messages) == 1
    assert messages[0].startswith("berthcache-dev: fewer than 3 alarms")


def test_pack_wraps_each_rule_as_a_mandatory_pulumi_policy() -> None:
    policies = pack.policies()
    names = {p.name for p in policies}
    assert names == {*rules.RESOURCE_RULES, *rules.STACK_RULES}
    assert "every-node-alarmed" in names
    assert all(p.enforcement_level.value == "mandatory" for p in policies)


def test_pulumi_validators_report_violations_through_the_callback(dev_run: OfflineRun) -> None:
    reported: list[str] = []
    validate = pack.resource_validator(rules.encryption_in_transit)
    args = types.SimpleNamespace(
        resource_type=RG, name="bad", props={**GOOD_RG, "transitEncryptionEnabled": False}
    )
    validate(args, lambda msg, urn: reported.append(msg))
    assert reported == ["bad: transitEncryptionEnabled must be true (ElastiCache.5)"]

    stack_args = types.SimpleNamespace(
        resources=[types.SimpleNamespace(resource_type=t, props=p) for t, p in _stack(dev_run)]
    )
    pack.validate_every_node_alarmed(stack_args, lambda msg, urn: reported.append(msg))
    assert len(reported) == 1
