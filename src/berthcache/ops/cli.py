"""``berthcache-ops``: the on-call commands (see ``docs/oncall.md``).

Human output by default, ``--json`` for machines; exit codes from :class:`ExitCode`. Every
failure is one line on stderr naming what is missing — never a traceback, never a secret.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markdown import Markdown
from rich.markup import escape
from rich.table import Table

from berthcache._config import CacheConfig
from berthcache._exceptions import CacheError
from berthcache.ops._aws import AwsClients, describe_aws_error
from berthcache.ops._errors import ExitCode, OpsError
from berthcache.ops._outputs import (
    Connection,
    StackOutputs,
    default_ca_bundle,
    group_id_from,
    load_outputs,
    resolve_connection,
)
from berthcache.ops._runbooks import find_spec, runbook_link, runbook_text

__all__ = ["app", "main"]

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    name="berthcache-ops",
    help="On-call tools for a deployed berthcache stack (ElastiCache Redis 7).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

# -- shared options ----------------------------------------------------------------------------

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
GroupOpt = Annotated[
    str | None,
    typer.Option(
        "--replication-group",
        "-g",
        envvar="BERTHCACHE_REPLICATION_GROUP",
        help="Replication group id (default: replicationGroupId from the stack outputs).",
    ),
]
StackOpt = Annotated[
    str | None,
    typer.Option(
        "--stack",
        envvar="BERTHCACHE_STACK",
        help="Pulumi stack; outputs read with `pulumi stack output --json --show-secrets`.",
    ),
]
OutputsOpt = Annotated[
    Path | None,
    typer.Option(
        "--outputs",
        envvar="BERTHCACHE_STACK_OUTPUTS",
        help="Stack outputs JSON file (instead of --stack).",
    ),
]
RedisUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--redis-url",
        envvar="REDIS_URL",
        help="Connect here instead of the stack's endpoint + secret (rediss://user:token@host).",
        show_envvar=True,
    ),
]
TlsCaOpt = Annotated[
    Path | None,
    typer.Option("--tls-ca", help="CA file to verify TLS (default: the system CA bundle)."),
]


def _handled(func: Callable[P, R]) -> Callable[P, R]:
    """Turn every expected failure into one line on stderr and its exit code."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except OpsError as exc:
            _fail(exc)
        except CacheError as exc:
            _fail(OpsError(str(exc), ExitCode.REDIS))
        except Exception as exc:
            mapped = describe_aws_error(exc, "aws", "request")
            if mapped is None:
                raise
            _fail(mapped)

    return wrapper


def _fail(exc: OpsError) -> NoReturn:
    err.print(f"berthcache-ops: error: {exc.message}", markup=False)
    raise typer.Exit(int(exc.code))


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def _outputs(stack: str | None, outputs: Path | None) -> StackOutputs | None:
    if stack is None and outputs is None:
        return None
    return load_outputs(stack=stack, outputs_file=outputs)


def _connection_config(
    redis_url: str | None,
    stack: str | None,
    outputs: Path | None,
    tls_ca: Path | None,
    clients: AwsClients,
) -> CacheConfig:
    """``--redis-url`` if given, else the stack's endpoint + secret; TLS verified."""
    ca = str(tls_ca) if tls_ca else None
    try:
        if redis_url:
            return CacheConfig.from_url(redis_url, **({"tls_ca_file": ca} if ca else {}))
        loaded = _outputs(stack, outputs)
        if loaded is None:
            raise OpsError(
                "which endpoint? pass --redis-url URL, --stack NAME or --outputs FILE",
                ExitCode.USAGE,
            )
        connection: Connection = resolve_connection(loaded, clients)
        overrides: dict[str, Any] = {}
        if connection.key_prefix:
            overrides["key_prefix"] = connection.key_prefix
        if connection.tls:
            bundle = ca or default_ca_bundle()
            if bundle:
                overrides["tls_ca_file"] = bundle
        return CacheConfig.from_url(connection.url(), **overrides)
    except CacheError as exc:  # ConfigurationError names the setting, never the token
        raise OpsError(f"connection settings: {exc}", ExitCode.USAGE) from None


# -- status / alarms / runbook -------------------------------------------------------------------


