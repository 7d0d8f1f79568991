"""The AWS API requests the declared resources become, and their check against botocore's model.

The provider turns a resource's inputs into API calls (``CreateReplicationGroup``,
``PutMetricAlarm``, ...). Mocks never make those calls, so a value AWS would refuse (an enum it
does not know, a name too long, a missing member) passes every mocked test and fails on the
first ``pulumi up``. Here each supported type has a small explicit mapping from its Pulumi input
names to the API's parameter names; :func:`to_requests` builds the requests from an
:class:`~infra.offline.OfflineRun`, and :func:`problems` checks one against the service model
botocore ships: botocore's own ``ParamValidator`` (types, required and unknown members) plus
what it skips - enums, and the maximum lengths and values.

An input a mapping does not know is an error (:class:`UnmappedInput`), never silently dropped:
a new input must be mapped (or listed as provider-only) before the check can vouch for it.
Secret values are checked but never shown in a problem.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import botocore.session
from botocore.model import ServiceModel, Shape
from botocore.validate import ParamValidator

from infra.offline import OfflineRun, Registered, is_secret_value, plain

__all__ = [
    "MAPPED_TYPES",
    "ApiRequest",
    "UnmappedInput",
    "problems",
    "to_requests",
]

_PULUMI_DEFAULT_DESCRIPTION = "Managed by Pulumi"
_AUTONAME_SUFFIX = "-0a1b2c3"  # Pulumi autonames: logical name + "-" + 7 hex characters


class UnmappedInput(ValueError):
    """A declared input has no API parameter in this module's mappings."""


@dataclasses.dataclass(frozen=True)
class ApiRequest:
    """One API call: botocore service name, operation, parameters and where it came from."""

    service: str
    operation: str
    params: dict[str, Any]
    resource: str
    secrets: frozenset[str] = frozenset()
    """Secret values in ``params``: checked, never printed."""


Convert = Callable[[Any], Any]
Field = str | tuple[str, Convert]
"""An API parameter name, or (name, conversion of the Pulumi value)."""


def _number(value: Any) -> Any:
    """Pulumi hands numbers over as floats; the API's integers want ints."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_number(v) for v in value]
    if isinstance(value, dict):
        return {k: _number(v) for k, v in value.items()}
    return value


def _bool(value: Any) -> Any:
    """Nullable booleans (``autoMinorVersionUpgrade``...) may arrive as "true"/"false"."""
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def _tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def _dimensions(dims: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Name": k, "Value": v} for k, v in sorted(dims.items())]


def _log_delivery(configs: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for c in configs:
        if c.get("destinationType") == "kinesis-firehose":
            details = {"KinesisFirehoseDetails": {"DeliveryStream": c.get("destination")}}
        else:
            details = {"CloudWatchLogsDetails": {"LogGroup": c.get("destination")}}
        out.append(
            {
                "DestinationType": c.get("destinationType"),
                "DestinationDetails": details,
                "LogFormat": c.get("logFormat"),
                "LogType": c.get("logType"),
                "Enabled": True,
            }
        )
    return out


def _metric_queries(queries: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for q in queries:
        item: dict[str, Any] = {"Id": q["id"]}
        for key, api in (
            ("expression", "Expression"),
            ("label", "Label"),
            ("returnData", "ReturnData"),
            ("period", "Period"),
            ("accountId", "AccountId"),
        ):
            if q.get(key) is not None:
                item[api] = q[key]
        metric = q.get("metric")
        if metric:
            stat: dict[str, Any] = {
                "Metric": {
                    "Namespace": metric.get("namespace"),
                    "MetricName": metric.get("metricName"),
                    "Dimensions": _dimensions(metric.get("dimensions") or {}),
                },
                "Period": metric.get("period"),
                "Stat": metric.get("stat"),
            }
            if metric.get("unit") is not None:
                stat["Unit"] = metric["unit"]
            item["MetricStat"] = stat
        out.append(item)
    return out


def _map(
    res: Registered,
    fields: Mapping[str, Field],
    provider_only: frozenset[str] = frozenset(),
) -> tuple[dict[str, Any], frozenset[str]]:
    """The resource's inputs under their API names; unknown inputs raise."""
    params: dict[str, Any] = {}
    secrets: set[str] = set()
    for key, raw in res.inputs.items():
        if key in provider_only or raw is None:
            continue
        if key not in fields:
            raise UnmappedInput(
                f"{res.type} {res.name}: input {key!r} has no API parameter in "
                "infra/api_requests.py (map it, or list it as provider-only)"
            )
        field = fields[key]
        api, convert = (field, None) if isinstance(field, str) else field
        value = _number(_bool(plain(raw)))
        params[api] = convert(value) if convert else value
        secrets.update(_secret_strings(raw))
    return params, frozenset(secrets)


