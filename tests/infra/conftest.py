"""Fixtures: the real program under Pulumi mocks, fed the real Pulumi.dev.yaml."""

from __future__ import annotations

from typing import Any

import pytest

from infra.offline import OfflineRun, RunProgram, load_stack_file, run_offline, stack_file


@pytest.fixture(scope="session")
def dev_config() -> dict[str, Any]:
    return load_stack_file(stack_file("dev"))


@pytest.fixture
def run_program(dev_config: dict[str, Any]) -> RunProgram:
    """Run the program afresh with Pulumi.dev.yaml plus overrides (unnamespaced keys).
    An override of ``None`` removes the setting (so the program's default applies)."""

    def run(stack: str = "dev", **overrides: Any) -> OfflineRun:
        config = dict(dev_config)
        for key, value in overrides.items():
            full = key if ":" in key else f"berthcache:{key}"
            if value is None:
                config.pop(full, None)
            else:
                config[full] = value
        return run_offline(config, stack=stack)

    return run


@pytest.fixture
def dev_run(run_program: RunProgram) -> OfflineRun:
    return run_program()
