"""The "done when" check: ``berthcache-ops`` as installed, AWS_ENDPOINT_URL pointing at a moto
server on 127.0.0.1 that holds a replication group and its alarms, one of them in ALARM."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import boto3

from berthcache.ops._aws import AwsClients
from berthcache.ops._runbooks import DEFAULT_RUNBOOK_BASE_URL
from berthcache.ops.alarm_catalogue import CATALOGUE
from tests.ops.support import GROUP, MEMBERS, REGION, make_stack, write_outputs


def ops_command() -> list[str]:
    script = Path(sys.executable).with_name("berthcache-ops")
    if script.exists():
        return [str(script)]
    found = shutil.which("berthcache-ops")
    return [found] if found else [sys.executable, "-m", "berthcache.ops"]


def test_status_and_alarms_against_a_moto_server(moto_server: str, tmp_path: Path) -> None:
    session = boto3.session.Session(region_name=REGION)
    outputs = make_stack(AwsClients(session))
    firing = f"{MEMBERS[1]}-database-memory-usage"
    session.client("cloudwatch").set_alarm_state(
        AlarmName=firing, StateValue="ALARM", StateReason="memory 93% > 80%"
    )
    path = write_outputs(tmp_path, outputs)
    env = dict(os.environ)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*ops_command(), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )

    status = run("status", "--outputs", str(path))
    assert status.returncode == 0, status.stderr
    assert f"{GROUP}  status: available" in status.stdout
    assert f"{MEMBERS[0]}" in status.stdout
    assert "replica" in status.stdout
    assert firing in status.stdout
    assert "src/berthcache/ops/runbooks.md#database-memory-usage" in status.stdout

    alarms = run("alarms", "--replication-group", GROUP)
    assert alarms.returncode == 0, alarms.stderr
    lines = alarms.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if firing in line)
    assert lines[at].startswith("ALARM")
    assert "memory 93% > 80%" in lines[at + 1]
    assert lines[at + 2].strip() == (
        f"runbook: {DEFAULT_RUNBOOK_BASE_URL}src/berthcache/ops/runbooks.md#database-memory-usage "
        f"(offline: berthcache-ops runbook {firing})"
    )
    assert sum(1 for line in lines if line.startswith("OK")) == 2 * len(CATALOGUE) - 1

    missing = run("status", "--replication-group", "not-there")
    assert missing.returncode == 3
    assert missing.stderr.count("\n") == 1
    assert "not found" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_help_lists_the_commands() -> None:
    done = subprocess.run(
        [*ops_command(), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0
    for command in (
        "status",
        "alarms",
        "runbook",
        "diagnose",
        "failover-drill",
        "rotate-auth-token",
        "conformance",
    ):
        assert command in done.stdout


def test_aws_region_alone_reaches_eu_west_1(moto_server: str, tmp_path: Path) -> None:
    """The issue's check, as on-call types it: `AWS_REGION=eu-west-1 berthcache-ops status …`
    with no AWS_DEFAULT_REGION and no profile region. boto3 alone would stop (no region); the
    moto server keeps a backend per region and holds the group only in eu-west-1, and the ARNs
    it records name the region the request was signed for."""
    session = boto3.session.Session(region_name="eu-west-1")
    make_stack(AwsClients(session))
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_DEFAULT_REGION", "AWS_PROFILE")}
    config = tmp_path / "aws-config"
    config.write_text("[default]\n")  # a profile without a region
    env.update(AWS_REGION="eu-west-1", AWS_CONFIG_FILE=str(config))

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*ops_command(), *args],
            capture_output=True,
            text=True,
            env={**env, **extra},
            timeout=60,
            check=False,
        )

    done = run("status", "--replication-group", GROUP, "--output", "json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["region"] == "eu-west-1"
    assert data["group_id"] == GROUP
    arns = session.client("elasticache").describe_replication_groups(ReplicationGroupId=GROUP)
    assert arns["ReplicationGroups"][0]["ARN"].startswith("arn:aws:elasticache:eu-west-1:")
    # Elsewhere there is no such group: the region really decided where the call went.
    other = run("status", "--replication-group", GROUP, AWS_REGION="us-east-1")
    assert other.returncode == 3
    assert "not found" in other.stderr
    # Without AWS_REGION nothing names a region: one line saying what to set.
    bare = {k: v for k, v in env.items() if k != "AWS_REGION"}
    nothing = subprocess.run(
        [*ops_command(), "status", "-g", GROUP],
        capture_output=True,
        text=True,
        env=bare,
        timeout=60,
        check=False,
    )
    assert nothing.returncode == 3
    assert "no AWS region configured" in nothing.stderr
    assert "--region" in nothing.stderr