def _secret_strings(raw: Any) -> Iterator[str]:
    """The strings inside values Pulumi marked secret, however deep."""
    if is_secret_value(raw):
        yield from _strings(plain(raw))
    elif isinstance(raw, list):
        for v in raw:
            yield from _secret_strings(v)
    elif isinstance(raw, dict):
        for v in raw.values():
            yield from _secret_strings(v)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)


def _physical(res: Registered, key: str) -> str:
    """The explicit name, or what Pulumi's autonaming would make of the logical name."""
    value = plain(res.inputs.get(key))
    return str(value) if value else f"{res.name}{_AUTONAME_SUFFIX}"


_RG_FIELDS: Mapping[str, Field] = {
    "replicationGroupId": "ReplicationGroupId",
    "description": "ReplicationGroupDescription",
    "globalReplicationGroupId": "GlobalReplicationGroupId",
    "automaticFailoverEnabled": "AutomaticFailoverEnabled",
    "multiAzEnabled": "MultiAZEnabled",
    "numCacheClusters": "NumCacheClusters",
    "preferredCacheClusterAzs": "PreferredCacheClusterAZs",
    "numNodeGroups": "NumNodeGroups",
    "replicasPerNodeGroup": "ReplicasPerNodeGroup",
    "nodeType": "CacheNodeType",
    "engine": "Engine",
    "engineVersion": "EngineVersion",
    "parameterGroupName": "CacheParameterGroupName",
    "subnetGroupName": "CacheSubnetGroupName",
    "securityGroupNames": "CacheSecurityGroupNames",
    "securityGroupIds": "SecurityGroupIds",
    "tags": ("Tags", _tag_list),
    "snapshotArns": "SnapshotArns",
    "snapshotName": "SnapshotName",
    "maintenanceWindow": "PreferredMaintenanceWindow",
    "port": "Port",
    "notificationTopicArn": "NotificationTopicArn",
    "autoMinorVersionUpgrade": "AutoMinorVersionUpgrade",
    "snapshotRetentionLimit": "SnapshotRetentionLimit",
    "snapshotWindow": "SnapshotWindow",
    "authToken": "AuthToken",
    "transitEncryptionEnabled": "TransitEncryptionEnabled",
    "atRestEncryptionEnabled": "AtRestEncryptionEnabled",
    "kmsKeyId": "KmsKeyId",
    "userGroupIds": "UserGroupIds",
    "logDeliveryConfigurations": ("LogDeliveryConfigurations", _log_delivery),
    "dataTieringEnabled": "DataTieringEnabled",
    "networkType": "NetworkType",
    "ipDiscovery": "IpDiscovery",
    "transitEncryptionMode": "TransitEncryptionMode",
    "clusterMode": "ClusterMode",
    # Used by ModifyReplicationGroup only (below), not by the create call:
    "applyImmediately": "ApplyImmediately",
    "authTokenUpdateStrategy": "AuthTokenUpdateStrategy",
}
_RG_MODIFY_ONLY = ("ApplyImmediately", "AuthTokenUpdateStrategy")
# Read by the provider itself: the final snapshot is DeleteReplicationGroup's business.
_RG_PROVIDER_ONLY = frozenset({"finalSnapshotIdentifier"})
# ModifyReplicationGroup: a day-2 change sends these (the create-only ones cannot change;
# resharding goes through ModifyReplicationGroupShardConfiguration).
_RG_MODIFIABLE = (
    "ReplicationGroupId",
    "ReplicationGroupDescription",
    "AutomaticFailoverEnabled",
    "MultiAZEnabled",
    "SecurityGroupIds",
    "PreferredMaintenanceWindow",
    "NotificationTopicArn",
    "CacheParameterGroupName",
    "ApplyImmediately",
    "EngineVersion",
    "AutoMinorVersionUpgrade",
    "SnapshotRetentionLimit",
    "SnapshotWindow",
    "CacheNodeType",
    "LogDeliveryConfigurations",
    "TransitEncryptionEnabled",
    "TransitEncryptionMode",
    "IpDiscovery",
    "ClusterMode",
)


