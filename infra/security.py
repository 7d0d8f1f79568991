"""Security: the customer-managed KMS key, the AUTH token or RBAC users, and the secret.

The token (or the RBAC app user's password) comes from ``RandomPassword`` and is used once, to
create the group and the secret. From then on it has ONE owner, ``berthcache-ops
rotate-auth-token`` (docs/oncall.md): the replication group ignores changes to ``auth_token``,
the secret version ignores changes to ``secret_string`` and the app user ignores changes to its
passwords, so ``pulumi up`` never writes a retired credential back. Secret values only ever
travel as Pulumi secrets.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any, cast

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from berthcache.acl import app_user_access

__all__ = [
    "AUTH_TOKEN_SPECIALS",
    "ExtraUser",
    "Security",
    "SecurityArgs",
    "app_access_string",
    "secret_str",
]

# ElastiCache accepts printable ASCII, 16-128 characters, and only these non-alphanumerics.
AUTH_TOKEN_SPECIALS = "!&#$^<>-"
AUTH_TOKEN_LENGTH = 64


def secret_str(value: pulumi.Output[str]) -> pulumi.Output[str]:
    """``Output.secret`` for a string output (its generic signature defeats mypy's inference)."""
    result: pulumi.Output[str] = pulumi.Output.secret(cast("str", value))
    return result


def app_access_string(
    key_prefix: str, channels: Sequence[str] = (), *, cluster_mode: bool = False
) -> str:
    """The RBAC app user's ElastiCache access string: ``on`` (ElastiCache leaves a user without
    it disabled) plus the rules the local harness's app user gets too (``app_user_access``), so
    what passes locally passes on the stack; in cluster mode also what a cluster client needs
    (``berthcache.acl.APP_USER_CLUSTER_COMMANDS``: the slot map, ASKING, READONLY, sharded
    pub/sub), as the local cluster target's app user has."""
    return f"on {app_user_access(key_prefix, channels=channels, cluster=cluster_mode)}"


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
    """Account admins manage the key; Logs and (for the alarm topic) CloudWatch may use it,
    each only for this account."""
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
            # CloudWatch publishes alarms to the encrypted alarm topic; only this account's
            # alarms (confused-deputy conditions). ElastiCache events go to an unencrypted
            # topic (ElastiCache cannot publish to an encrypted one), so it needs no grant.
            "Sid": "AlarmsToEncryptedSns",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": "*",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": account_id},
                "ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:{region}:{account_id}:alarm:*"},
            },
        },
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


@dataclasses.dataclass(frozen=True)
class ExtraUser:
    """One more RBAC user: its generated password and its own connection secret."""

    password: pulumi.Output[str]
    secret_id: pulumi.Output[str]
    secret_arn: pulumi.Output[str]


@dataclasses.dataclass(frozen=True, kw_only=True)
class SecurityArgs:
    """What the key, the credentials and the secret depend on."""

    group_id: str
    """Names the key alias, the RBAC users and group, and (with ``stack``) the secret."""
    stack: str
    engine: str
    auth_mode: str
    """``token`` (one AUTH token) or ``rbac`` (a user group with a prefix-limited app user)."""
    key_prefix: str
    """The only keys and channels an RBAC app user may touch."""
    app_user_channels: Sequence[str]
    """Bare channel names the RBAC app user may use besides those under ``key_prefix``."""
    extra_users: Sequence[tuple[str, str]] = ()
    """More RBAC users: (name, validated access rules, ``on`` not included)."""
    kms_key_arn: str | None = None
    """Your key (``kmsKeyArn``): no key or alias is created. ``None``: one per stack."""
    protect: bool
    """Protect the key and the secret from deletion and keep the secret 30 days when deleted
    (outside prod a deleted secret is gone at once, so the stack can be recreated)."""
    tags: Mapping[str, str]
    cluster_mode: bool = False
    """A cluster-mode or serverless cache: the app user may read the slot map."""


