"""What the anchors' users ask for (issue 9, item 5), under mocks in dev and prod settings:
each setting's effect, and a bad value stopping the program with an error naming the setting."""

from __future__ import annotations

import importlib
import json

import pytest

from infra.api_requests import problems, to_requests
from infra.offline import OfflineRun, RunProgram, is_secret_value, plain
from infra.policy import rules
from infra.update_check import plan_update, with_overrides

RG = "aws:elasticache/replicationGroup:ReplicationGroup"
PROD = {"stack": "prod", "environment": "prod", "replicationGroupId": "berthcache-prod"}


def _policy(run: OfflineRun) -> list[str]:
    """Every policy-pack rule on the run (stack rules see the state after the update)."""
    found = []
    for name, (_, rule) in rules.RESOURCE_RULES.items():
        for res in run.resources:
            found += [f"{name} {res.name}: {m}" for m in rule(res.type, res.inputs)]
    for name, (_, stack_rule) in rules.STACK_RULES.items():
        found += [f"{name}: {m}" for m in stack_rule([(r.type, r.state) for r in run.resources])]
    return found


def _bad(run_program: RunProgram, setting: str, **override: object) -> str:
    with pytest.raises(Exception, match=f"berthcache:{setting}") as info:
        run_program(**override)
    assert type(info.value).__name__ == "InfraConfigError"
    return str(info.value)


# --- final snapshot ---------------------------------------------------------------------------


def test_final_snapshot_defaults_to_prod_only_and_can_be_set_in_every_stage(
    run_program: RunProgram,
) -> None:
    def final(**override: object) -> object:
        return run_program(**override).one(RG).inputs.get("finalSnapshotIdentifier")

    assert final() is None
    assert final(finalSnapshot="true") == "berthcache-dev-final"
    assert final(**PROD) == "berthcache-prod-final"
    assert final(**PROD, finalSnapshot="false") is None
    assert final(environment="staging", finalSnapshot="true") == "berthcache-dev-final"


def test_a_bad_final_snapshot_value_names_the_setting(run_program: RunProgram) -> None:
    message = _bad(run_program, "finalSnapshot", finalSnapshot="yes")
    assert "auto, true, false" in message


# --- user tags --------------------------------------------------------------------------------

USER_TAGS = ["team=platform", "cost-center=cc 42/cache"]
EXISTING_VPC = {
    "vpcId": "vpc-0123456789abcdef0",
    "subnetIds": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
    "allowedSecurityGroupIds": ["sg-0123456789abcdef0"],
}


def _taggable(type_token: str) -> bool:
    package, module_path, name = type_token.split(":")
    lib = importlib.import_module("pulumi_aws" if package == "aws" else f"pulumi_{package}")
    module = module_path.split("/")[0]
    if module != "index":
        lib = getattr(lib, module)
    return hasattr(getattr(lib, f"{name}Args"), "tags")


@pytest.mark.parametrize(
    "variant",
    [
        {},
        {"authMode": "rbac", "maxmemoryPolicy": "noeviction"},
        EXISTING_VPC,
        PROD,
    ],
    ids=["dev", "rbac", "existing-vpc", "prod"],
)
def test_user_tags_are_on_every_taggable_resource(
    run_program: RunProgram, variant: dict[str, object]
) -> None:
    run = run_program(**variant, tags=USER_TAGS)
    taggable = [r for r in run.resources if r.type.startswith("aws:") and _taggable(r.type)]
    assert len({r.type for r in taggable}) >= 10
    for res in taggable:
        tags = plain(res.inputs.get("tags")) or {}
        assert tags.get("team") == "platform", f"{res.type} {res.name}: {tags}"
        assert tags.get("cost-center") == "cc 42/cache", res.name
        assert tags.get("ManagedBy") == "pulumi", "the program's own tags stay"


def test_without_user_tags_only_the_programs_tags_are_set(run_program: RunProgram) -> None:
    tags = plain(run_program().one(RG).inputs["tags"])
    assert set(tags) == {"Project", "Stack", "Environment", "ManagedBy"}