def _replication_group(res: Registered) -> list[ApiRequest]:
    params, secrets = _map(res, _RG_FIELDS, _RG_PROVIDER_ONLY)
    create = {k: v for k, v in params.items() if k not in _RG_MODIFY_ONLY}
    modify = {k: params[k] for k in _RG_MODIFIABLE if k in params}
    if "UserGroupIds" in params:
        modify["UserGroupIdsToAdd"] = params["UserGroupIds"]
    return [
        ApiRequest("elasticache", "CreateReplicationGroup", create, res.name, secrets),
        ApiRequest("elasticache", "ModifyReplicationGroup", modify, res.name, secrets),
    ]


def _usage_limits(limits: Mapping[str, Any]) -> dict[str, Any]:
    """``cacheUsageLimits`` (``dataStorage``, a list of ``ecpuPerSeconds``) -> the API's
    ``CacheUsageLimits`` (``DataStorage``, ``ECPUPerSecond``)."""
    out: dict[str, Any] = {}
    storage = limits.get("dataStorage")
    if storage:
        out["DataStorage"] = {
            api: storage[key]
            for key, api in (("maximum", "Maximum"), ("minimum", "Minimum"), ("unit", "Unit"))
            if storage.get(key) is not None
        }
    for ecpu in limits.get("ecpuPerSeconds") or ():
        out["ECPUPerSecond"] = {
            api: ecpu[key]
            for key, api in (("maximum", "Maximum"), ("minimum", "Minimum"))
            if ecpu.get(key) is not None
        }
    return out


_SERVERLESS_FIELDS: Mapping[str, Field] = {
    "name": "ServerlessCacheName",
    "description": "Description",
    "engine": "Engine",
    "majorEngineVersion": "MajorEngineVersion",
    "cacheUsageLimits": ("CacheUsageLimits", _usage_limits),
    "kmsKeyId": "KmsKeyId",
    "securityGroupIds": "SecurityGroupIds",
    "snapshotArnsToRestores": "SnapshotArnsToRestore",
    "tags": ("Tags", _tag_list),
    "userGroupId": "UserGroupId",
    "subnetIds": "SubnetIds",
    "snapshotRetentionLimit": "SnapshotRetentionLimit",
    "dailySnapshotTime": "DailySnapshotTime",
    "networkType": "NetworkType",
}
# ModifyServerlessCache: what a day-2 change sends (name, key, subnets: replace-on-change).
_SERVERLESS_MODIFIABLE = (
    "ServerlessCacheName",
    "Description",
    "CacheUsageLimits",
    "UserGroupId",
    "SecurityGroupIds",
    "SnapshotRetentionLimit",
    "DailySnapshotTime",
    "Engine",
    "MajorEngineVersion",
)


def _serverless_cache(res: Registered) -> list[ApiRequest]:
    create, secrets = _map(res, _SERVERLESS_FIELDS)
    modify = {k: create[k] for k in _SERVERLESS_MODIFIABLE if k in create}
    return [
        ApiRequest("elasticache", "CreateServerlessCache", create, res.name, secrets),
        ApiRequest("elasticache", "ModifyServerlessCache", modify, res.name, secrets),
    ]


