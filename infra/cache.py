"""Cache: the parameter group, the log groups and the Redis 7 / Valkey replication group.

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

from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

from infra.config import StackConfig
from infra.network import CACHE_PORT, Network
from infra.security import Security

__all__ = ["Cache"]


class Cache(pulumi.ComponentResource):
    """One replication group (primary + replicas) and what it needs to run."""

    primary_endpoint: pulumi.Output[str]
    reader_endpoint: pulumi.Output[str]
    port: pulumi.Output[int]
    member_clusters: pulumi.Output[Sequence[str]]
    group: aws.elasticache.ReplicationGroup

    def __init__(
        self,
        name: str,
        cfg: StackConfig,
        *,
        network: Network,
        security: Security,
        notification_topic_arn: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("berthcache:infra:Cache", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        rg_id = cfg.replication_group_id

        log_groups = {}
        for log_type in ("slow-log", "engine-log"):
            log_groups[log_type] = aws.cloudwatch.LogGroup(
                f"{name}-{log_type}",
                name=f"/aws/elasticache/{rg_id}/{log_type}",
                retention_in_days=cfg.log_retention_days,
                kms_key_id=security.kms_key_arn,
                tags=cfg.tags,
                opts=child,
            )

        params = aws.elasticache.ParameterGroup(
            f"{name}-params",
            name=f"{rg_id}-{cfg.parameter_group_family}",
            family=cfg.parameter_group_family,
            description=f"{rg_id}: eviction policy {cfg.maxmemory_policy}",
            parameters=[{"name": "maxmemory-policy", "value": cfg.maxmemory_policy}],
            tags=cfg.tags,
            opts=child,
        )

        token_mode = cfg.auth_mode == "token"
        self.group = aws.elasticache.ReplicationGroup(
            f"{name}-group",
            replication_group_id=rg_id,
            description=f"berthcache {cfg.stack}: {cfg.engine} {cfg.engine_version} API cache",
            engine=cfg.engine,
            engine_version=cfg.engine_version,
            node_type=cfg.node_type,
            num_cache_clusters=cfg.num_nodes,
            port=CACHE_PORT,
            automatic_failover_enabled=True,
            multi_az_enabled=cfg.multi_az,
            parameter_group_name=params.name,
            subnet_group_name=network.subnet_group_name,
            security_group_ids=[network.security_group_id],
            at_rest_encryption_enabled=True,
            kms_key_id=security.kms_key_arn,
            transit_encryption_enabled=True,
            transit_encryption_mode="required",
            auth_token=security.auth_token if token_mode else None,
            auth_token_update_strategy="ROTATE" if token_mode else None,
            user_group_ids=(
                [security.user_group_id] if security.user_group_id is not None else None
            ),
            snapshot_retention_limit=cfg.snapshot_retention_days,
            snapshot_window=cfg.snapshot_window,
            maintenance_window=cfg.maintenance_window,
            auto_minor_version_upgrade=True,
            apply_immediately=not cfg.protect,
            final_snapshot_identifier=f"{rg_id}-final" if cfg.protect else None,
            log_delivery_configurations=[
                {
                    "destination": log_groups[log_type].name,
                    "destination_type": "cloudwatch-logs",
                    "log_format": "json",
                    "log_type": log_type,
                }
                for log_type in ("slow-log", "engine-log")
            ],
            notification_topic_arn=notification_topic_arn,
            tags=cfg.tags,
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=cfg.protect,
                additional_secret_outputs=["authToken"],
                # After creation the token belongs to `berthcache-ops rotate-auth-token`: a
                # later `pulumi up` must never send Pulumi's (by then retired) token back.
                ignore_changes=["auth_token"],
            ),
        )
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