class Security(pulumi.ComponentResource):
    """KMS key with rotation, AUTH token or RBAC user group, and the connection secret."""

    kms_key_arn: pulumi.Output[str]
    secret_arn: pulumi.Output[str]
    secret_id: pulumi.Output[str]
    auth_token: pulumi.Output[str] | None
    user_group_id: pulumi.Output[str] | None
    username: str | None
    password: pulumi.Output[str]
    extra_users: dict[str, ExtraUser]
    """The RBAC users beyond the app user, by name."""

    def __init__(
        self, name: str, args: SecurityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("berthcache:infra:Security", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        keep = pulumi.ResourceOptions(parent=self, protect=args.protect)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        identity = aws.get_caller_identity_output(opts=invoke)
        region = aws.get_region_output(opts=invoke)

        key_arn: pulumi.Output[str]
        if args.kms_key_arn is not None:
            key_arn = pulumi.Output.from_input(args.kms_key_arn)
        else:
            key = aws.kms.Key(
                f"{name}-key",
                description=f"Encrypts {args.group_id}: data at rest, snapshots, logs, secret",
                enable_key_rotation=True,
                deletion_window_in_days=30,
                policy=pulumi.Output.all(identity.account_id, region.region).apply(
                    lambda a: _key_policy(a[0], a[1])
                ),
                tags=args.tags,
                opts=keep,
            )
            aws.kms.Alias(
                f"{name}-key-alias",
                name=f"alias/{args.group_id}",
                target_key_id=key.key_id,
                opts=child,
            )
            key_arn = key.arn

        self.auth_token = None
        extra_passwords: dict[str, pulumi.Output[str]] = {}
        self.user_group_id = None
        self.username = None
        if args.auth_mode == "token":
            token = _token(f"{name}-auth-token", child)
            self.auth_token = secret_str(token.result)
            self.password = self.auth_token
        else:
            app_pw = _token(f"{name}-app-password", child)
            default_pw = _token(f"{name}-default-password", child)
            default_user = aws.elasticache.User(
                f"{name}-default-user",
                user_id=f"{args.group_id}-default",
                user_name="default",
                engine=args.engine,
                access_string="off -@all",
                authentication_mode={
                    "type": "password",
                    "passwords": [secret_str(default_pw.result)],
                },
                tags=args.tags,
                opts=child,
            )
            app_user = aws.elasticache.User(
                f"{name}-app-user",
                user_id=f"{args.group_id}-app",
                user_name="app",
                engine=args.engine,
                access_string=app_access_string(
                    args.key_prefix, args.app_user_channels, cluster_mode=args.cluster_mode
                ),
                authentication_mode={
                    "type": "password",
                    "passwords": [secret_str(app_pw.result)],
                },
                tags=args.tags,
                # The password is set at creation; rotated later outside Pulumi, never reset.
                opts=pulumi.ResourceOptions(parent=self, ignore_changes=["authentication_mode"]),
            )
            extra_ids = []
            for user_name, access in args.extra_users:
                pw = _token(f"{name}-{user_name}-password", child)
                user = aws.elasticache.User(
                    f"{name}-{user_name}-user",
                    user_id=f"{args.group_id}-{user_name}",
                    user_name=user_name,
                    engine=args.engine,
                    access_string=f"on {access}",
                    authentication_mode={
                        "type": "password",
                        "passwords": [secret_str(pw.result)],
                    },
                    tags=args.tags,
                    opts=pulumi.ResourceOptions(
                        parent=self, ignore_changes=["authentication_mode"]
                    ),
                )
                extra_ids.append(user.user_id)
                extra_passwords[user_name] = secret_str(pw.result)
            group = aws.elasticache.UserGroup(
                f"{name}-user-group",
                user_group_id=f"{args.group_id}-users",
                engine=args.engine,
                user_ids=[default_user.user_id, app_user.user_id, *extra_ids],
                tags=args.tags,
                opts=child,
            )
            self.user_group_id = group.id
            self.username = "app"
            self.password = secret_str(app_pw.result)

        secret = self._secret(
            f"{name}-secret",
            f"berthcache/{args.stack}/{args.group_id}",
            args,
            key_arn,
            keep,
            f"Connection to {args.group_id}: endpoints and credentials",
        )
        self.extra_users = {}
        for user_name, password in extra_passwords.items():
            own = self._secret(
                f"{name}-{user_name}-secret",
                f"berthcache/{args.stack}/{args.group_id}/{user_name}",
                args,
                key_arn,
                keep,
                f"Connection to {args.group_id} as RBAC user {user_name}",
            )
            self.extra_users[user_name] = ExtraUser(password, own.id, own.arn)
        self.kms_key_arn = key_arn
        self.secret_arn = secret.arn
        self.secret_id = secret.id
        self.register_outputs({"kms_key_arn": self.kms_key_arn, "secret_arn": self.secret_arn})

    @staticmethod
    def _secret(
        logical: str,
        secret_name: str,
        args: SecurityArgs,
        key_arn: pulumi.Input[str],
        opts: pulumi.ResourceOptions,
        description: str,
    ) -> aws.secretsmanager.Secret:
        return aws.secretsmanager.Secret(
            logical,
            name=secret_name,
            description=description,
            kms_key_id=key_arn,
            # Outside prod 0 (force delete): `pulumi destroy` then `pulumi up` recreates the
            # same name at once; a recovery window would leave it "scheduled for deletion".
            # The provider accepts 0 or 7-30 (aws_secretsmanager_secret,
            # recovery_window_in_days). Prod keeps 30 days to undo a deletion.
            recovery_window_in_days=30 if args.protect else 0,
            tags=args.tags,
            opts=opts,
        )