def _parameter_group(res: Registered) -> list[ApiRequest]:
    fields: Mapping[str, Field] = {
        "name": "CacheParameterGroupName",
        "family": "CacheParameterGroupFamily",
        "description": "Description",
        "tags": ("Tags", _tag_list),
        "parameters": (
            "ParameterNameValues",
            lambda ps: [{"ParameterName": p["name"], "ParameterValue": p["value"]} for p in ps],
        ),
    }
    params, secrets = _map(res, fields)
    name = _physical(res, "name").lower()
    create = {
        "CacheParameterGroupName": name,
        "CacheParameterGroupFamily": params.get("CacheParameterGroupFamily"),
        "Description": params.get("Description", _PULUMI_DEFAULT_DESCRIPTION),
    }
    if "Tags" in params:
        create["Tags"] = params["Tags"]
    out = [ApiRequest("elasticache", "CreateCacheParameterGroup", create, res.name, secrets)]
    if params.get("ParameterNameValues"):
        modify = {
            "CacheParameterGroupName": name,
            "ParameterNameValues": params["ParameterNameValues"],
        }
        out.append(ApiRequest("elasticache", "ModifyCacheParameterGroup", modify, res.name))
    return out


def _subnet_group(res: Registered) -> list[ApiRequest]:
    fields: Mapping[str, Field] = {
        "name": "CacheSubnetGroupName",
        "description": "CacheSubnetGroupDescription",
        "subnetIds": "SubnetIds",
        "tags": ("Tags", _tag_list),
    }
    params, secrets = _map(res, fields)
    params.setdefault("CacheSubnetGroupDescription", _PULUMI_DEFAULT_DESCRIPTION)
    params["CacheSubnetGroupName"] = _physical(res, "name").lower()
    return [ApiRequest("elasticache", "CreateCacheSubnetGroup", params, res.name, secrets)]


def _authentication_mode(mode: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"Type": mode.get("type")}
    if mode.get("passwords"):
        out["Passwords"] = mode["passwords"]
    return out


def _user(res: Registered) -> list[ApiRequest]:
    fields: Mapping[str, Field] = {
        "userId": "UserId",
        "userName": "UserName",
        "engine": "Engine",
        "accessString": "AccessString",
        "passwords": "Passwords",
        "noPasswordRequired": "NoPasswordRequired",
        "authenticationMode": ("AuthenticationMode", _authentication_mode),
        "tags": ("Tags", _tag_list),
    }
    params, secrets = _map(res, fields)
    return [ApiRequest("elasticache", "CreateUser", params, res.name, secrets)]


def _user_group(res: Registered) -> list[ApiRequest]:
    fields: Mapping[str, Field] = {
        "userGroupId": "UserGroupId",
        "engine": "Engine",
        "userIds": "UserIds",
        "tags": ("Tags", _tag_list),
    }
    params, secrets = _map(res, fields)
    return [ApiRequest("elasticache", "CreateUserGroup", params, res.name, secrets)]


def _metric_alarm(res: Registered) -> list[ApiRequest]:
    fields: Mapping[str, Field] = {
        "name": "AlarmName",
        "alarmDescription": "AlarmDescription",
        "actionsEnabled": "ActionsEnabled",
        "okActions": "OKActions",
        "alarmActions": "AlarmActions",
        "insufficientDataActions": "InsufficientDataActions",
        "metricName": "MetricName",
        "namespace": "Namespace",
        "statistic": "Statistic",
        "extendedStatistic": "ExtendedStatistic",
        "dimensions": ("Dimensions", _dimensions),
        "period": "Period",
        "unit": "Unit",
        "evaluationPeriods": "EvaluationPeriods",
        "datapointsToAlarm": "DatapointsToAlarm",
        "threshold": "Threshold",
        "comparisonOperator": "ComparisonOperator",
        "treatMissingData": "TreatMissingData",
        "evaluateLowSampleCountPercentiles": "EvaluateLowSampleCountPercentile",
        "metricQueries": ("Metrics", _metric_queries),
        "tags": ("Tags", _tag_list),
        "thresholdMetricId": "ThresholdMetricId",
    }
    params, secrets = _map(res, fields)
    params["AlarmName"] = _physical(res, "name")
    return [ApiRequest("cloudwatch", "PutMetricAlarm", params, res.name, secrets)]


