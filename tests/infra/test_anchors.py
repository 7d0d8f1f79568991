"""What the anchors' users ask for (issue 9, item 5), under mocks in dev and prod settings:
each setting's effect, and a bad value stopping the program with an error naming the setting."""

from __future__ import annotations

import pytest

from infra.offline import RunProgram

RG = "aws:elasticache/replicationGroup:ReplicationGroup"
PROD = {"stack": "prod", "environment": "prod", "replicationGroupId": "berthcache-prod"}


def _bad(run_program: RunProgram, setting: str, **override: object) -> str:
    with pytest.raises(Exception, match=f"berthcache:{setting}") as info:
        run_program(**override)
    assert type(info.value).__name__ == "InfraConfigError"
    return str(info.value)


# --- final snapshot ---------------------------------------------------------------------------


def test_final_snapshot_defaults_to_prod_only_and_can_be_set_in_every_stage(
    run_program: RunProgram,
) -> None:
    def final(**override: object) -> object:
        return run_program(**override).one(RG).inputs.get("finalSnapshotIdentifier")

    assert final() is None
    assert final(finalSnapshot="true") == "berthcache-dev-final"
    assert final(**PROD) == "berthcache-prod-final"
    assert final(**PROD, finalSnapshot="false") is None
    assert final(environment="staging", finalSnapshot="true") == "berthcache-dev-final"


def test_a_bad_final_snapshot_value_names_the_setting(run_program: RunProgram) -> None:
    message = _bad(run_program, "finalSnapshot", finalSnapshot="yes")
    assert "auto, true, false" in message
