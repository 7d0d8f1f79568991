"""The Pulumi program as a function, so ``infra/__main__.py``, the mock tests and the offline
plan all run exactly the same code.

This is the one place that knows both the stack's settings (:class:`StackConfig`) and the
components: it gives each component only the arguments it uses (``NetworkArgs``, ``SecurityArgs``,
``NotificationsArgs``, ``CacheArgs``, ``AlarmsArgs``) and wires their outputs together.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from urllib.parse import quote

import pulumi
import pulumi_aws as aws

from infra.alarms import Alarms, AlarmsArgs, Notifications, NotificationsArgs
from infra.cache import Cache, CacheArgs
from infra.config import StackConfig, from_pulumi
from infra.network import CACHE_PORT, Network, NetworkArgs
from infra.security import Security, SecurityArgs, secret_str
from infra.serverless import READER_PORT, Serverless, ServerlessArgs, major_engine_version

__all__ = ["connection_url", "run"]


def connection_url(username: str | None, password: str, host: str, port: int) -> str:
    """``rediss://`` URL for the apps (TLS always); the password is percent-encoded."""
    user = quote(username, safe="") if username else ""
    return f"rediss://{user}:{quote(password, safe='')}@{host}:{port}/0"


def _topology_fields(cfg: StackConfig, host: str) -> dict[str, object]:
    """What a client needs beyond host and port to speak to a cluster-mode cache (nothing for
    a replication group: its document stays as it was)."""
    if cfg.topology == "cluster":
        return {"topology": "cluster", "cluster": True, "configuration_endpoint": host}
    if cfg.topology == "serverless":
        return {"topology": "serverless", "cluster": True, "reader_port": READER_PORT}
    return {}


def _connection_secret(
    logical: str,
    cfg: StackConfig,
    cache: Cache | Serverless,
    security: Security,
    secret_id: pulumi.Input[str],
    username: str | None,
    password: pulumi.Output[str],
) -> pulumi.Output[str]:
    """Write one user's connection document into its secret, once; returns the URL."""
    url = pulumi.Output.all(password, cache.primary_endpoint, cache.port).apply(
        lambda a: connection_url(username, a[0], a[1], a[2])
    )
    secret_value = pulumi.Output.all(
        password, cache.primary_endpoint, cache.reader_endpoint, cache.port, url
    ).apply(
        lambda a: json.dumps(
            {
                "engine": cfg.engine,
                "host": a[1],
                "reader_host": a[2],
                "port": a[3],
                "tls": True,
                "username": username,
                "password": a[0],
                "key_prefix": cfg.key_prefix,
                "url": a[4],
                "replication_group_id": cfg.replication_group_id,
                **_topology_fields(cfg, a[1]),
            }
        )
    )
    aws.secretsmanager.SecretVersion(
        logical,
        secret_id=secret_id,
        secret_string=secret_str(secret_value),
        # Written once, at creation. The token in it then belongs to
        # `berthcache-ops rotate-auth-token` (new versions outside Pulumi); rewriting it from
        # Pulumi's state would put a retired token back (docs/platform.md, "Rotate").
        opts=pulumi.ResourceOptions(parent=security, ignore_changes=["secret_string"]),
    )
    return url


