"""Security: the customer-managed KMS key, the AUTH token or RBAC users, and the secret.

The token (or the RBAC app user's password) comes from ``RandomPassword`` and is used once, to
create the group and the secret. From then on it has ONE owner, ``berthcache-ops
rotate-auth-token`` (docs/oncall.md): the replication group ignores changes to ``auth_token``,
the secret version ignores changes to ``secret_string`` and the app user ignores changes to its
passwords, so ``pulumi up`` never writes a retired credential back. Secret values only ever
travel as Pulumi secrets.
"""

from __future__ import annotations

import json
from typing import Any, cast

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from berthcache.acl import app_user_access
from infra.config import StackConfig

__all__ = ["AUTH_TOKEN_SPECIALS", "Security", "app_access_string", "secret_str"]

# ElastiCache accepts printable ASCII, 16-128 characters, and only these non-alphanumerics.
AUTH_TOKEN_SPECIALS = "!&#$^<>-"
AUTH_TOKEN_LENGTH = 64


def secret_str(value: pulumi.Output[str]) -> pulumi.Output[str]:
    """``Output.secret`` for a string output (its generic signature defeats mypy's inference)."""
    result: pulumi.Output[str] = pulumi.Output.secret(cast("str", value))
    return result


def app_access_string(key_prefix: str) -> str:
    """The RBAC app user's ElastiCache access string: ``on`` (ElastiCache leaves a user without
    it disabled) plus the rules the local harness's app user gets too (``app_user_access``), so
    what passes locally passes on the stack."""
    return f"on {app_user_access(key_prefix)}"


def _token(name: str, opts: pulumi.ResourceOptions) -> random.RandomPassword:
    return random.RandomPassword(
        name,
        length=AUTH_TOKEN_LENGTH,
        special=True,
        override_special=AUTH_TOKEN_SPECIALS,
        min_lower=1,
        min_upper=1,
        min_numeric=1,
        opts=opts,
    )


def _key_policy(account_id: str, region: str) -> str:
    """Account admins manage the key; Logs, CloudWatch and ElastiCache may use it."""
    root = f"arn:aws:iam::{account_id}:root"
    use = [
        "kms:Encrypt*",
        "kms:Decrypt*",
        "kms:ReEncrypt*",
        "kms:GenerateDataKey*",
        "kms:Describe*",
    ]
    statements: list[dict[str, Any]] = [
        {
            "Sid": "AccountAdmin",
            "Effect": "Allow",
            "Principal": {"AWS": root},
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            "Sid": "CloudWatchLogs",
            "Effect": "Allow",
            "Principal": {"Service": f"logs.{region}.amazonaws.com"},
            "Action": use,
            "Resource": "*",
            "Condition": {
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{region}:{account_id}:*"
                }
            },
        },
        {
            "Sid": "AlarmsAndEventsToSns",
            "Effect": "Allow",
            "Principal": {"Service": ["cloudwatch.amazonaws.com", "elasticache.amazonaws.com"]},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": "*",
        },
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


class Security(pulumi.ComponentResource):
    """KMS key with rotation, AUTH token or RBAC user group, and the connection secret."""

    kms_key_arn: pulumi.Output[str]
    secret_arn: pulumi.Output[str]
    secret_id: pulumi.Output[str]
    auth_token: pulumi.Output[str] | None
    user_group_id: pulumi.Output[str] | None
    username: str | None
    password: pulumi.Output[str]

    def __init__(
        self, name: str, cfg: StackConfig, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("berthcache:infra:Security", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        keep = pulumi.ResourceOptions(parent=self, protect=cfg.protect)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        identity = aws.get_caller_identity_output(opts=invoke)
        region = aws.get_region_output(opts=invoke)

        key = aws.kms.Key(
            f"{name}-key",
            description=f"Encrypts {cfg.replication_group_id}: data at rest, snapshots, logs, "
            "secret",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=pulumi.Output.all(identity.account_id, region.region).apply(
                lambda a: _key_policy(a[0], a[1])
            ),
            tags=cfg.tags,
            opts=keep,
        )
        aws.kms.Alias(
            f"{name}-key-alias",
            name=f"alias/{cfg.replication_group_id}",
            target_key_id=key.key_id,
            opts=child,
        )

        self.auth_token = None
        self.user_group_id = None
        self.username = None
        if cfg.auth_mode == "token":
            token = _token(f"{name}-auth-token", child)
            self.auth_token = secret_str(token.result)
            self.password = self.auth_token
        else:
            app_pw = _token(f"{name}-app-password", child)
            default_pw = _token(f"{name}-default-password", child)
            default_user = aws.elasticache.User(
                f"{name}-default-user",
                user_id=f"{cfg.replication_group_id}-default",
                user_name="default",
                engine=cfg.engine,
                access_string="off -@all",
                authentication_mode={
                    "type": "password",
                    "passwords": [secret_str(default_pw.result)],
                },
                tags=cfg.tags,
                opts=child,
            )
            app_user = aws.elasticache.User(
                f"{name}-app-user",
                user_id=f"{cfg.replication_group_id}-app",
                user_name="app",
                engine=cfg.engine,
                access_string=app_access_string(cfg.key_prefix),
                authentication_mode={
                    "type": "password",
                    "passwords": [secret_str(app_pw.result)],
                },
                tags=cfg.tags,
                # The password is set at creation; rotated later outside Pulumi, never reset.
                opts=pulumi.ResourceOptions(parent=self, ignore_changes=["authentication_mode"]),
            )
            group = aws.elasticache.UserGroup(
                f"{name}-user-group",
                user_group_id=f"{cfg.replication_group_id}-users",
                engine=cfg.engine,
                user_ids=[default_user.user_id, app_user.user_id],
                tags=cfg.tags,
                opts=child,
            )
            self.user_group_id = group.id
            self.username = "app"
            self.password = secret_str(app_pw.result)

        secret = aws.secretsmanager.Secret(
            f"{name}-secret",
            name=f"berthcache/{cfg.stack}/{cfg.replication_group_id}",
            description=f"Connection to {cfg.replication_group_id}: endpoints and credentials",
            kms_key_id=key.arn,
            recovery_window_in_days=30 if cfg.protect else 7,
            tags=cfg.tags,
            opts=keep,
        )
        self.kms_key_arn = key.arn
        self.secret_arn = secret.arn
        self.secret_id = secret.id
        self.register_outputs({"kms_key_arn": self.kms_key_arn, "secret_arn": self.secret_arn})