@pytest.mark.parametrize(
    ("tags", "why"),
    [
        (["team"], "look like team=platform"),
        (["aws:createdBy=me"], "reserved by AWS"),
        (["ManagedBy=terraform"], "set by the program"),
        (["team=a", "team=b"], "repeated: team"),
        ([f"{'k' * 129}=v"], "pattern"),
    ],
)
def test_bad_tags_name_the_setting(run_program: RunProgram, tags: list[str], why: str) -> None:
    assert why in _bad(run_program, "tags", tags=tags)


# --- Valkey 7.2 and 8.x -----------------------------------------------------------------------

PG = "aws:elasticache/parameterGroup:ParameterGroup"


@pytest.mark.parametrize(
    ("engine", "version", "family"),
    [
        ("redis", "7.0", "redis7"),
        ("redis", "7.1", "redis7"),
        ("valkey", "7.2", "valkey7"),
        ("valkey", "8.0", "valkey8"),
        ("valkey", "8.1", "valkey8"),
        ("valkey", "8.2", "valkey8"),
    ],
)
@pytest.mark.parametrize("stage", [{}, PROD], ids=["dev", "prod"])
def test_each_engine_version_gets_its_parameter_family(
    run_program: RunProgram, engine: str, version: str, family: str, stage: dict[str, object]
) -> None:
    run = run_program(**stage, engine=engine, engineVersion=version)
    rg = run.one(RG).inputs
    assert (rg["engine"], rg["engineVersion"]) == (engine, version)
    params = run.one(PG).inputs
    assert params["family"] == family
    assert params["name"].endswith(f"-{family}")
    assert run.outputs["engine"] == f"{engine} {version}"


def test_valkey_7_to_8_is_a_new_parameter_group_and_the_group_updates_in_place(
    dev_config: dict[str, object],
) -> None:
    base = with_overrides(dev_config, {"engine": "valkey", "engineVersion": "7.2"})
    from_redis = with_overrides(dev_config, {"engine": "valkey", "engineVersion": "8.2"})
    for before, after in (
        (base, with_overrides(base, {"engineVersion": "8.1"})),
        (dev_config, from_redis),
    ):
        plan = plan_update(before, after)
        # Only the parameter group is replaced (a new name carries the new family, created
        # before the old one is deleted); the replication group, and its data, stay.
        assert [c.type for c in plan.of("replace", "replace refused")] == [PG]
        assert {c.action for c in plan.changes if c.type == RG} == {"update"}


@pytest.mark.parametrize(
    ("override", "why"),
    [
        ({"engine": "redis", "engineVersion": "8.0"}, "redis runs 7.0, 7.1"),
        ({"engine": "valkey", "engineVersion": "7.1"}, "valkey runs 7.2, 8.0, 8.1, 8.2"),
        ({"engine": "valkey", "engineVersion": "9.0"}, "must be one of"),
    ],
)
def test_an_engine_version_the_engine_lacks_names_the_setting(
    run_program: RunProgram, override: dict[str, object], why: str
) -> None:
    assert why in _bad(run_program, "engineVersion", **override)


# --- extra parameter-group parameters -----------------------------------------------------------

EXTRA = ["notify-keyspace-events=Ex", "lazyfree-lazy-eviction=no", "timeout=300"]


@pytest.mark.parametrize("stage", [{}, PROD], ids=["dev", "prod"])
def test_extra_parameters_join_the_eviction_policy_in_the_parameter_group(
    run_program: RunProgram, stage: dict[str, object]
) -> None:
    run = run_program(**stage, parameters=EXTRA, maxmemoryPolicy="volatile-lru")
    params = {p["name"]: p["value"] for p in plain(run.one(PG).inputs["parameters"])}
    assert params == {
        "maxmemory-policy": "volatile-lru",
        "notify-keyspace-events": "Ex",
        "lazyfree-lazy-eviction": "no",
        "timeout": "300",
    }
    assert _policy(run) == [], "the policy pack still passes (a value 'no' is not in 'not')"


def test_an_extra_parameter_updates_the_parameter_group_in_place(
    dev_config: dict[str, object],
) -> None:
    plan = plan_update(dev_config, with_overrides(dev_config, {"parameters": ["timeout=300"]}))
    assert plan.verdict == "in place"
    assert [(c.type, c.inputs) for c in plan.of("update")] == [(PG, ("parameters",))]


