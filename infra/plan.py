"""Offline plan: run the program under mocks with a stack file and print what it would create.

``./scripts/infra-plan [STACK]``. For reviewers without AWS credentials: it shows every resource
with its security-relevant properties. It is NOT a diff against a real account: it does not know
what exists already, and ids, ARNs and endpoints are placeholders.

``./scripts/infra-plan STACK --set key=value [--set ...]``: the offline update check
(``infra.update_check``): runs the program with the stack file, then with the changes, and prints
per resource update in place / replace / replace refused. Exit status 0 when the update can go
through, 3 when a replace is refused, 1 when config validation refuses a setting.

``./scripts/infra-plan STACK --set key=value --show``: the plan (every resource) of the stack
file with the changes, e.g. ``--set topology=cluster --show`` to see a topology before choosing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import yaml

from infra.config import InfraConfigError
from infra.offline import OfflineRun, Registered, is_secret_value, load_stack_file, run_offline
from infra.offline import stack_file as _stack_file
from infra.update_check import UpdatePlan, plan_update, with_overrides

__all__ = ["BANNER", "UPDATE_BANNER", "main", "parse_set", "render", "render_update"]

UPDATE_BANNER = (
    "OFFLINE UPDATE CHECK - the program ran under Pulumi mocks with {path}, then with {changes}.\n"
    "This is NOT a diff against a real AWS account: it compares what the program declares and\n"
    "applies the provider's replace-on-change table (infra/replacements.py)."
)
EXIT_REFUSED = 3
_ACTION_LABEL = {
    "update": "update in place",
    "replace": "replace",
    "replace refused": "replace refused",
    "create": "create",
    "delete": "delete",
}

BANNER = (
    "OFFLINE PLAN - the program ran under Pulumi mocks with {path}.\n"
    "This is NOT a diff against a real AWS account: nothing was read from or sent to AWS;\n"
    "ids, ARNs and endpoints below are placeholders. Use `pulumi preview` for the real diff."
)

# Per type: the properties a security reviewer wants to see.
_SHOWN: dict[str, tuple[str, ...]] = {
    "aws:elasticache/replicationGroup:ReplicationGroup": (
        "engine",
        "engineVersion",
        "nodeType",
        "numCacheClusters",
        "numNodeGroups",
        "replicasPerNodeGroup",
        "clusterMode",
        "automaticFailoverEnabled",
        "multiAzEnabled",
        "transitEncryptionEnabled",
        "transitEncryptionMode",
        "atRestEncryptionEnabled",
        "kmsKeyId",
        "authToken",
        "authTokenUpdateStrategy",
        "userGroupIds",
        "snapshotRetentionLimit",
        "snapshotWindow",
        "maintenanceWindow",
        "autoMinorVersionUpgrade",
        "subnetGroupName",
        "parameterGroupName",
        "notificationTopicArn",
        "logDeliveryConfigurations",
        "finalSnapshotIdentifier",
    ),
    "aws:elasticache/serverlessCache:ServerlessCache": (
        "engine",
        "majorEngineVersion",
        "cacheUsageLimits",
        "kmsKeyId",
        "userGroupId",
        "subnetIds",
        "securityGroupIds",
        "snapshotRetentionLimit",
        "dailySnapshotTime",
    ),
    "aws:kms/key:Key": ("enableKeyRotation", "deletionWindowInDays"),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": (
        "ipProtocol",
        "fromPort",
        "toPort",
        "cidrIpv4",
        "cidrIpv6",
        "referencedSecurityGroupId",
    ),
    "aws:ec2/securityGroup:SecurityGroup": ("vpcId", "ingress"),
    "aws:elasticache/parameterGroup:ParameterGroup": ("family", "parameters"),
    "aws:cloudwatch/logGroup:LogGroup": ("name", "retentionInDays", "kmsKeyId"),
    "aws:secretsmanager/secret:Secret": ("name", "kmsKeyId"),
    "aws:secretsmanager/secretVersion:SecretVersion": ("secretString",),
    "aws:sns/topic:Topic": ("name", "kmsMasterKeyId"),
    "aws:sns/topicSubscription:TopicSubscription": ("protocol", "endpoint"),
    "random:index/randomPassword:RandomPassword": ("length", "special"),
    "aws:elasticache/user:User": ("userName", "accessString"),
    "aws:elasticache/userGroup:UserGroup": ("userGroupId", "userIds"),
    "aws:cloudwatch/metricAlarm:MetricAlarm": (
        "metricName",
        "comparisonOperator",
        "threshold",
        "treatMissingData",
        "alarmActions",
    ),
    "aws:ec2/subnet:Subnet": ("cidrBlock", "availabilityZone", "mapPublicIpOnLaunch"),
    "aws:elasticache/subnetGroup:SubnetGroup": ("subnetIds",),
    "aws:cloudwatch/dashboard:Dashboard": ("dashboardName",),
    "aws:ec2/vpc:Vpc": ("cidrBlock",),
}


def _fmt(value: Any) -> str:
    if is_secret_value(value):
        return "[secret]"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_fmt(v)}" for k, v in value.items()) + "}"
    return str(value)


def _props(res: Registered) -> str:
    keys = _SHOWN.get(res.type, ())
    parts = [f"{k}={_fmt(res.inputs[k])}" for k in keys if res.inputs.get(k) is not None]
    if res.type == "aws:cloudwatch/metricAlarm:MetricAlarm" and "metricQueries" in res.inputs:
        parts.insert(0, "metricName=(math: hit rate)")
    if res.ignore_changes:
        parts.append(f"ignoreChanges=[{', '.join(res.ignore_changes)}]")
    if res.protect:
        parts.append("protect=True")
    return " ".join(parts)


def render(run: OfflineRun, path: str) -> str:
    """The banner, a table of every custom resource, and the outputs (secrets masked)."""
    rows = [r for r in run.resources if not r.type.startswith("berthcache:")]
    rows.sort(key=lambda r: (r.type, r.name))
    type_w = max(len(r.type) for r in rows)
    name_w = max(len(r.name) for r in rows)
    lines = [BANNER.format(path=path), ""]
    lines.append(f"{'TYPE':<{type_w}}  {'NAME':<{name_w}}  SECURITY-RELEVANT PROPERTIES")
    lines += [f"{r.type:<{type_w}}  {r.name:<{name_w}}  {_props(r)}" for r in rows]
    lines.append("")
    lines.append(f"{len(rows)} resources would be created.")
    lines.append("Outputs:")
    for key, value in run.outputs.items():
        shown = "[secret]" if key in run.secret_outputs else _fmt(value)
        lines.append(f"  {key}: {shown}")
    return "\n".join(lines)


def parse_set(item: str) -> tuple[str, Any]:
    """``key=value`` -> (key, value): a value starting with ``[`` is a YAML/JSON list (array
    settings), anything else the text Pulumi would store, as `pulumi config set` does."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--set {item!r}: expected key=value, e.g. --set numNodes=3")
    value: Any = raw
    if raw.lstrip().startswith("["):
        value = yaml.safe_load(raw)
        if not isinstance(value, list):
            raise ValueError(f"--set {key}: {raw!r} is not a list")
        value = [str(v) for v in value]
    return key.strip(), value


