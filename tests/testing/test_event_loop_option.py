"""``--event-loop uvloop`` (conformance/conftest.py): the async twin's contract tests run on
uvloop's loop — checked from inside the tests, by a probe plugin — and the sync twin's are
deselected; without the option they run on asyncio's own loop."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import asyncio

import pytest_asyncio


@pytest_asyncio.fixture(autouse=True)
async def _report_the_loop():
    print("LOOP=" + type(asyncio.get_running_loop()).__module__.split(".")[0])
    yield
"""


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "loop_probe.py").write_text(PROBE, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    env.pop("REDIS_URL", None)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "conformance/test_c04_health.py",
            "-p",
            "loop_probe",
            "-p",
            "no:cacheprovider",
            "-s",
            *args,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_uvloop_runs_the_async_twins_tests_on_uvloop(tmp_path: Path) -> None:
    pytest.importorskip("uvloop", reason="uvloop is not installed (a dev dependency)")
    done = _run(tmp_path, "--event-loop", "uvloop")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "event loop: uvloop" in done.stdout
    assert "LOOP=uvloop" in done.stdout
    assert "LOOP=asyncio" not in done.stdout
    assert "deselected" in done.stdout  # the sync twin's tests


def test_by_default_the_tests_run_on_asyncios_loop(tmp_path: Path) -> None:
    done = _run(tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "event loop: asyncio" in done.stdout
    assert "LOOP=asyncio" in done.stdout
    assert "LOOP=uvloop" not in done.stdout
    assert "deselected" not in done.stdout