@pytest.mark.parametrize(
    ("parameters", "why"),
    [
        (["maxmemory-policy=noeviction"], "set by maxmemoryPolicy"),
        (["cluster-enabled=yes"], "set by the program"),
        (["timeout"], "look like notify-keyspace-events=Ex"),
        (["Timeout=3"], "pattern"),
        (["timeout=1", "timeout=2"], "repeated: timeout"),
    ],
)
def test_bad_extra_parameters_name_the_setting(
    run_program: RunProgram, parameters: list[str], why: str
) -> None:
    assert why in _bad(run_program, "parameters", parameters=parameters)


# --- bring your own key, topics, security groups, subnet group ---------------------------------

KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ALARMS_ARN = "arn:aws:sns:eu-west-1:123456789012:platform-alarms"
EVENTS_ARN = "arn:aws:sns:eu-west-1:123456789012:platform-cache-events"
OWN_NETWORK = {
    "vpcId": "vpc-0123456789abcdef0",
    "subnetIds": None,
    "vpcCidr": None,
    "azCount": None,
    "allowedCidrs": None,
    "securityGroupIds": ["sg-0123456789abcdef0", "sg-0123456789abcdef1"],
    "subnetGroupName": "platform-private-cache",
}
TOPIC = "aws:sns/topic:Topic"


def _types(run: OfflineRun) -> set[str]:
    return {r.type for r in run.resources}


@pytest.mark.parametrize("stage", [{}, PROD], ids=["dev", "prod"])
def test_your_kms_key_is_used_everywhere_and_none_is_created(
    run_program: RunProgram, stage: dict[str, object]
) -> None:
    run = run_program(**stage, kmsKeyArn=KEY_ARN)
    assert not {"aws:kms/key:Key", "aws:kms/alias:Alias"} & _types(run)
    assert run.one(RG).inputs["kmsKeyId"] == KEY_ARN
    logs = run.of_type("aws:cloudwatch/logGroup:LogGroup")
    assert [g.inputs["kmsKeyId"] for g in logs] == [KEY_ARN, KEY_ARN]
    assert run.one("aws:secretsmanager/secret:Secret").inputs["kmsKeyId"] == KEY_ARN
    alarm_topic = next(t for t in run.of_type(TOPIC) if t.inputs["name"].endswith("-alerts"))
    assert alarm_topic.inputs["kmsMasterKeyId"] == KEY_ARN
    assert run.outputs["kmsKeyArn"] == KEY_ARN
    assert _policy(run) == []


@pytest.mark.parametrize("stage", [{}, PROD], ids=["dev", "prod"])
def test_your_topics_receive_alarms_and_events_and_none_is_created(
    run_program: RunProgram, stage: dict[str, object]
) -> None:
    run = run_program(
        **stage, alarmTopicArn=ALARMS_ARN, eventsTopicArn=EVENTS_ARN, alarmEmails=None
    )
    assert not {TOPIC, "aws:sns/topicPolicy:TopicPolicy"} & _types(run)
    assert "aws:sns/topicSubscription:TopicSubscription" not in _types(run)
    assert run.one(RG).inputs["notificationTopicArn"] == EVENTS_ARN
    alarms = run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    assert alarms
    assert all(plain(a.inputs["alarmActions"]) == [ALARMS_ARN] for a in alarms)
    assert (run.outputs["alarmTopicArn"], run.outputs["eventsTopicArn"]) == (ALARMS_ARN, EVENTS_ARN)
    assert _policy(run) == []


def test_only_the_topic_you_bring_is_not_created(run_program: RunProgram) -> None:
    run = run_program(eventsTopicArn=EVENTS_ARN)
    (topic,) = run.of_type(TOPIC)
    assert topic.inputs["name"] == "berthcache-dev-alerts"
    assert run.one(RG).inputs["notificationTopicArn"] == EVENTS_ARN
    (email,) = run.of_type("aws:sns/topicSubscription:TopicSubscription")
    assert email.inputs["endpoint"] == "platform-alerts@example.com"


def test_emails_without_a_topic_of_the_stack_name_the_setting(run_program: RunProgram) -> None:
    message = _bad(run_program, "alarmEmails", alarmTopicArn=ALARMS_ARN, eventsTopicArn=EVENTS_ARN)
    assert "subscribe them to your topics" in message


