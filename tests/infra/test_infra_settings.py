"""The settings table (``infra.config``) and the generic check every declaration gets
(``infra.settings``): errors name the key and what is allowed, never a secret's value."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from berthcache.ops.alarm_catalogue import CATALOGUE
from infra.config import NODE_VCPUS, RULES, SETTINGS, THRESHOLD_SETTINGS, load
from infra.offline import REPO_ROOT
from infra.settings import InfraConfigError, Setting, markdown_table, parse_setting


def _parse(setting: Setting, raw: str | None) -> Any:
    return parse_setting(setting, raw, namespace="demo")


def _as_config_text(value: Any) -> str:
    """How Pulumi hands a YAML value to the program."""
    return value if isinstance(value, str) else json.dumps(value)


COLOUR = Setting(key="colour", type="string", default="red", choices=("red", "blue"), doc="c")
SIZE = Setting(key="size", type="integer", default=3, minimum=1, maximum=5, doc="s")
ZONE_IDS = Setting(
    key="zoneIds",
    type="array",
    default=[],
    pattern="z-[0-9]{3}",
    example="z-001",
    doc="z",
)


def _even(value: int) -> int:
    if value % 2:
        raise ValueError(f"must be even, got {value}")
    return value


PIN = Setting(
    key="pin", type="integer", default=2, check=_even, choices=(2, 4, 5, 7), secret=True, doc="p"
)
TOKEN = Setting(
    key="token", type="string", default="", pattern="[a-f0-9]{32}", secret=True, doc="t"
)


@pytest.mark.parametrize(
    ("setting", "raw", "message"),
    [
        (COLOUR, "green", "demo:colour: must be one of red, blue, got 'green'"),
        (SIZE, "9", "demo:size: must be between 1 and 5, got 9"),
        (SIZE, "nine", "demo:size: must be an integer, got 'nine'"),
        (
            ZONE_IDS,
            '["z-001", "zz"]',
            "demo:zoneIds: must look like z-001 (pattern z-[0-9]{3}), got 'zz'",
        ),
        (ZONE_IDS, '"z-001"', "demo:zoneIds: must be a list of strings"),
        (ZONE_IDS, "[z-001", "demo:zoneIds: must be a list"),
    ],
)
def test_each_declared_constraint_is_enforced_naming_key_and_allowed_values(
    setting: Setting, raw: str, message: str
) -> None:
    with pytest.raises(InfraConfigError) as info:
        _parse(setting, raw)
    assert str(info.value).startswith(message)


def test_values_within_their_declaration_pass_and_unset_gives_the_default() -> None:
    assert _parse(COLOUR, " blue ") == "blue"
    assert _parse(SIZE, "5") == 5
    assert _parse(ZONE_IDS, '["z-001", "z-002"]') == ["z-001", "z-002"]
    assert _parse(COLOUR, None) == "red"
    assert _parse(ZONE_IDS, None) == []
    assert _parse(ZONE_IDS, None) is not ZONE_IDS.default, "the default list is not shared"


@pytest.mark.parametrize(
    ("setting", "raw"),
    [
        (PIN, "5"),  # a choice, but the check refuses it
        (PIN, "6"),  # not a choice
        (PIN, "x9f3k"),  # not an integer
        (TOKEN, "0123456789abcdef0123456789abcdeX"),  # pattern
    ],
)
def test_a_secret_setting_is_named_but_its_value_never_shown(setting: Setting, raw: str) -> None:
    with pytest.raises(InfraConfigError) as info:
        _parse(setting, raw)
    message = str(info.value)
    assert message.startswith(f"demo:{setting.key}: ")
    assert raw not in message
    assert "got" not in message


def test_every_default_satisfies_its_own_declaration() -> None:
    """Defaults are not re-checked at load time, so a bad default must fail here."""
    for s in SETTINGS:
        assert parse_setting(s, _as_config_text(s.default), namespace="x") == s.default, s.key


def test_settings_are_declared_once_with_a_doc_line_and_constraints_that_fit_their_type() -> None:
    keys = [s.key for s in SETTINGS]
    assert len(set(keys)) == len(keys)
    for s in SETTINGS:
        assert s.doc.strip(), s.key
        if s.minimum is not None or s.maximum is not None:
            assert s.type == "integer", s.key
        if s.pattern is not None:
            assert s.type in ("string", "array"), s.key
            assert re.fullmatch(s.pattern, s.example), s.key
    assert not any(s.secret for s in SETTINGS), "the program generates its credentials"


def test_every_catalogue_threshold_is_a_declared_integer_setting() -> None:
    by_key = {s.key: s for s in SETTINGS}
    wanted = {spec.threshold_setting for spec in CATALOGUE if spec.threshold_setting}
    assert wanted <= set(THRESHOLD_SETTINGS)
    for key in THRESHOLD_SETTINGS:
        assert by_key[key].type == "integer"
    assert set(load({}, stack="dev").thresholds) == set(THRESHOLD_SETTINGS)


def test_node_type_error_lists_the_known_types() -> None:
    with pytest.raises(InfraConfigError, match=r"^berthcache:nodeType: must be one of ") as info:
        load({"nodeType": "cache.x9.huge"}, stack="dev")
    assert all(node_type in str(info.value) for node_type in NODE_VCPUS)


@pytest.mark.parametrize(
    ("raw", "stack", "message"),
    [
        ({"engine": "valkey"}, "dev", "berthcache:engineVersion: valkey runs 7.2, 8.0, 8.1, 8.2"),
        ({"environment": "prod", "multiAz": "false"}, "prod", "berthcache:multiAz: must be true"),
        (
            {"vpcId": "vpc-0123456789abcdef0", "subnetIds": '["subnet-0123456789abcdef0"]'},
            "dev",
            "berthcache:subnetIds: an existing VPC needs at least 2",
        ),
        (
            {"subnetIds": '["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]'},
            "dev",
            "berthcache:subnetIds: only valid together with vpcId",
        ),
        (
            {
                "vpcId": "vpc-0123456789abcdef0",
                "subnetIds": '["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]',
            },
            "dev",
            "berthcache:allowedCidrs: with an existing VPC, set allowedCidrs or",
        ),
        ({}, "Team_Stack", "berthcache:replicationGroupId: 'berthcache-team_stack' (from the"),
    ],
)
def test_each_cross_setting_rule_names_the_key_to_change(
    raw: dict[str, str], stack: str, message: str
) -> None:
    with pytest.raises(InfraConfigError) as info:
        load(raw, stack=stack)
    assert str(info.value).startswith(message)


def test_rules_are_named_functions_and_all_hold_for_the_defaults() -> None:
    defaults = {s.key: s.default for s in SETTINGS}
    for rule in RULES:
        assert rule.__name__ != "<lambda>"
        assert rule(defaults, "dev") is None, rule.__name__


def test_an_explicit_group_id_overrides_an_unusable_stack_name() -> None:
    cfg = load({"replicationGroupId": "berthcache-team"}, stack="Team_Stack")
    assert cfg.replication_group_id == "berthcache-team"


def test_platform_doc_lists_exactly_the_declared_settings() -> None:
    """docs/platform.md carries the table ``python -m infra.config`` prints."""
    doc = (REPO_ROOT / "docs" / "platform.md").read_text(encoding="utf-8")
    table = markdown_table(SETTINGS)
    assert table in doc, "docs/platform.md's settings table is stale: `python -m infra.config`"
    assert doc.count("| setting | type |") == 1
