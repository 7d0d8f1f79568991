"""``berthcache-ops``: the on-call commands (see ``docs/oncall.md``).

This module only wires options to operations: what each command shows is
:mod:`berthcache.ops._render`, how it connects is :mod:`berthcache.ops._connection`, the
conformance run is :mod:`berthcache.ops._conformance`, progress of the long commands is
:mod:`berthcache.ops._progress`. Every command takes ``--output table|json`` (``--json`` is the
deprecated spelling of ``--output json``); the AWS commands take ``--region`` and ``--profile``
(region order: ``--region``, ``AWS_REGION``, ``AWS_DEFAULT_REGION``, the profile's, as the AWS
CLI). Exit codes from :class:`ExitCode`. Every failure is one line on stderr naming what is
missing — never a traceback, never a secret.

Help is plain text (click's layout, as aws/gh/kubectl print it): flags show as ``--yes`` or
``--progress / --no-progress``, never with a value placeholder. :data:`clock` and :data:`sleep`
are the long commands' time source, replaced by tests.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import importlib.metadata
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer

from berthcache import CacheError
from berthcache.ops import _render
from berthcache.ops._aws import AwsClients, describe_aws_error
from berthcache.ops._connection import cache_config_for, outputs_if_given, resolve_connection
from berthcache.ops._errors import ExitCode, OpsError
from berthcache.ops._progress import Clock, Progress
from berthcache.ops._runbooks import find_spec, runbook_link, runbook_text
from berthcache.ops._stack_outputs import group_id_from, serverless_name_from

__all__ = ["app", "main"]

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    name="berthcache-ops",
    help="On-call tools for a deployed berthcache stack (ElastiCache Redis 7). --output, "
    "--region and --profile go before or after the command (after wins); `COMMAND -h` lists a "
    "command's options; docs/oncall.md has the runbooks and exit codes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: no `<bool>` after flags, brackets in text kept
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120},
)

#: The long commands' time source (tests replace both, so nothing really waits).
clock: Clock = time.monotonic
sleep: Callable[[float], None] = time.sleep


def package_version() -> str:
    """The installed berthcache distribution's version (``unknown`` from a bare source tree)."""
    try:
        return importlib.metadata.version("berthcache")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"berthcache-ops {package_version()}")
        raise typer.Exit()


# -- shared options ----------------------------------------------------------------------------


class OutputFormat(enum.StrEnum):
    """``--output``: ``table`` for people, ``json`` for scripts (stable keys, stdout only)."""

    TABLE = "table"
    JSON = "json"


OutputOpt = Annotated[
    OutputFormat | None,
    typer.Option(
        "--output",
        "-o",
        metavar="table|json",
        case_sensitive=False,
        help="table: for people (default); json: machine-readable on stdout, stable keys.",
    ),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Deprecated: the same as --output json.", hidden=False)
]
RegionOpt = Annotated[
    str | None,
    typer.Option(
        "--region",
        metavar="REGION",
        help="AWS region (default: $AWS_REGION, then $AWS_DEFAULT_REGION, then the profile's).",
    ),
]
ProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--profile",
        metavar="PROFILE",
        help="AWS profile of ~/.aws/config (default: $AWS_PROFILE, else the default chain).",
    ),
]
ProgressOpt = Annotated[
    bool,
    typer.Option(
        "--progress/--no-progress",
        help="Elapsed time and what the command waits for, on stderr.",
    ),
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do it without asking for confirmation.")]


#: Options given before the command (``berthcache-ops --region X status``, as with ``aws``);
#: the command's own option wins. Set afresh by every invocation's callback.
_before_command: dict[str, Any] = {}


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            is_eager=True,
            callback=_show_version,
            help="Print the version and exit.",
        ),
    ] = False,
    output: OutputOpt = None,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
) -> None:
    """On-call tools for a deployed berthcache stack (ElastiCache Redis 7). --output, --region
    and --profile work before the command too; a command's own value wins."""
    _before_command.clear()
    _before_command.update(output=output, region=region, profile=profile)


def _wants_json(output: OutputFormat | None, as_json: bool) -> bool:
    """``--output`` (default table), with the deprecated ``--json`` as ``--output json``."""
    if output is None:
        output = _before_command.get("output")
    if as_json:
        if output is OutputFormat.TABLE:
            raise OpsError("--json and --output table contradict; drop --json", ExitCode.USAGE)
        _render.warning("--json is deprecated; use --output json")
        return True
    return output is OutputFormat.JSON


def _aws(region: str | None, profile: str | None) -> AwsClients:
    """The AWS clients of one command (made lazily: nothing is asked before the first call)."""
    return AwsClients(
        region=region if region is not None else _before_command.get("region"),
        profile=profile if profile is not None else _before_command.get("profile"),
    )