@pytest.mark.parametrize("stage", [{}, PROD], ids=["dev", "prod"])
def test_your_security_groups_and_subnet_group_are_used_and_none_is_created(
    run_program: RunProgram, stage: dict[str, object]
) -> None:
    run = run_program(**stage, **OWN_NETWORK)
    created = _types(run)
    for absent in (
        "aws:ec2/securityGroup:SecurityGroup",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        "aws:elasticache/subnetGroup:SubnetGroup",
        "aws:ec2/vpc:Vpc",
    ):
        assert absent not in created
    rg = run.one(RG).inputs
    assert plain(rg["securityGroupIds"]) == OWN_NETWORK["securityGroupIds"]
    assert rg["subnetGroupName"] == "platform-private-cache"
    assert _policy(run) == []


def test_switching_to_your_security_groups_updates_the_group_in_place(
    dev_config: dict[str, object],
) -> None:
    existing = with_overrides(dev_config, EXISTING_VPC)
    for key in ("vpcCidr", "azCount"):
        existing.pop(f"berthcache:{key}", None)
    after = with_overrides(
        existing,
        {
            "allowedSecurityGroupIds": [],
            "allowedCidrs": [],
            "securityGroupIds": ["sg-0123456789abcdef1"],
        },
    )
    plan = plan_update(existing, after)
    assert plan.verdict == "in place", plan.of("replace", "replace refused")
    assert {c.type for c in plan.of("delete")} >= {"aws:ec2/securityGroup:SecurityGroup"}
    (group,) = [c for c in plan.changes if c.type == RG]
    assert (group.action, group.inputs) == ("update", ("securityGroupIds",))
    # A subnet group of your own is a new subnetGroupName: the provider replaces the group.
    own = with_overrides(existing, {"subnetIds": [], "subnetGroupName": "platform-private-cache"})
    assert plan_update(existing, own).verdict == "replace refused"


@pytest.mark.parametrize(
    ("override", "setting", "why"),
    [
        ({"kmsKeyArn": "arn:aws:kms:us-east-1:123456789012:alias/mine"}, "kmsKeyArn", "pattern"),
        ({"kmsKeyArn": "1234abcd-12ab-34cd-56ef-1234567890ab"}, "kmsKeyArn", "look like arn:"),
        ({"alarmTopicArn": "platform-alarms"}, "alarmTopicArn", "look like arn:aws:sns"),
        ({"eventsTopicArn": EVENTS_ARN + ".fifo"}, "eventsTopicArn", "pattern"),
        ({"securityGroupIds": ["sg-1"]}, "securityGroupIds", "look like sg-"),
        ({"securityGroupIds": ["sg-0123456789abcdef0"]}, "securityGroupIds", "with vpcId"),
        (
            {**OWN_NETWORK, "allowedCidrs": ["10.0.0.0/16"]},
            "allowedCidrs",
            "does not apply with securityGroupIds",
        ),
        (
            {**OWN_NETWORK, "allowedSecurityGroupIds": ["sg-0123456789abcdef2"]},
            "allowedSecurityGroupIds",
            "does not apply with securityGroupIds",
        ),
        (
            {**OWN_NETWORK, "subnetIds": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]},
            "subnetIds",
            "not both",
        ),
        ({"subnetGroupName": "platform-private-cache"}, "subnetGroupName", "with vpcId"),
        ({**OWN_NETWORK, "subnetGroupName": "Bad--Name"}, "subnetGroupName", "pattern"),
    ],
)
def test_bad_bring_your_own_values_name_the_setting(
    run_program: RunProgram, override: dict[str, object], setting: str, why: str
) -> None:
    assert why in _bad(run_program, setting, **override)


# --- restore from a snapshot --------------------------------------------------------------------

RDB = "arn:aws:s3:::platform-backups/berthcache/dump.rdb"


