"""``diagnose`` and ``rotate-auth-token`` against the local Redis 7 harness (TLS + ACL users).

ElastiCache's ROTATE is emulated with a Redis ACL user holding two passwords
(``ACL SETUSER app >new`` keeps the old one); SET is ``resetpass >new``. Secrets Manager is moto.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from typer.testing import CliRunner

from berthcache import AuthenticationError, Cache, CacheConfig
from berthcache.ops import ExitCode, OpsError
from berthcache.ops._aws import AwsClients
from berthcache.ops._diagnose import READ_ONLY_COMMANDS, diagnose
from berthcache.ops._rotate import (
    ElastiCacheTokenSetter,
    RotationAborted,
    SecretsManagerStore,
    redis_verifier,
    rotate_auth_token,
)
from berthcache.ops.cli import app
from berthcache.testing import LocalRedis
from berthcache.testing.plugin import LocalRedisFactory


@pytest.fixture(scope="module")
def group() -> Iterator[LocalRedis]:
    with LocalRedis(replica=False) as started:
        yield started


def app_config(group: LocalRedis, **overrides: Any) -> CacheConfig:
    assert group.ca_file is not None
    return CacheConfig.from_url(group.url("app"), tls_ca_file=group.ca_file, **overrides)


def commandstats(group: LocalRedis) -> dict[str, int]:
    admin = group.admin_client()
    try:
        stats = admin.info("commandstats")
    finally:
        admin.close()
    return {name: int(value["calls"]) for name, value in stats.items()}


# -- diagnose ------------------------------------------------------------------------------------


def test_diagnose_reports_what_the_runbooks_ask_for_without_writing(group: LocalRedis) -> None:
    prefix = "berthcare:diag-a:"
    with Cache(app_config(group, key_prefix=prefix)) as cache:
        cache.set("big", "x" * 50_000, ttl=300)
        for i in range(30):
            cache.set(f"small:{i}", "y", ttl=300)
        cache.get("big")
        cache.get("absent")
    before = commandstats(group)
    report = diagnose(app_config(group, key_prefix=prefix), top=3)
    after = commandstats(group)
    called = {
        name.removeprefix("cmdstat_").split("|")[0].upper()
        for name in after
        if after[name] != before.get(name, 0)
    }
    # Only read-only commands ran (plus the connection's own HELLO/CLIENT SETNAME/AUTH,
    # and our INFO commandstats).
    assert called <= READ_ONLY_COMMANDS | {"HELLO", "CLIENT", "AUTH", "INFO"}, called
    assert report.memory["maxmemory_policy"] == "allkeys-lru"
    assert report.hit_rate_percent is not None
    assert 0 < report.hit_rate_percent < 100
    assert "evicted_keys" in report.stats
    assert report.clients["connected_clients"] >= 1
    assert report.replication["role"] == "master"
    # The app user may not run SLOWLOG / LATENCY (admin commands) nor SCAN (its allow-list:
    # SCAN lists every tenant's keys): reported, not fatal.
    assert "NOPERM" in report.unavailable["SLOWLOG GET"]
    assert "NOPERM" in report.unavailable["LATENCY LATEST"]
    assert "NOPERM" in report.unavailable["SCAN"]
    assert report.largest_keys == []
    assert group.ca_file is not None
    as_admin = CacheConfig.from_url(
        group.url("admin"), tls_ca_file=group.ca_file, key_prefix=prefix
    )
    report = diagnose(as_admin, top=3)
    assert report.largest_keys[0]["key"] == f"{prefix}big"
    assert report.largest_keys[0]["bytes"] > 50_000
    assert len(report.largest_keys) == 3
    assert report.scan_complete


def test_diagnose_as_admin_reads_slowlog_and_caps_the_scan(group: LocalRedis) -> None:
    admin = group.admin_client()
    try:
        admin.config_set("slowlog-log-slower-than", "0")  # log everything, for this test
        for i in range(40):
            admin.set(f"berthcare:diag-b:{i}", "v", ex=300)
    finally:
        admin.close()
    assert group.ca_file is not None
    config = CacheConfig.from_url(
        group.url("admin"), tls_ca_file=group.ca_file, key_prefix="berthcare:diag-b:"
    )
    try:
        report = diagnose(config, max_keys=10, scan_count=5)
    finally:
        admin = group.admin_client()
        admin.config_set("slowlog-log-slower-than", "10000")
        admin.close()
    assert report.keys_examined == 10
    assert not report.scan_complete
    assert report.slowlog
    assert "SLOWLOG GET" not in report.unavailable


def test_diagnose_cli_json_and_wrong_token(group: LocalRedis) -> None:
    assert group.ca_file is not None
    runner = CliRunner()
    ok = runner.invoke(
        app, ["diagnose", "--redis-url", group.url("app"), "--tls-ca", group.ca_file, "--json"]
    )
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.stdout)
    assert data["replication"]["role"] == "master"
    _user, password = group.users["app"]
    assert password not in ok.output
    bad_url = group.url("app").replace(password, "not-the-token")
    bad = runner.invoke(app, ["diagnose", "--redis-url", bad_url, "--tls-ca", group.ca_file])
    assert bad.exit_code == int(ExitCode.REDIS)
    assert "not-the-token" not in bad.stderr
    assert bad.stderr.count("\n") == 1
    assert "authentication failed" in bad.stderr.lower() or "WRONGPASS" in bad.stderr


# -- rotate-auth-token ---------------------------------------------------------------------------


class AclTokens:
    """Stands in for ElastiCache's AUTH token: ROTATE adds a password, SET keeps only one."""

    def __init__(self, group: LocalRedis, user: str, *, fail_on: str | None = None) -> None:
        self.group, self.user, self.fail_on = group, user, fail_on
        self.calls: list[str] = []

    def _acl(self, *rules: str) -> None:
        admin = self.group.admin_client()
        try:
            admin.execute_command("ACL", "SETUSER", self.user, *rules)  # type: ignore[no-untyped-call]
        finally:
            admin.close()

    def rotate(self, token: str) -> None:
        self.calls.append("ROTATE")
        if self.fail_on == "ROTATE":
            raise OpsError("modify_replication_group: InvalidReplicationGroupState", ExitCode.AWS)
        self._acl(f">{token}")

    def set(self, token: str) -> None:
        self.calls.append("SET")
        self._acl("resetpass", f">{token}")