GroupOpt = Annotated[
    str | None,
    typer.Option(
        "--replication-group",
        "-g",
        metavar="ID",
        envvar="BERTHCACHE_REPLICATION_GROUP",
        help="Replication group id (default: replicationGroupId from the stack outputs).",
    ),
]
StackOpt = Annotated[
    str | None,
    typer.Option(
        "--stack",
        metavar="NAME",
        envvar="BERTHCACHE_STACK",
        help="Pulumi stack; outputs read with `pulumi stack output --json --show-secrets`.",
    ),
]
OutputsOpt = Annotated[
    Path | None,
    typer.Option(
        "--outputs",
        metavar="FILE",
        envvar="BERTHCACHE_STACK_OUTPUTS",
        help="Stack outputs JSON file (instead of --stack).",
    ),
]
RedisUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--redis-url",
        metavar="URL",
        envvar="REDIS_URL",
        help="Connect here instead of the stack's endpoint + secret (rediss://user:token@host).",
        show_envvar=True,
    ),
]
TlsCaOpt = Annotated[
    Path | None,
    typer.Option(
        "--tls-ca", metavar="FILE", help="CA file to verify TLS (default: the system CA bundle)."
    ),
]


def _progress(command: str, enabled: bool) -> Progress:
    return Progress(command, console=_render.err, clock=clock, enabled=enabled)


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
    _render.error_line(exc)
    raise typer.Exit(int(exc.code))


# -- status / alarms / runbook -------------------------------------------------------------------

FailOnAlarmOpt = Annotated[
    bool, typer.Option("--fail-on-alarm", help="Exit 5 if any alarm is in ALARM.")
]
ServerlessOpt = Annotated[
    str | None,
    typer.Option(
        "--serverless-cache",
        metavar="NAME",
        envvar="BERTHCACHE_SERVERLESS_CACHE",
        help="A serverless cache by name (default: serverlessCacheName from the outputs of a "
        "stack whose topology is serverless).",
    ),
]


