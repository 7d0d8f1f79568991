"""What the anchors' users ask for (issue 9, item 5), under mocks in dev and prod settings:
each setting's effect, and a bad value stopping the program with an error naming the setting."""

from __future__ import annotations

import importlib

import pytest

from infra.offline import RunProgram, plain

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


# --- user tags --------------------------------------------------------------------------------

USER_TAGS = ["team=platform", "cost-center=cc 42/cache"]
EXISTING_VPC = {
    "vpcId": "vpc-0123456789abcdef0",
    "subnetIds": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
    "allowedSecurityGroupIds": ["sg-0123456789abcdef0"],
}


def _taggable(type_token: str) -> bool:
    package, module_path, name = type_token.split(":")
    lib = importlib.import_module("pulumi_aws" if package == "aws" else f"pulumi_{package}")
    module = module_path.split("/")[0]
    if module != "index":
        lib = getattr(lib, module)
    return hasattr(getattr(lib, f"{name}Args"), "tags")


@pytest.mark.parametrize(
    "variant",
    [
        {},
        {"authMode": "rbac", "maxmemoryPolicy": "noeviction"},
        EXISTING_VPC,
        PROD,
    ],
    ids=["dev", "rbac", "existing-vpc", "prod"],
)
def test_user_tags_are_on_every_taggable_resource(
    run_program: RunProgram, variant: dict[str, object]
) -> None:
    run = run_program(**variant, tags=USER_TAGS)
    taggable = [r for r in run.resources if r.type.startswith("aws:") and _taggable(r.type)]
    assert len({r.type for r in taggable}) >= 10
    for res in taggable:
        tags = plain(res.inputs.get("tags")) or {}
        assert tags.get("team") == "platform", f"{res.type} {res.name}: {tags}"
        assert tags.get("cost-center") == "cc 42/cache", res.name
        assert tags.get("ManagedBy") == "pulumi", "the program's own tags stay"


def test_without_user_tags_only_the_programs_tags_are_set(run_program: RunProgram) -> None:
    tags = plain(run_program().one(RG).inputs["tags"])
    assert set(tags) == {"Project", "Stack", "Environment", "ManagedBy"}


@pytest.mark.parametrize(
    ("tags", "why"),
    [
        (["team"], "look like team=platform"),
        (["aws:createdBy=me"], "reserved by AWS"),
        (["ManagedBy=terraform"], "set by the program"),
        (["team=a", "team=b"], "repeated: team"),
        ([f"{'k' * 129}=v"], "pattern"),
    ],
)
def test_bad_tags_name_the_setting(run_program: RunProgram, tags: list[str], why: str) -> None:
    assert why in _bad(run_program, "tags", tags=tags)
