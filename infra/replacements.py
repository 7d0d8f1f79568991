"""What the provider replaces on change, per resource type the program declares, and where that
fact comes from.

Pulumi's AWS provider is bridged from terraform-provider-aws: a Terraform schema attribute with
``ForceNew: true`` (SDKv2) or a ``RequiresReplace`` plan modifier (plugin framework) is an input
whose change makes ``pulumi up`` replace the resource. This table records those inputs under
their Pulumi (camelCase) names, with the provider source file and the commit it was read at, so
``infra.update_check`` can say *before* an update whether it replaces anything. Nothing here
calls AWS; the facts are only as current as the commits named (read 2026-11, against
pulumi-aws 7.51.1, which bridges terraform-provider-aws 6.x).

``physical_name`` lists the inputs that name the resource in AWS. When one is set explicitly,
the bridge replaces delete-before-create (pulumi-terraform-bridge,
``nameRequiresDeleteBeforeReplace``): the old resource must be deletable before its successor
exists. ``name_is_identity`` says the
AWS id and ARN derive from that name alone, so a same-name successor keeps every reference valid.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "AWS_PROVIDER",
    "RANDOM_PROVIDER",
    "REPLACEMENTS",
    "ConditionalReplace",
    "ReplaceRule",
    "rule_for",
]

AWS_PROVIDER = "hashicorp/terraform-provider-aws"
RANDOM_PROVIDER = "hashicorp/terraform-provider-random"

Changed = Callable[[Any, Any], bool]
"""(old value, new value) -> True when this change replaces the resource."""


@dataclasses.dataclass(frozen=True)
class ConditionalReplace:
    """An input that replaces only for some changes (a ``CustomizeDiff`` ``ForceNewIf``)."""

    replaces: Changed
    when: str
    """The condition in words, for the plan's output."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class ReplaceRule:
    """One resource type: its replace-on-change inputs and the provider source they come from."""

    type: str
    """Pulumi type token, e.g. ``aws:elasticache/parameterGroup:ParameterGroup``."""
    source: str
    """Provider repository, file and commit the facts were read from."""
    replace_on_change: tuple[str, ...]
    """Inputs (Pulumi camelCase) whose any change replaces the resource."""
    conditional: Mapping[str, ConditionalReplace] = dataclasses.field(default_factory=dict)
    physical_name: tuple[str, ...] = ()
    """Inputs that name the resource in AWS (set explicitly: delete-before-create)."""
    name_is_identity: bool = False
    """The AWS id/ARN is derived from the physical name alone."""
    holds_data: bool = False
    """Deleting it loses data a user would notice (the cache)."""
    same_name_blocked: Callable[[Mapping[str, Any]], str | None] | None = None
    """Why AWS refuses a same-name successor right after the delete (or None when it allows)."""
    notes: str = ""

    def replaces(self, key: str, old: Any, new: Any) -> str | None:
        """Why changing ``key`` from ``old`` to ``new`` replaces the resource, or None."""
        if key in self.replace_on_change:
            return f"{key} is replace-on-change"
        cond = self.conditional.get(key)
        if cond is not None and cond.replaces(old, new):
            return f"{key} replaces when {cond.when}"
        return None


def _src(path: str, commit: str, repo: str = AWS_PROVIDER) -> str:
    return f"{repo} {path}@{commit[:12]}"


def _version_tuple(value: Any) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in str(value).split("."))
    except ValueError:
        return ()


def _is_downgrade(old: Any, new: Any) -> bool:
    return _version_tuple(new) < _version_tuple(old)


def _engine_replaces(old: Any, new: Any) -> bool:
    return str(old).lower() != str(new).lower() and not (old == "redis" and new == "valkey")


_SOURCES = ("cidrIpv4", "cidrIpv6", "prefixListId", "referencedSecurityGroupId")


def _secret_recovery_blocks(inputs: Mapping[str, Any]) -> str | None:
    days = inputs.get("recoveryWindowInDays", 30)
    if days in (0, 0.0):
        return None
    return (
        f"the old secret's name stays scheduled for deletion for {int(days)} days "
        "(recoveryWindowInDays); CreateSecret with that name fails until then"
    )


