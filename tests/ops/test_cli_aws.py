"""status / alarms / runbook against moto (ElastiCache, CloudWatch, Secrets Manager in process),
and every bad input ending in one line on stderr and a non-zero exit — never a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from typer.testing import CliRunner

from berthcache.ops import ExitCode
from berthcache.ops._aws import AwsClients
from berthcache.ops._runbooks import DEFAULT_RUNBOOK_BASE_URL as BASE
from berthcache.ops._status import describe_group, list_alarms
from berthcache.ops.alarm_catalogue import CATALOGUE
from berthcache.ops.cli import app
from tests.ops.support import GROUP, MEMBERS, boto_clients, make_stack, write_outputs

runner = CliRunner()


def invoke(*args: str) -> Any:
    result = runner.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    return result


def assert_one_line_error(result: Any, code: ExitCode, *needles: str) -> None:
    assert result.exit_code == int(code), (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("berthcache-ops: error: ")
    assert "Traceback" not in result.output + result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def stack(mocked_aws: None, tmp_path: Path) -> Path:
    outputs = make_stack(boto_clients())
    return write_outputs(tmp_path, outputs)


def set_alarm(name: str, reason: str = "Threshold Crossed: 5 datapoints > 90") -> None:
    boto3.client("cloudwatch").set_alarm_state(
        AlarmName=name, StateValue="ALARM", StateReason=reason
    )


def test_status_shows_group_nodes_flags_and_firing_alarms(stack: Path) -> None:
    set_alarm(f"{MEMBERS[0]}-evictions")
    result = invoke("status", "--outputs", str(stack))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"{GROUP}  status: available" in out
    assert "engine: redis 7.1" in out  # moto has no member clusters: the engine output
    for member, role, az in (
        (MEMBERS[0], "primary", "eu-west-1a"),
        (MEMBERS[1], "replica", "eu-west-1b"),
    ):
        assert member in out
        assert role in out
        assert az in out
    assert "automatic failover: enabled" in out
    assert "TLS in transit: on" in out
    assert f"{MEMBERS[0]}-evictions" in out
    assert f"runbook: {BASE}src/berthcache/ops/runbooks.md#evictions" in out


def test_status_json_and_fail_on_alarm_exit_code(stack: Path) -> None:
    quiet = invoke("status", "--outputs", str(stack), "--json", "--fail-on-alarm")
    assert quiet.exit_code == 0
    assert json.loads(quiet.stdout)["alarms_in_alarm"] == []
    set_alarm(f"{MEMBERS[1]}-swap-usage")
    firing = invoke("status", "--replication-group", GROUP, "--json", "--fail-on-alarm")
    assert firing.exit_code == int(ExitCode.ALARMING)
    data = json.loads(firing.stdout)
    assert [a["name"] for a in data["alarms_in_alarm"]] == [f"{MEMBERS[1]}-swap-usage"]
    assert data["nodes"][0]["role"] == "primary"


def test_alarms_lists_every_alarm_with_state_reason_and_runbook(stack: Path) -> None:
    set_alarm(f"{MEMBERS[0]}-cache-hit-rate", "hit rate 42% < 80%")
    result = invoke("alarms", "--outputs", str(stack), "--json")
    assert result.exit_code == 0, result.output
    alarms = json.loads(result.stdout)
    assert len(alarms) == 2 * len(
        CATALOGUE
    )  # every catalogue alarm on both nodes; not the stranger's
    assert f"{GROUP}-other-thing" not in {a["name"] for a in alarms}
    first = alarms[0]  # ALARM sorts first
    assert first["state"] == "ALARM"
    assert first["reason"] == "hit rate 42% < 80%"
    assert first["runbook"] == f"{BASE}src/berthcache/ops/runbooks.md#cache-hit-rate"
    human = invoke("alarms", "--outputs", str(stack), "--state", "alarm")
    assert f"{MEMBERS[0]}-cache-hit-rate" in human.stdout
    assert "ALARM" in human.stdout


def test_alarms_reports_an_alarm_missing_from_cloudwatch(mocked_aws: None, tmp_path: Path) -> None:
    outputs = make_stack(boto_clients(), alarm_keys=("evictions",))
    outputs["alarmNames"] = [*outputs["alarmNames"], f"{MEMBERS[0]}-swap-usage"]
    found = list_alarms(boto_clients(), GROUP, expected=tuple(outputs["alarmNames"]))
    missing = [a for a in found if a.state == "MISSING"]
    assert [a.name for a in missing] == [f"{MEMBERS[0]}-swap-usage"]
    assert missing[0].runbook == f"{BASE}src/berthcache/ops/runbooks.md#swap-usage"


def test_runbook_prints_the_section_for_an_alarm_name() -> None:
    result = invoke("runbook", "bc-prod-002-replication-lag")
    assert result.exit_code == 0
    assert "Replication lag" in result.stdout
    assert f"runbook: {BASE}src/berthcache/ops/runbooks.md#replication-lag" in result.stdout
    as_json = json.loads(invoke("runbook", "evictions", "--json").stdout)
    assert as_json["key"] == "evictions"
    assert "berthcache-ops" in as_json["text"]


# -- bad input: one line, non-zero, no traceback ------------------------------------------------


def test_unknown_alarm_name() -> None:
    result = invoke("runbook", "bc-prod-001-disk-full")
    assert_one_line_error(
        result, ExitCode.USAGE, "unknown alarm 'bc-prod-001-disk-full'", "evictions"
    )


def test_group_that_does_not_exist(mocked_aws: None) -> None:
    result = invoke("status", "--replication-group", "no-such-group")
    assert_one_line_error(result, ExitCode.AWS, "replication group 'no-such-group'", "not found")


def test_missing_outputs_file(tmp_path: Path) -> None:
    result = invoke("alarms", "--outputs", str(tmp_path / "nope.json"))
    assert_one_line_error(result, ExitCode.USAGE, "nope.json", "does not exist")


def test_outputs_without_the_group_id(tmp_path: Path) -> None:
    path = write_outputs(tmp_path, {"port": 6379})
    result = invoke("status", "--outputs", str(path))
    assert_one_line_error(result, ExitCode.USAGE, "'replicationGroupId'")


def test_no_group_at_all() -> None:
    result = invoke("status")
    assert_one_line_error(result, ExitCode.USAGE, "--replication-group", "--stack")


def test_unknown_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in `pulumi` that fails like the real one for a stack that does not exist."""
    fake = tmp_path / "pulumi"
    fake.write_text("#!/bin/sh\necho \"error: no stack named 'nope' found\" >&2\nexit 255\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    result = invoke("status", "--stack", "nope")
    assert_one_line_error(result, ExitCode.USAGE, "stack 'nope'", "no stack named 'nope' found")


def test_no_pulumi_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    result = invoke("alarms", "--stack", "prod")
    assert_one_line_error(result, ExitCode.USAGE, "pulumi CLI is not installed", "--outputs")


def test_no_credentials(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    result = invoke("status", "--replication-group", GROUP)
    assert_one_line_error(result, ExitCode.AWS, "no AWS credentials", "AWS_PROFILE")


def test_expired_credentials(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto cannot expire a token: botocore's Stubber answers ExpiredTokenException."""
    client = boto3.client("elasticache")
    stubber = Stubber(client)
    stubber.add_client_error(
        "describe_replication_groups",
        service_error_code="ExpiredTokenException",
        service_message="The security token included in the request is expired",
        http_status_code=403,
    )
    monkeypatch.setattr("berthcache.ops.cli._aws", lambda *_: AwsClients(elasticache=client))
    with stubber:
        result = invoke("status", "--replication-group", GROUP)
    assert_one_line_error(result, ExitCode.AWS, "credentials expired", "ExpiredTokenException")


def test_permission_denied_names_the_action(aws_env: None) -> None:
    """moto allows everything: Stubber answers AccessDenied."""
    client = boto3.client("elasticache")
    stubber = Stubber(client)
    stubber.add_client_error(
        "describe_replication_groups", service_error_code="AccessDenied", http_status_code=403
    )
    with stubber:
        from berthcache.ops import OpsError

        with pytest.raises(OpsError, match="may not elasticache:DescribeReplicationGroups"):
            describe_group(AwsClients(elasticache=client), GROUP)


def test_secret_never_in_output(stack: Path) -> None:
    data = json.loads(stack.read_text())
    result = invoke("status", "--outputs", str(stack), "--json")
    assert "old-token" not in result.output
    assert data["connectionUrl"] not in result.output
