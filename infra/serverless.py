"""Serverless: an ElastiCache Serverless cache (topology ``serverless``), Redis OSS or Valkey.

Secure by construction, as the replication group is: TLS always (a serverless cache only
speaks TLS), at-rest encryption with the stack's customer-managed key, RBAC (a serverless cache
takes no AUTH token: ``infra/config.py`` refuses ``authMode token`` with it), private subnets
and the stack's security group, daily snapshots. It scales itself between nothing and the usage
limits (``serverlessMaxDataStorageGb``, ``serverlessMaxEcpuPerSecond``): the maxima bound both
what it may use and what it may bill; the alarms (``berthcache.ops.alarm_catalogue``, scope
``serverless``) fire before either is reached.

A serverless cache has no nodes, parameter group, maintenance window or log delivery; clients
reach it through one endpoint (port 6379) and a reader endpoint (6380), in cluster mode
protocol (``CLUSTER SLOTS`` answers one shard): the cluster client works against it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.network import CACHE_PORT

__all__ = ["READER_PORT", "Serverless", "ServerlessArgs", "major_engine_version"]

READER_PORT = 6380
"""AWS: a serverless cache's reader endpoint listens on 6380 (the endpoint on 6379)."""


def major_engine_version(engine_version: str) -> str:
    """The major version a serverless cache takes (Redis 7, Valkey 7 or 8): ElastiCache keeps
    it on the newest minor of that major itself."""
    return engine_version.split(".")[0]


@dataclasses.dataclass(frozen=True, kw_only=True)
class ServerlessArgs:
    """The cache's name, engine, limits and snapshots, and the network, key and users."""

    name: str
    """The serverless cache's name (``replicationGroupId``, or ``berthcache-<stack>``)."""
    stack: str
    engine: str
    engine_version: str
    max_data_storage_gb: int
    max_ecpu_per_second: int
    snapshot_retention_days: int
    daily_snapshot_time: str
    protect: bool
    restore_from_snapshot: str | None = None
    """An ARN to create the cache from (``snapshot_arns_to_restores``, replace-on-change)."""
    tags: Mapping[str, str]
    subnet_ids: pulumi.Input[Sequence[str]]
    security_group_ids: pulumi.Input[Sequence[str]]
    kms_key_arn: pulumi.Input[str]
    user_group_id: pulumi.Input[str]


def _address(endpoints: Any) -> str:
    """The first endpoint's address (the provider's list of one), or "" while unknown."""
    for endpoint in endpoints or ():
        address = endpoint.get("address") if isinstance(endpoint, dict) else endpoint.address
        return str(address or "")
    return ""


def _port(endpoints: Any) -> int:
    """The first endpoint's port (6379), or the default while unknown."""
    for endpoint in endpoints or ():
        port = endpoint.get("port") if isinstance(endpoint, dict) else endpoint.port
        return int(port or CACHE_PORT)
    return CACHE_PORT


class Serverless(pulumi.ComponentResource):
    """One ElastiCache Serverless cache."""

    primary_endpoint: pulumi.Output[str]
    reader_endpoint: pulumi.Output[str]
    port: pulumi.Output[int]
    cache: aws.elasticache.ServerlessCache

    def __init__(
        self, name: str, args: ServerlessArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("berthcache:infra:Serverless", name, None, opts)
        restore = args.restore_from_snapshot
        major = major_engine_version(args.engine_version)
        self.cache = aws.elasticache.ServerlessCache(
            f"{name}-cache",
            name=args.name,
            description=f"berthcache {args.stack}: {args.engine} {major} serverless API cache",
            engine=args.engine,
            major_engine_version=major,
            cache_usage_limits={
                "data_storage": {"maximum": args.max_data_storage_gb, "unit": "GB"},
                "ecpu_per_seconds": [{"maximum": args.max_ecpu_per_second}],
            },
            kms_key_id=args.kms_key_arn,
            subnet_ids=args.subnet_ids,
            security_group_ids=args.security_group_ids,
            user_group_id=args.user_group_id,
            snapshot_retention_limit=args.snapshot_retention_days,
            daily_snapshot_time=args.daily_snapshot_time,
            snapshot_arns_to_restores=[restore] if restore else None,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        self.primary_endpoint = self.cache.endpoints.apply(_address)
        self.reader_endpoint = self.cache.reader_endpoints.apply(_address)
        self.port = self.cache.endpoints.apply(_port)
        self.register_outputs(
            {"primary_endpoint": self.primary_endpoint, "reader_endpoint": self.reader_endpoint}
        )
