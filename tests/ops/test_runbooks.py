"""The runbooks and the alarm catalogue stay in step, and each section says what to do."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from berthcache.ops._render import runbook_ref
from berthcache.ops._runbooks import catalogue, parse_runbook_sections, slugify
from berthcache.ops.alarm_catalogue import CATALOGUE

# The runbooks as the installed package reads them (package data), not a checkout path.
RUNBOOKS = importlib.resources.files("berthcache.ops").joinpath("runbooks.md")


def test_every_alarm_has_a_section_and_every_section_an_alarm() -> None:
    sections = parse_runbook_sections(RUNBOOKS.read_text(encoding="utf-8"))
    anchors = {spec.runbook_anchor for spec in CATALOGUE}
    assert set(sections) == anchors
    assert catalogue() == CATALOGUE


def test_each_section_has_meaning_commands_remedies_and_escalation() -> None:
    sections = parse_runbook_sections(RUNBOOKS.read_text(encoding="utf-8"))
    for spec in CATALOGUE:
        text = sections[spec.runbook_anchor]
        for part in (
            "**What it means:**",
            "**Likely causes:**",
            "**Diagnose:**",
            "**Remedies:**",
            "**Escalate:**",
        ):
            assert part in text, (spec.key, part)
        assert "berthcache-ops " in text, spec.key
        assert spec.meaning in text, spec.key


def test_slugs_follow_github_anchors() -> None:
    assert slugify("Network bandwidth in allowance exceeded") == (
        "network-bandwidth-in-allowance-exceeded"
    )
    assert slugify("CPU utilization") == "cpu-utilization"


def test_the_old_runbooks_page_sends_every_alarm_to_its_packaged_section() -> None:
    """Alarms deployed before the runbooks moved link docs/runbooks.md#<anchor>."""
    stub = Path(__file__).resolve().parents[2] / "docs" / "runbooks.md"
    sections = parse_runbook_sections(stub.read_text(encoding="utf-8"))
    assert set(sections) == {spec.runbook_anchor for spec in CATALOGUE}
    for spec in CATALOGUE:
        target = f"../src/berthcache/ops/runbooks.md#{spec.runbook_anchor}"
        assert f"]({target})" in sections[spec.runbook_anchor], spec.key


def test_a_runbook_path_says_it_is_in_the_repository_and_how_to_read_it_offline() -> None:
    """Outside a checkout `src/berthcache/ops/runbooks.md#...` names no file on the machine."""
    path = "src/berthcache/ops/runbooks.md#evictions"
    shown = runbook_ref(path, "bc-prod-001-evictions")
    assert shown == (
        f"{path} (in the berthcache repository; offline: berthcache-ops runbook "
        "bc-prod-001-evictions)"
    )
    url = "https://github.example/berthcache/blob/main/src/berthcache/ops/runbooks.md#evictions"
    assert runbook_ref(url, "bc-prod-001-evictions") == url  # $BERTHCACHE_RUNBOOK_BASE: as is
    assert runbook_ref(None, "x") == "not in the catalogue"
