"""Progress of the long commands: failover-drill (up to 900 s) and rotate-auth-token (a 300 s
grace) say on stderr how long they have run and what they wait for, while stdout stays the
result. AWS is botocore's Stubber (moto has no test_failover) or moto; Redis is a real local
server; time is a fake clock the fake sleep advances, so nothing here really waits."""

from __future__ import annotations

import io
import json
import re
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.stub import Stubber
from rich.console import Console
from typer.testing import CliRunner

from berthcache.ops._aws import AwsClients
from berthcache.ops._progress import Progress
from berthcache.ops._rotate import ElastiCacheTokenSetter
from berthcache.ops.cli import app
from berthcache.testing import LocalRedis
from berthcache.testing.plugin import LocalRedisFactory
from tests.ops.support import GROUP, make_stack, write_outputs

runner = CliRunner()


class FakeClock:
    """Time that only moves when the code under test sleeps (thread-safe: the drill's trigger
    thread reads it too)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    clock = FakeClock()
    monkeypatch.setattr("berthcache.ops.cli.clock", clock)
    monkeypatch.setattr("berthcache.ops.cli.sleep", clock.sleep)
    return clock


def plain(clock: FakeClock, **kwargs: Any) -> tuple[Progress, io.StringIO]:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=False, width=200)
    return Progress("drill", console=console, clock=clock, **kwargs), buffer


def progress_lines(stderr: str, command: str) -> list[tuple[int, str]]:
    """``(elapsed seconds, text)`` of each progress line of ``command`` on stderr."""
    found = re.findall(rf"^berthcache-ops: {command}: (\d+) s: (.*)$", stderr, re.MULTILINE)
    return [(int(seconds), text) for seconds, text in found]


# -- the reporter --------------------------------------------------------------------------------


def test_plain_lines_when_the_wait_changes_and_every_15_s_while_it_does_not() -> None:
    clock = FakeClock()
    progress, buffer = plain(clock)
    for _ in range(100):  # a tight loop: one line, not a hundred
        progress.update("waiting for the trigger", "3 probes")
    clock.sleep(10)
    progress.update("waiting for the trigger", "9 probes")  # same wait, 10 s on: nothing
    clock.sleep(5)
    progress.update("waiting for the trigger", "12 probes")  # 15 s on: a line
    progress.update("waiting for the group")  # a new wait: a line at once
    progress.done("recovered")
    assert buffer.getvalue().splitlines() == [
        "berthcache-ops: drill: 0 s: waiting for the trigger (3 probes)",
        "berthcache-ops: drill: 15 s: waiting for the trigger (12 probes)",
        "berthcache-ops: drill: 15 s: waiting for the group",
        "berthcache-ops: drill: 15 s: recovered",
    ]


def test_no_progress_prints_nothing() -> None:
    clock = FakeClock()
    progress, buffer = plain(clock, enabled=False)
    progress.update("waiting")
    progress.done("done")
    assert buffer.getvalue() == ""


def test_on_a_terminal_one_status_line_updates_in_place() -> None:
    clock = FakeClock()
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120)
    with Progress("drill", console=console, clock=clock) as progress:
        assert progress.live
        progress.update("waiting for [the] group")  # brackets are text, not rich markup
        clock.sleep(42)
        progress.update("waiting for [the] group")
        progress.done("recovered")
    text = buffer.getvalue()
    assert "drill: 42 s: recovered" in text
    assert "waiting for [the] group" in text


# -- failover-drill ------------------------------------------------------------------------------


def test_failover_drill_shows_elapsed_time_and_what_it_waits_for(
    aws_env: None, local_redis_factory: LocalRedisFactory, fake_time: FakeClock, monkeypatch: Any
) -> None:
    group = local_redis_factory()
    assert group.ca_file is not None
    client = boto3.client("elasticache")
    stubber = Stubber(client)
    described = {
        "ReplicationGroupId": GROUP,
        "Status": "available",
        "AutomaticFailover": "enabled",
        "NodeGroups": [{"NodeGroupId": "0001"}],
    }
    by_id = {"ReplicationGroupId": GROUP}
    stubber.add_response("describe_replication_groups", {"ReplicationGroups": [described]}, by_id)
    stubber.add_response(
        "test_failover",
        {"ReplicationGroup": {**described, "Status": "modifying"}},
        {**by_id, "NodeGroupId": "0001"},
    )
    # Polled every 10 s once the trigger returned: modifying for 30 s, then available.
    for status in ("modifying", "modifying", "modifying", "available"):
        stubber.add_response(
            "describe_replication_groups",
            {"ReplicationGroups": [{**described, "Status": status}]},
            by_id,
        )
    monkeypatch.setattr("berthcache.ops.cli._aws", lambda *_: AwsClients(elasticache=client))
    args = ["failover-drill", "-g", GROUP, "--redis-url", group.url("app")]
    with stubber:
        result = runner.invoke(app, [*args, "--tls-ca", group.ca_file, "--yes", "-o", "json"])
    stubber.assert_no_pending_responses()
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)  # stdout: the result only, progress went to stderr
    assert report["recovered"] is True
    lines = progress_lines(result.stderr, "failover-drill")
    waiting = [(t, text) for t, text in lines if "to be available again" in text]
    assert waiting, result.stderr
    assert waiting[0][1].startswith(f"waiting for replication group {GROUP} to be available again")
    assert "gives up at 900 s" in waiting[0][1]
    times = [t for t, _ in waiting]
    assert times[:2] == [0, 15]  # at once, then every 15 s of the same wait
    assert times == list(range(0, 15 * len(times), 15))
    assert lines[-1] == (30, "recovered")


def test_failover_drill_no_progress_is_quiet(
    aws_env: None, fake_time: FakeClock, monkeypatch: Any
) -> None:
    """--no-progress: stderr has nothing but what went wrong."""
    client = boto3.client("elasticache")
    stubber = Stubber(client)
    stubber.add_client_error(
        "describe_replication_groups", service_error_code="ReplicationGroupNotFoundFault"
    )
    monkeypatch.setattr("berthcache.ops.cli._aws", lambda *_: AwsClients(elasticache=client))
    unused = "redis://127.0.0.1:1/0"  # never reached: the group check fails first
    with stubber:
        result = runner.invoke(
            app, ["failover-drill", "-g", "gone", "--redis-url", unused, "--yes", "--no-progress"]
        )
    assert result.exit_code == 3
    assert result.stderr.count("\n") == 1
    assert "not found" in result.stderr


# -- rotate-auth-token ---------------------------------------------------------------------------


class AclTokenSetter:
    """Stands in for ElastiCache's AUTH token on a local Redis (ROTATE adds a password, SET
    keeps one) and, like ElastiCacheTokenSetter, reports its wait for the group."""

    def __init__(self, group: LocalRedis, user: str) -> None:
        self.group, self.user = group, user

    def __call__(self, clients: Any, group_id: str, **kwargs: Any) -> AclTokenSetter:
        self.progress = kwargs["progress"]
        self.sleep = kwargs["sleep"]
        return self

    def _acl(self, *rules: str) -> None:
        self.progress(f"waiting for replication group {GROUP} to be available", "modifying")
        self.sleep(20)  # ElastiCache takes a while to apply a token change
        admin = self.group.admin_client()
        try:
            admin.execute_command("ACL", "SETUSER", self.user, *rules)  # type: ignore[no-untyped-call]
        finally:
            admin.close()

    def rotate(self, token: str) -> None:
        self._acl(f">{token}")

    def set(self, token: str) -> None:
        self._acl("resetpass", f">{token}")


def test_rotate_auth_token_counts_down_the_grace_period(
    mocked_aws: None,
    local_redis_factory: LocalRedisFactory,
    fake_time: FakeClock,
    monkeypatch: Any,
    tmp_path: Path,
) -> None:
    group = local_redis_factory()
    assert group.ca_file is not None
    user, password = group.users["app"]
    url = urlsplit(group.url("app"))
    secret = {
        "host": url.hostname,
        "port": url.port,
        "tls": True,
        "username": user,
        "password": password,
        "key_prefix": "berthcare:",
        "url": group.url("app"),
    }
    outputs = make_stack(AwsClients(boto3.session.Session()), secret=secret)
    outputs["primaryEndpoint"], outputs["port"] = url.hostname, url.port
    monkeypatch.setattr(
        "berthcache.ops._rotate.ElastiCacheTokenSetter", AclTokenSetter(group, user)
    )
    result = runner.invoke(
        app,
        [
            "rotate-auth-token",
            "--outputs",
            str(write_outputs(tmp_path, outputs)),
            "--tls-ca",
            group.ca_file,
            "--grace",
            "300",
            "--yes",
            "--output",
            "json",
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["completed"] is True
    assert password not in result.stdout + result.stderr
    lines = progress_lines(result.stderr, "rotate-auth-token")
    texts = [text for _, text in lines]
    assert texts[0] == "verifying the current token (AUTH + PING)"
    assert f"waiting for replication group {GROUP} to be available (modifying)" in texts
    grace = [(t, text) for t, text in lines if text.startswith("grace period")]
    assert grace[0][1] == (
        "grace period: waiting 300 s for apps to reload the secret (300 s left; both tokens valid)"
    )
    # One line every 15 s of the wait, the time left counting down with the elapsed time.
    assert [t - grace[0][0] for t, _ in grace] == list(range(0, 300, 15))
    assert grace[-1][1].startswith("grace period: waiting 300 s for apps to reload the secret (15")
    assert lines[-1] == (340, "old token retired; rotation complete")


def test_the_elasticache_setter_reports_the_groups_status_while_it_waits(aws_env: None) -> None:
    client = boto3.client("elasticache")
    stubber = Stubber(client)
    by_id = {"ReplicationGroupId": "bc-test"}
    stubber.add_response(
        "modify_replication_group",
        {"ReplicationGroup": {**by_id, "Status": "modifying"}},
        {
            **by_id,
            "AuthToken": "t" * 40,
            "AuthTokenUpdateStrategy": "SET",
            "ApplyImmediately": True,
        },
    )
    for status in ("modifying", "modifying", "available"):
        stubber.add_response(
            "describe_replication_groups",
            {"ReplicationGroups": [{**by_id, "Status": status}]},
            by_id,
        )
    clock = FakeClock()
    heard: list[tuple[float, str, str]] = []
    setter = ElastiCacheTokenSetter(
        AwsClients(elasticache=client),
        "bc-test",
        poll=15,
        sleep=clock.sleep,
        clock=clock,
        progress=lambda what, detail: heard.append((clock() - 1000, what, detail)),
    )
    with stubber:
        setter.set("t" * 40)
    assert heard == [
        (
            t,
            "waiting for replication group bc-test to be available",
            "status: modifying; gives up after 1800 s",
        )
        for t in (0, 15)
    ]
