"""The real program under mocks with Pulumi.dev.yaml: every security property, and variations."""

from __future__ import annotations

import json
from typing import Any

import pytest

from berthcache.ops.alarm_catalogue import specs_for
from berthcache.testing import app_user_rules
from infra.offline import OfflineRun, RunProgram, is_secret_value, plain

RG = "aws:elasticache/replicationGroup:ReplicationGroup"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"


# What the mocks answer as the group's members (as after a failover and a scale change):
# not the first-creation <group>-001, -002.
DEV_MEMBERS = ["berthcache-dev-003", "berthcache-dev-004"]


def _topic(run: OfflineRun, suffix: str) -> Any:
    return next(t for t in run.of_type("aws:sns/topic:Topic") if t.inputs["name"].endswith(suffix))


def _alarms_by_member(run: OfflineRun) -> dict[str, dict[str, dict[str, Any]]]:
    """member -> metric (or 'hit-rate') -> alarm inputs."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for alarm in run.of_type(ALARM):
        inputs = alarm.inputs
        if "metricQueries" in inputs:
            q = inputs["metricQueries"][0]["metric"]
            member, metric = q["dimensions"]["CacheClusterId"], "hit-rate"
        else:
            member, metric = inputs["dimensions"]["CacheClusterId"], inputs["metricName"]
        out.setdefault(member, {})[metric] = inputs
    return out


def test_dev_stack_declares_one_redis7_group_secure_by_construction(dev_run: OfflineRun) -> None:
    rg = dev_run.one(RG).inputs
    assert rg["engine"] == "redis"
    assert rg["engineVersion"].startswith("7.")
    assert rg["numCacheClusters"] == 2
    assert rg["automaticFailoverEnabled"] is True
    assert rg["multiAzEnabled"] is True
    assert rg["transitEncryptionEnabled"] is True
    assert rg["transitEncryptionMode"] == "required"
    assert rg["atRestEncryptionEnabled"] is True
    assert rg["kmsKeyId"] == dev_run.one("aws:kms/key:Key").state["arn"]
    assert rg["snapshotRetentionLimit"] >= 1
    assert rg["snapshotWindow"] == "03:00-04:00"
    assert rg["maintenanceWindow"] == "sun:05:00-sun:06:00"
    assert rg["autoMinorVersionUpgrade"] is True
    assert rg["authTokenUpdateStrategy"] == "ROTATE"
    assert is_secret_value(rg["authToken"]), "the AUTH token must travel as a secret"
    assert (
        rg["subnetGroupName"]
        == dev_run.one("aws:elasticache/subnetGroup:SubnetGroup").inputs["name"]
    )
    assert (
        rg["parameterGroupName"]
        == dev_run.one("aws:elasticache/parameterGroup:ParameterGroup").inputs["name"]
    )
    assert rg["notificationTopicArn"] == _topic(dev_run, "-events").state["arn"]
    assert rg["tags"]["Project"] == "berthcache"


def test_kms_key_rotates_and_encrypts_logs_topic_and_secret(dev_run: OfflineRun) -> None:
    key = dev_run.one("aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True
    arn = key.state["arn"]
    assert _topic(dev_run, "-alerts").inputs["kmsMasterKeyId"] == arn
    assert dev_run.one("aws:secretsmanager/secret:Secret").inputs["kmsKeyId"] == arn
    policy = json.loads(key.inputs["policy"])
    assert any(s["Sid"] == "CloudWatchLogs" for s in policy["Statement"])


def test_slow_and_engine_logs_go_to_encrypted_log_groups(dev_run: OfflineRun) -> None:
    groups = {
        g.inputs["name"]: g.inputs for g in dev_run.of_type("aws:cloudwatch/logGroup:LogGroup")
    }
    deliveries = dev_run.one(RG).inputs["logDeliveryConfigurations"]
    assert {d["logType"] for d in deliveries} == {"slow-log", "engine-log"}
    for d in deliveries:
        assert d["destinationType"] == "cloudwatch-logs"
        group = groups[d["destination"]]
        assert group["retentionInDays"] == 30
        assert group["kmsKeyId"].startswith("arn:aws:kms:")


def test_parameter_group_matches_engine_and_keeps_seed_eviction_policy(dev_run: OfflineRun) -> None:
    params = dev_run.one("aws:elasticache/parameterGroup:ParameterGroup").inputs
    assert params["family"] == "redis7"
    assert {"name": "maxmemory-policy", "value": "allkeys-lru"} in params["parameters"]


def test_network_is_private_and_admits_6379_only_from_configured_cidrs(dev_run: OfflineRun) -> None:
    subnets = dev_run.of_type("aws:ec2/subnet:Subnet")
    assert len(subnets) >= 2
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in subnets)
    assert len({plain(s.inputs["availabilityZone"]) for s in subnets}) == len(subnets)
    assert not dev_run.of_type("aws:ec2/internetGateway:InternetGateway")
    rules = dev_run.of_type(INGRESS)
    assert [r.inputs.get("cidrIpv4") for r in rules] == ["10.40.0.0/16"]
    for r in rules:
        assert (r.inputs["fromPort"], r.inputs["toPort"], r.inputs["ipProtocol"]) == (
            6379,
            6379,
            "tcp",
        )
    assert "ingress" not in dev_run.one("aws:ec2/securityGroup:SecurityGroup").inputs


def test_auth_token_is_generated_in_elasticache_limits(dev_run: OfflineRun) -> None:
    token = dev_run.one("random:index/randomPassword:RandomPassword").inputs
    assert 16 <= token["length"] <= 128
    assert set(token["overrideSpecial"]) <= set("!&#$^<>-")


def test_every_node_has_every_catalogue_alarm_with_actions_and_runbook(dev_run: OfflineRun) -> None:
    topic_arn = _topic(dev_run, "-alerts").state["arn"]
    by_member = _alarms_by_member(dev_run)
    assert set(by_member) == set(DEV_MEMBERS)
    for member, alarms in by_member.items():
        for spec in specs_for("allkeys-lru", "cache.t4g.small"):
            alarm = alarms[spec.metric or "hit-rate"]
            assert alarm["alarmActions"] == [topic_arn]
            assert alarm["okActions"] == [topic_arn]
            assert alarm["treatMissingData"] == spec.treat_missing_data
            assert f"src/berthcache/ops/runbooks.md#{spec.runbook_anchor}" in str(
                alarm["alarmDescription"]
            )
            if spec.metric:
                assert alarm["dimensions"] == {"CacheClusterId": member, "CacheNodeId": "0001"}
    required = {
        "EngineCPUUtilization",
        "CPUUtilization",
        "CPUCreditBalance",
        "CurrConnections",
        "ReplicationLag",
        "Evictions",
    }
    assert all(required <= set(alarms) for alarms in by_member.values())


def test_alarm_thresholds_follow_config_and_node_vcpus(dev_run: OfflineRun) -> None:
    alarms = _alarms_by_member(dev_run)[DEV_MEMBERS[0]]
    assert alarms["CPUUtilization"]["threshold"] == 45  # 90% budget / 2 vCPUs (t4g.small)
    assert alarms["CurrConnections"]["threshold"] == 2000
    assert alarms["SwapUsage"]["threshold"] == 50 * 1024 * 1024
    hit = alarms["hit-rate"]
    assert hit["comparisonOperator"] == "LessThanThreshold"
    assert hit["threshold"] == 80
    metrics = {q["metric"]["metricName"] for q in hit["metricQueries"] if "metric" in q}
    assert metrics == {"CacheHits", "CacheMisses"}


def test_cpu_threshold_keeps_full_budget_on_large_nodes(run_program: RunProgram) -> None:
    run = run_program(nodeType="cache.r7g.xlarge")
    assert _alarms_by_member(run)[DEV_MEMBERS[0]]["CPUUtilization"]["threshold"] == 90


def test_dashboard_shows_every_alarmed_metric_for_every_node(dev_run: OfflineRun) -> None:
    body = json.loads(dev_run.one("aws:cloudwatch/dashboard:Dashboard").inputs["dashboardBody"])
    shown = {(m[1], m[3]) for w in body["widgets"] for m in w["properties"]["metrics"]}
    for spec in specs_for("allkeys-lru", "cache.t4g.small"):
        for metric in spec.dashboard_metrics:
            for member in DEV_MEMBERS:
                assert (metric, member) in shown
    assert body["widgets"][0]["properties"]["region"] == "eu-west-1"


def test_alarm_topic_has_configured_email_subscription(dev_run: OfflineRun) -> None:
    subs = dev_run.of_type("aws:sns/topicSubscription:TopicSubscription")
    alerts, events = _topic(dev_run, "-alerts"), _topic(dev_run, "-events")
    assert sorted(
        (s.inputs["topic"], s.inputs["protocol"], s.inputs["endpoint"]) for s in subs
    ) == sorted((t.state["arn"], "email", "platform-alerts@example.com") for t in (alerts, events))


def test_outputs_and_secrets(dev_run: OfflineRun) -> None:
    out = dev_run.outputs
    for key in (
        "primaryEndpoint",
        "readerEndpoint",
        "port",
        "secretArn",
        "alarmTopicArn",
        "memberClusters",
        "dashboardName",
    ):
        assert key in out, key
    assert out["memberClusters"] == DEV_MEMBERS
    assert out["port"] == 6379
    # The connection URL carries the token, so it is an output only as a Pulumi secret; no
    # other output carries the token.
    assert dev_run.secret_outputs == {"connectionUrl"}
    token = dev_run.one("random:index/randomPassword:RandomPassword").state["result"]
    assert token in out["connectionUrl"]
    assert out["connectionUrl"].startswith("rediss://")
    for key, value in out.items():
        if key != "connectionUrl":
            assert token not in json.dumps(value), f"output {key} leaks the AUTH token"


@pytest.mark.parametrize("auth_mode", ["token", "rbac"])
def test_pulumi_up_never_writes_a_rotated_credential_back(
    run_program: RunProgram, auth_mode: str
) -> None:
    """After creation the token (or app password) belongs to `berthcache-ops
    rotate-auth-token`: the group, the secret's value and the app user ignore changes to it."""
    run = run_program(authMode=auth_mode)
    assert "auth_token" in run.one(RG).ignore_changes
    version = run.one("aws:secretsmanager/secretVersion:SecretVersion")
    assert "secret_string" in version.ignore_changes
    if auth_mode == "rbac":
        users = {u.inputs["userName"]: u for u in run.of_type("aws:elasticache/user:User")}
        assert "authentication_mode" in users["app"].ignore_changes
    # The rest of the group stays managed: nothing else is ignored.
    assert run.one(RG).ignore_changes == ("auth_token",)
    assert version.ignore_changes == ("secret_string",)


