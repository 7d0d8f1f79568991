"""Run the real program under ``pulumi.runtime.set_mocks``: no AWS, no Pulumi CLI.

Used by the tests and by ``scripts/infra-plan``. Every call gets a fresh program run. The mocks
answer like AWS would closely enough for the program to finish: ids, ARNs, endpoints and member
clusters for the replication group (one shard or cluster mode), endpoints for a serverless
cache, and the three data sources the program reads.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks as _mocks
from pulumi.runtime import settings as _settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from infra.config import NAMESPACE

__all__ = [
    "ACCOUNT_ID",
    "REPO_ROOT",
    "OfflineRun",
    "Registered",
    "RunProgram",
    "is_secret_value",
    "load_stack_file",
    "plain",
    "run_offline",
    "stack_file",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
ACCOUNT_ID = "123456789012"
_SECRET_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


@dataclasses.dataclass(frozen=True)
class Registered:
    """One resource the program declared: its type token, name and inputs (camelCase keys),
    and the options the engine gets but the mocks do not see (recorded by a transformation)."""

    type: str
    name: str
    inputs: dict[str, Any]
    state: dict[str, Any]
    ignore_changes: tuple[str, ...] = ()
    protect: bool = False


@dataclasses.dataclass
class OfflineRun:
    """Everything one mocked run declared, and its resolved stack outputs."""

    resources: list[Registered]
    outputs: dict[str, Any]
    secret_outputs: set[str]

    def of_type(self, type_token: str) -> list[Registered]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str) -> Registered:
        found = self.of_type(type_token)
        if len(found) != 1:
            raise AssertionError(f"expected one {type_token}, found {len(found)}")
        return found[0]


RunProgram = Callable[..., OfflineRun]
"""What the tests' ``run_program`` fixture is: overrides -> a fresh mocked run."""


class _Mocks(pulumi.runtime.Mocks):
    def __init__(self, region: str) -> None:
        self.region = region
        self.registered: list[Registered] = []

    def new_resource(
        self, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str | None, dict[str, Any]]:
        inputs = dict(args.inputs)
        state = dict(inputs)
        rid = f"{args.name}-id"
        short = args.typ.split(":")[1].split("/")[0]
        state.setdefault("arn", f"arn:aws:{short}:{self.region}:{ACCOUNT_ID}:{args.name}")
        if args.typ == "aws:elasticache/replicationGroup:ReplicationGroup":
            rg = inputs["replicationGroupId"]
            rid = rg
            state["primaryEndpointAddress"] = (
                f"master.{rg}.abc123.{self.region}.cache.amazonaws.com"
            )
            state["readerEndpointAddress"] = (
                f"replica.{rg}.abc123.{self.region}.cache.amazonaws.com"
            )
            # As after a failover and a scale change: NOT the first-creation <group>-001...,
            # so alarm coverage must come from this list, never from a name formula.
            if "numNodeGroups" in inputs:  # cluster mode: <group>-SSSS-NNN per shard and node
                shards, replicas = int(inputs["numNodeGroups"]), int(inputs["replicasPerNodeGroup"])
                state["memberClusters"] = [
                    f"{rg}-{shard:04d}-{node:03d}"
                    for shard in range(2, shards + 2)  # as after a resharding
                    for node in range(1, replicas + 2)
                ][::-1]
                state["numCacheClusters"] = len(state["memberClusters"])
                state["configurationEndpointAddress"] = (
                    f"clustercfg.{rg}.abc123.{self.region}.cache.amazonaws.com"
                )
                del state["primaryEndpointAddress"], state["readerEndpointAddress"]
            else:
                state["memberClusters"] = [
                    f"{rg}-{i:03d}" for i in range(3, int(inputs["numCacheClusters"]) + 3)
                ][::-1]
            state.setdefault("port", 6379)
        elif args.typ == "aws:elasticache/serverlessCache:ServerlessCache":
            rid = inputs["name"]
            host = f"{rid}-abc123.serverless.{self.region}.cache.amazonaws.com"
            state["endpoints"] = [{"address": host, "port": 6379}]
            state["readerEndpoints"] = [{"address": host, "port": 6380}]
            state["fullEngineVersion"] = f"{inputs['majorEngineVersion']}.2"
            state["status"] = "available"
        elif args.typ == "random:index/randomPassword:RandomPassword":
            length = int(inputs["length"])
            state["result"] = ("Mock-0-" + "x" * length)[:length]
        elif args.typ == "aws:kms/key:Key":
            rid = f"{args.name}-key-id"
            state["keyId"] = rid
            state["arn"] = f"arn:aws:kms:{self.region}:{ACCOUNT_ID}:key/{rid}"
        elif args.typ == "aws:ec2/vpc:Vpc":
            rid = "vpc-0a1b2c3d4e5f67890"
        elif args.typ in ("aws:elasticache/user:User", "aws:elasticache/userGroup:UserGroup"):
            rid = inputs.get("userId") or inputs.get("userGroupId") or rid
        elif args.typ == "aws:cloudwatch/dashboard:Dashboard":
            rid = inputs["dashboardName"]
        elif args.typ in (
            "aws:elasticache/subnetGroup:SubnetGroup",
            "aws:elasticache/parameterGroup:ParameterGroup",
            "aws:cloudwatch/logGroup:LogGroup",
        ):
            rid = inputs.get("name", rid)
        self.registered.append(Registered(args.typ, args.name, inputs, state))
        return rid, state

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            names = [f"{self.region}{s}" for s in "abc"]
            return {
                "names": names,
                "zoneIds": [f"use1-az{i}" for i in (1, 2, 3)],
                "id": self.region,
            }, []
        if args.token == "aws:index/getRegion:getRegion":
            return {"name": self.region, "region": self.region, "id": self.region}, []
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT_ID,
                "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/mock",
                "userId": "MOCK",
                "id": ACCOUNT_ID,
            }, []
        raise NotImplementedError(f"the mocks do not answer {args.token}")


