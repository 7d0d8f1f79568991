"""``berthcache-ops conformance``: run the packaged contract suite, forwarding the target options.

The suite ships in the wheel as :mod:`berthcache.conformance`; it runs in a child
``python -m pytest <its directory> -p berthcache.testing.clauses`` from any directory, no
checkout needed, with the suite's own pytest configuration (``-c <package>/packaged-pytest.ini
--rootdir <package>``): the directory it runs in cannot configure it (its ``pytest.ini``
``addopts``, ``filterwarnings`` or ``berthcache_*`` keys, its ``conftest.py``).

Which target the run uses is decided in ONE place, the plugin's ``choose_target``: this module
forwards ``--target``, ``--stack``, ``--stack-outputs`` and ``--tls-ca`` as given and decides
nothing; the plugin reports contradictions, and a missing ``redis-server`` for the local target,
as pytest usage errors. A URL's password never reaches the child's command line (where ``ps``
shows it) nor any output: ``--redis-url`` goes to the child as ``REDIS_URL`` in its environment.
This module never imports :mod:`berthcache.testing` (the child process loads it).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from berthcache.ops._errors import ExitCode, OpsError

__all__ = [
    "SUITE_CONFIG",
    "SuiteRun",
    "check_prerequisites",
    "exit_code",
    "plan_suite_run",
    "run_suite",
    "suite_directory",
    "summarize_junit",
]

#: The suite's pytest configuration, package data of berthcache.conformance (not "pytest.ini":
#: that name would take over `pytest conformance` in a checkout).
SUITE_CONFIG = "packaged-pytest.ini"
#: Modules the packaged suite imports (the ``testing`` extra), with the package that brings them.
SUITE_MODULES = {
    "pytest": "pytest",
    "pytest_asyncio": "pytest-asyncio",
    "trustme": "trustme",
    "httpx": "httpx",
}


@dataclasses.dataclass(frozen=True)
class SuiteRun:
    """The child pytest run: its arguments (never a secret) and its environment (which may carry
    ``REDIS_URL``, so it is kept out of the repr)."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = dataclasses.field(repr=False)


def suite_directory() -> Path:
    """Where :mod:`berthcache.conformance` is installed (found without importing it)."""
    spec = importlib.util.find_spec("berthcache.conformance")
    if spec is None or not spec.submodule_search_locations:
        raise OpsError(
            "conformance: the packaged suite (berthcache.conformance) is not installed; "
            "reinstall berthcache",
            ExitCode.USAGE,
        )
    return Path(next(iter(spec.submodule_search_locations)))


def plan_suite_run(
    *,
    target: str | None,
    redis_url: str | None,
    stack: str | None,
    outputs: Path | None,
    tls_ca: Path | None,
    junitxml: Path | None,
    extra: Sequence[str],
    environ: Mapping[str, str],
    suite: Path,
    python: str = sys.executable,
) -> SuiteRun:
    """The child's command line and environment: the options forwarded 1:1 to the plugin."""
    if redis_url is not None and (
        (target is not None and target.strip().lower() != "url")
        or stack is not None
        or outputs is not None
    ):
        # The URL travels as REDIS_URL, which the plugin rightly ignores when another target is
        # named (shells export it for the app): refuse, rather than drop it silently.
        raise OpsError(
            "conformance: --redis-url names the url target; drop it or --target/--stack/--outputs",
            ExitCode.USAGE,
        )
    # The suite by its directory, not --pyargs: with a module name pytest also loads the
    # conftest.py of the directory it runs in.
    argv = [python, "-m", "pytest", str(suite)]
    argv += ["-c", str(suite / SUITE_CONFIG), "--rootdir", str(suite)]
    # The clause table; no .pytest_cache (rootdir is the installed package).
    argv += ["-p", "berthcache.testing.clauses", "-p", "no:cacheprovider"]
    env = dict(environ)
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
    if target is not None:
        argv += ["--target", target]
    if stack is not None:
        argv += ["--stack", stack]
    if outputs is not None:
        argv += ["--stack-outputs", str(outputs.resolve())]
    if tls_ca is not None:
        argv += ["--tls-ca", str(tls_ca.resolve())]
    if junitxml is not None:
        argv += [f"--junitxml={junitxml.resolve()}"]
    argv += list(extra)
    return SuiteRun(argv=tuple(argv), env=env)


