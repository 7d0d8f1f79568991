"""``./scripts/conformance`` runs the target the plugin chooses — it asks the plugin instead of
parsing the options itself — so ``--stack``/``--stack-outputs`` really test the stack."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_stack_option_runs_the_stack_target_not_the_local_one(tmp_path: Path) -> None:
    """Before, `--stack-outputs /nonexistent.json -k c05` ran (and passed) on a local group."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "PYTEST_"))}
    missing = tmp_path / "nonexistent.json"
    done = subprocess.run(
        [str(ROOT / "scripts" / "conformance"), "--stack-outputs", str(missing), "-k", "c05"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = done.stdout + done.stderr
    assert "berthcache target: stack (from --stack-outputs)" in out, out[-3000:]
    assert "does not exist" in out, out[-3000:]
    assert done.returncode != 0, out[-3000:]
    assert not re.search(r"\d+ passed", out), out[-3000:]
