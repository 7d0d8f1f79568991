"""``berthcache-ops conformance``: which target it picks, that a URL's password stays out of the
child's command line and out of every output, and what it says when the local target cannot run.
The stack target end to end is in test_stack_target.py; the installed wheel in tests/test_wheel.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from berthcache.ops import ExitCode, OpsError
from berthcache.ops._conformance import INSTALL_REDIS, plan_suite_run
from berthcache.ops.cli import app
from berthcache.testing import LocalRedis

SECRET = "s3cret-Token-42"


def plan(
    *,
    target: str | None = None,
    redis_url: str | None = None,
    stack: str | None = None,
    outputs: Path | None = None,
    environ: dict[str, str] | None = None,
    extra: tuple[str, ...] = (),
) -> tuple[str, tuple[str, ...], dict[str, str]]:
    run = plan_suite_run(
        target=target,
        redis_url=redis_url,
        stack=stack,
        outputs=outputs,
        tls_ca=None,
        junitxml=None,
        extra=extra,
        environ=environ if environ is not None else {"PATH": "/usr/bin"},
    )
    return run.target, run.argv, dict(run.env)


def test_without_target_options_the_local_target_runs_the_packaged_suite() -> None:
    target, argv, env = plan(extra=("-k", "c05"))
    assert target == "local"
    assert argv[1:5] == ("-m", "pytest", "--pyargs", "berthcache.conformance")
    assert argv[argv.index("--target") + 1] == "local"
    assert argv[-2:] == ("-k", "c05")  # further arguments go to pytest, last
    assert "REDIS_URL" not in env


def test_a_url_goes_to_the_child_in_its_environment_never_on_its_command_line() -> None:
    url = f"rediss://app:{SECRET}@cache.example:6380/0"
    target, argv, env = plan(redis_url=url)
    assert target == "url"
    assert argv[argv.index("--target") + 1] == "url"
    assert not any(SECRET in arg for arg in argv)
    assert "--redis-url" not in argv
    assert env["REDIS_URL"] == url
    run = plan_suite_run(
        target=None,
        redis_url=url,
        stack=None,
        outputs=None,
        tls_ca=None,
        junitxml=None,
        extra=(),
        environ={},
    )
    assert SECRET not in repr(run)
    assert SECRET not in run.description
    assert "on the url target (rediss://app:***@cache.example:6380/0)" in run.description


def test_the_target_is_chosen_like_the_plugin_and_the_stack_options(tmp_path: Path) -> None:
    exported = {"REDIS_URL": f"redis://app:{SECRET}@h:6379"}
    assert plan(environ=exported)[0] == "url"  # $REDIS_URL alone selects it
    # ... but a named target wins, and the exported URL does not reach the child.
    target, _argv, env = plan(target="local", environ=exported)
    assert target == "local"
    assert "REDIS_URL" not in env
    target, argv, _env = plan(stack="prod", environ=exported)
    assert target == "stack"
    assert argv[argv.index("--stack") + 1] == "prod"
    target, argv, _env = plan(outputs=tmp_path / "out.json")
    assert target == "stack"
    assert argv[argv.index("--stack-outputs") + 1] == str(tmp_path / "out.json")
    assert plan(target="docker")[0] == "docker"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": "cloud"}, "--target 'cloud' is not a target; choose one of"),
        ({"target": "local", "redis_url": "redis://h:1"}, "--redis-url only goes with"),
        ({"target": "url"}, "--target url needs an endpoint"),
        ({"target": "stack"}, "--target stack needs --stack NAME or --outputs FILE"),
        ({"target": "local", "stack": "prod"}, "--stack/--outputs only go with --target stack"),
        ({"redis_url": "redis://h:1", "stack": "prod"}, "either --redis-url or --stack"),
        ({"redis_url": "http://h:1"}, "must be redis://"),
        ({"redis_url": f"redis://u:{SECRET}@h:port"}, "bad host or port"),
    ],
)
def test_contradictions_and_bad_urls_are_usage_errors_without_the_secret(
    kwargs: dict[str, str], message: str
) -> None:
    with pytest.raises(OpsError, match=re.escape(message)) as info:
        plan(**kwargs)  # type: ignore[arg-type]
    assert info.value.code == ExitCode.USAGE
    assert SECRET not in info.value.message


def test_the_local_target_without_redis_server_says_how_to_install_it(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["conformance", "-k", "c05"],
        env={"PATH": str(tmp_path), "REDIS_SERVER": None, "REDIS_URL": None},
    )
    assert result.exit_code == int(ExitCode.USAGE), result.output
    assert "redis-server >= 7" in result.stderr
    assert "found: none on PATH" in result.stderr
    assert INSTALL_REDIS in result.stderr
    assert "--redis-url URL, --stack NAME, --outputs FILE" in result.stderr
    assert result.stderr.count("\n") == 1  # one line, no traceback


@pytest.fixture(scope="module")
def group() -> Iterator[LocalRedis]:
    with LocalRedis(replica=False) as started:
        yield started


def test_the_url_target_runs_from_any_directory_and_never_shows_the_password(
    group: LocalRedis, tmp_path: Path
) -> None:
    assert group.ca_file is not None
    _user, password = group.users["app"]
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "berthcache.ops",
            "conformance",
            "--redis-url",
            group.url("app"),
            "--tls-ca",
            group.ca_file,
            "-k",
            "test_c05 and test_set_get_roundtrip",
            "-q",
        ],
        cwd=tmp_path,  # not the checkout: the suite is found as the package berthcache.conformance
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    # sync + async; the app user's allow-list has no SCAN: the namespace cleanup warns, by name
    assert re.search(r"^2 passed, \d+ deselected, 1 warning in", out, re.M), out[-3000:]
    assert "could not delete test keys under 'berthcare:bc-test-" in out
    assert "on the url target (rediss://" in done.stderr
    assert ":***@" in done.stderr
    assert password not in out