_RULES: tuple[ReplaceRule, ...] = (
    ReplaceRule(
        type="aws:elasticache/replicationGroup:ReplicationGroup",
        source=_src(
            "internal/service/elasticache/replication_group.go",
            "001b6364c1a3b3045e152f655440a6d47eb44a70",
        )
        + "; engine_version.go (customizeDiffEngine[Version]ForceNewOnDowngrade)",
        replace_on_change=(
            "atRestEncryptionEnabled",
            "dataTieringEnabled",
            "globalReplicationGroupId",
            "kmsKeyId",
            "networkType",
            "port",
            "replicationGroupId",
            "securityGroupNames",
            "snapshotArns",
            "snapshotName",
            "subnetGroupName",
        ),
        conditional={
            "engine": ConditionalReplace(_engine_replaces, "it is anything but redis -> valkey"),
            "engineVersion": ConditionalReplace(_is_downgrade, "the version goes down"),
        },
        physical_name=("replicationGroupId",),
        name_is_identity=True,
        holds_data=True,
        notes="transitEncryptionEnabled is no longer ForceNew (in-place migration). Cluster "
        "mode: numNodeGroups and replicasPerNodeGroup are in place (online resharding, "
        "ModifyReplicationGroupShardConfiguration; replica count changes), clusterMode too "
        "(ModifyReplicationGroup); only an explicit nodeGroupConfiguration (not declared) "
        "is ForceNewIf.",
    ),
    ReplaceRule(
        type="aws:elasticache/serverlessCache:ServerlessCache",
        source=_src(
            "internal/service/elasticache/serverless_cache.go",
            "00a919d1548eb437816d4838f320502ad34183ff",
        )
        + " (RequiresReplace); engine redis -> valkey in place since PR 42208, "
        "majorEngineVersion upgrades in place since PR 45087",
        replace_on_change=("kmsKeyId", "name", "snapshotArnsToRestores", "subnetIds"),
        conditional={
            "engine": ConditionalReplace(_engine_replaces, "it is anything but redis -> valkey"),
            "majorEngineVersion": ConditionalReplace(_is_downgrade, "the version goes down"),
        },
        physical_name=("name",),
        name_is_identity=True,
        holds_data=True,
        notes="cacheUsageLimits, securityGroupIds, userGroupId, snapshotRetentionLimit, "
        "dailySnapshotTime, description: ModifyServerlessCache, in place.",
    ),
    ReplaceRule(
        type="aws:elasticache/parameterGroup:ParameterGroup",
        source=_src(
            "internal/service/elasticache/parameter_group.go",
            "fd91d1b7945cd7b14e91b4f8e9770d14a6f793d9",
        )
        + " (same at 0593466d96e3)",
        replace_on_change=("description", "family", "name"),
        physical_name=("name",),
        name_is_identity=True,
        notes="Delete retries InvalidCacheParameterGroupState for 3 minutes while attached.",
    ),
    ReplaceRule(
        type="aws:elasticache/subnetGroup:SubnetGroup",
        source=_src(
            "internal/service/elasticache/subnet_group.go",
            "01c08000ddb14181b5bd19201d8fca311dc570e4",
        ),
        replace_on_change=("name",),
        physical_name=("name",),
        name_is_identity=True,
    ),
    ReplaceRule(
        type="aws:elasticache/user:User",
        source=_src(
            "internal/service/elasticache/user.go", "01f431114674c27cf790fafb67ac274bf8f765e1"
        ),
        replace_on_change=("userId", "userName"),
        physical_name=("userId",),
        name_is_identity=True,
    ),
    ReplaceRule(
        type="aws:elasticache/userGroup:UserGroup",
        source=_src(
            "internal/service/elasticache/user_group.go",
            "16a38e655493c96cc41e2178dbd58540f6c06722",
        ),
        replace_on_change=("engine", "userGroupId"),
        physical_name=("userGroupId",),
        name_is_identity=True,
        notes="userGroupId: not ForceNew at this commit, but it is the key ModifyUserGroup "
        "addresses, so a new id can only be a new group; treated as replace-on-change.",
    ),
    ReplaceRule(
        type="aws:cloudwatch/metricAlarm:MetricAlarm",
        source=_src(
            "internal/service/cloudwatch/metric_alarm.go",
            "055611a654738da73e7b1e2b5d2b7672c6d4d531",
        ),
        replace_on_change=("name",),  # alarm_name, named `name` in Pulumi
        physical_name=("name",),
        name_is_identity=True,
    ),
    ReplaceRule(
        type="aws:cloudwatch/dashboard:Dashboard",
        source=_src(
            "internal/service/cloudwatch/dashboard.go", "0620f2a6a126dfcbc4aecbc9a117b0fbea1656ff"
        ),
        replace_on_change=("dashboardName",),
        physical_name=("dashboardName",),
        name_is_identity=True,
    ),
    ReplaceRule(
        type="aws:cloudwatch/logGroup:LogGroup",
        source=_src("internal/service/logs/group.go", "0073593e7d6993ba482409f4dc35438daaa79bb3"),
        replace_on_change=("logGroupClass", "name", "namePrefix"),
        physical_name=("name",),
        name_is_identity=True,
    ),
    ReplaceRule(
        type="aws:sns/topic:Topic",
        source=_src("internal/service/sns/topic.go", "00a35305dc1b297a6fcdecdfbba33f1e63c3da39"),
        replace_on_change=("fifoTopic", "name", "namePrefix"),
        physical_name=("name",),
        name_is_identity=True,
        notes="kmsMasterKeyId is an attribute (SetTopicAttributes): in place.",
    ),
    ReplaceRule(
        type="aws:sns/topicPolicy:TopicPolicy",
        source=_src(
            "internal/service/sns/topic_policy.go", "00a35305dc1b297a6fcdecdfbba33f1e63c3da39"
        ),
        replace_on_change=("arn",),
        notes="Not declared today; listed for the events topic issue 9 adds.",
    ),
    ReplaceRule(
        type="aws:cloudwatch/logResourcePolicy:LogResourcePolicy",
        source=_src(
            "internal/service/logs/resource_policy.go", "00a35305dc1b297a6fcdecdfbba33f1e63c3da39"
        ),
        replace_on_change=("policyName", "resourceArn"),
        physical_name=("policyName",),
        name_is_identity=True,
        notes="Not declared today. Account-wide, 5,120 characters in all (issue 9, F8).",
    ),
    ReplaceRule(
        type="aws:sns/topicSubscription:TopicSubscription",
        source=_src(
            "internal/service/sns/topic_subscription.go",
            "04a2e6e5bc625ec85ea8c678219b483fc674877e",
        ),
        replace_on_change=("endpoint", "protocol", "topic"),  # topic_arn is `topic` in Pulumi
    ),
    ReplaceRule(
        type="aws:kms/key:Key",
        source=_src("internal/service/kms/key.go", "00a35305dc1b297a6fcdecdfbba33f1e63c3da39"),
        replace_on_change=(
            "customKeyStoreId",
            "customerMasterKeySpec",
            "keyUsage",
            "multiRegion",
            "xksKeyId",
        ),
    ),
    ReplaceRule(
        type="aws:kms/alias:Alias",
        source=_src("internal/service/kms/alias.go", "01c08000ddb14181b5bd19201d8fca311dc570e4"),
        replace_on_change=("name", "namePrefix"),
        physical_name=("name",),
        name_is_identity=True,
    ),
    ReplaceRule(
        type="aws:secretsmanager/secret:Secret",
        source=_src(
            "internal/service/secretsmanager/secret.go", "00c21cedec069dd27093b175baf15bac6d4b30fe"
        ),
        replace_on_change=("name", "namePrefix"),
        physical_name=("name",),
        same_name_blocked=_secret_recovery_blocks,
        notes="The ARN carries a random suffix: a successor has a new ARN even with the same name.",
    ),
    ReplaceRule(
        type="aws:secretsmanager/secretVersion:SecretVersion",
        source=_src(
            "internal/service/secretsmanager/secret_version.go",
            "0042e8ea0de293c6cd8b003f89f7f4d2fb5fcf31",
        ),
        replace_on_change=("secretBinary", "secretId", "secretString", "secretStringWoVersion"),
    ),
    ReplaceRule(
        type="aws:ec2/vpc:Vpc",
        source=_src("internal/service/ec2/vpc_.go", "00081ce41cc691433ac19bf42227cdabffd0454d"),
        replace_on_change=("cidrBlock", "ipv4IpamPoolId", "ipv4NetmaskLength"),
    ),
    ReplaceRule(
        type="aws:ec2/subnet:Subnet",
        source=_src(
            "internal/service/ec2/vpc_subnet.go", "00cda125a19d31754cb0d073cf551264c57955cb"
        ),
        replace_on_change=(
            "availabilityZone",
            "availabilityZoneId",
            "cidrBlock",
            "ipv4IpamPoolId",
            "ipv4NetmaskLength",
            "ipv6IpamPoolId",
            "ipv6Native",
            "ipv6NetmaskLength",
            "outpostArn",
            "vpcId",
        ),
    ),
    ReplaceRule(
        type="aws:ec2/securityGroup:SecurityGroup",
        source=_src(
            "internal/service/ec2/vpc_security_group.go",
            "01606926a0c0ab9174aec440f976a48b0baee722",
        ),
        replace_on_change=("description", "name", "namePrefix", "vpcId"),
        physical_name=("name",),
        notes="The group id (sg-...) is generated: a successor has a new id.",
    ),
    ReplaceRule(
        type="aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        source=_src(
            "internal/service/ec2/vpc_security_group_ingress_rule.go",
            "00a322094b4b9ade8a81b244345dbcf4b52ee8d6",
        ),
        replace_on_change=("securityGroupId",),
        conditional={
            key: ConditionalReplace(
                lambda old, new: (old is None) != (new is None),
                "the rule's source type changes (ModifyPlan RequiresReplace)",
            )
            for key in _SOURCES
        },
    ),
    ReplaceRule(
        type="random:index/randomPassword:RandomPassword",
        source=_src(
            "internal/provider/resource_password.go",
            "c054b4769837f07ce6dcff3eeaea47f16f1000b6",
            RANDOM_PROVIDER,
        ),
        replace_on_change=(
            "keepers",
            "length",
            "lower",
            "minLower",
            "minNumeric",
            "minSpecial",
            "minUpper",
            "number",
            "numeric",
            "overrideSpecial",
            "special",
            "upper",
        ),
    ),
)

REPLACEMENTS: Mapping[str, ReplaceRule] = {rule.type: rule for rule in _RULES}
"""Pulumi type token -> its replace-on-change rule."""


def rule_for(type_token: str) -> ReplaceRule:
    """The rule for a declared type; a type the table lacks is an error, never 'in place'."""
    try:
        return REPLACEMENTS[type_token]
    except KeyError:
        raise KeyError(
            f"{type_token}: not in infra/replacements.py; add its replace-on-change inputs "
            "from the provider source before planning updates of it"
        ) from None
