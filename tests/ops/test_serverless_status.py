"""A serverless cache's status and alarms: ElastiCache through botocore's Stubber (moto does not
implement DescribeServerlessCaches), CloudWatch through moto, alarms named as the Pulumi program
names them (``<cache>-000-<key>``, dimension ``clusterId``)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from berthcache.ops import ExitCode, OpsError
from berthcache.ops._aws import AwsClients
from berthcache.ops._runbooks import runbook_base_url
from berthcache.ops._serverless import describe_serverless, serverless_alarms
from berthcache.ops.alarm_catalogue import serverless_specs

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