@pytest.fixture
def rotation(
    mocked_aws: None, local_redis_factory: LocalRedisFactory
) -> tuple[LocalRedis, SecretsManagerStore, str]:
    group = local_redis_factory()
    user, password = group.users["app"]
    sm = boto3.client("secretsmanager")
    arn = sm.create_secret(
        Name="berthcache/test/rotate",
        SecretString=json.dumps(
            {"host": "127.0.0.1", "username": user, "password": password, "url": group.url("app")}
        ),
    )["ARN"]
    return group, SecretsManagerStore(AwsClients(secretsmanager=sm), arn), password


def works(group: LocalRedis, token: str) -> bool:
    assert group.ca_file is not None
    config = CacheConfig.from_url(
        group.url("app"), tls_ca_file=group.ca_file, password=token, max_retries_per_request=0
    )
    with Cache(config) as cache:
        try:
            cache.exists("berthcare:probe")
        except AuthenticationError:
            return False
    return True


def test_rotation_keeps_both_tokens_working_until_set(
    rotation: tuple[LocalRedis, SecretsManagerStore, str],
) -> None:
    group, store, old = rotation
    config = CacheConfig.from_url(group.url("app"), tls_ca_file=group.ca_file)
    seen: list[tuple[bool, bool]] = []
    verify = redis_verifier(config)

    def verify_and_watch(token: str) -> None:
        verify(token)
        seen.append((works(group, old), works(group, token)))

    tokens = AclTokens(group, group.users["app"][0])
    # A client logged in with the old token before the rotation keeps working throughout.
    with Cache(config) as long_lived:
        long_lived.set("berthcare:rot:k", "v", ttl=60)
        report = rotate_auth_token(store, tokens, verify_and_watch, token="n" * 40, grace=0)
        assert long_lived.get("berthcare:rot:k") == "v"
    assert report.completed
    assert tokens.calls == ["ROTATE", "SET"]
    assert seen[1:3] == [(True, True), (True, True)]  # after ROTATE: old and new both work
    assert works(group, "n" * 40)
    assert not works(group, old)  # SET retired it
    secret = store.current()
    assert secret["password"] == "n" * 40
    assert ("n" * 40) in secret["url"]
    assert old not in secret["url"]


