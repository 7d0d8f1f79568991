"""The app user's ACL rules (``berthcache.acl``): one definition for the deployed RBAC user and
the local harness, checked against a real ``redis-server`` 7."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from berthcache.acl import APP_USER_COMMANDS, app_user_access, glob_escape
from berthcache.testing import ACLUser, RedisServer, app_user_rules
from berthcache.testing._server import ADMIN_RULES
from infra.config import SETTINGS
from infra.security import app_access_string
from infra.settings import InfraConfigError, parse_setting


def test_rules_are_an_allow_list_on_the_prefix() -> None:
    rules = app_user_access("berthcare:").split()
    assert rules[:3] == ["~berthcare:*", "&berthcare:*", "-@all"]
    granted = [rule.removeprefix("+") for rule in rules[3:]]
    assert granted == [name for name, _ in APP_USER_COMMANDS]
    assert all(rule.startswith("+") and "@" not in rule for rule in rules[3:])  # no categories
    for never in ("scan", "keys", "randomkey", "select", "function", "script", "pubsub", "config"):
        assert not any(g == never or g.startswith(f"{never}|") for g in granted), never
    assert "info" in granted  # read-only; the memory and hit-rate checks need it


def test_every_granted_command_says_why() -> None:
    names = [name for name, _ in APP_USER_COMMANDS]
    assert len(names) == len(set(names))
    assert all(reason.strip() for _, reason in APP_USER_COMMANDS)


def test_glob_characters_in_the_prefix_are_literal() -> None:
    assert glob_escape("a*b?[c]\\:") == "a\\*b\\?\\[c\\]\\\\:"
    assert app_user_access("a*:").startswith("~a\\*:* &a\\*:* ")


@pytest.mark.parametrize("prefix", ["", "two words:", "tab\t:", "tenant1", "app-", "a.b", "x/"])
def test_bad_prefix_is_refused_naming_the_argument(prefix: str) -> None:
    with pytest.raises(ValueError, match="key_prefix"):
        app_user_access(prefix)


def test_harness_and_stack_grant_the_same_rules() -> None:
    """ElastiCache adds only `on` (it disables users without it; passwords go through its API)."""
    for prefix in ("berthcare:", "tenant-1.cache:", "a:b:"):
        assert app_access_string(prefix) == f"on {app_user_rules(prefix)}"
        assert ">" not in app_access_string(prefix)
        assert "reset" not in app_access_string(prefix)


def test_bare_channels_are_granted_one_by_one_as_literals() -> None:
    rules = app_user_access("berthcare:", channels=["alerts", "a*", "alerts"])
    assert rules.startswith("~berthcare:* &berthcare:* &alerts &a\\* -@all +")


@pytest.mark.parametrize("channels", [[""], ["two words"], ["tab\t"], "alerts"])
def test_bad_channel_names_are_refused_naming_the_argument(channels: list[str] | str) -> None:
    with pytest.raises(ValueError, match="channels"):
        app_user_access("berthcare:", channels=channels)


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    users = [
        ACLUser("admin", secrets.token_hex(16), ADMIN_RULES),
        ACLUser("app", secrets.token_hex(16), app_user_rules("berthcare:")),
        ACLUser("globby", secrets.token_hex(16), app_user_rules("a*:")),
        ACLUser(
            "seedy", secrets.token_hex(16), app_user_rules("berthcare:", channels=["alerts", "a*"])
        ),
    ]
    with RedisServer(users=users, appendonly=False, name="acl") as srv:
        yield srv


def test_app_user_on_real_redis_can_use_its_keys_and_info_only(server: RedisServer) -> None:
    """(The second-tenant test, tests/test_tenant_isolation.py, tries every way in.)"""
    app = server.client("app")
    try:
        app.set("berthcare:acl:1", "v", ex=60)
        assert app.get("berthcare:acl:1") == b"v"
        assert app.publish("berthcare:alerts", "x") == 0
        assert "used_memory" in app.info("memory")
        with pytest.raises(redis.exceptions.NoPermissionError):
            app.set("other:acl:1", "v")
        with pytest.raises(redis.exceptions.NoPermissionError):
            app.publish("alerts", "x")
        with pytest.raises(redis.exceptions.NoPermissionError):
            app.keys("berthcare:*")
        with pytest.raises(redis.exceptions.NoPermissionError):
            app.flushall()
        with pytest.raises(redis.exceptions.NoPermissionError):
            app.scan(0)
    finally:
        app.delete("berthcare:acl:1")
        app.close()


def test_bare_channels_granted_are_the_only_bare_channels_on_real_redis(
    server: RedisServer,
) -> None:
    """A service with prefix_channels=False publishes and subscribes on ``alerts``: granted;
    ``a*`` is the literal name, not a pattern, and nothing else outside the prefix opens up."""
    client = server.client("seedy")
    try:
        assert client.publish("alerts", "x") == 0
        assert client.publish("a*", "x") == 0
        assert client.publish("berthcare:alerts", "x") == 0
        for refused in ("alertsX", "ab", "other:alerts"):
            with pytest.raises(redis.exceptions.NoPermissionError):
                client.publish(refused, "x")
        pubsub = client.pubsub()  # type: ignore[no-untyped-call]
        try:
            pubsub.subscribe("alerts")
            confirmation = pubsub.get_message(timeout=5)
            assert confirmation is not None
            assert confirmation["type"] == "subscribe"
        finally:
            pubsub.close()
    finally:
        client.close()


def test_escaped_prefix_is_literal_on_real_redis(server: RedisServer) -> None:
    client = server.client("globby")
    try:
        client.set("a*:k", "v", ex=60)
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.set("ab:k", "v")
    finally:
        client.delete("a*:k")
        client.close()


def test_elasticache_access_string_parses_on_redis_7(server: RedisServer) -> None:
    admin = server.client("admin")
    try:
        rules = app_access_string("berthcare:").split()
        # The raw string, as ElastiCache would apply it (redis-py's acl_setuser adds its own).
        answer = admin.execute_command("ACL", "SETUSER", "parsed", *rules)  # type: ignore[no-untyped-call]
        assert answer in (b"OK", "OK", True)
        described: Any = admin.acl_getuser("parsed")
        assert "on" in described["flags"]
        assert described["keys"] in ("~berthcare:*", ["~berthcare:*"])
        assert described["channels"] in ("&berthcare:*", ["&berthcare:*"])
    finally:
        admin.acl_deluser("parsed")
        admin.close()


@pytest.mark.parametrize("raw", ["tenant1", "berthcare", "app-", "a.b", ""])
def test_stack_key_prefix_without_a_delimiter_is_refused(raw: str) -> None:
    """``tenant1`` would give the RBAC app user ``~tenant1*``, which covers ``tenant10:``."""
    setting = next(s for s in SETTINGS if s.key == "keyPrefix")
    with pytest.raises(InfraConfigError, match=r"^berthcache:keyPrefix: must look like berthcare:"):
        parse_setting(setting, raw, namespace="berthcache")


@pytest.mark.parametrize("raw", ["berthcare:", "tenant-1.cache:", "a:b:", ":"])
def test_stack_key_prefixes_the_setting_admits_get_rules(raw: str) -> None:
    setting = next(s for s in SETTINGS if s.key == "keyPrefix")
    assert parse_setting(setting, raw, namespace="berthcache") == raw
    assert app_access_string(raw).startswith(f"on ~{raw}* &{raw}* -@all ")