def test_prod_protects_the_group_key_and_secret(run_program: RunProgram) -> None:
    run = run_program(stack="prod", environment="prod", replicationGroupId="berthcache-prod")
    protected = {r.type for r in run.resources if r.protect}
    assert protected == {RG, "aws:kms/key:Key", "aws:secretsmanager/secret:Secret"}
    assert not any(r.protect for r in run_program().resources)


def test_secret_holds_endpoints_and_token_as_secret(dev_run: OfflineRun) -> None:
    version = dev_run.one("aws:secretsmanager/secretVersion:SecretVersion").inputs
    assert is_secret_value(version["secretString"])
    doc = json.loads(plain(version["secretString"]))
    assert doc["host"] == dev_run.outputs["primaryEndpoint"]
    assert doc["reader_host"] == dev_run.outputs["readerEndpoint"]
    assert doc["port"] == 6379
    assert doc["tls"] is True
    assert doc["key_prefix"] == "berthcare:"
    assert doc["url"].startswith("rediss://")


def test_dev_is_not_protected_but_prod_keeps_a_final_snapshot(run_program: RunProgram) -> None:
    dev = run_program().one(RG).inputs
    assert dev.get("finalSnapshotIdentifier") is None
    prod = run_program(stack="prod", environment="prod", replicationGroupId="berthcache-prod")
    rg = prod.one(RG).inputs
    assert rg["finalSnapshotIdentifier"] == "berthcache-prod-final"
    assert rg["applyImmediately"] is True  # log delivery changes need it (F3)