@app.command()
@_handled
def status(
    replication_group: GroupOpt = None,
    stack: StackOpt = None,
    outputs: OutputsOpt = None,
    as_json: JsonOpt = False,
    fail_on_alarm: Annotated[
        bool, typer.Option("--fail-on-alarm", help="Exit 5 if any alarm is in ALARM.")
    ] = False,
) -> None:
    """The replication group: status, engine, nodes (role, AZ), flags, and alarms in ALARM."""
    from berthcache.ops._status import describe_group, list_alarms

    loaded = _outputs(stack, outputs)
    group_id = group_id_from(replication_group, loaded)
    clients = AwsClients()
    group = describe_group(clients, group_id, engine_hint=loaded.engine if loaded else None)
    firing = list_alarms(clients, group_id, state="ALARM")
    if as_json:
        _print_json({**group.as_dict(), "alarms_in_alarm": [a.as_dict() for a in firing]})
    else:
        out.print(f"[bold]{group.group_id}[/]  status: {group.status}")
        out.print(f"engine: {group.engine} {group.engine_version}   node type: {group.node_type}")
        out.print(
            f"automatic failover: {group.automatic_failover}   multi-AZ: {group.multi_az}   "
            f"TLS in transit: {_yes(group.transit_encryption)}   "
            f"at rest: {_yes(group.at_rest_encryption)}   "
            f"AUTH token: {_yes(group.auth_token_enabled)}"
            + (
                f"   RBAC user groups: {', '.join(group.user_group_ids)}"
                if group.user_group_ids
                else ""
            )
        )
        table = Table("node", "node group", "role", "AZ")
        for node in group.nodes:
            table.add_row(node.cluster_id, node.node_group, node.role, node.availability_zone)
        out.print(table)
        if firing:
            out.print(f"[bold red]{len(firing)} alarm(s) in ALARM:[/]")
            for alarm in firing:
                out.print(f"  {alarm.name}: {alarm.reason}", markup=False)
                out.print(f"    runbook: {alarm.runbook or 'not in the catalogue'}", markup=False)
        else:
            out.print("no alarm in ALARM")
    if fail_on_alarm and firing:
        raise typer.Exit(int(ExitCode.ALARMING))


def _yes(flag: bool) -> str:
    return "on" if flag else "off"


@app.command()
@_handled
def alarms(
    replication_group: GroupOpt = None,
    stack: StackOpt = None,
    outputs: OutputsOpt = None,
    state: Annotated[
        str | None,
        typer.Option("--state", help="Only alarms in this state: ALARM, OK, INSUFFICIENT_DATA."),
    ] = None,
    as_json: JsonOpt = False,
    fail_on_alarm: Annotated[
        bool, typer.Option("--fail-on-alarm", help="Exit 5 if any alarm is in ALARM.")
    ] = False,
) -> None:
    """Every alarm of the stack with its state, reason and runbook link."""
    from berthcache.ops._status import list_alarms

    if state is not None and state.upper() not in ("ALARM", "OK", "INSUFFICIENT_DATA"):
        raise OpsError(f"--state {state!r}: choose ALARM, OK or INSUFFICIENT_DATA", ExitCode.USAGE)
    loaded = _outputs(stack, outputs)
    group_id = group_id_from(replication_group, loaded)
    found = list_alarms(
        AwsClients(),
        group_id,
        state=state.upper() if state else None,
        expected=loaded.alarm_names if loaded else (),
    )
    if as_json:
        _print_json([a.as_dict() for a in found])
    else:
        if not found:
            out.print(f"no alarms named {group_id}-<NNN>-<key> in CloudWatch", markup=False)
        for alarm in found:  # plain lines: a table would cut the runbook link on narrow terminals
            style = {"ALARM": "bold red", "MISSING": "yellow"}.get(alarm.state, "bold")
            out.print(f"[{style}]{alarm.state:<17}[/] {escape(alarm.name)}")
            if alarm.reason:
                out.print(f"    reason: {alarm.reason}", markup=False)
            out.print(f"    runbook: {alarm.runbook or 'not in the catalogue'}", markup=False)
    if fail_on_alarm and any(a.state == "ALARM" for a in found):
        raise typer.Exit(int(ExitCode.ALARMING))