@app.command()
@_handled
def status(
    replication_group: GroupOpt = None,
    serverless_cache: ServerlessOpt = None,
    stack: StackOpt = None,
    outputs: OutputsOpt = None,
    output: OutputOpt = None,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    fail_on_alarm: FailOnAlarmOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """The replication group: status, engine, nodes (role, AZ), flags, and alarms in ALARM. A
    serverless cache (topology serverless, or --serverless-cache): status, engine, endpoints,
    usage limits, security, snapshots, and the alarms in ALARM that watch it."""
    from berthcache.ops._status import describe_group, node_alarms

    wants_json = _wants_json(output, as_json)
    loaded = outputs_if_given(stack, outputs)
    serverless = serverless_name_from(serverless_cache, replication_group, loaded)
    clients = _aws(region, profile)
    if serverless is not None:
        _serverless_status(clients, serverless, wants_json=wants_json, fail=fail_on_alarm)
        return
    group_id = group_id_from(replication_group, loaded)
    group = describe_group(clients, group_id, engine_hint=loaded.engine if loaded else None)
    coverage = node_alarms(clients, group)
    firing = coverage.firing
    _render.show_status(
        group,
        firing,
        as_json=wants_json,
        unwatched=coverage.unwatched,
        region=clients.region,
    )
    if fail_on_alarm and firing:
        raise typer.Exit(int(ExitCode.ALARMING))


def _serverless_status(clients: AwsClients, name: str, *, wants_json: bool, fail: bool) -> None:
    from berthcache.ops._serverless import describe_serverless, serverless_alarms

    cache = describe_serverless(clients, name)
    coverage = serverless_alarms(clients, name)
    _render.show_serverless_status(
        cache, coverage.firing, as_json=wants_json, watched=coverage.watched, region=clients.region
    )
    if fail and coverage.firing:
        raise typer.Exit(int(ExitCode.ALARMING))


@app.command()
@_handled
def alarms(
    replication_group: GroupOpt = None,
    stack: StackOpt = None,
    outputs: OutputsOpt = None,
    state: Annotated[
        str | None,
        typer.Option(
            "--state",
            metavar="STATE",
            help="Only alarms in this state: ALARM, OK, INSUFFICIENT_DATA.",
        ),
    ] = None,
    output: OutputOpt = None,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    fail_on_alarm: FailOnAlarmOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Every alarm of the stack with its state, reason and runbook link."""
    from berthcache.ops._status import list_alarms

    wants_json = _wants_json(output, as_json)
    if state is not None and state.upper() not in ("ALARM", "OK", "INSUFFICIENT_DATA"):
        raise OpsError(f"--state {state!r}: choose ALARM, OK or INSUFFICIENT_DATA", ExitCode.USAGE)
    loaded = outputs_if_given(stack, outputs)
    group_id = group_id_from(replication_group, loaded)
    found = list_alarms(
        _aws(region, profile),
        group_id,
        state=state.upper() if state else None,
        expected=loaded.alarm_names if loaded else (),
    )
    _render.show_alarms(found, group_id, as_json=wants_json)
    if fail_on_alarm and any(a.state == "ALARM" for a in found):
        raise typer.Exit(int(ExitCode.ALARMING))


@app.command()
@_handled
def runbook(
    name: Annotated[
        str,
        typer.Argument(
            metavar="NAME", help="Alarm name (<group>-<NNN>-<key>), catalogue key or anchor."
        ),
    ],
    output: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the runbook of an alarm (from the installed package: works offline) and its URL
    (under $BERTHCACHE_RUNBOOK_BASE_URL, default the project's repository on GitHub)."""
    wants_json = _wants_json(output, as_json)
    spec = find_spec(name)
    _render.show_runbook(spec, runbook_text(spec), runbook_link(spec), as_json=wants_json)


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
        typer.Option(
            "--match",
            metavar="PATTERN",
            help="SCAN pattern for the key sample (default: key prefix*).",
        ),
    ] = None,
    max_keys: Annotated[
        int, typer.Option("--max-keys", min=0, max=100_000, help="Hard cap on keys examined.")
    ] = 1000,
    top: Annotated[int, typer.Option("--top", min=1, max=1000, help="Largest keys shown.")] = 10,
    output: OutputOpt = None,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Read-only health report: memory, hit rate, evictions, clients, replication, SLOWLOG,
    LATENCY, largest keys (bounded SCAN + MEMORY USAGE). Safe on production."""
    from berthcache.ops._diagnose import diagnose as run

    wants_json = _wants_json(output, as_json)
    config = cache_config_for(
        redis_url=redis_url,
        stack=stack,
        outputs=outputs,
        tls_ca=tls_ca,
        clients=_aws(region, profile),
    )
    report = run(config, match=match, max_keys=max_keys, top=top)
    _render.show_diagnosis(report, max_keys=max_keys, as_json=wants_json)


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
        str, typer.Option("--node-group", metavar="ID", help="Node group to fail over.")
    ] = "0001",
    timeout: Annotated[
        float,
        typer.Option("--timeout", metavar="SECONDS", min=10, max=3600, help="Give up after."),
    ] = 900.0,
    yes: YesOpt = False,
    show_progress: ProgressOpt = True,
    output: OutputOpt = None,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Trigger ElastiCache test_failover while a probe load runs through the cache module;
    report errors, the longest error window and the time to recovery. Exit 1 if unrecovered.
    Shows on stderr how long it has run and what it waits for."""
    from berthcache.ops._drill import (
        aws_failover_trigger,
        cache_probe,
        group_available,
        measure_failover,
        probe_cache,
    )

    wants_json = _wants_json(output, as_json)
    clients = _aws(region, profile)
    loaded = outputs_if_given(stack, outputs)
    group_id = group_id_from(replication_group, loaded)
    config = cache_config_for(
        redis_url=redis_url, stack=stack, outputs=outputs, tls_ca=tls_ca, clients=clients
    )
    trigger = aws_failover_trigger(clients, group_id, node_group)
    if not yes and not typer.confirm(
        f"Fail over node group {node_group} of {group_id} now?", default=False
    ):
        raise OpsError("failover-drill: not confirmed (pass --yes)", ExitCode.USAGE)
    cache = probe_cache(config)
    try:
        with _progress("failover-drill", show_progress) as progress:
            report = measure_failover(
                cache_probe(cache),
                trigger,
                is_complete=group_available(clients, group_id, clock=clock),
                settle=10.0,
                timeout=timeout,
                clock=clock,
                sleep=sleep,
                progress=progress.update,
                trigger_label=f"test_failover on {group_id}/{node_group}",
                complete_label=f"replication group {group_id} to be available again",
            )
            progress.done(
                "recovered" if report.recovered else f"not recovered within {timeout:.0f} s"
            )
    finally:
        cache.close()
    _render.show_drill(report, as_json=wants_json)
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
            metavar="SECONDS",
            min=0,
            max=86_400,
            help="Seconds between publishing the new token and "
            "retiring the old one (for apps to reload the secret).",
        ),
    ] = 300.0,
    yes: YesOpt = False,
    show_progress: ProgressOpt = True,
    output: OutputOpt = None,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """New AUTH token -> Secrets Manager -> ROTATE -> verify -> SET; aborts cleanly (old token
    still valid) if a step fails. Shows on stderr how long it has run and what it waits for."""
    from berthcache.ops._rotate import (
        ElastiCacheTokenSetter,
        SecretsManagerStore,
        redis_verifier,
    )
    from berthcache.ops._rotate import rotate_auth_token as rotate
    from berthcache.ops._status import describe_group

    wants_json = _wants_json(output, as_json)
    clients = _aws(region, profile)
    loaded = outputs_if_given(stack, outputs)
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
    config = cache_config_for(
        redis_url=None, stack=stack, outputs=outputs, tls_ca=tls_ca, clients=clients
    )
    if not yes and not typer.confirm(f"Rotate the AUTH token of {group_id}?", default=False):
        raise OpsError("rotate-auth-token: not confirmed (pass --yes)", ExitCode.USAGE)
    with _progress("rotate-auth-token", show_progress) as progress:
        report = rotate(
            SecretsManagerStore(clients, secret_arn),
            ElastiCacheTokenSetter(
                clients, group_id, sleep=sleep, clock=clock, progress=progress.update
            ),
            redis_verifier(config),
            grace=grace,
            sleep=sleep,
            progress=progress.update,
        )
        progress.done("old token retired; rotation complete")
    _render.show_rotation(report, as_json=wants_json)