def check_prerequisites() -> None:
    """Fail in one line, before pytest starts, when the suite cannot run here at all: the
    ``testing`` extra is missing (without pytest, the plugin could not say so itself)."""
    missing = [
        package
        for module, package in SUITE_MODULES.items()
        if importlib.util.find_spec(module) is None
    ]
    if missing:
        raise OpsError(
            f"conformance: the suite needs the testing extra (missing: {', '.join(missing)}); "
            "install it with `pip install 'berthcache[ops,testing]'`",
            ExitCode.USAGE,
        )


#: pytest's exit status -> ours and what to say. Passed through, pytest's 4 and 5 would read as
#: ExitCode.REDIS and ExitCode.ALARMING in docs/oncall.md's table.
_PYTEST_EXITS: Mapping[int, tuple[ExitCode, str]] = {
    2: (ExitCode.FAILED, "the run was interrupted"),
    3: (ExitCode.FAILED, "pytest hit an internal error (see above)"),
    4: (ExitCode.USAGE, "pytest refused the options (the reason is above)"),
    5: (ExitCode.USAGE, "no test was collected: check -k and the other selection options"),
}


def exit_code(pytest_status: int) -> ExitCode:
    """Our exit code for pytest's: 0 all passed, 1 tests failed; anything else is an
    :class:`OpsError` (one line, mapped per docs/oncall.md)."""
    if pytest_status == 0:
        return ExitCode.OK
    if pytest_status == 1:
        return ExitCode.FAILED
    code, why = _PYTEST_EXITS.get(pytest_status, (ExitCode.FAILED, "pytest failed"))
    raise OpsError(f"conformance: {why} (pytest exit status {pytest_status})", code)


def run_suite(run: SuiteRun, *, report_to_stderr: bool = False) -> int:
    """Run the child pytest in the current directory (so relative paths in pass-through
    arguments mean what the operator meant); returns pytest's exit status.
    ``report_to_stderr``: pytest's report goes to stderr, keeping stdout for ``--output json``."""
    done = subprocess.run(
        list(run.argv),
        env=dict(run.env),
        check=False,
        stdout=sys.stderr if report_to_stderr else None,
    )
    return done.returncode


def summarize_junit(path: Path, *, pytest_status: int) -> dict[str, Any]:
    """``--output json`` of ``conformance``: pytest's exit status, the counts and each test that
    failed or errored (its id and the first line of the message), from the JUnit report."""
    summary: dict[str, Any] = {
        "pytest_exit_status": pytest_status,
        "tests": 0,
        "passed": 0,
        "failed": 0,
        "errors": 0,
        "skipped": 0,
        "problems": [],
    }
    try:
        root = ElementTree.parse(path).getroot()  # noqa: S314 - our own child's report
    except (OSError, ElementTree.ParseError):
        return summary  # pytest stopped before writing it (bad options): the status says so
    for case in root.iter("testcase"):
        summary["tests"] += 1
        test_id = f"{case.get('classname', '')}::{case.get('name', '')}".lstrip(":")
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "errors"}.get(child.tag, child.tag)
                message = (child.get("message") or child.text or "").strip()
                if child.tag != "skipped":
                    summary["problems"].append(
                        {
                            "test": test_id,
                            "outcome": "failed" if child.tag == "failure" else "error",
                            "message": message.splitlines()[0][:300] if message else "",
                        }
                    )
                break
        summary[outcome] += 1
    return summary
