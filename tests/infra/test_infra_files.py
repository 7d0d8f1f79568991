"""Pulumi.yaml, Pulumi.dev.yaml, the policy pack files, the runbooks and scripts/infra-plan."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from berthcache.ops.alarm_catalogue import CATALOGUE
from infra.config import SETTINGS, InfraConfigError, load, pulumi_config_block
from infra.offline import REPO_ROOT

SCHEMA = REPO_ROOT / "infra" / "schemas" / "pulumi-project.schema.json"
UPSTREAM_ID = "https://github.com/pulumi/pulumi/blob/master/sdk/go/common/workspace/project.json"
jsonschema: Any = importlib.import_module("jsonschema")  # no type stubs installed


def _project() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO_ROOT / "Pulumi.yaml").read_text())
    return data


def _schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA.read_text(encoding="utf-8"))
    return data


def test_vendored_schema_is_a_valid_json_schema_of_its_declared_draft() -> None:
    schema = _schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    validator = jsonschema.validators.validator_for(schema, default=None)
    assert validator is jsonschema.Draft202012Validator
    validator.check_schema(schema)  # raises SchemaError on a malformed schema


def test_schema_readme_names_the_upstream_file_and_how_to_refresh_it() -> None:
    assert _schema()["$id"] == UPSTREAM_ID
    readme = (SCHEMA.parent / "README.md").read_text(encoding="utf-8")
    assert UPSTREAM_ID in readme
    assert "sdk/go/common/workspace/project.json" in readme
    assert "## Refresh" in readme


def test_pulumi_yaml_validates_against_the_vendored_schema() -> None:
    jsonschema.Draft202012Validator(_schema()).validate(_project())


def _without(mapping: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k != key}


@pytest.mark.parametrize(
    "breakage",
    [
        pytest.param(lambda p: _without(p, "runtime"), id="no-runtime"),
        pytest.param(lambda p: _without(p, "name"), id="no-name"),
        pytest.param(lambda p: {**p, "runtime": 42}, id="runtime-not-a-name-or-object"),
        pytest.param(lambda p: {**p, "name": ""}, id="empty-name"),
        pytest.param(lambda p: {**p, "main": ["infra/"]}, id="main-not-a-string"),
        pytest.param(
            lambda p: {**p, "config": {**p["config"], "numNodes": {"type": "float"}}},
            id="unknown-config-type",
        ),
        pytest.param(
            lambda p: {**p, "config": {**p["config"], "subnetIds": {"type": "array"}}},
            id="array-setting-without-items",
        ),
        pytest.param(
            lambda p: {**p, "config": {**p["config"], "vpcId": {"type": "string", "doc": "x"}}},
            id="unknown-config-field",
        ),
    ],
)
def test_schema_rejects_a_broken_pulumi_yaml(breakage: Any) -> None:
    broken = breakage(_project())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(_schema()).validate(broken)


def test_pulumi_yaml_runs_infra_in_the_project_venv() -> None:
    project = _project()
    assert project["name"] == "berthcache"
    assert project["main"] == "infra/"
    assert project["runtime"] == {
        "name": "python",
        "options": {"toolchain": "pip", "virtualenv": ".venv"},
    }
    assert (REPO_ROOT / "infra" / "__main__.py").is_file()


def test_pulumi_yaml_declares_exactly_the_settings_table() -> None:
    """Key order, types, items, descriptions (doc + allowed values), secrecy and defaults:
    regenerate with `python -m infra.config pulumi-yaml` after changing ``SETTINGS``."""
    declared = _project()["config"]
    assert list(declared) == [s.key for s in SETTINGS]
    assert declared == pulumi_config_block()


def test_dev_stack_is_realistic_and_holds_no_secrets() -> None:
    text = (REPO_ROOT / "Pulumi.dev.yaml").read_text()
    config = yaml.safe_load(text)["config"]
    assert "secure" not in text
    assert not any(re.search(r"token|password", k, re.I) for k in config)
    assert config["aws:region"]
    assert re.match(r"cache\.[a-z]\d+g\.", config["berthcache:nodeType"]), "Graviton node type"
    assert config["berthcache:numNodes"] == 2
    assert config["berthcache:keyPrefix"] == "berthcare:"
    assert config["berthcache:alarmEmails"]
    known = {f"berthcache:{s.key}" for s in SETTINGS} | {"aws:region"}
    assert set(config) <= known


@pytest.mark.parametrize(
    ("raw", "setting"),
    [
        ({"numNodes": "1"}, "numNodes"),
        ({"numNodes": "1", "multiAz": "false"}, "numNodes"),
        ({"engineVersion": "6.2"}, "engineVersion"),
        ({"engineVersion": "8.0"}, "engineVersion"),
        ({"engine": "memcached"}, "engine"),
        ({"maintenanceWindow": "sun:05:00-sun:05:30"}, "maintenanceWindow"),
        ({"maintenanceWindow": "funday:05:00-sun:06:00"}, "maintenanceWindow"),
        ({"snapshotWindow": "3am"}, "snapshotWindow"),
        ({"snapshotRetentionDays": "0"}, "snapshotRetentionDays"),
        ({"engineCpuThresholdPercent": "101"}, "engineCpuThresholdPercent"),
        ({"hitRateThresholdPercent": "0"}, "hitRateThresholdPercent"),
        ({"allowedCidrs": '["0.0.0.0/0"]'}, "allowedCidrs"),
        ({"allowedCidrs": '["::/0"]'}, "allowedCidrs"),
        ({"allowedCidrs": '["0.0.0.0/1", "128.0.0.0/1"]'}, "allowedCidrs"),
        ({"allowedCidrs": '["10.0.0.0/8", "203.0.113.0/24"]'}, "allowedCidrs"),
        ({"allowedCidrs": '["10.0.0.0/7"]'}, "allowedCidrs"),
        ({"allowedCidrs": '["2001:db8::/32"]'}, "allowedCidrs"),
        ({"allowedCidrs": '["127.0.0.0/8"]'}, "allowedCidrs"),
        ({"allowedCidrs": '["10.0.0.300/8"]'}, "allowedCidrs"),
        ({"vpcCidr": "52.0.0.0/16"}, "vpcCidr"),
        ({"environment": "prod", "multiAz": "false"}, "multiAz"),
        ({"nodeType": "cache.x9.huge"}, "nodeType"),
        ({"numNodes": "two"}, "numNodes"),
        ({"vpcId": "vpc-0123456789abcdef0"}, "subnetIds"),
        ({"replicationGroupId": "Bad--Id"}, "replicationGroupId"),
        ({"alarmEmails": '["not-an-email"]'}, "alarmEmails"),
        ({"authMode": "none"}, "authMode"),
        ({"logRetentionDays": "10"}, "logRetentionDays"),
        ({"maxmemoryPolicy": "lru"}, "maxmemoryPolicy"),
        ({"nodeTyp": "cache.t4g.small"}, "nodeTyp"),
    ],
)
def test_config_errors_name_the_setting(raw: dict[str, str], setting: str) -> None:
    with pytest.raises(InfraConfigError, match=rf"^berthcache:{setting}: "):
        load(raw, stack="dev")


@pytest.mark.parametrize(
    ("cidr", "public"),
    [
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("::/0", "::/0"),
        ("0.0.0.0/1", "0.0.0.0/1"),
        ("128.0.0.0/1", "128.0.0.0/1"),
        ("203.0.113.0/24", "203.0.113.0/24"),
        ("172.15.0.0/16", "172.15.0.0/16"),
        ("100.128.0.0/10", "100.128.0.0/10"),
        ("fe80::/10", "fe80::/10"),
    ],
)
def test_public_cidr_is_refused_naming_setting_and_cidr(cidr: str, public: str) -> None:
    with pytest.raises(InfraConfigError) as info:
        load({"allowedCidrs": json.dumps(["10.1.0.0/16", cidr])}, stack="dev")
    message = str(info.value)
    assert message.startswith("berthcache:allowedCidrs: ")
    assert f"{public} is not a private network" in message


@pytest.mark.parametrize(
    "cidrs",
    [
        ["10.0.0.0/8"],
        ["172.16.0.0/12", "172.31.255.0/24"],
        ["192.168.10.0/24"],
        ["100.64.0.0/10", "100.100.0.0/16"],
        ["fc00::/7", "fd12:3456:789a::/48"],
    ],
)
def test_private_cidrs_are_accepted(cidrs: list[str]) -> None:
    assert load({"allowedCidrs": json.dumps(cidrs)}, stack="dev").allowed_cidrs == tuple(cidrs)


def test_multi_az_may_be_off_outside_prod_only() -> None:
    for env in ("dev", "staging"):
        assert not load({"environment": env, "multiAz": "false"}, stack=env).multi_az
    assert load({"environment": "prod"}, stack="prod").multi_az
    with pytest.raises(InfraConfigError, match=r"^berthcache:multiAz: must be true when"):
        load({"environment": "prod", "multiAz": "false", "numNodes": "3"}, stack="prod")


def test_defaults_alone_are_valid_and_secure() -> None:
    cfg = load({}, stack="dev")
    assert cfg.num_nodes == 2
    assert cfg.multi_az
    assert cfg.maxmemory_policy == "allkeys-lru"
    assert cfg.allowed_cidrs == ("10.40.0.0/16",)
    assert cfg.burstable  # cache.t4g.small: the CPU-credit alarm applies


def _slug(heading: str) -> str:
    return re.sub(r"[^a-z0-9 -]", "", heading.strip().lower()).replace(" ", "-")


def test_every_alarm_has_a_runbook_section() -> None:
    text = (REPO_ROOT / "src" / "berthcache" / "ops" / "runbooks.md").read_text()
    anchors = {_slug(h) for h in re.findall(r"^#{2,3} (.+)$", text, re.M)}
    keys = [spec.runbook_anchor for spec in CATALOGUE]
    assert len(set(keys)) == len(keys)
    for spec in CATALOGUE:
        assert spec.runbook_anchor in anchors, spec.runbook_anchor
        assert _slug(spec.title) == spec.runbook_anchor


def test_policy_pack_project_file() -> None:
    data = yaml.safe_load((REPO_ROOT / "infra" / "policy" / "PulumiPolicy.yaml").read_text())
    assert data["runtime"]["name"] == "python"
    assert (REPO_ROOT / "infra" / "policy" / "__main__.py").is_file()


def test_infra_plan_prints_the_plan_and_says_it_is_offline() -> None:
    python = Path(REPO_ROOT / ".venv" / "bin" / "python")
    proc = subprocess.run(
        [str(python), "-m", "infra.plan", "dev"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "NOT a diff against a real AWS account" in out
    assert "aws:elasticache/replicationGroup:ReplicationGroup" in out
    assert "transitEncryptionMode=required" in out
    assert "authToken=[secret]" in out
    assert "ignoreChanges=[auth_token]" in out
    assert "ignoreChanges=[secret_string]" in out
    assert "connectionUrl: [secret]" in out
    assert "Mock-0-" not in out, "the (mock) token must not be printed"


def test_infra_plan_unknown_stack_says_how_to_create_it() -> None:
    from infra.plan import main

    assert main(["nosuchstack"]) == 2