def test_existing_vpc_creates_no_network_and_admits_security_groups(
    run_program: RunProgram,
) -> None:
    run = run_program(
        vpcId="vpc-0123456789abcdef0",
        subnetIds=["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
        allowedCidrs=None,
        allowedSecurityGroupIds=["sg-0123456789abcdef0"],
    )
    assert not run.of_type("aws:ec2/vpc:Vpc")
    assert not run.of_type("aws:ec2/subnet:Subnet")
    assert run.one("aws:elasticache/subnetGroup:SubnetGroup").inputs["subnetIds"] == [
        "subnet-0123456789abcdef0",
        "subnet-0123456789abcdef1",
    ]
    assert run.one("aws:ec2/securityGroup:SecurityGroup").inputs["vpcId"] == "vpc-0123456789abcdef0"
    rules = run.of_type(INGRESS)
    assert [r.inputs.get("referencedSecurityGroupId") for r in rules] == ["sg-0123456789abcdef0"]
    assert all(r.inputs.get("cidrIpv4") is None for r in rules)


def test_valkey_engine(run_program: RunProgram) -> None:
    run = run_program(engine="valkey", engineVersion="7.2")
    rg = run.one(RG).inputs
    assert (rg["engine"], rg["engineVersion"]) == ("valkey", "7.2")
    assert run.one("aws:elasticache/parameterGroup:ParameterGroup").inputs["family"] == "valkey7"


def test_rbac_mode_limits_app_user_and_disables_default(run_program: RunProgram) -> None:
    run = run_program(authMode="rbac")
    users = {u.inputs["userName"]: u.inputs for u in run.of_type("aws:elasticache/user:User")}
    assert users["default"]["accessString"].startswith("off")
    app = users["app"]["accessString"]
    assert "~berthcare:*" in app
    assert "~*" not in app.replace("~berthcare:*", "")
    # An allow-list: nothing but the commands berthcache sends (no SCAN, FUNCTION, SELECT ...).
    assert app.split()[:4] == ["on", "~berthcare:*", "&berthcare:*", "-@all"]
    assert "+@" not in app
    assert not {"+scan", "+keys", "+select", "+function", "+script|load"} & set(app.split())
    # Exactly the local harness's app user, with ElastiCache's `on` in front (no password).
    assert app == f"on {app_user_rules('berthcare:')}"
    group = run.one("aws:elasticache/userGroup:UserGroup").inputs
    rg = run.one(RG).inputs
    assert rg["userGroupIds"] == [group["userGroupId"]]
    assert rg.get("authToken") is None
    assert run.outputs["username"] == "app"
    assert run.secret_outputs == {"connectionUrl"}  # the URL with credentials, secret only
    doc = json.loads(
        plain(run.one("aws:secretsmanager/secretVersion:SecretVersion").inputs["secretString"])
    )
    assert doc["username"] == "app"
    assert doc["url"].startswith("rediss://app:")


def test_rbac_app_user_gets_exactly_the_listed_bare_channels(run_program: RunProgram) -> None:
    """Services on bare channel names (REDIS_PREFIX_CHANNELS=false, as the seed publishes on
    ``alerts``) need the RBAC app user to be granted those names, and only those."""
    run = run_program(authMode="rbac", appUserChannels=["alerts", "presence.events"])
    users = {u.inputs["userName"]: u.inputs for u in run.of_type("aws:elasticache/user:User")}
    app = users["app"]["accessString"]
    assert app == f"on {app_user_rules('berthcare:', channels=['alerts', 'presence.events'])}"
    assert " &alerts " in app
    assert " &presence.events " in app
    assert "&*" not in app


def test_multi_az_off_is_honoured_in_dev(run_program: RunProgram) -> None:
    rg = run_program(multiAz=False).one(RG).inputs
    assert rg["multiAzEnabled"] is False
    assert rg["automaticFailoverEnabled"] is True


def test_three_nodes_get_alarms_on_three_nodes(run_program: RunProgram) -> None:
    run = run_program(numNodes=3)
    by_member = _alarms_by_member(run)
    members = [f"berthcache-dev-00{i}" for i in (3, 4, 5)]
    assert set(by_member) == set(members)
    assert len(run.of_type(ALARM)) == 3 * len(specs_for("allkeys-lru", "cache.t4g.small"))
    assert run.outputs["memberClusters"] == members


@pytest.mark.parametrize(
    ("override", "setting"),
    [
        ({"numNodes": 1}, "berthcache:numNodes"),
        ({"engineVersion": "6.2"}, "berthcache:engineVersion"),
        ({"maintenanceWindow": "sunday 5am"}, "berthcache:maintenanceWindow"),
        ({"memoryThresholdPercent": 150}, "berthcache:memoryThresholdPercent"),
        ({"allowedCidrs": ["0.0.0.0/0"]}, "berthcache:allowedCidrs"),
        ({"allowedCidrs": ["0.0.0.0/1", "128.0.0.0/1"]}, "berthcache:allowedCidrs"),
        ({"allowedCidrs": ["::/0"]}, "berthcache:allowedCidrs"),
        ({"allowedCidrs": ["198.51.100.0/24"]}, "berthcache:allowedCidrs"),
        ({"environment": "prod", "multiAz": False}, "berthcache:multiAz"),
        ({"appUserChannels": ["*"]}, "berthcache:appUserChannels"),
        ({"appUserChannels": ["two words"]}, "berthcache:appUserChannels"),
    ],
)
def test_bad_config_stops_the_program_naming_the_setting(
    run_program: RunProgram, override: dict[str, object], setting: str
) -> None:
    with pytest.raises(Exception, match=setting) as info:
        run_program(**override)
    assert type(info.value).__name__ == "InfraConfigError"
