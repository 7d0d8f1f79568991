"""A serverless cache's status and alarms: ElastiCache through botocore's Stubber (moto does not
implement DescribeServerlessCaches), CloudWatch through moto, alarms named as the Pulumi program
names them (``<cache>-000-<key>``, dimension ``clusterId``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from typer.testing import CliRunner

from berthcache.ops import ExitCode, OpsError
from berthcache.ops._aws import AwsClients
from berthcache.ops._runbooks import runbook_base_url
from berthcache.ops._serverless import describe_serverless, serverless_alarms
from berthcache.ops.alarm_catalogue import serverless_specs
from berthcache.ops.cli import app
from tests.ops.support import GROUP, boto_clients, make_stack, write_outputs

NAME = "bc-sls"
CACHE: dict[str, Any] = {
    "ServerlessCacheName": NAME,
    "Status": "available",
    "Engine": "valkey",
    "MajorEngineVersion": "8",
    "FullEngineVersion": "8.0",
    "Endpoint": {"Address": f"{NAME}-abc.serverless.euw1.cache.amazonaws.com", "Port": 6379},
    "ReaderEndpoint": {"Address": f"{NAME}-abc.serverless.euw1.cache.amazonaws.com", "Port": 6380},
    "CacheUsageLimits": {
        "DataStorage": {"Maximum": 10, "Unit": "GB"},
        "ECPUPerSecond": {"Maximum": 5000},
    },
    "KmsKeyId": "arn:aws:kms:eu-west-1:123456789012:key/k",
    "UserGroupId": f"{NAME}-users",
    "SecurityGroupIds": ["sg-0123456789abcdef0"],
    "SubnetIds": ["subnet-1", "subnet-2"],
    "SnapshotRetentionLimit": 7,
    "DailySnapshotTime": "03:00",
}


def _stubbed(answer: dict[str, Any] | None, error: str | None = None) -> tuple[Any, Stubber]:
    client = boto3.client("elasticache", region_name="eu-west-1")
    stub = Stubber(client)
    if error:
        stub.add_client_error(
            "describe_serverless_caches",
            service_error_code=error,
            service_message=f"{NAME} not found",
            expected_params={"ServerlessCacheName": NAME},
        )
    else:
        stub.add_response("describe_serverless_caches", answer or {}, {"ServerlessCacheName": NAME})
    stub.activate()
    return client, stub


def test_status_describes_the_cache_its_limits_and_security(aws_env: None) -> None:
    client, stub = _stubbed({"ServerlessCaches": [CACHE]})
    status = describe_serverless(AwsClients(elasticache=client), NAME)
    stub.assert_no_pending_responses()
    assert status.status == "available"
    assert (status.engine, status.major_engine_version) == ("valkey", "8")
    assert status.endpoint.endswith(":6379")
    assert status.reader_endpoint.endswith(":6380")
    assert (status.max_data_storage_gb, status.max_ecpu_per_second) == (10, 5000)
    assert status.kms_key_id.startswith("arn:aws:kms:")
    assert status.user_group_id == f"{NAME}-users"
    assert status.as_dict()["subnet_ids"] == ("subnet-1", "subnet-2")


def test_a_missing_cache_is_one_line_naming_it(aws_env: None) -> None:
    client, _ = _stubbed(None, error="ServerlessCacheNotFoundFault")
    with pytest.raises(OpsError) as info:
        describe_serverless(AwsClients(elasticache=client), NAME)
    assert info.value.code == ExitCode.AWS
    assert NAME in info.value.message
    assert "\n" not in info.value.message


def _put_alarm(name: str, cluster_id: str) -> None:
    boto3.client("cloudwatch").put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/ElastiCache",
        MetricName="ThrottledCmds",
        Dimensions=[{"Name": "clusterId", "Value": cluster_id}],
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=0.0,
        ComparisonOperator="GreaterThanThreshold",
    )


def test_firing_alarms_on_the_cache_come_with_their_runbook(mocked_aws: None) -> None:
    clients = AwsClients(boto3.session.Session())
    assert serverless_alarms(clients, NAME).watched is False  # nothing watches it yet
    for spec in serverless_specs():
        _put_alarm(f"{NAME}-000-{spec.key}", NAME)
    _put_alarm("hand-made-throttling", NAME)  # someone's own alarm on the cache
    _put_alarm("other-000-serverless-throttled-commands", "other")  # another cache's
    cloudwatch = boto3.client("cloudwatch")
    for name in (f"{NAME}-000-serverless-throttled-commands", "hand-made-throttling"):
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="throttled")
    cloudwatch.set_alarm_state(
        AlarmName="other-000-serverless-throttled-commands", StateValue="ALARM", StateReason="x"
    )
    coverage = serverless_alarms(clients, NAME)
    assert coverage.watched
    by_name = {a.name: a for a in coverage.firing}
    assert set(by_name) == {f"{NAME}-000-serverless-throttled-commands", "hand-made-throttling"}
    ours = by_name[f"{NAME}-000-serverless-throttled-commands"]
    assert ours.key == "serverless-throttled-commands"
    # A URL under the runbook base (BERTHCACHE_RUNBOOK_BASE_URL), usable from a pager.
    assert ours.runbook == runbook_base_url() + (
        "src/berthcache/ops/runbooks.md#serverless-throttled-commands"
    )
    assert ours.runbook.startswith("https://")
    assert by_name["hand-made-throttling"].runbook is None


# -- through the CLI: `berthcache-ops status` of a serverless cache ---------------------------

runner = CliRunner()


def _outputs(tmp_path: Path, **extra: Any) -> Path:
    """The outputs of a serverless stack as the Pulumi program exports them."""
    outputs = {
        "replicationGroupId": NAME,
        "topology": "serverless",
        "serverlessCacheName": NAME,
        "engine": "valkey 8",
        "readerPort": 6380,
        "memberClusters": [],
        **extra,
    }
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    return path


@pytest.fixture
def cli_aws(mocked_aws: None, monkeypatch: pytest.MonkeyPatch) -> Stubber:
    """The CLI's AWS clients: ElastiCache answered by a Stubber (moto lacks serverless
    caches; one DescribeServerlessCaches for NAME is expected), CloudWatch by moto."""
    client, stub = _stubbed({"ServerlessCaches": [CACHE]})
    monkeypatch.setattr(
        "berthcache.ops.cli._aws",
        lambda *_: AwsClients(boto3.session.Session(), elasticache=client),
    )
    return stub


def _cli(*args: str) -> Any:
    result = runner.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output + result.stderr
    return result


def _alarm_fires(name: str, reason: str = "throttled: 12 > 0") -> None:
    boto3.client("cloudwatch").set_alarm_state(
        AlarmName=name, StateValue="ALARM", StateReason=reason
    )


def test_status_of_a_serverless_stack_shows_the_cache_and_its_firing_alarms(
    cli_aws: Stubber, tmp_path: Path
) -> None:
    for spec in serverless_specs():
        _put_alarm(f"{NAME}-000-{spec.key}", NAME)
    _alarm_fires(f"{NAME}-000-serverless-throttled-commands")
    result = _cli("status", "--outputs", str(_outputs(tmp_path)))
    cli_aws.assert_no_pending_responses()
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"{NAME}  serverless  status: available  region: eu-west-1" in out
    assert "engine: valkey 8.0" in out
    assert f"endpoint: {NAME}-abc.serverless.euw1.cache.amazonaws.com:6379" in out
    assert "limits: data storage 10 GB   ECPU/s 5000" in out
    assert f"RBAC user group: {NAME}-users" in out
    assert "snapshots: kept 7 day(s), daily at 03:00" in out
    assert "1 alarm(s) in ALARM:" in out
    assert f"{NAME}-000-serverless-throttled-commands: throttled: 12 > 0" in out
    assert (
        f"runbook: {runbook_base_url()}src/berthcache/ops/runbooks.md#serverless-throttled-commands"
        in out
    )
    assert "node group" not in out  # no replication-group table
    assert "no alarm watches" not in out


def test_status_json_of_a_serverless_cache_and_fail_on_alarm(
    cli_aws: Stubber, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _put_alarm("hand-made-throttling", NAME)  # any alarm on the cache's clusterId counts
    result = _cli("status", "--outputs", str(_outputs(tmp_path)), "--output", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["topology"] == "serverless"
    assert (data["name"], data["status"], data["engine"]) == (NAME, "available", "valkey")
    assert data["region"] == "eu-west-1"
    assert data["max_ecpu_per_second"] == 5000
    assert data["security_group_ids"] == ["sg-0123456789abcdef0"]
    assert data["alarms_in_alarm"] == []
    assert data["watched_by_alarms"] is True
    _alarm_fires("hand-made-throttling", "too many")
    client, _ = _stubbed({"ServerlessCaches": [CACHE]})
    monkeypatch.setattr(  # a fresh Stubber for the second run
        "berthcache.ops.cli._aws",
        lambda *_: AwsClients(boto3.session.Session(), elasticache=client),
    )
    firing = _cli("-o", "json", "status", "--outputs", str(_outputs(tmp_path)), "--fail-on-alarm")
    assert firing.exit_code == int(ExitCode.ALARMING)
    alarms = json.loads(firing.stdout)["alarms_in_alarm"]
    assert [(a["name"], a["reason"], a["runbook"]) for a in alarms] == [
        ("hand-made-throttling", "too many", None)
    ]


def test_serverless_cache_by_name_without_outputs_says_when_nothing_watches_it(
    cli_aws: Stubber,
) -> None:
    result = _cli("status", "--serverless-cache", NAME, "--output", "table")
    cli_aws.assert_no_pending_responses()
    assert result.exit_code == 0, result.output
    assert f"{NAME}  serverless  status: available" in result.stdout
    assert "no alarm watches this cache" in result.stdout
    assert "no alarm in ALARM" in result.stdout


def test_a_missing_serverless_cache_is_one_line_on_stderr(
    mocked_aws: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    client, _ = _stubbed(None, error="ServerlessCacheNotFoundFault")
    monkeypatch.setattr("berthcache.ops.cli._aws", lambda *_: AwsClients(elasticache=client))
    result = _cli("status", "--outputs", str(_outputs(tmp_path)))
    assert result.exit_code == int(ExitCode.AWS)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("berthcache-ops: error: ")
    assert NAME in lines[0]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--serverless-cache", NAME, "--replication-group", "g"), "not both"),
        (("--serverless-cache", " "), "--serverless-cache is empty"),
    ],
)
def test_contradicting_or_empty_choices_are_usage_errors(
    aws_env: None, args: tuple[str, ...], needle: str
) -> None:
    result = _cli("status", *args)
    assert result.exit_code == int(ExitCode.USAGE)
    assert needle in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_serverless_stack_without_a_cache_name_names_the_missing_output(
    aws_env: None, tmp_path: Path
) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({"topology": "serverless"}))
    result = _cli("status", "--outputs", str(path))
    assert result.exit_code == int(ExitCode.USAGE)
    assert "serverlessCacheName" in result.stderr


def test_a_replication_group_stack_still_gets_the_group_status(
    mocked_aws: None, tmp_path: Path
) -> None:
    """No ``topology`` output (a replication group's outputs are as they were): the group path,
    whose JSON keeps its keys (no ``topology`` added)."""
    outputs = make_stack(boto_clients())
    result = _cli("status", "--outputs", str(write_outputs(tmp_path, outputs)), "-o", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["group_id"] == GROUP
    assert "topology" not in data
