"""Helpers of the ops tests: a deployed-looking stack (replication group with two nodes,
per-node alarms named like the Pulumi program's, the connection secret) and its outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3

from berthcache.ops._aws import AwsClients
from berthcache.ops.alarm_catalogue import CATALOGUE

REGION = "eu-west-1"
GROUP = "bc-test"
MEMBERS = (f"{GROUP}-001", f"{GROUP}-002")


def make_stack(
    clients: Any,
    *,
    secret: dict[str, Any] | None = None,
    alarm_keys: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """Create what ``pulumi up`` would: the group, per-node alarms, the secret. Returns the
    stack outputs (as ``pulumi stack output --json --show-secrets`` prints them)."""
    ec = clients.elasticache
    ec.create_replication_group(
        ReplicationGroupId=GROUP,
        ReplicationGroupDescription="berthcache test",
        CacheNodeType="cache.t4g.small",
        Engine="redis",
        EngineVersion="7.1",
        ReplicasPerNodeGroup=1,
        PreferredCacheClusterAZs=[f"{REGION}a", f"{REGION}b"],
        AutomaticFailoverEnabled=True,
        MultiAZEnabled=True,
        TransitEncryptionEnabled=True,
        AtRestEncryptionEnabled=True,
        AuthToken="x" * 32,
    )
    names: list[str] = []
    keys = alarm_keys if alarm_keys is not None else tuple(s.key for s in CATALOGUE)
    for member in MEMBERS:
        for key in keys:
            name = f"{member}-{key}"
            clients.cloudwatch.put_metric_alarm(
                AlarmName=name,
                AlarmDescription=(
                    f"{key} on {member}. Runbook: src/berthcache/ops/runbooks.md#{key}"
                ),
                Namespace="AWS/ElastiCache",
                MetricName="CPUUtilization",
                Dimensions=[{"Name": "CacheClusterId", "Value": member}],
                Statistic="Average",
                Period=60,
                EvaluationPeriods=1,
                Threshold=90.0,
                ComparisonOperator="GreaterThanThreshold",
            )
            names.append(name)
    # Someone else's alarm sharing the prefix must not show up.
    clients.cloudwatch.put_metric_alarm(
        AlarmName=f"{GROUP}-other-thing",
        Namespace="AWS/EC2",
        MetricName="CPUUtilization",
        Statistic="Average",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanThreshold",
    )
    value = secret or {
        "engine": "redis",
        "host": "master.bc-test.example",
        "port": 6379,
        "tls": True,
        "username": None,
        "password": "old-token-" + "o" * 20,
        "key_prefix": "berthcare:",
        "url": "rediss://:old-token@master.bc-test.example:6379/0",
        "replication_group_id": GROUP,
    }
    arn = clients.secretsmanager.create_secret(
        Name=f"berthcache/test/{GROUP}", SecretString=json.dumps(value)
    )["ARN"]
    return {
        "replicationGroupId": GROUP,
        "engine": "redis 7.1",
        "primaryEndpoint": value["host"],
        "readerEndpoint": "replica.bc-test.example",
        "port": value["port"],
        "memberClusters": list(MEMBERS),
        "secretArn": arn,
        "alarmTopicArn": f"arn:aws:sns:{REGION}:123456789012:{GROUP}-alerts",
        "dashboardName": GROUP,
        "alarmNames": names,
        "keyPrefix": "berthcare:",
        "username": None,
        "connectionUrl": value["url"],
    }


def boto_clients() -> AwsClients:
    session = boto3.session.Session()
    return AwsClients(session)


def write_outputs(tmp_path: Path, outputs: dict[str, Any]) -> Path:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    return path
