"""The declared resources as the AWS API requests they become, checked against botocore's service
model - enums, lengths and required members included - and shown to fail on wrong requests."""

from __future__ import annotations

import copy
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator

from infra.api_requests import (
    MAPPED_TYPES,
    ApiRequest,
    UnmappedInput,
    problems,
    to_requests,
)
from infra.offline import OfflineRun, Registered, RunProgram

RG = "aws:elasticache/replicationGroup:ReplicationGroup"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"

VARIANTS: dict[str, dict[str, Any]] = {
    "dev": {},
    "rbac": {"authMode": "rbac", "appUserChannels": ["alerts"]},
    "prod": {"environment": "prod"},
    "burstable-free": {"nodeType": "cache.r7g.large", "numNodes": 3},
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_declared_request_is_valid_for_aws(run_program: RunProgram, variant: str) -> None:
    run = run_program(**VARIANTS[variant])
    requests = to_requests(run)
    bad = {f"{r.operation} {r.resource}": p for r in requests if (p := problems(r))}
    assert not bad, bad
    ops = {r.operation for r in requests}
    assert {
        "CreateReplicationGroup",
        "ModifyReplicationGroup",
        "CreateCacheParameterGroup",
        "PutMetricAlarm",
        "CreateTopic",
        "CreateLogGroup",
        "CreateSecret",
    } <= ops
    if variant == "rbac":
        assert {"CreateUser", "CreateUserGroup"} <= ops


def test_every_alarm_and_the_group_become_one_request_each(dev_run: OfflineRun) -> None:
    requests = to_requests(dev_run)
    alarms = [r for r in requests if r.operation == "PutMetricAlarm"]
    assert len(alarms) == len(dev_run.of_type(ALARM))
    assert sorted(r.params["AlarmName"] for r in alarms) == sorted(
        a.inputs["name"] for a in dev_run.of_type(ALARM)
    )
    (create,) = [r for r in requests if r.operation == "CreateReplicationGroup"]
    rg = dev_run.one(RG).inputs
    assert create.params["ReplicationGroupId"] == rg["replicationGroupId"]
    assert create.params["CacheNodeType"] == rg["nodeType"]
    assert create.params["TransitEncryptionMode"] == "required"
    assert create.params["NumCacheClusters"] == 2
    assert isinstance(create.params["NumCacheClusters"], int)
    assert create.params["LogDeliveryConfigurations"][0]["DestinationDetails"][
        "CloudWatchLogsDetails"
    ]["LogGroup"].startswith("/aws/")


def _request(run: OfflineRun, operation: str) -> ApiRequest:
    return next(r for r in to_requests(run) if r.operation == operation)


def _with(request: ApiRequest, **params: Any) -> ApiRequest:
    changed = copy.deepcopy(request.params)
    for key, value in params.items():
        if value is None:
            changed.pop(key, None)
        else:
            changed[key] = value
    return ApiRequest(request.service, request.operation, changed, request.resource)


def test_a_wrong_enum_fails_although_botocore_alone_accepts_it(dev_run: OfflineRun) -> None:
    create = _with(_request(dev_run, "CreateReplicationGroup"), TransitEncryptionMode="mandatory")
    model = botocore.session.get_session().get_service_model("elasticache")
    shape = model.operation_model("CreateReplicationGroup").input_shape
    assert shape is not None
    assert not ParamValidator().validate(create.params, shape).has_errors()
    found = problems(create)
    assert any("TransitEncryptionMode: 'mandatory' is not one of" in p for p in found), found


def test_a_wrong_nested_enum_fails(dev_run: OfflineRun) -> None:
    create = _request(dev_run, "CreateReplicationGroup")
    logs = copy.deepcopy(create.params["LogDeliveryConfigurations"])
    logs[0]["LogFormat"] = "yaml"
    found = problems(_with(create, LogDeliveryConfigurations=logs))
    assert any("LogDeliveryConfigurations[0].LogFormat: 'yaml'" in p for p in found), found


def test_a_wrong_alarm_comparison_and_statistic_fail(dev_run: OfflineRun) -> None:
    alarm = next(
        r
        for r in to_requests(dev_run)
        if r.operation == "PutMetricAlarm" and "Statistic" in r.params
    )
    found = problems(_with(alarm, ComparisonOperator="GreaterThan", Statistic="Mean"))
    assert any("ComparisonOperator: 'GreaterThan'" in p for p in found), found
    assert any("Statistic: 'Mean'" in p for p in found), found


def test_a_missing_required_member_fails(dev_run: OfflineRun) -> None:
    create = _with(_request(dev_run, "CreateReplicationGroup"), ReplicationGroupDescription=None)
    found = problems(create)
    assert any(
        "Missing required parameter" in p and "ReplicationGroupDescription" in p for p in found
    ), found


def test_a_too_long_name_fails(dev_run: OfflineRun) -> None:
    alarm = _with(_request(dev_run, "PutMetricAlarm"), AlarmName="a" * 256)
    found = problems(alarm)
    assert any("AlarmName: 256 characters, at most 255 allowed" in p for p in found), found


def test_an_unknown_member_fails(dev_run: OfflineRun) -> None:
    found = problems(_with(_request(dev_run, "CreateTopic"), KmsMasterKeyId="alias/x"))
    assert any("Unknown parameter" in p and "KmsMasterKeyId" in p for p in found), found


def test_a_secret_is_checked_but_never_shown(dev_run: OfflineRun) -> None:
    create = _request(dev_run, "CreateReplicationGroup")
    token = create.params["AuthToken"]
    assert token in create.secrets
    wrong = ApiRequest(
        create.service,
        create.operation,
        {**create.params, "AuthToken": [token]},
        create.resource,
        create.secrets,
    )
    found = problems(wrong)
    assert found, "a list is not a string"
    assert all(token not in p for p in found)


def test_an_input_without_a_mapping_is_an_error(dev_run: OfflineRun) -> None:
    rg = dev_run.one(RG)
    extra = Registered(rg.type, rg.name, {**rg.inputs, "newFancyInput": True}, rg.state)
    run = OfflineRun(resources=[extra], outputs={}, secret_outputs=set())
    with pytest.raises(UnmappedInput, match="newFancyInput"):
        to_requests(run)


def test_the_request_check_covers_the_types_that_matter() -> None:
    assert {
        RG,
        ALARM,
        "aws:elasticache/parameterGroup:ParameterGroup",
        "aws:sns/topic:Topic",
        "aws:cloudwatch/logGroup:LogGroup",
        "aws:elasticache/user:User",
        "aws:elasticache/userGroup:UserGroup",
        "aws:secretsmanager/secret:Secret",
    } <= MAPPED_TYPES
