"""``berthcache-ops conformance``: it forwards its options to the plugin (which alone chooses the
target: tests/testing/test_choose_target.py), keeps a URL's password out of the child's command
line and every output, runs with the suite's own pytest configuration whatever directory it runs
in, and maps pytest's exit statuses onto its own. The stack target end to end is in
test_stack_target.py; the installed wheel in tests/test_wheel.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from berthcache.ops import ExitCode, OpsError
from berthcache.ops._conformance import (
    SUITE_CONFIG,
    exit_code,
    plan_suite_run,
    suite_directory,
    summarize_junit,
)
from berthcache.ops.cli import app
from berthcache.testing import LocalRedis

SECRET = "s3cret-Token-42"
SUITE = Path("/site/berthcache/conformance")


def plan(
    *,
    target: str | None = None,
    redis_url: str | None = None,
    stack: str | None = None,
    outputs: Path | None = None,
    tls_ca: Path | None = None,
    environ: dict[str, str] | None = None,
    extra: tuple[str, ...] = (),
) -> tuple[tuple[str, ...], dict[str, str]]:
    run = plan_suite_run(
        target=target,
        redis_url=redis_url,
        stack=stack,
        outputs=outputs,
        tls_ca=tls_ca,
        junitxml=None,
        extra=extra,
        environ=environ if environ is not None else {"PATH": "/usr/bin"},
        suite=SUITE,
    )
    return run.argv, dict(run.env)


def test_the_packaged_suite_runs_with_its_own_pytest_configuration() -> None:
    argv, env = plan(extra=("-k", "c05"))
    # The directory, not --pyargs (which loads the conftest.py of the directory it runs in).
    assert argv[1:4] == ("-m", "pytest", str(SUITE))
    assert argv[argv.index("-c") + 1] == str(SUITE / SUITE_CONFIG)
    assert argv[argv.index("--rootdir") + 1] == str(SUITE)
    assert "no:cacheprovider" in argv
    assert "--target" not in argv  # the plugin decides: local here
    assert argv[-2:] == ("-k", "c05")  # further arguments go to pytest, last
    assert env == {"PATH": "/usr/bin"}


def test_the_shipped_configuration_is_there_and_is_not_a_pytest_ini() -> None:
    """Named pytest.ini it would take over `pytest conformance` in a checkout."""
    config = suite_directory() / SUITE_CONFIG
    assert config.is_file()
    assert config.name != "pytest.ini"
    assert "[pytest]" in config.read_text()


def test_target_options_are_forwarded_one_to_one(tmp_path: Path) -> None:
    argv, _env = plan(target="Docker")
    assert argv[argv.index("--target") + 1] == "Docker"  # validated by the plugin, not here
    argv, _env = plan(stack="prod", tls_ca=Path("ca.pem"))
    assert argv[argv.index("--stack") + 1] == "prod"
    assert argv[argv.index("--tls-ca") + 1] == str(Path("ca.pem").resolve())
    assert "--target" not in argv
    argv, _env = plan(outputs=tmp_path / "out.json")
    assert argv[argv.index("--stack-outputs") + 1] == str(tmp_path / "out.json")
    argv, env = plan(environ={"REDIS_URL": f"redis://app:{SECRET}@h:6379"})
    assert env["REDIS_URL"] == f"redis://app:{SECRET}@h:6379"  # the plugin reads it
    assert not any(SECRET in arg for arg in argv)


def test_a_url_goes_to_the_child_in_its_environment_never_on_its_command_line() -> None:
    url = f"rediss://app:{SECRET}@cache.example:6380/0"
    argv, env = plan(redis_url=url, environ={"REDIS_URL": "redis://exported-for-the-app:6379"})
    assert not any(SECRET in arg for arg in argv)
    assert "--redis-url" not in argv
    assert env["REDIS_URL"] == url
    run = plan_suite_run(
        target="url",
        redis_url=url,
        stack=None,
        outputs=None,
        tls_ca=None,
        junitxml=None,
        extra=(),
        environ={},
        suite=SUITE,
    )
    assert SECRET not in repr(run)


@pytest.mark.parametrize(
    "kwargs",
    [{"target": "local"}, {"target": "stack"}, {"stack": "prod"}, {"outputs": Path("o.json")}],
)
def test_a_redis_url_with_another_target_is_refused_not_dropped(kwargs: dict[str, object]) -> None:
    """It travels as REDIS_URL, which the plugin ignores when another target is named."""
    with pytest.raises(OpsError, match="--redis-url names the url target") as info:
        plan(redis_url=f"redis://u:{SECRET}@h:1", **kwargs)  # type: ignore[arg-type]
    assert info.value.code == ExitCode.USAGE
    assert SECRET not in info.value.message


def test_pytest_exit_statuses_map_onto_the_documented_exit_codes() -> None:
    assert exit_code(0) == ExitCode.OK
    assert exit_code(1) == ExitCode.FAILED
    for status, code, says in [
        (4, ExitCode.USAGE, "pytest refused the options"),
        (5, ExitCode.USAGE, "no test was collected"),  # not ExitCode.ALARMING
        (2, ExitCode.FAILED, "interrupted"),
        (3, ExitCode.FAILED, "internal error"),
    ]:
        with pytest.raises(OpsError, match=says) as info:
            exit_code(status)
        assert info.value.code == code
        assert f"pytest exit status {status}" in info.value.message


def _ops(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "berthcache.ops", "conformance", *args],
        cwd=cwd,  # not the checkout: the suite is found as the package berthcache.conformance
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _clean_env() -> dict[str, str]:
    drop = ("REDIS_URL", "REDIS_SERVER", "PYTEST_ADDOPTS", "BERTHCACHE_STACK")
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("PYTEST_")}


def test_the_local_target_without_redis_server_is_a_usage_error_from_the_plugin(
    tmp_path: Path,
) -> None:
    env = {**_clean_env(), "PATH": str(tmp_path)}  # no redis-server on it
    done = _ops("-k", "c05", cwd=tmp_path, env=env)
    out = done.stdout + done.stderr
    assert done.returncode == int(ExitCode.USAGE), out[-3000:]
    assert "the local target needs redis-server >= 7" in out
    assert "apt-get install redis-server" in out
    assert "pytest refused the options (the reason is above) (pytest exit status 4)" in out
    assert "passed" not in out


def test_nothing_collected_is_a_usage_error_not_the_alarm_code(tmp_path: Path) -> None:
    done = _ops("-k", "no_such_test_anywhere", "--target", "docker", cwd=tmp_path, env=_clean_env())
    assert done.returncode == int(ExitCode.USAGE), (done.stdout + done.stderr)[-3000:]
    assert "no test was collected" in done.stderr


@pytest.fixture(scope="module")
def group() -> Iterator[LocalRedis]:
    with LocalRedis(replica=False) as started:
        yield started


HOSTILE_PYTEST_INI = """\
[pytest]
addopts = -x --cov=app
filterwarnings = error
berthcache_redis_url = redis://elsewhere.invalid:6379/0
"""


def test_the_url_target_runs_from_a_directory_with_its_own_pytest_config(
    group: LocalRedis, tmp_path: Path
) -> None:
    """The cwd's pytest.ini, pyproject.toml and conftest.py configure nothing: before, its
    addopts broke the run (rc 4) and its berthcache_redis_url contradicted the options."""
    assert group.ca_file is not None
    _user, password = group.users["app"]
    (tmp_path / "pytest.ini").write_text(HOSTILE_PYTEST_INI)
    (tmp_path / "pyproject.toml").write_text('[tool.pytest.ini_options]\naddopts = "--bogus"\n')
    (tmp_path / "conftest.py").write_text("raise RuntimeError('the cwd conftest was loaded')\n")
    env = {**_clean_env(), "REDIS_URL": group.url("app")}
    done = _ops(
        "--tls-ca",
        group.ca_file,
        "-k",
        "test_c05 and test_set_get_roundtrip",
        cwd=tmp_path,
        env=env,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    # sync + async; the app user's allow-list has no SCAN: the namespace cleanup warns, by name;
    # and REDIS_URL choosing the target says so
    assert re.search(r"=+ 2 passed, \d+ deselected, 2 warnings in", out), out[-3000:]
    assert "RedisUrlTargetWarning" in out
    assert "could not delete test keys under 'berthcare:bc-test-" in out
    assert "berthcache target: url (from REDIS_URL) TargetChoice(" in out
    assert ":***@" in out
    assert password not in out
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "conftest.py",
        "pyproject.toml",
        "pytest.ini",
    ]


def test_output_json_prints_a_summary_and_keeps_pytests_report_on_stderr(
    group: LocalRedis, tmp_path: Path
) -> None:
    assert group.ca_file is not None
    env = {**_clean_env(), "REDIS_URL": group.url("app")}
    done = _ops(
        "--tls-ca",
        group.ca_file,
        "--output",
        "json",
        "-k",
        "test_c05 and test_set_get_roundtrip",
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)  # stdout is the summary and nothing else
    assert summary["pytest_exit_status"] == 0
    assert (summary["tests"], summary["passed"], summary["failed"]) == (2, 2, 0)
    assert summary["problems"] == []
    assert "2 passed" in done.stderr
    assert list(tmp_path.iterdir()) == []  # the report went to a temporary directory


def test_the_junit_summary_names_each_failed_test(tmp_path: Path) -> None:
    report = tmp_path / "r.xml"
    report.write_text(
        '<?xml version="1.0"?><testsuites><testsuite name="pytest">'
        '<testcase classname="conformance.test_c05" name="test_ok"/>'
        '<testcase classname="conformance.test_c05" name="test_bad">'
        '<failure message="assert 1 == 2&#10;more">trace</failure></testcase>'
        '<testcase classname="conformance.test_c09" name="test_admin">'
        '<skipped message="needs admin"/></testcase>'
        '<testcase classname="conformance.test_c11" name="test_setup">'
        '<error message="fixture failed">trace</error></testcase>'
        "</testsuite></testsuites>"
    )
    summary = summarize_junit(report, pytest_status=1)
    assert summary == {
        "pytest_exit_status": 1,
        "tests": 4,
        "passed": 1,
        "failed": 1,
        "errors": 1,
        "skipped": 1,
        "problems": [
            {
                "test": "conformance.test_c05::test_bad",
                "outcome": "failed",
                "message": "assert 1 == 2",
            },
            {
                "test": "conformance.test_c11::test_setup",
                "outcome": "error",
                "message": "fixture failed",
            },
        ],
    }
    missing = summarize_junit(tmp_path / "none.xml", pytest_status=4)
    assert (missing["pytest_exit_status"], missing["tests"]) == (4, 0)


def test_region_and_profile_reach_the_childs_aws_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stack target reads AWS in the child: --region/--profile travel in its environment."""
    seen: dict[str, str] = {}

    def fake_run(run: Any, *, report_to_stderr: bool = False) -> int:
        seen.update(run.env)
        return 0

    monkeypatch.setattr("berthcache.ops._conformance.run_suite", fake_run)
    monkeypatch.delenv("AWS_REGION", raising=False)
    result = CliRunner().invoke(
        app, ["conformance", "--region", "eu-west-1", "--profile", "oncall", "-k", "c05"]
    )
    assert result.exit_code == 0, result.stderr
    assert (seen["AWS_REGION"], seen["AWS_PROFILE"]) == ("eu-west-1", "oncall")
