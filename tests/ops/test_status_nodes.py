"""`berthcache-ops status` judges alarms by the nodes they watch, not by their names (issue 9,
Ops): a firing alarm on one of the group's nodes shows whatever it is called, and a node that
no alarm watches is flagged. Against moto, like the other status tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from berthcache.ops.cli import app
from tests.ops.support import GROUP, MEMBERS, boto_clients, make_stack, write_outputs

runner = CliRunner()


def _hand_made_alarm(name: str, member: str) -> None:
    """An alarm the program did not create (another team's, or from the console)."""
    boto3.client("cloudwatch").put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/ElastiCache",
        MetricName="DatabaseMemoryUsagePercentage",
        Dimensions=[
            {"Name": "CacheClusterId", "Value": member},
            {"Name": "CacheNodeId", "Value": "0001"},
        ],
        Statistic="Average",
        Period=60,
        EvaluationPeriods=1,
        Threshold=95.0,
        ComparisonOperator="GreaterThanThreshold",
    )


def _status(*args: str) -> Any:
    result = runner.invoke(app, ["status", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result


@pytest.fixture
def stack(mocked_aws: None, tmp_path: Path) -> Path:
    return write_outputs(tmp_path, make_stack(boto_clients()))


def test_a_firing_alarm_on_a_node_shows_whatever_its_name(stack: Path) -> None:
    _hand_made_alarm("team-x memory on the cache", MEMBERS[1])
    boto3.client("cloudwatch").set_alarm_state(
        AlarmName="team-x memory on the cache", StateValue="ALARM", StateReason="95.5 > 95"
    )
    human = _status("--outputs", str(stack))
    assert "no alarm in ALARM" not in human.stdout
    assert "team-x memory on the cache: 95.5 > 95" in human.stdout
    data = json.loads(_status("--outputs", str(stack), "--json", "--fail-on-alarm").stdout)
    assert [a["name"] for a in data["alarms_in_alarm"]] == ["team-x memory on the cache"]
    assert data["nodes_without_alarm"] == []


def test_an_alarm_on_another_groups_node_does_not_show(stack: Path) -> None:
    _hand_made_alarm("elsewhere", "other-group-001")
    boto3.client("cloudwatch").set_alarm_state(
        AlarmName="elsewhere", StateValue="ALARM", StateReason="x"
    )
    data = json.loads(_status("--outputs", str(stack), "--json").stdout)
    assert data["alarms_in_alarm"] == []


def test_a_node_without_any_alarm_is_flagged(mocked_aws: None, tmp_path: Path) -> None:
    outputs = make_stack(boto_clients(), alarm_keys=())
    _hand_made_alarm("only the primary", MEMBERS[0])
    path = write_outputs(tmp_path, outputs)
    data = json.loads(_status("--outputs", str(path), "--json").stdout)
    assert data["nodes_without_alarm"] == [MEMBERS[1]]
    human = _status("--outputs", str(path))
    assert "1 node(s) with no alarm:" in human.stdout
    assert MEMBERS[1] in human.stdout.split("with no alarm:")[1]
    assert GROUP in human.stdout