def run(cfg: StackConfig | None = None) -> None:
    """Declare every resource of one stack and export its outputs."""
    cfg = cfg or from_pulumi()
    name = cfg.replication_group_id
    tags = cfg.tags
    security = Security(
        f"{name}-security",
        SecurityArgs(
            group_id=name,
            stack=cfg.stack,
            engine=cfg.engine,
            auth_mode=cfg.auth_mode,
            key_prefix=cfg.key_prefix,
            app_user_channels=cfg.app_user_channels,
            extra_users=cfg.rbac_users,
            kms_key_arn=cfg.kms_key_arn,
            protect=cfg.protect,
            tags=tags,
            cluster_mode=cfg.topology != "replication-group",
        ),
    )
    network = Network(
        f"{name}-network",
        NetworkArgs(
            subnet_group=cfg.topology != "serverless",
            last_port=READER_PORT if cfg.topology == "serverless" else CACHE_PORT,
            group_id=name,
            vpc_id=cfg.vpc_id,
            subnet_ids=cfg.subnet_ids,
            vpc_cidr=cfg.vpc_cidr,
            az_count=cfg.az_count,
            allowed_security_group_ids=cfg.allowed_security_group_ids,
            allowed_cidrs=cfg.allowed_cidrs,
            security_group_ids=cfg.security_group_ids,
            subnet_group_name=cfg.subnet_group_name,
            tags=tags,
        ),
    )
    notifications = Notifications(
        f"{name}-notify",
        NotificationsArgs(
            group_id=name,
            kms_key_arn=security.kms_key_arn,
            alarm_emails=cfg.alarm_emails,
            alarm_topic_arn=cfg.alarm_topic_arn,
            events_topic_arn=cfg.events_topic_arn,
            events_topic=cfg.topology != "serverless",
            tags=tags,
        ),
    )
    serverless = cfg.topology == "serverless"
    cache: Cache | Serverless
    if serverless:
        assert security.user_group_id is not None  # config: serverless needs authMode rbac
        cache = Serverless(
            f"{name}-serverless",
            ServerlessArgs(
                name=name,
                stack=cfg.stack,
                engine=cfg.engine,
                engine_version=cfg.engine_version,
                max_data_storage_gb=cfg.serverless_max_data_storage_gb,
                max_ecpu_per_second=cfg.serverless_max_ecpu_per_second,
                snapshot_retention_days=cfg.snapshot_retention_days,
                daily_snapshot_time=cfg.daily_snapshot_time,
                protect=cfg.protect,
                restore_from_snapshot=cfg.restore_from_snapshot,
                tags=tags,
                subnet_ids=network.subnet_ids,
                security_group_ids=network.security_group_ids,
                kms_key_arn=security.kms_key_arn,
                user_group_id=security.user_group_id,
            ),
        )
        members: pulumi.Input[Sequence[str]] = []
        watched: pulumi.Resource = cache.cache
    else:
        assert notifications.events_topic_arn is not None
        cache = Cache(
            f"{name}-cache",
            CacheArgs(
                group_id=name,
                stack=cfg.stack,
                engine=cfg.engine,
                engine_version=cfg.engine_version,
                node_type=cfg.node_type,
                num_nodes=cfg.num_nodes,
                multi_az=cfg.multi_az,
                maxmemory_policy=cfg.maxmemory_policy,
                extra_parameters=cfg.extra_parameters,
                maintenance_window=cfg.maintenance_window,
                snapshot_window=cfg.snapshot_window,
                snapshot_retention_days=cfg.snapshot_retention_days,
                log_retention_days=cfg.log_retention_days,
                protect=cfg.protect,
                final_snapshot=cfg.final_snapshot,
                restore_from_snapshot=cfg.restore_from_snapshot,
                tags=tags,
                subnet_group_name=network.subnet_group_name,
                security_group_ids=network.security_group_ids,
                kms_key_arn=security.kms_key_arn,
                auth_token=security.auth_token,
                user_group_id=security.user_group_id,
                notification_topic_arn=notifications.events_topic_arn,
                cluster_mode=cfg.topology == "cluster",
                shards=cfg.shards,
                replicas_per_shard=cfg.replicas_per_shard,
            ),
        )
        members = cache.member_clusters
        watched = cache.group
    alarms = Alarms(
        f"{name}-alarms",
        AlarmsArgs(
            group_id=name,
            stack=cfg.stack,
            members=members,
            num_nodes=cfg.cluster_nodes,
            node_type=cfg.node_type,
            maxmemory_policy=cfg.maxmemory_policy,
            node_vcpus=cfg.node_vcpus,
            thresholds=cfg.thresholds,
            topic_arn=notifications.topic_arn,
            tags=tags,
            topology=cfg.topology,
            replicas_per_shard=cfg.replicas_per_shard,
            limits=cfg.limits,
        ),
        depends_on=[watched],
    )

    url = _connection_secret(
        f"{name}-security-secret-value",
        cfg,
        cache,
        security,
        security.secret_id,
        security.username,
        security.password,
    )
    for user_name, user in security.extra_users.items():
        _connection_secret(
            f"{name}-security-{user_name}-secret-value",
            cfg,
            cache,
            security,
            user.secret_id,
            user_name,
            user.password,
        )

    pulumi.export("replicationGroupId", cfg.replication_group_id)
    if cfg.topology != "replication-group":  # a replication group's outputs stay as they were
        pulumi.export("topology", cfg.topology)
    version = major_engine_version(cfg.engine_version) if serverless else cfg.engine_version
    pulumi.export("engine", f"{cfg.engine} {version}")
    if isinstance(cache, Cache) and cache.configuration_endpoint is not None:
        # Cluster mode: the one address the cluster clients need; primary/reader say the same.
        pulumi.export("configurationEndpoint", cache.configuration_endpoint)
    if serverless:
        pulumi.export("serverlessCacheName", name)
        pulumi.export("readerPort", READER_PORT)
    pulumi.export("primaryEndpoint", cache.primary_endpoint)
    pulumi.export("readerEndpoint", cache.reader_endpoint)
    pulumi.export("port", cache.port)
    # The group's real members (ElastiCache's answer), which the alarms cover; none serverless.
    pulumi.export(
        "memberClusters", pulumi.Output.from_input(members).apply(lambda m: sorted(m or ()))
    )
    pulumi.export("secretArn", security.secret_arn)
    # The more RBAC users' own secrets (ARNs only: passwords never leave the secrets).
    pulumi.export(
        "rbacUserSecretArns", {n: u.secret_arn for n, u in sorted(security.extra_users.items())}
    )
    pulumi.export("kmsKeyArn", security.kms_key_arn)
    pulumi.export("alarmTopicArn", notifications.topic_arn)
    if notifications.events_topic_arn is not None:
        pulumi.export("eventsTopicArn", notifications.events_topic_arn)
    pulumi.export("dashboardName", alarms.dashboard_name)
    pulumi.export("alarmNames", alarms.alarm_names)
    pulumi.export("keyPrefix", cfg.key_prefix)
    pulumi.export("username", security.username)
    # The URL with the token Pulumi generated, as a secret output only. It is right until the
    # first `berthcache-ops rotate-auth-token`; after that the secret (``secretArn``) is the
    # source of truth, which is why apps and tools read the secret, not this output.
    pulumi.export("connectionUrl", secret_str(url))