@app.command()
@_handled
def runbook(
    name: Annotated[
        str, typer.Argument(help="Alarm name (<group>-<NNN>-<key>), catalogue key or anchor.")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Print the runbook of an alarm."""
    spec = find_spec(name)
    text = runbook_text(spec)
    if as_json:
        _print_json(
            {"key": spec.key, "title": spec.title, "runbook": runbook_link(spec), "text": text}
        )
    else:
        out.print(f"runbook: {runbook_link(spec)}", markup=False)
        out.print(Markdown(text))


# -- diagnose ------------------------------------------------------------------------------------


@app.command()
@_handled
def diagnose(
    redis_url: RedisUrlOpt = None,
    stack: StackOpt = None,
    outputs: OutputsOpt = None,
    tls_ca: TlsCaOpt = None,
    match: Annotated[
        str | None,
        typer.Option("--match", help="SCAN pattern for the key sample (default: key prefix*)."),
    ] = None,
    max_keys: Annotated[
        int, typer.Option("--max-keys", min=0, max=100_000, help="Hard cap on keys examined.")
    ] = 1000,
    top: Annotated[int, typer.Option("--top", min=1, max=1000, help="Largest keys shown.")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Read-only health report: memory, hit rate, evictions, clients, replication, SLOWLOG,
    LATENCY, largest keys (bounded SCAN + MEMORY USAGE). Safe on production."""
    from berthcache.ops._diagnose import diagnose as run

    config = _connection_config(redis_url, stack, outputs, tls_ca, AwsClients())
    report = run(config, match=match, max_keys=max_keys, top=top)
    if as_json:
        _print_json(report.as_dict())
        return
    out.print(f"[bold]{report.endpoint}[/]", markup=True)
    for title, section in (
        ("server", report.server),
        ("memory", report.memory),
        ("stats", report.stats),
        ("clients", report.clients),
        ("replication", report.replication),
    ):
        if section:
            out.print(
                f"{title}: " + ", ".join(f"{k}={v}" for k, v in section.items()), markup=False
            )
    rate = (
        "n/a (no reads yet)" if report.hit_rate_percent is None else f"{report.hit_rate_percent}%"
    )
    out.print(f"hit rate: {rate} (the seed's target: above 80%)", markup=False)
    if report.slowlog:
        out.print("slowlog:")
        for entry in report.slowlog:
            out.print(
                f"  #{entry['id']} {entry['duration_us']} us  {entry['command']}", markup=False
            )
    if report.latency:
        out.print("latency latest:")
        for event in report.latency:
            out.print(
                f"  {event['event']}: latest {event['latest_ms']} ms, max {event['max_ms']} ms",
                markup=False,
            )
    scan = "complete" if report.scan_complete else f"stopped at the cap of {max_keys}"
    out.print(f"largest keys ({report.keys_examined} examined, scan {scan}):", markup=False)
    for item in report.largest_keys:
        out.print(f"  {item['bytes']:>10} B  {item['key']}", markup=False)
    for what, why in report.unavailable.items():
        out.print(f"not readable: {what}: {why}", markup=False)


# -- failover drill ------------------------------------------------------------------------------


@app.command("failover-drill")
@_handled
def failover_drill(
    replication_group: GroupOpt = None,
    stack: StackOpt = None,
    outputs: OutputsOpt = None,
    redis_url: RedisUrlOpt = None,
    tls_ca: TlsCaOpt = None,
    node_group: Annotated[
        str, typer.Option("--node-group", help="Node group to fail over.")
    ] = "0001",
    timeout: Annotated[
        float, typer.Option("--timeout", min=10, max=3600, help="Give up after (s).")
    ] = 900.0,
    yes: Annotated[
        bool, typer.Option("--yes", help="Do it without asking (it fails the primary over).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Trigger ElastiCache test_failover while a probe load runs through the cache module;
    report errors, the longest error window and the time to recovery. Exit 1 if unrecovered."""
    from berthcache.ops._drill import (
        aws_failover_trigger,
        cache_probe,
        group_available,
        measure_failover,
        probe_cache,
    )

    clients = AwsClients()
    loaded = _outputs(stack, outputs)
    group_id = group_id_from(replication_group, loaded)
    config = _connection_config(redis_url, stack, outputs, tls_ca, clients)
    trigger = aws_failover_trigger(clients, group_id, node_group)
    if not yes and not typer.confirm(
        f"Fail over node group {node_group} of {group_id} now?", default=False
    ):
        raise OpsError("failover-drill: not confirmed (pass --yes)", ExitCode.USAGE)
    cache = probe_cache(config)
    try:
        report = measure_failover(
            cache_probe(cache),
            trigger,
            is_complete=group_available(clients, group_id),
            settle=10.0,
            timeout=timeout,
        )
    finally:
        cache.close()
    if as_json:
        _print_json(report.as_dict())
    else:
        out.print(
            f"probes: {report.probes}, errors: {report.errors} {report.error_kinds or ''}\n"
            f"longest error window: {report.longest_error_window:.2f} s\n"
            f"time to recovery: "
            + (f"{report.time_to_recovery:.2f} s" if report.time_to_recovery is not None else "-")
            + f"\nrecovered: {_yes(report.recovered)}",
            markup=False,
        )
    if report.trigger_error:
        raise OpsError(f"failover-drill: the trigger failed: {report.trigger_error}", ExitCode.AWS)
    if not report.recovered:
        raise OpsError(f"failover-drill: not recovered within {timeout:.0f} s", ExitCode.FAILED)


# -- rotate-auth-token ---------------------------------------------------------------------------


@app.command("rotate-auth-token")
@_handled
def rotate_auth_token(
    replication_group: GroupOpt = None,
    stack: StackOpt = None,
    outputs: OutputsOpt = None,
    tls_ca: TlsCaOpt = None,
    grace: Annotated[
        float,
        typer.Option(
            "--grace",
            min=0,
            max=86_400,
            help="Seconds between publishing the new token and "
            "retiring the old one (for apps to reload the secret).",
        ),
    ] = 300.0,
    yes: Annotated[bool, typer.Option("--yes", help="Do it without asking.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """New AUTH token -> Secrets Manager -> ROTATE -> verify -> SET; aborts cleanly (old token
    still valid) if a step fails."""
    from berthcache.ops._rotate import (
        ElastiCacheTokenSetter,
        SecretsManagerStore,
        redis_verifier,
    )
    from berthcache.ops._rotate import rotate_auth_token as rotate
    from berthcache.ops._status import describe_group

    clients = AwsClients()
    loaded = _outputs(stack, outputs)
    if loaded is None:
        raise OpsError("rotate-auth-token: pass --stack NAME or --outputs FILE", ExitCode.USAGE)
    group_id = group_id_from(replication_group, loaded)
    secret_arn: str = loaded.require("secret_arn", "secretArn")
    group = describe_group(clients, group_id)
    if group.user_group_ids:
        raise OpsError(
            f"replication group {group_id!r} uses RBAC user groups "
            f"({', '.join(group.user_group_ids)}), not an AUTH token: rotate the user's "
            "password with `aws elasticache modify-user` instead",
            ExitCode.USAGE,
        )
    config = _connection_config(None, stack, outputs, tls_ca, clients)
    if not yes and not typer.confirm(f"Rotate the AUTH token of {group_id}?", default=False):
        raise OpsError("rotate-auth-token: not confirmed (pass --yes)", ExitCode.USAGE)
    report = rotate(
        SecretsManagerStore(clients, secret_arn),
        ElastiCacheTokenSetter(clients, group_id),
        redis_verifier(config),
        grace=grace,
    )
    if as_json:
        _print_json(report.as_dict())
    else:
        for step in report.steps:
            out.print(f"ok  {step}", markup=False)


# -- conformance ---------------------------------------------------------------------------------


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@_handled
def conformance(
    ctx: typer.Context,
    stack: StackOpt = None,
    outputs: OutputsOpt = None,
    tls_ca: TlsCaOpt = None,
    junitxml: Annotated[
        Path | None, typer.Option("--junitxml", help="Write a JUnit XML report here.")
    ] = None,
) -> None:
    """Run the conformance suite against the deployed stack (TLS verified with the system CA
    bundle). Further arguments go to pytest; the exit code is pytest's."""
    loaded = _outputs(stack, outputs)
    if loaded is None:
        raise OpsError("conformance: pass --stack NAME or --outputs FILE", ExitCode.USAGE)
    resolve_connection(loaded, AwsClients())  # fail here, in one line, before pytest starts
    suite = _find_suite()
    command = [sys.executable, "-m", "pytest", str(suite), "-p", "berthcache.testing.clauses"]
    command += ["--target", "stack"]
    if stack:
        command += ["--stack", stack]
    else:
        assert outputs is not None
        command += ["--stack-outputs", str(outputs.resolve())]
    if tls_ca:
        command += ["--tls-ca", str(tls_ca.resolve())]
    if junitxml:
        command += [f"--junitxml={junitxml.resolve()}"]
    command += list(ctx.args)
    done = subprocess.run(command, cwd=suite.parent, check=False, env=dict(os.environ))
    raise typer.Exit(done.returncode)


def _find_suite() -> Path:
    here = Path(__file__).resolve()
    for root in (*here.parents, Path.cwd(), *Path.cwd().parents):
        if (root / "conformance" / "conftest.py").is_file():
            return root / "conformance"
    raise OpsError(
        "conformance: the suite (conformance/) was not found: run from the berthcache checkout",
        ExitCode.USAGE,
    )


def main() -> None:
    """Entry point for ``python -m berthcache.ops``."""
    app()