def test_failure_in_the_middle_rolls_back_and_the_old_token_still_works(
    rotation: tuple[LocalRedis, SecretsManagerStore, str],
) -> None:
    group, store, old = rotation
    config = CacheConfig.from_url(group.url("app"), tls_ca_file=group.ca_file)
    verify = redis_verifier(config)
    calls: list[str] = []

    def verify_failing_on_new(token: str) -> None:
        calls.append("old" if token == old else "new")
        if token != old:
            raise OpsError("the new token was refused (WRONGPASS)", ExitCode.REDIS)
        verify(token)

    tokens = AclTokens(group, group.users["app"][0])
    with pytest.raises(RotationAborted) as info:
        rotate_auth_token(store, tokens, verify_failing_on_new, token="m" * 40)
    message = str(info.value)
    assert "aborted at 'verify new token'" in message
    assert "old token is still valid" in message
    assert "m" * 40 not in message
    assert info.value.report.rolled_back
    assert tokens.calls == ["ROTATE", "SET"]  # the SET put the old token back
    assert works(group, old)
    assert not works(group, "m" * 40)
    assert store.current()["password"] == old  # AWSCURRENT never changed


def test_rotate_failure_leaves_everything_as_it_was(
    rotation: tuple[LocalRedis, SecretsManagerStore, str],
) -> None:
    group, store, old = rotation
    config = CacheConfig.from_url(group.url("app"), tls_ca_file=group.ca_file)
    tokens = AclTokens(group, group.users["app"][0], fail_on="ROTATE")
    with pytest.raises(RotationAborted, match="aborted at 'modify_replication_group ROTATE'"):
        rotate_auth_token(store, tokens, redis_verifier(config), token="q" * 40)
    assert works(group, old)
    assert store.current()["password"] == old


def test_elasticache_steps_send_rotate_then_set(aws_env: None) -> None:
    """moto accepts modify_replication_group but ignores the token: Stubber checks the calls."""
    client = boto3.client("elasticache")
    stubber = Stubber(client)
    for strategy in ("ROTATE", "SET"):
        stubber.add_response(
            "modify_replication_group",
            {"ReplicationGroup": {"ReplicationGroupId": "bc-test", "Status": "modifying"}},
            {
                "ReplicationGroupId": "bc-test",
                "AuthToken": "t" * 40,
                "AuthTokenUpdateStrategy": strategy,
                "ApplyImmediately": True,
            },
        )
        stubber.add_response(
            "describe_replication_groups",
            {"ReplicationGroups": [{"ReplicationGroupId": "bc-test", "Status": "available"}]},
            {"ReplicationGroupId": "bc-test"},
        )
    setter = ElastiCacheTokenSetter(AwsClients(elasticache=client), "bc-test", poll=0)
    with stubber:
        setter.rotate("t" * 40)
        setter.set("t" * 40)
    stubber.assert_no_pending_responses()


def test_verifier_accepts_the_token_with_auth_and_ping_only_and_names_the_refusal(
    group: LocalRedis,
) -> None:
    verify = redis_verifier(app_config(group))
    _user, password = group.users["app"]
    before = commandstats(group)
    verify(password)  # the right token: no error
    after = commandstats(group)
    sent = {
        name.removeprefix("cmdstat_").split("|")[0].upper()
        for name in after
        if after[name] != before.get(name, 0)
    }
    # PING after the handshake (HELLO/AUTH/CLIENT); INFO is commandstats itself.
    assert "PING" in sent
    assert sent <= {"HELLO", "AUTH", "CLIENT", "PING", "INFO"}, sent
    with pytest.raises(OpsError, match="refused the token") as info:
        verify("wrong-token-123")
    assert "wrong-token-123" not in str(info.value)
    assert info.value.code == ExitCode.REDIS
