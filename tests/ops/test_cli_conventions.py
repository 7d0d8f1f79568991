"""What on-call expects of any mature CLI (aws, gh, kubectl): the region where the AWS CLI looks
for it, --profile, --version, --output json|table on every command, help that shows flags as
flags. AWS is moto in process; the stack exists in ONE region, so reaching it proves the region."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
import typer.main
from typer.testing import CliRunner

from berthcache.ops import ExitCode
from berthcache.ops._aws import AwsClients, resolve_region
from berthcache.ops.cli import app
from tests.ops.support import GROUP, make_stack

runner = CliRunner()
COMMANDS = (
    "status",
    "alarms",
    "runbook",
    "diagnose",
    "failover-drill",
    "rotate-auth-token",
    "conformance",
)


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    result = runner.invoke(app, list(args), env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    return result


@pytest.fixture
def no_region(aws_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Fake credentials and NO region anywhere; returns an empty AWS config file in use."""
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    config = tmp_path / "aws-config"
    config.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    return config


@pytest.fixture
def group_in_ap_southeast_2(no_region: Path) -> Any:
    """The stack, created in ap-southeast-2 only (moto keeps one backend per region)."""
    from moto import mock_aws

    with mock_aws():
        make_stack(AwsClients(boto3.session.Session(region_name="ap-southeast-2")))
        yield


def status_region(*args: str, env: dict[str, str] | None = None) -> str:
    result = invoke("status", "-g", GROUP, "--output", "json", *args, env=env)
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["group_id"] == GROUP  # found: the call went to the region holding it
    return str(data["region"])


