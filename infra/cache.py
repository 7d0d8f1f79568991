"""Cache: the parameter group, the log groups and the Redis 7 / Valkey replication group —
one shard (topology ``replication-group``) or cluster mode (``cluster``: ``num_node_groups``
shards of ``replicas_per_node_group`` replicas each, a ``cluster-enabled yes`` parameter group
and a configuration endpoint). Serverless is ``infra.serverless``.

Secure by construction: none of these can be switched off by config — TLS required, at-rest
encryption with the stack's key, AUTH or RBAC, automatic failover, snapshots, minor upgrades,
logs to encrypted log groups. The one availability switch is ``multiAz``: required in prod
(``infra/config.py`` refuses it off there), allowed off in dev and staging to save cross-AZ
placement where losing one AZ is acceptable. The AUTH token is Pulumi's only at creation;
afterwards ``berthcache-ops rotate-auth-token`` owns it (``ignore_changes``).

``maxmemory-policy`` defaults to the seed's ``allkeys-lru``: the cache never refuses writes, at
the price that sessions can be evicted under memory pressure (``volatile-lru`` protects keys
without a TTL instead; see docs/platform.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from infra.network import CACHE_PORT

__all__ = ["PARAMETER_GROUP_DESCRIPTION", "Cache", "CacheArgs"]

PARAMETER_GROUP_DESCRIPTION = "berthcache: engine parameters (see the parameters, not this text)"
"""Constant: the provider replaces a parameter group whose description changes."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class CacheArgs:
    """The group's settings, and the network, key, credentials and topic it runs with."""

    group_id: str
    stack: str
    engine: str
    engine_version: str
    node_type: str
    num_nodes: int
    multi_az: bool
    maxmemory_policy: str
    extra_parameters: Mapping[str, str]
    """The user's engine parameters (validated: never maxmemory-policy)."""
    maintenance_window: str
    snapshot_window: str
    snapshot_retention_days: int
    log_retention_days: int
    protect: bool
    """Protect the group from deletion."""
    final_snapshot: bool
    """Snapshot the group (``<group>-final``) when it is deleted."""
    restore_from_snapshot: str | None = None
    """Seed the group from an ElastiCache snapshot name or an S3 ``.rdb`` ARN (``arn:...``)."""
    tags: Mapping[str, str]
    subnet_group_name: pulumi.Input[str]
    security_group_ids: pulumi.Input[Sequence[str]]
    kms_key_arn: pulumi.Input[str]
    auth_token: pulumi.Input[str] | None
    """The AUTH token (token mode), or ``None`` with ``user_group_id`` (RBAC mode)."""
    user_group_id: pulumi.Input[str] | None
    notification_topic_arn: pulumi.Input[str]
    """ElastiCache's event topic: must NOT be KMS-encrypted (AWS ElastiCacheSNS docs)."""
    cluster_mode: bool = False
    """Cluster mode (topology ``cluster``): ``shards`` node groups of ``replicas_per_shard``
    replicas, instead of ``num_nodes`` in one shard."""
    shards: int = 1
    replicas_per_shard: int = 1

    @property
    def parameter_group_family(self) -> str:
        return f"{self.engine}{self.engine_version.split('.')[0]}"

    @property
    def parameter_group_name(self) -> str:
        """``<group>-<family>``; ``-cluster`` for cluster mode. The family is in the name (it
        replaces the group on change), and so is the mode: a changed mode is a new group."""
        suffix = "-cluster" if self.cluster_mode else ""
        return f"{self.group_id}-{self.parameter_group_family}{suffix}"

    @property
    def parameters(self) -> dict[str, str]:
        """The engine parameters: the user's, the eviction policy and, in cluster mode,
        ``cluster-enabled yes`` (AWS: a cluster-mode group needs a cluster-enabled group)."""
        owned = {"maxmemory-policy": self.maxmemory_policy}
        if self.cluster_mode:
            owned["cluster-enabled"] = "yes"
        return {**self.extra_parameters, **owned}