def is_secret_value(value: Any) -> bool:
    """True for a property value Pulumi marked secret (as the engine would store it)."""
    return isinstance(value, dict) and value.get(_SECRET_KEY) == _SECRET_SIG


def plain(value: Any) -> Any:
    """A property value with secret markers removed, for assertions (never for printing)."""
    if is_secret_value(value):
        return plain(value.get("value"))
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def stack_file(stack: str) -> Path:
    return REPO_ROOT / f"Pulumi.{stack}.yaml"


def load_stack_file(path: Path) -> dict[str, Any]:
    """The ``config:`` block of a ``Pulumi.<stack>.yaml``; encrypted (secure) values refused."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    config = data.get("config") or {}
    if not isinstance(config, dict):
        raise ValueError(f"{path}: 'config' must be a mapping")
    for key, value in config.items():
        if isinstance(value, dict) and "secure" in value:
            raise ValueError(
                f"{path}: {key} is an encrypted secret; the offline run cannot decrypt it"
            )
    return dict(config)


def _as_config_text(value: Any) -> str:
    """Pulumi hands config to programs as text: strings as-is, everything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _ensure_event_loop() -> None:
    """Pulumi's SDK asks ``asyncio.get_event_loop()``; give it one when an earlier asyncio user
    (pytest-asyncio, ``asyncio.run``) closed or cleared the thread's loop."""
    try:
        loop = asyncio.get_event_loop()
        if not loop.is_closed():
            return
    except RuntimeError:
        pass
    asyncio.set_event_loop(asyncio.new_event_loop())


def run_offline(
    config: Mapping[str, Any], *, stack: str = "dev", project: str = NAMESPACE
) -> OfflineRun:
    """Run ``infra.program.run`` under mocks with ``config`` (namespaced keys, YAML values)."""
    from infra import program

    _ensure_event_loop()
    region = str(config.get("aws:region", "us-east-1"))
    mocks = _Mocks(region)
    options: dict[tuple[str, str], pulumi.ResourceOptions] = {}

    def record(
        args: pulumi.ResourceTransformationArgs,
    ) -> pulumi.ResourceTransformationResult | None:
        """The mocks see inputs only; keep each resource's options for the assertions."""
        options[(args.type_, args.name)] = args.opts
        return None

    def program_run() -> None:
        pulumi.runtime.register_stack_transformation(record)
        program.run()

    _settings.ROOT.set(None)
    set_all_config({k: _as_config_text(v) for k, v in config.items()}, [])
    _mocks.set_mocks(mocks, project=project, stack=stack, preview=False)
    root = _settings.get_root_resource()
    assert isinstance(root, pulumi.runtime.stack.Stack)
    try:
        _sync_await(run_pulumi_func(program_run))
        outputs: dict[str, Any] = {}
        secret: set[str] = set()
        for key, value in root.outputs.items():
            out = pulumi.Output.from_input(value)
            outputs[key] = _sync_await(out.future())
            if _sync_await(out.is_secret()):
                secret.add(key)
    finally:
        _settings.ROOT.set(None)
        set_all_config({}, [])
    resources = []
    for res in mocks.registered:
        opts = options.get((res.type, res.name))
        if opts is not None:
            res = dataclasses.replace(
                res,
                ignore_changes=tuple(opts.ignore_changes or ()),
                protect=bool(opts.protect),
            )
        resources.append(res)
    return OfflineRun(resources=resources, outputs=outputs, secret_outputs=secret)
