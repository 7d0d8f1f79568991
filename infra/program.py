"""The Pulumi program as a function, so ``infra/__main__.py``, the mock tests and the offline
plan all run exactly the same code."""

from __future__ import annotations

import json
from urllib.parse import quote

import pulumi
import pulumi_aws as aws

from infra.alarms import Alarms, Notifications
from infra.cache import Cache
from infra.config import StackConfig, from_pulumi
from infra.network import Network
from infra.security import Security, secret_str

__all__ = ["connection_url", "run"]


def connection_url(username: str | None, password: str, host: str, port: int) -> str:
    """``rediss://`` URL for the apps (TLS always); the password is percent-encoded."""
    user = quote(username, safe="") if username else ""
    return f"rediss://{user}:{quote(password, safe='')}@{host}:{port}/0"


def run(cfg: StackConfig | None = None) -> None:
    """Declare every resource of one stack and export its outputs."""
    cfg = cfg or from_pulumi()
    name = cfg.replication_group_id
    security = Security(f"{name}-security", cfg)
    network = Network(f"{name}-network", cfg)
    notifications = Notifications(f"{name}-notify", cfg, kms_key_arn=security.kms_key_arn)
    cache = Cache(
        f"{name}-cache",
        cfg,
        network=network,
        security=security,
        notification_topic_arn=notifications.topic_arn,
    )
    alarms = Alarms(
        f"{name}-alarms", cfg, topic_arn=notifications.topic_arn, depends_on=[cache.group]
    )

    url = pulumi.Output.all(security.password, cache.primary_endpoint, cache.port).apply(
        lambda a: connection_url(security.username, a[0], a[1], a[2])
    )
    secret_value = pulumi.Output.all(
        security.password, cache.primary_endpoint, cache.reader_endpoint, cache.port, url
    ).apply(
        lambda a: json.dumps(
            {
                "engine": cfg.engine,
                "host": a[1],
                "reader_host": a[2],
                "port": a[3],
                "tls": True,
                "username": security.username,
                "password": a[0],
                "key_prefix": cfg.key_prefix,
                "url": a[4],
                "replication_group_id": cfg.replication_group_id,
            }
        )
    )
    aws.secretsmanager.SecretVersion(
        f"{name}-security-secret-value",
        secret_id=security.secret_id,
        secret_string=secret_str(secret_value),
        # Written once, at creation. The token in it then belongs to
        # `berthcache-ops rotate-auth-token` (new versions outside Pulumi); rewriting it from
        # Pulumi's state would put a retired token back (docs/platform.md, "Rotate").
        opts=pulumi.ResourceOptions(parent=security, ignore_changes=["secret_string"]),
    )

    pulumi.export("replicationGroupId", cfg.replication_group_id)
    pulumi.export("engine", f"{cfg.engine} {cfg.engine_version}")
    pulumi.export("primaryEndpoint", cache.primary_endpoint)
    pulumi.export("readerEndpoint", cache.reader_endpoint)
    pulumi.export("port", cache.port)
    pulumi.export("memberClusters", list(cfg.member_cluster_ids))
    pulumi.export("secretArn", security.secret_arn)
    pulumi.export("kmsKeyArn", security.kms_key_arn)
    pulumi.export("alarmTopicArn", notifications.topic_arn)
    pulumi.export("dashboardName", alarms.dashboard_name)
    pulumi.export("alarmNames", alarms.alarm_names)
    pulumi.export("keyPrefix", cfg.key_prefix)
    pulumi.export("username", security.username)
    # The URL with the token Pulumi generated, as a secret output only. It is right until the
    # first `berthcache-ops rotate-auth-token`; after that the secret (``secretArn``) is the
    # source of truth, which is why apps and tools read the secret, not this output.
    pulumi.export("connectionUrl", secret_str(url))