def _dashboard(res: Registered) -> list[ApiRequest]:
    fields: Mapping[str, Field] = {
        "dashboardName": "DashboardName",
        "dashboardBody": "DashboardBody",
    }
    params, secrets = _map(res, fields)
    return [ApiRequest("cloudwatch", "PutDashboard", params, res.name, secrets)]


_TOPIC_ATTRIBUTES = {
    "kmsMasterKeyId": "KmsMasterKeyId",
    "displayName": "DisplayName",
    "policy": "Policy",
    "deliveryPolicy": "DeliveryPolicy",
    "fifoTopic": "FifoTopic",
    "signatureVersion": "SignatureVersion",
    "tracingConfig": "TracingConfig",
}


def _topic(res: Registered) -> list[ApiRequest]:
    fields: Mapping[str, Field] = {
        "name": "Name",
        "tags": ("Tags", _tag_list),
        **{k: f"Attributes.{v}" for k, v in _TOPIC_ATTRIBUTES.items()},
    }
    flat, secrets = _map(res, fields, frozenset({"namePrefix"}))
    params: dict[str, Any] = {"Name": _physical(res, "name")}
    attributes = {
        k.split(".", 1)[1]: str(v).lower() if isinstance(v, bool) else str(v)
        for k, v in flat.items()
        if k.startswith("Attributes.")
    }
    if attributes:
        params["Attributes"] = attributes
    if "Tags" in flat:
        params["Tags"] = flat["Tags"]
    return [ApiRequest("sns", "CreateTopic", params, res.name, secrets)]


def _subscription(res: Registered) -> list[ApiRequest]:
    fields: Mapping[str, Field] = {
        "topic": "TopicArn",
        "protocol": "Protocol",
        "endpoint": "Endpoint",
        "rawMessageDelivery": ("Attributes", lambda v: {"RawMessageDelivery": str(v).lower()}),
    }
    only = frozenset({"confirmationTimeoutInMinutes", "endpointAutoConfirms"})
    params, secrets = _map(res, fields, only)
    params["ReturnSubscriptionArn"] = True
    return [ApiRequest("sns", "Subscribe", params, res.name, secrets)]


def _log_group(res: Registered) -> list[ApiRequest]:
    fields: Mapping[str, Field] = {
        "name": "logGroupName",
        "kmsKeyId": "kmsKeyId",
        "tags": "tags",
        "logGroupClass": "logGroupClass",
        "retentionInDays": "retentionInDays",
    }
    params, secrets = _map(res, fields, frozenset({"skipDestroy", "namePrefix"}))
    name = _physical(res, "name")
    retention = params.pop("retentionInDays", None)
    params["logGroupName"] = name
    out = [ApiRequest("logs", "CreateLogGroup", params, res.name, secrets)]
    if retention:
        body = {"logGroupName": name, "retentionInDays": retention}
        out.append(ApiRequest("logs", "PutRetentionPolicy", body, res.name))
    return out


def _secret(res: Registered) -> list[ApiRequest]:
    fields: Mapping[str, Field] = {
        "name": "Name",
        "description": "Description",
        "kmsKeyId": "KmsKeyId",
        "tags": ("Tags", _tag_list),
        "forceOverwriteReplicaSecret": "ForceOverwriteReplicaSecret",
        "recoveryWindowInDays": "RecoveryWindowInDays",  # DeleteSecret's, below
    }
    params, secrets = _map(res, fields, frozenset({"namePrefix", "policy"}))
    name = _physical(res, "name")
    window = params.pop("RecoveryWindowInDays", 30)
    params["Name"] = name
    delete: dict[str, Any] = {"SecretId": name}
    if window == 0:
        delete["ForceDeleteWithoutRecovery"] = True
    else:
        delete["RecoveryWindowInDays"] = window
    return [
        ApiRequest("secretsmanager", "CreateSecret", params, res.name, secrets),
        ApiRequest("secretsmanager", "DeleteSecret", delete, res.name),
    ]