@pytest.mark.parametrize("stage", [{}, PROD], ids=["dev", "prod"])
def test_the_group_is_created_from_a_snapshot_name_or_an_rdb_in_s3(
    run_program: RunProgram, stage: dict[str, object]
) -> None:
    named = run_program(**stage, restoreFromSnapshot="berthcache-prod-final").one(RG).inputs
    assert named["snapshotName"] == "berthcache-prod-final"
    assert named.get("snapshotArns") is None
    from_s3 = run_program(**stage, restoreFromSnapshot=RDB).one(RG).inputs
    assert plain(from_s3["snapshotArns"]) == [RDB]
    assert from_s3.get("snapshotName") is None
    plain_group = run_program(**stage).one(RG).inputs
    assert plain_group.get("snapshotName") is None
    assert plain_group.get("snapshotArns") is None


def test_changing_the_snapshot_replaces_the_group_and_is_refused_where_it_would_lose_it(
    dev_config: dict[str, object],
) -> None:
    restored = with_overrides(dev_config, {"restoreFromSnapshot": "berthcache-prod-final"})
    plan = plan_update(restored, with_overrides(restored, {"restoreFromSnapshot": RDB}))
    assert plan.verdict == "replace refused"
    (group,) = plan.of("replace refused")
    assert "snapshotArns" in group.inputs
    assert "snapshotName" in group.inputs
    assert "replace-on-change" in group.reason
    assert plan_update(restored, restored).verdict == "unchanged", "kept set: nothing happens"


@pytest.mark.parametrize(
    "value",
    [
        "arn:aws:elasticache:eu-west-1:123456789012:snapshot:nightly",
        "arn:aws:s3:::platform-backups/dump.json",
        "nightly--1",
        "1nightly",
    ],
)
def test_a_bad_snapshot_names_the_setting(run_program: RunProgram, value: str) -> None:
    assert "pattern" in _bad(run_program, "restoreFromSnapshot", restoreFromSnapshot=value)


# --- several RBAC users -------------------------------------------------------------------------

USERS = [
    "reports=~berthcare:reports:* -@all +get +mget",
    "worker=%R~berthcare:jobs:* %W~berthcare:results:* &berthcare:jobs:* -@all +get +set +publish",
]
USER = "aws:elasticache/user:User"
SECRET = "aws:secretsmanager/secret:Secret"
VERSION = "aws:secretsmanager/secretVersion:SecretVersion"


@pytest.mark.parametrize("stage", [{}, PROD], ids=["dev", "prod"])
def test_each_rbac_user_gets_its_access_and_a_password_in_its_own_secret(
    run_program: RunProgram, stage: dict[str, object]
) -> None:
    run = run_program(**stage, authMode="rbac", rbacUsers=USERS)
    group = str(run.outputs["replicationGroupId"])
    users = {u.inputs["userName"]: u.inputs for u in run.of_type(USER)}
    assert set(users) == {"default", "app", "reports", "worker"}
    assert users["reports"]["accessString"] == "on ~berthcare:reports:* -@all +get +mget"
    assert users["worker"]["userId"] == f"{group}-worker"
    assert users["worker"]["accessString"].startswith("on %R~berthcare:jobs:* ")
    member_ids = plain(run.one("aws:elasticache/userGroup:UserGroup").inputs["userIds"])
    assert {f"{group}-reports", f"{group}-worker"} <= set(member_ids)

    secrets = {s.inputs["name"]: s for s in run.of_type(SECRET)}
    stack = "prod" if stage else "dev"
    for name in ("reports", "worker"):
        own = secrets[f"berthcache/{stack}/{group}/{name}"]
        assert own.inputs["recoveryWindowInDays"] == (30 if stage else 0)
        (version,) = [
            v for v in run.of_type(VERSION) if v.name.endswith(f"-security-{name}-secret-value")
        ]
        assert is_secret_value(version.inputs["secretString"])
        doc = json.loads(plain(version.inputs["secretString"]))
        assert doc["username"] == name
        assert doc["url"].startswith(f"rediss://{name}:")
        # The password is in the secret only: no plain output holds it, and the one secret
        # output (connectionUrl) is the app user's.
        public = {k: v for k, v in run.outputs.items() if k not in run.secret_outputs}
        assert doc["password"] not in json.dumps(plain(public), default=str)
    assert run.secret_outputs == {"connectionUrl"}
    assert str(plain(run.outputs["connectionUrl"])).startswith("rediss://app:")
    arns = plain(run.outputs["rbacUserSecretArns"])
    assert set(arns) == {"reports", "worker"}