def test_aws_region_alone_reaches_that_region(
    group_in_ap_southeast_2: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """boto3 itself ignores AWS_REGION: without the CLI's help this would fail (no region)."""
    monkeypatch.setenv("AWS_REGION", "ap-southeast-2")
    assert status_region() == "ap-southeast-2"


def test_aws_region_wins_over_aws_default_region(
    group_in_ap_southeast_2: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "ap-southeast-2")
    assert status_region() == "ap-southeast-2"
    monkeypatch.setenv("AWS_REGION", "")  # empty counts as unset
    missing = invoke("status", "-g", GROUP)
    assert missing.exit_code == int(ExitCode.AWS)
    assert "not found" in missing.stderr


def test_region_option_wins_over_the_environment(
    group_in_ap_southeast_2: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    assert status_region("--region", "ap-southeast-2") == "ap-southeast-2"


def test_aws_default_region_still_works(
    group_in_ap_southeast_2: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-southeast-2")
    assert status_region() == "ap-southeast-2"


def test_profile_brings_its_region_and_credentials(
    group_in_ap_southeast_2: None, no_region: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_region.write_text(
        "[profile oncall]\nregion = ap-southeast-2\n"
        "aws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    assert status_region("--profile", "oncall") == "ap-southeast-2"
    # AWS_REGION beats the profile's region, as in the AWS CLI.
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    result = invoke("status", "-g", GROUP, "--profile", "oncall")
    assert result.exit_code == int(ExitCode.AWS)
    assert "not found" in result.stderr


def test_no_region_anywhere_names_what_to_set(no_region: Path) -> None:
    result = invoke("status", "-g", GROUP)
    assert result.exit_code == int(ExitCode.AWS)
    line = result.stderr.strip()
    assert line.count("\n") == 0, line
    assert line.startswith("berthcache-ops: error: no AWS region configured")
    for what in ("--region", "AWS_REGION", "AWS_DEFAULT_REGION", "aws configure set region"):
        assert what in line


def test_unknown_profile_names_the_option(no_region: Path) -> None:
    result = invoke("alarms", "-g", GROUP, "--profile", "nope")
    assert result.exit_code == int(ExitCode.AWS)
    assert "AWS profile not found" in result.stderr
    assert "nope" in result.stderr
    assert "--profile" in result.stderr


def test_resolve_region_order() -> None:
    both = {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-east-1"}
    assert resolve_region("ap-south-1", both).region == "ap-south-1"
    assert resolve_region(None, both).region == "eu-west-1"
    # AWS_DEFAULT_REGION and the profile: boto3's own resolution, untouched.
    assert resolve_region(None, {"AWS_DEFAULT_REGION": "us-east-1"}).region is None
    from berthcache.ops import OpsError

    with pytest.raises(OpsError, match="--region is empty"):
        resolve_region(" ", both)


# -- --version, --output, help ---------------------------------------------------------------


def test_version_is_the_package_version() -> None:
    for flag in ("--version", "-V"):
        result = invoke(flag)
        assert result.exit_code == 0
        assert result.stdout == f"berthcache-ops {importlib.metadata.version('berthcache')}\n"


def command(name: str) -> Any:
    """The command object (typer >= 0.2x vendors click: no ``click`` import here)."""
    return typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_takes_output_json_or_table(name: str) -> None:
    params = {opt for p in command(name).params for opt in p.opts}
    assert {"--output", "-o"} <= params
    help_text = invoke(name, "--help").stdout
    assert "-o, --output table|json" in help_text


@pytest.mark.parametrize("name", COMMANDS)
def test_help_shows_flags_as_flags(name: str) -> None:
    """No `<bool>` placeholder (typer's rich help prints one after every flag), brackets in the
    text survive (rich markup ate `[ops,testing]`), and negatable flags read --x / --no-x."""
    result = invoke(name, "--help", env={"COLUMNS": "100"})
    assert result.exit_code == 0
    text = result.stdout
    assert "<bool>" not in text
    assert "╭" not in text  # plain text: greppable, pasteable into a ticket
    for flag in ("--help", "--json", "--fail-on-alarm", "--yes"):
        for line in text.splitlines():
            if f"{flag} " in line and line.lstrip().startswith(("-", "--")):
                assert "<" not in line.split(flag, 1)[1].split("  ")[0], line
    if name in ("failover-drill", "rotate-auth-token"):
        assert "--progress / --no-progress" in text
        assert "-y, --yes " in text
    if name == "conformance":
        assert "berthcache[ops,testing]" in " ".join(text.split())
    if name != "runbook":
        assert "--region REGION" in text
        assert "--profile PROFILE" in text


def test_output_json_and_the_deprecated_json_flag_agree(mocked_aws: None, tmp_path: Path) -> None:
    make_stack(AwsClients(boto3.session.Session()))
    new = invoke("alarms", "-g", GROUP, "-o", "json")
    old = invoke("alarms", "-g", GROUP, "--json")
    assert new.exit_code == old.exit_code == 0
    assert json.loads(new.stdout) == json.loads(old.stdout)
    assert new.stderr == ""
    assert old.stderr == "berthcache-ops: warning: --json is deprecated; use --output json\n"
    table = invoke("alarms", "-g", GROUP, "--output", "TABLE")  # case does not matter
    assert table.exit_code == 0
    assert table.stdout.startswith(("OK", "ALARM", "INSUFFICIENT_DATA"))
    clash = invoke("alarms", "-g", GROUP, "--json", "-o", "table")
    assert clash.exit_code == int(ExitCode.USAGE)
    assert "--json and --output table contradict" in clash.stderr


def test_output_json_keys_are_stable(mocked_aws: None) -> None:
    make_stack(AwsClients(boto3.session.Session()))
    data = json.loads(invoke("status", "-g", GROUP, "-o", "json").stdout)
    assert {
        "group_id",
        "status",
        "region",
        "nodes",
        "alarms_in_alarm",
        "nodes_without_alarm",
    } <= set(data)
    runbook = json.loads(invoke("runbook", "evictions", "-o", "json").stdout)
    assert set(runbook) == {"key", "title", "runbook", "text"}


def test_options_before_the_command_work_as_with_aws(
    group_in_ap_southeast_2: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`berthcache-ops --region R -o json status …` (aws-cli habit) equals the options after it;
    the command's own value wins, and nothing leaks into the next invocation."""
    result = invoke("--region", "ap-southeast-2", "-o", "json", "status", "-g", GROUP)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["region"] == "ap-southeast-2"
    overridden = invoke(
        "--region", "us-east-1", "status", "-g", GROUP, "--region", "ap-southeast-2"
    )
    assert overridden.exit_code == 0, overridden.stderr
    assert "region: ap-southeast-2" in overridden.stdout  # table: -o json did not carry over
    after = invoke("status", "-g", GROUP)
    assert after.exit_code == int(ExitCode.AWS)  # the earlier --region is gone
    assert "no AWS region configured" in after.stderr