_TRANSLATORS: Mapping[str, Callable[[Registered], list[ApiRequest]]] = {
    "aws:elasticache/replicationGroup:ReplicationGroup": _replication_group,
    "aws:elasticache/serverlessCache:ServerlessCache": _serverless_cache,
    "aws:elasticache/parameterGroup:ParameterGroup": _parameter_group,
    "aws:elasticache/subnetGroup:SubnetGroup": _subnet_group,
    "aws:elasticache/user:User": _user,
    "aws:elasticache/userGroup:UserGroup": _user_group,
    "aws:cloudwatch/metricAlarm:MetricAlarm": _metric_alarm,
    "aws:cloudwatch/dashboard:Dashboard": _dashboard,
    "aws:cloudwatch/logGroup:LogGroup": _log_group,
    "aws:sns/topic:Topic": _topic,
    "aws:sns/topicSubscription:TopicSubscription": _subscription,
    "aws:secretsmanager/secret:Secret": _secret,
}
MAPPED_TYPES = frozenset(_TRANSLATORS)
"""The resource types :func:`to_requests` translates (others are not checked here)."""


def to_requests(run: OfflineRun) -> list[ApiRequest]:
    """The API requests every declared resource of a mapped type becomes."""
    out: list[ApiRequest] = []
    for res in run.resources:
        translate = _TRANSLATORS.get(res.type)
        if translate is not None:
            out.extend(translate(res))
    return out


@functools.cache
def _model(service: str) -> ServiceModel:
    model: ServiceModel = botocore.session.get_session().get_service_model(service)
    return model


def _walk(shape: Shape, value: Any, path: str) -> Iterator[str]:
    """What botocore's validator skips: enums, maximum lengths/values (and minimums again)."""
    meta = shape.metadata
    if shape.type_name == "structure" and isinstance(value, dict):
        members = shape.members  # type: ignore[attr-defined]
        for key, item in value.items():
            if key in members:
                yield from _walk(members[key], item, f"{path}.{key}")
    elif shape.type_name == "list" and isinstance(value, list):
        yield from _bounds(meta, len(value), path, "items")
        for i, item in enumerate(value):
            yield from _walk(shape.member, item, f"{path}[{i}]")  # type: ignore[attr-defined]
    elif shape.type_name == "map" and isinstance(value, dict):
        yield from _bounds(meta, len(value), path, "entries")
        for key, item in value.items():
            yield from _walk(shape.key, key, f"{path} key")  # type: ignore[attr-defined]
            yield from _walk(shape.value, item, f"{path}[{key}]")  # type: ignore[attr-defined]
    elif shape.type_name == "string" and isinstance(value, str):
        enum = shape.enum  # type: ignore[attr-defined]
        if enum and value not in enum:
            yield f"{path}: {value!r} is not one of {', '.join(enum)}"
        yield from _bounds(meta, len(value), path, "characters")
    elif shape.type_name in ("integer", "long", "double", "float") and isinstance(
        value, int | float
    ):
        lo, hi = meta.get("min"), meta.get("max")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            yield f"{path}: {value} is outside {lo}..{hi}"


def _bounds(meta: Mapping[str, Any], size: int, path: str, unit: str) -> Iterator[str]:
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and size < lo:
        yield f"{path}: {size} {unit}, at least {lo} required"
    if hi is not None and size > hi:
        yield f"{path}: {size} {unit}, at most {hi} allowed"


def _masked(text: str, secrets: frozenset[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, "[secret]")
    return text


def problems(request: ApiRequest) -> list[str]:
    """Everything AWS's model says is wrong with the request ([] when it is valid)."""
    shape = _model(request.service).operation_model(request.operation).input_shape
    if shape is None:
        return [f"{request.operation} takes no parameters"]
    found: list[str] = []
    report = ParamValidator().validate(request.params, shape)
    if report.has_errors():
        found.append(report.generate_report())
    found.extend(_walk(shape, request.params, request.operation))
    return [_masked(p, request.secrets) for p in found]