# -- conformance ---------------------------------------------------------------------------------


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@_handled
def conformance(
    ctx: typer.Context,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            metavar="TARGET",
            help="local, docker, url, stack or cluster. Default (the plugin decides): stack with "
            "--stack/--outputs, url with --redis-url or $REDIS_URL, else local: a Redis 7 "
            "group this run starts.",
        ),
    ] = None,
    redis_url: Annotated[
        str | None,
        typer.Option(
            "--redis-url",
            metavar="URL",
            help="Test this endpoint (redis:// or rediss://user:password@host:port); handed to "
            "the suite as $REDIS_URL. Prefer setting $REDIS_URL yourself: a password on the "
            "command line shows in ps. Tests that need admin rights skip; nothing outside the "
            "run's namespace is touched.",
        ),
    ] = None,
    stack: StackOpt = None,
    outputs: OutputsOpt = None,
    tls_ca: TlsCaOpt = None,
    junitxml: Annotated[
        Path | None,
        typer.Option("--junitxml", metavar="FILE", help="Write a JUnit XML report here."),
    ] = None,
    output: OutputOpt = None,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
) -> None:
    """Run the packaged conformance suite (the cache contract C1-C16) from any directory: on a
    local Redis 7 it starts (needs redis-server >= 7), an existing endpoint or the deployed
    stack. Needs berthcache[ops,testing]. Further arguments go to pytest (e.g. -k c05). With
    --output json, pytest's report goes to stderr and a summary (counts, failed tests) to
    stdout. Exit 0 all passed, 1 a test failed, 2 bad options or nothing collected
    (docs/oncall.md)."""
    from berthcache.ops._conformance import (
        check_prerequisites,
        exit_code,
        plan_suite_run,
        run_suite,
        suite_directory,
        summarize_junit,
    )

    wants_json = _wants_json(output, False)
    region = region if region is not None else _before_command.get("region")
    profile = profile if profile is not None else _before_command.get("profile")
    check_prerequisites()
    suite = suite_directory()
    environ = dict(os.environ)
    if region is not None:  # the stack target's AWS calls happen in the child
        environ["AWS_REGION"] = region
    if profile is not None:
        environ["AWS_PROFILE"] = profile
    with contextlib.ExitStack() as stack_of_files:
        report_file = junitxml
        if wants_json and report_file is None:
            tmp = stack_of_files.enter_context(tempfile.TemporaryDirectory(prefix="bc-ops-"))
            report_file = Path(tmp) / "conformance.xml"
        run = plan_suite_run(
            target=target,
            redis_url=redis_url,
            stack=stack,
            outputs=outputs,
            tls_ca=tls_ca,
            junitxml=report_file,
            extra=list(ctx.args),
            environ=environ,
            suite=suite,
        )
        loaded = outputs_if_given(stack, outputs)
        if loaded is not None:  # the stack target: fail here, in one line, before pytest starts
            resolve_connection(loaded, _aws(region, profile))
        _render.note(f"running the packaged conformance suite in {suite}")
        status = run_suite(run, report_to_stderr=wants_json)
        if wants_json and report_file is not None:
            _render.print_json(summarize_junit(report_file, pytest_status=status))
    raise typer.Exit(int(exit_code(status)))


def main() -> None:
    """Entry point for ``python -m berthcache.ops``."""
    app()
