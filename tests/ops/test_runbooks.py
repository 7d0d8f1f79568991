"""The runbooks and the alarm catalogue stay in step, and each section says what to do."""

from __future__ import annotations

import importlib.resources
import json
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from berthcache.ops import ExitCode, OpsError
from berthcache.ops._render import runbook_ref
from berthcache.ops._runbooks import (
    DEFAULT_RUNBOOK_BASE_URL,
    catalogue,
    find_spec,
    parse_runbook_sections,
    runbook_base_url,
    runbook_link,
    slugify,
)
from berthcache.ops.alarm_catalogue import CATALOGUE
from berthcache.ops.cli import app

REPO = Path(__file__).resolve().parents[2]

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


def test_a_runbook_link_says_how_to_read_it_offline() -> None:
    url = f"{DEFAULT_RUNBOOK_BASE_URL}src/berthcache/ops/runbooks.md#evictions"
    shown = runbook_ref(url, "bc-prod-001-evictions")
    assert shown == f"{url} (offline: berthcache-ops runbook bc-prod-001-evictions)"
    assert runbook_ref(None, "x") == "not in the catalogue"


def test_runbook_links_are_urls_under_the_project_repository_by_default() -> None:
    """The default base is the repository pyproject.toml names, on its main branch."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    repository = pyproject["project"]["urls"]["Repository"]
    assert f"{repository}/blob/main/" == DEFAULT_RUNBOOK_BASE_URL
    spec = find_spec("evictions")
    assert runbook_link(spec, {}) == (
        f"{repository}/blob/main/src/berthcache/ops/runbooks.md#evictions"
    )


def test_the_runbook_base_url_is_configurable_and_checked() -> None:
    spec = find_spec("evictions")
    mirror = "https://git.example.internal/platform/berthcache/-/blob/v0.1.0"
    assert runbook_link(spec, {"BERTHCACHE_RUNBOOK_BASE_URL": mirror + "/"}) == (
        f"{mirror}/src/berthcache/ops/runbooks.md#evictions"
    )
    # The earlier name still works; the new one wins when both are set.
    assert runbook_base_url({"BERTHCACHE_RUNBOOK_BASE": mirror}) == mirror + "/"
    both = {
        "BERTHCACHE_RUNBOOK_BASE": "https://old.example/",
        "BERTHCACHE_RUNBOOK_BASE_URL": mirror,
    }
    assert runbook_base_url(both) == mirror + "/"
    assert runbook_base_url({"BERTHCACHE_RUNBOOK_BASE_URL": "  "}) == DEFAULT_RUNBOOK_BASE_URL
    with pytest.raises(OpsError, match=r"BERTHCACHE_RUNBOOK_BASE_URL='docs/runbooks' is not a URL"):
        runbook_base_url({"BERTHCACHE_RUNBOOK_BASE_URL": "docs/runbooks"})


def test_runbook_command_prints_the_url_under_the_configured_base(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BERTHCACHE_RUNBOOK_BASE_URL", "https://runbooks.example/bc")
    result = CliRunner().invoke(app, ["runbook", "bc-prod-001-evictions", "--output", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["runbook"] == "https://runbooks.example/bc/src/berthcache/ops/runbooks.md#evictions"
    bad = CliRunner().invoke(
        app, ["runbook", "evictions"], env={"BERTHCACHE_RUNBOOK_BASE_URL": "x"}
    )
    assert bad.exit_code == int(ExitCode.USAGE)
    assert bad.stderr.strip() == (
        "berthcache-ops: error: BERTHCACHE_RUNBOOK_BASE_URL='x' is not a URL; give a base such "
        f"as {DEFAULT_RUNBOOK_BASE_URL}"
    )