class Cache(pulumi.ComponentResource):
    """One replication group (primary + replicas) and what it needs to run."""

    primary_endpoint: pulumi.Output[str]
    """Where the apps connect: the primary, or in cluster mode the configuration endpoint."""
    reader_endpoint: pulumi.Output[str]
    configuration_endpoint: pulumi.Output[str] | None
    """Cluster mode's configuration endpoint (``None`` with one shard)."""
    port: pulumi.Output[int]
    member_clusters: pulumi.Output[Sequence[str]]
    group: aws.elasticache.ReplicationGroup

    def __init__(
        self,
        name: str,
        args: CacheArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("berthcache:infra:Cache", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        rg_id = args.group_id

        log_groups = {}
        for log_type in ("slow-log", "engine-log"):
            log_groups[log_type] = aws.cloudwatch.LogGroup(
                f"{name}-{log_type}",
                # Under /aws/vendedlogs/: CloudWatch Logs then grants ElastiCache's log delivery
                # without adding each group to the account's one resource policy (5,120
                # characters, shared by every log group of the account) — AWS, "Enabling
                # logging from AWS services", vended logs.
                name=f"/aws/vendedlogs/elasticache/{rg_id}/{log_type}",
                retention_in_days=args.log_retention_days,
                kms_key_id=args.kms_key_arn,
                tags=args.tags,
                opts=child,
            )

        # name, family and description are replace-on-change in the provider; parameters are
        # updated in place (terraform-provider-aws internal/service/elasticache/
        # parameter_group.go). So the description is constant (a changed maxmemoryPolicy is an
        # in-place update) and the name carries the family, the one other replace trigger:
        # a replacement (engine or major version change) gets a new name, is created before
        # the old group is deleted, and the group moves to it first — never "delete the
        # attached group" (InvalidCacheParameterGroupState).
        params = aws.elasticache.ParameterGroup(
            f"{name}-params",
            name=args.parameter_group_name,
            family=args.parameter_group_family,
            description=PARAMETER_GROUP_DESCRIPTION,
            parameters=[{"name": n, "value": v} for n, v in sorted(args.parameters.items())],
            tags=args.tags,
            opts=child,
        )

        token_mode = args.auth_token is not None
        restore = args.restore_from_snapshot
        # Cluster mode: num_node_groups and replicas_per_node_group are updated in place
        # (online resharding: ModifyReplicationGroupShardConfiguration, Increase/
        # DecreaseReplicaCount; infra/replacements.py). It has another logical name than the
        # one-shard group: a change of topology is a new cache (AWS turns cluster mode on
        # under a running group only through the staged "compatible" migration, which this
        # program does not drive).
        cluster = args.cluster_mode
        self.group = aws.elasticache.ReplicationGroup(
            f"{name}-cluster-group" if cluster else f"{name}-group",
            replication_group_id=rg_id,
            description=f"berthcache {args.stack}: {args.engine} {args.engine_version} API cache",
            engine=args.engine,
            engine_version=args.engine_version,
            node_type=args.node_type,
            num_cache_clusters=None if cluster else args.num_nodes,
            num_node_groups=args.shards if cluster else None,
            replicas_per_node_group=args.replicas_per_shard if cluster else None,
            cluster_mode="enabled" if cluster else None,
            port=CACHE_PORT,
            automatic_failover_enabled=True,
            multi_az_enabled=args.multi_az,
            parameter_group_name=params.name,
            subnet_group_name=args.subnet_group_name,
            security_group_ids=args.security_group_ids,
            at_rest_encryption_enabled=True,
            kms_key_id=args.kms_key_arn,
            transit_encryption_enabled=True,
            transit_encryption_mode="required",
            auth_token=args.auth_token,
            auth_token_update_strategy="ROTATE" if token_mode else None,
            user_group_ids=[args.user_group_id] if args.user_group_id is not None else None,
            snapshot_retention_limit=args.snapshot_retention_days,
            snapshot_window=args.snapshot_window,
            maintenance_window=args.maintenance_window,
            auto_minor_version_upgrade=True,
            # Always: AWS takes a log delivery change only with ApplyImmediately (AWS, "Specifying
            # log delivery using the AWS CLI": modify-replication-group --apply-immediately
            # --log-delivery-configurations, https://docs.aws.amazon.com/AmazonElastiCache/
            # latest/dg/CLI_Log.html), and the group always delivers its logs. So a prod change
            # (node type, version) applies during `pulumi up`: run it in a quiet hour.
            apply_immediately=True,
            final_snapshot_identifier=f"{rg_id}-final" if args.final_snapshot else None,
            # Both replace-on-change: the setting stays as it was at creation.
            snapshot_name=None if restore is None or restore.startswith("arn:") else restore,
            snapshot_arns=[restore] if restore is not None and restore.startswith("arn:") else None,
            log_delivery_configurations=[
                {
                    "destination": log_groups[log_type].name,
                    "destination_type": "cloudwatch-logs",
                    "log_format": "json",
                    "log_type": log_type,
                }
                for log_type in ("slow-log", "engine-log")
            ],
            notification_topic_arn=args.notification_topic_arn,
            tags=args.tags,
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=args.protect,
                additional_secret_outputs=["authToken"],
                # After creation the token belongs to `berthcache-ops rotate-auth-token`: a
                # later `pulumi up` must never send Pulumi's (by then retired) token back.
                ignore_changes=["auth_token"],
            ),
        )
        if args.cluster_mode:
            self.configuration_endpoint = self.group.configuration_endpoint_address
            self.primary_endpoint = self.configuration_endpoint
            self.reader_endpoint = self.configuration_endpoint
        else:
            self.configuration_endpoint = None
            self.primary_endpoint = self.group.primary_endpoint_address
            self.reader_endpoint = self.group.reader_endpoint_address
        self.port = self.group.port.apply(lambda p: p or CACHE_PORT)
        self.member_clusters = self.group.member_clusters
        self.register_outputs(
            {
                "primary_endpoint": self.primary_endpoint,
                "reader_endpoint": self.reader_endpoint,
                "member_clusters": self.member_clusters,
            }
        )