def render_update(plan: UpdatePlan, path: str, changes: str) -> str:
    """The banner, one line per resource that changes, the unchanged count and the verdict."""
    moved = [c for c in plan.changes if c.action != "unchanged"]
    lines = [UPDATE_BANNER.format(path=path, changes=changes), ""]
    if moved:
        act_w = max(len(_ACTION_LABEL[c.action]) for c in moved)
        type_w = max(len(c.type) for c in moved)
        name_w = max(len(c.name) for c in moved)
        lines.append(f"{'ACTION':<{act_w}}  {'TYPE':<{type_w}}  {'NAME':<{name_w}}  WHY")
        for c in moved:
            why = ", ".join(c.inputs)
            if c.action in ("replace", "replace refused"):
                why = f"{c.reason} [source: {c.source}]" if c.source else c.reason
            elif c.action == "update":
                why = f"inputs: {why}"
            label = _ACTION_LABEL[c.action]
            lines.append(f"{label:<{act_w}}  {c.type:<{type_w}}  {c.name:<{name_w}}  {why}")
        lines.append("")
    unchanged = len(plan.changes) - len(moved)
    lines.append(f"{unchanged} resources unchanged.")
    lines.append(f"Verdict: {plan.verdict}")
    return "\n".join(lines)


def _update_check(stack: str, path_name: str, config: dict[str, Any], sets: list[str]) -> int:
    try:
        overrides = dict(parse_set(item) for item in sets)
    except ValueError as exc:
        print(f"infra-plan: {exc}", file=sys.stderr)
        return 2
    try:
        plan = plan_update(config, with_overrides(config, overrides), stack=stack)
    except InfraConfigError as exc:
        print(f"infra-plan: refused by config validation: {exc}", file=sys.stderr)
        return 1
    except KeyError as exc:  # a declared type the replace-on-change table lacks
        print(f"infra-plan: {exc.args[0]}", file=sys.stderr)
        return 2
    shown = ", ".join(f"{k}={v}" for k, v in overrides.items())
    print(render_update(plan, path_name, shown))
    return EXIT_REFUSED if plan.verdict == "replace refused" else 0


def _show(stack: str, path_name: str, config: dict[str, Any], sets: list[str]) -> int:
    """The plan of the stack file's config with ``sets`` applied."""
    try:
        overrides = dict(parse_set(item) for item in sets)
    except ValueError as exc:
        print(f"infra-plan: {exc}", file=sys.stderr)
        return 2
    try:
        run = run_offline(with_overrides(config, overrides), stack=stack)
    except InfraConfigError as exc:
        print(f"infra-plan: refused by config validation: {exc}", file=sys.stderr)
        return 1
    shown = ", ".join(f"{k}={v}" for k, v in overrides.items())
    print(render(run, f"{path_name} with {shown}"))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="infra-plan",
        description="Run the Pulumi program under mocks with Pulumi.<STACK>.yaml and print "
        "what it would create. Not a diff against a real AWS account.",
    )
    parser.add_argument("stack", nargs="?", default="dev", help="stack name (default: dev)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="check an update instead: the stack file's config, then with KEY=VALUE "
        "(repeatable; a list as [a, b])",
    )
    parser.add_argument(
        "--show",
        action="store_true",
        help="with --set: print the plan of the changed config (every resource) instead of "
        "the update check, e.g. --set topology=cluster --show",
    )
    args = parser.parse_args(argv)
    path = _stack_file(args.stack)
    if not path.is_file():
        print(
            f"infra-plan: no stack file {path.name} (create it with `pulumi stack init "
            f"{args.stack}` and `pulumi config set ...`)",
            file=sys.stderr,
        )
        return 2
    if args.show and not args.set:
        parser.error("--show needs at least one --set KEY=VALUE")
    if args.set:
        try:
            config = load_stack_file(path)
        except ValueError as exc:
            print(f"infra-plan: {exc}", file=sys.stderr)
            return 1
        if args.show:
            return _show(args.stack, path.name, config, args.set)
        return _update_check(args.stack, path.name, config, args.set)
    try:
        run = run_offline(load_stack_file(path), stack=args.stack)
    except (InfraConfigError, ValueError) as exc:
        print(f"infra-plan: {exc}", file=sys.stderr)
        return 1
    print(render(run, path.name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
