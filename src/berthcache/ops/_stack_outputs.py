"""Where the deployed stack is: its Pulumi outputs, loaded and validated.

Outputs come from an outputs JSON file (``pulumi stack output --json --show-secrets > FILE``) or,
given a stack name, from the ``pulumi`` CLI itself. Errors name the output and where it was read;
the ``connectionUrl`` output (it carries the token) never appears in a repr. How to connect with
these outputs (Secrets Manager, TLS) is :mod:`berthcache.ops._connection`'s job.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from berthcache.ops._errors import ExitCode, OpsError

__all__ = ["StackOutputs", "group_id_from", "load_outputs", "serverless_name_from"]

Runner = Callable[..., "subprocess.CompletedProcess[str]"]
PULUMI_TIMEOUT = 120.0


@dataclasses.dataclass(frozen=True, kw_only=True)
class StackOutputs:
    """The Pulumi outputs the ops tools use (``raw`` keeps all of them; secrets hidden)."""

    source: str
    replication_group_id: str | None = None
    primary_endpoint: str | None = None
    reader_endpoint: str | None = None
    port: int | None = None
    member_clusters: tuple[str, ...] = ()
    secret_arn: str | None = None
    alarm_topic_arn: str | None = None
    alarm_names: tuple[str, ...] = ()
    dashboard_name: str | None = None
    key_prefix: str | None = None
    username: str | None = None
    engine: str | None = None
    #: ``cluster`` / ``serverless``; absent for a replication group (its outputs predate it).
    topology: str | None = None
    serverless_cache_name: str | None = None
    connection_url: str | None = dataclasses.field(default=None, repr=False)
    raw: Mapping[str, Any] = dataclasses.field(default_factory=dict, repr=False)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str) -> StackOutputs:
        """Validate the types of the outputs we use; errors name the output and the source."""
        if not isinstance(data, Mapping):
            raise OpsError(f"{source}: stack outputs must be a JSON object", ExitCode.USAGE)

        def text(key: str) -> str | None:
            value = data.get(key)
            if value is None or value == "":
                return None
            if not isinstance(value, str):
                raise OpsError(f"{source}: output {key!r} must be a string", ExitCode.USAGE)
            return value

        def names(key: str) -> tuple[str, ...]:
            value = data.get(key) or []
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise OpsError(f"{source}: output {key!r} must be a list of names", ExitCode.USAGE)
            return tuple(value)

        port_value = data.get("port")
        port: int | None = None
        if port_value is not None:
            try:
                port = int(port_value)
            except (TypeError, ValueError):
                raise OpsError(
                    f"{source}: output 'port' must be a number, got {port_value!r}", ExitCode.USAGE
                ) from None
            if not 0 < port < 65536:
                raise OpsError(f"{source}: output 'port' out of range: {port}", ExitCode.USAGE)
        return cls(
            source=source,
            replication_group_id=text("replicationGroupId"),
            primary_endpoint=text("primaryEndpoint"),
            reader_endpoint=text("readerEndpoint"),
            port=port,
            member_clusters=names("memberClusters"),
            secret_arn=text("secretArn"),
            alarm_topic_arn=text("alarmTopicArn"),
            alarm_names=names("alarmNames"),
            dashboard_name=text("dashboardName"),
            key_prefix=text("keyPrefix"),
            username=text("username"),
            engine=text("engine"),
            topology=text("topology"),
            serverless_cache_name=text("serverlessCacheName"),
            connection_url=text("connectionUrl"),
            raw=dict(data),
        )

    def require(self, field: str, output: str) -> Any:
        """The value of ``field``, or an error naming the missing output ``output``."""
        value = getattr(self, field)
        if value in (None, "", ()):
            raise OpsError(
                f"{self.source}: the stack outputs have no {output!r} (is the stack deployed? "
                "was `pulumi up` run with this program?)",
                ExitCode.USAGE,
            )
        return value


def load_outputs(
    *,
    stack: str | None = None,
    outputs_file: str | Path | None = None,
    runner: Runner = subprocess.run,
    pulumi: str | None = None,
    cwd: str | Path | None = None,
) -> StackOutputs:
    """Read the outputs from ``outputs_file`` or from ``pulumi stack output`` for ``stack``."""
    if outputs_file is not None and stack is not None:
        raise OpsError("give either --stack or --outputs, not both", ExitCode.USAGE)
    if outputs_file is not None:
        path = Path(outputs_file)
        source = f"outputs file {str(path)!r}"
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise OpsError(f"{source} does not exist", ExitCode.USAGE) from None
        except OSError as exc:
            raise OpsError(f"{source} cannot be read: {exc.strerror}", ExitCode.USAGE) from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise OpsError(
                f"{source} is not JSON (line {exc.lineno}): write it with "
                "`pulumi stack output --json --show-secrets > FILE`",
                ExitCode.USAGE,
            ) from None
        return StackOutputs.from_mapping(data, source=source)
    if stack is None:
        raise OpsError(
            "no stack given: pass --stack NAME or --outputs FILE (or --replication-group ID)",
            ExitCode.USAGE,
        )
    return StackOutputs.from_mapping(
        _pulumi_outputs(stack, runner=runner, pulumi=pulumi, cwd=cwd), source=f"stack {stack!r}"
    )


def _pulumi_outputs(
    stack: str, *, runner: Runner, pulumi: str | None, cwd: str | Path | None
) -> Any:
    binary = pulumi or shutil.which("pulumi")
    if binary is None:
        raise OpsError(
            f"stack {stack!r}: the pulumi CLI is not installed; write the outputs to a file with "
            "`pulumi stack output --json --show-secrets` elsewhere and pass --outputs FILE",
            ExitCode.USAGE,
        )
    command = [binary, "stack", "output", "--json", "--show-secrets", "--stack", stack]
    try:
        done = runner(
            command,
            capture_output=True,
            text=True,
            timeout=PULUMI_TIMEOUT,
            check=False,
            cwd=cwd,
        )
    except subprocess.TimeoutExpired:
        raise OpsError(
            f"stack {stack!r}: `pulumi stack output` did not answer in {PULUMI_TIMEOUT:.0f} s",
            ExitCode.USAGE,
        ) from None
    except OSError as exc:
        raise OpsError(
            f"stack {stack!r}: cannot run pulumi: {exc.strerror}", ExitCode.USAGE
        ) from None
    if done.returncode != 0:
        detail = _first_line(done.stderr) or f"exit status {done.returncode}"
        raise OpsError(f"stack {stack!r}: `pulumi stack output` failed: {detail}", ExitCode.USAGE)
    try:
        return json.loads(done.stdout or "{}")
    except json.JSONDecodeError:
        raise OpsError(
            f"stack {stack!r}: `pulumi stack output --json` printed something that is not JSON",
            ExitCode.USAGE,
        ) from None


def _first_line(text: str | None) -> str:
    for line in (text or "").splitlines():
        line = line.strip()
        if line:
            return line.removeprefix("error: ")[:300]
    return ""


def group_id_from(replication_group: str | None, outputs: StackOutputs | None) -> str:
    """``--replication-group`` if given, else the outputs' ``replicationGroupId``."""
    if replication_group:
        return replication_group
    if outputs is None:
        raise OpsError(
            "which replication group? pass --replication-group ID, --stack NAME or --outputs FILE",
            ExitCode.USAGE,
        )
    group: str = outputs.require("replication_group_id", "replicationGroupId")
    return group


def serverless_name_from(
    serverless_cache: str | None, replication_group: str | None, outputs: StackOutputs | None
) -> str | None:
    """The serverless cache ``status`` describes, or ``None`` for a replication group:
    ``--serverless-cache`` if given; else, unless ``--replication-group`` names a group, the
    ``serverlessCacheName`` output of a stack whose ``topology`` is ``serverless`` (falling back
    to ``replicationGroupId``, which the program sets to the same name)."""
    if serverless_cache is not None:
        if not serverless_cache.strip():
            raise OpsError("--serverless-cache is empty; give the cache's name", ExitCode.USAGE)
        if replication_group:
            raise OpsError(
                "give either --serverless-cache or --replication-group, not both",
                ExitCode.USAGE,
            )
        return serverless_cache.strip()
    if replication_group or outputs is None or outputs.topology != "serverless":
        return None
    if outputs.serverless_cache_name:
        return outputs.serverless_cache_name
    name: str = outputs.require("replication_group_id", "serverlessCacheName")
    return name