def test_adding_an_rbac_user_is_an_update_in_place(dev_config: dict[str, object]) -> None:
    rbac = with_overrides(dev_config, {"authMode": "rbac"})
    plan = plan_update(rbac, with_overrides(rbac, {"rbacUsers": USERS[:1]}))
    assert plan.verdict == "in place", plan.of("replace", "replace refused")
    created = {c.type for c in plan.of("create")}
    assert {USER, SECRET, VERSION, "random:index/randomPassword:RandomPassword"} <= created
    (group,) = [c for c in plan.changes if c.type == "aws:elasticache/userGroup:UserGroup"]
    assert (group.action, group.inputs) == ("update", ("userIds",))


@pytest.mark.parametrize(
    ("users", "why"),
    [
        (["ops=~berthcare:* +@all"], "'+@all' reaches past the key prefix"),
        (["ops=~berthcare:* allcommands"], "reaches past the key prefix"),
        (["ops=~berthcare:* -@all +scan"], "'+scan' reaches past the key prefix"),
        (["ops=~berthcare:* -@all +config|get"], "reaches past the key prefix"),
        (["ops=~* -@all +get"], "key pattern '~*' is not under berthcare:"),
        (["ops=%R~other:* -@all +get"], "is not under berthcare:"),
        (["ops=&* -@all +subscribe"], "channel '&*' is neither under berthcare:"),
        (["ops=allkeys -@all +get"], "not yours to set"),
        (["ops=~berthcare:* >secret +get"], "not yours to set"),
        (["ops=on ~berthcare:* +get"], "not yours to set"),
        (["ops=~berthcare:* get"], "is not an ACL rule"),
        (["app=~berthcare:* -@all +get"], "the program's own"),
        (["ops=~berthcare:* +get", "ops=~berthcare:* +set"], "repeated: ops"),
        (["Ops=~berthcare:* +get"], "pattern"),
    ],
)
def test_bad_rbac_users_name_the_setting(
    run_program: RunProgram, users: list[str], why: str
) -> None:
    message = _bad(run_program, "rbacUsers", authMode="rbac", rbacUsers=users)
    assert why in message


def test_rbac_users_need_rbac_mode(run_program: RunProgram) -> None:
    assert "only valid with authMode rbac" in _bad(run_program, "rbacUsers", rbacUsers=USERS)


# --- every feature at once: the requests stay valid for AWS ------------------------------------


@pytest.mark.parametrize("stage", [{}, PROD], ids=["dev", "prod"])
def test_every_anchor_feature_at_once_makes_valid_aws_requests_and_passes_the_policy(
    run_program: RunProgram, stage: dict[str, object]
) -> None:
    run = run_program(
        **stage,
        **OWN_NETWORK,
        engine="valkey",
        engineVersion="8.2",
        authMode="rbac",
        rbacUsers=USERS,
        tags=USER_TAGS,
        parameters=EXTRA,
        finalSnapshot="true",
        restoreFromSnapshot=RDB,
        kmsKeyArn=KEY_ARN,
        alarmTopicArn=ALARMS_ARN,
        eventsTopicArn=EVENTS_ARN,
        alarmEmails=None,
    )
    requests = to_requests(run)
    assert {"CreateReplicationGroup", "CreateUser", "PutMetricAlarm"} <= {
        r.operation for r in requests
    }
    bad = {f"{r.operation} {r.resource}": p for r in requests if (p := problems(r))}
    assert bad == {}
    assert _policy(run) == []


@pytest.mark.parametrize("setting", ["kmsKeyArn", "alarmTopicArn", "eventsTopicArn"])
def test_a_key_or_topic_of_another_region_names_the_setting(
    run_program: RunProgram, setting: str
) -> None:
    arn = {"kmsKeyArn": KEY_ARN, "alarmTopicArn": ALARMS_ARN, "eventsTopicArn": EVENTS_ARN}[setting]
    elsewhere = arn.replace(":eu-west-1:", ":us-east-1:")
    message = _bad(run_program, setting, **{setting: elsewhere})
    assert "is in us-east-1, but the stack runs in eu-west-1 (aws:region)" in message
