"""``berthcache-ops conformance``: run the packaged contract suite against a chosen target.

The suite ships in the wheel as :mod:`berthcache.conformance`; it runs in a child
``python -m pytest --pyargs berthcache.conformance -p berthcache.testing.clauses`` from any
directory, no checkout needed. The target is chosen the way ``./scripts/conformance`` and the
plugin choose it: ``--target`` wins; else ``--stack`` / ``--outputs`` mean the deployed stack,
``--redis-url`` (or ``$REDIS_URL``) an existing endpoint, and nothing at all the local Redis 7
group the suite starts itself (``redis-server`` >= 7 needed on this machine).

A URL's password never reaches the child's command line (where ``ps`` shows it) nor any output:
the URL goes to the child as ``REDIS_URL`` in its environment, and only a masked form is printed.
This module never imports :mod:`berthcache.testing` (the child process loads it).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from berthcache._config import masked_url
from berthcache.ops._errors import ExitCode, OpsError

__all__ = [
    "INSTALL_REDIS",
    "TARGETS",
    "SuiteRun",
    "check_prerequisites",
    "plan_suite_run",
    "run_suite",
]

TARGETS = ("local", "docker", "url", "stack")
#: How to get a redis-server 7 on Debian/Ubuntu (the same command ./scripts/_bootstrap.sh runs).
INSTALL_REDIS = (
    "sudo apt-get update && sudo apt-get install -y --no-install-recommends redis-server"
)
#: Modules the packaged suite imports (the ``testing`` extra), with the package that brings them.
SUITE_MODULES = {
    "pytest": "pytest",
    "pytest_asyncio": "pytest-asyncio",
    "trustme": "trustme",
    "httpx": "httpx",
}
REDIS_VERSION_TIMEOUT = 10.0


@dataclasses.dataclass(frozen=True)
class SuiteRun:
    """The child pytest run: its arguments (never a secret), its environment (which may carry
    ``REDIS_URL``, so it is kept out of the repr) and a secret-free description."""

    target: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = dataclasses.field(repr=False)
    description: str


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
    python: str = sys.executable,
) -> SuiteRun:
    """Choose the target and build the child's command line and environment."""
    chosen = _choose_target(target, redis_url, stack, outputs, environ)
    argv = [python, "-m", "pytest", "--pyargs", "berthcache.conformance"]
    # The clause table; no .pytest_cache (outside a checkout, rootdir is the installed package).
    argv += ["-p", "berthcache.testing.clauses", "-p", "no:cacheprovider"]
    # The checkout's pyproject sets this; outside it pytest-asyncio would warn that it is unset.
    argv += ["-o", "asyncio_default_fixture_loop_scope=function"]
    argv += ["--target", chosen]
    env = dict(environ)
    env.pop("REDIS_URL", None)  # the plugin would read it; only the url target passes one
    if chosen == "stack":
        if stack is not None:
            argv += ["--stack", stack]
            where = f"stack {stack!r}"
        else:
            assert outputs is not None
            argv += ["--stack-outputs", str(outputs.resolve())]
            where = f"outputs file {str(outputs)!r}"
    elif chosen == "url":
        url = redis_url if redis_url is not None else environ.get("REDIS_URL", "").strip()
        _check_url(url)
        env["REDIS_URL"] = url
        where = mask_url(url)
    elif chosen == "docker":
        where = "testcontainers redis:7"
    else:
        where = "a Redis 7 group this run starts and stops"
    if tls_ca is not None:
        argv += ["--tls-ca", str(tls_ca.resolve())]
    if junitxml is not None:
        argv += [f"--junitxml={junitxml.resolve()}"]
    argv += list(extra)
    return SuiteRun(
        target=chosen,
        argv=tuple(argv),
        env=env,
        description=f"the packaged conformance suite on the {chosen} target ({where})",
    )


def _choose_target(
    target: str | None,
    redis_url: str | None,
    stack: str | None,
    outputs: Path | None,
    environ: Mapping[str, str],
) -> str:
    """Like the plugin's choice, plus the stack options: explicit ``--target`` wins, a
    ``$REDIS_URL`` exported for the app is ignored when another target is named."""
    if stack is not None and outputs is not None:
        raise OpsError("conformance: give either --stack or --outputs, not both", ExitCode.USAGE)
    has_stack = stack is not None or outputs is not None
    if redis_url is not None and has_stack:
        raise OpsError(
            "conformance: give either --redis-url or --stack/--outputs, not both", ExitCode.USAGE
        )
    if target is not None:
        chosen = target.strip().lower()
        if chosen not in TARGETS:
            raise OpsError(
                f"conformance: --target {target!r} is not a target; choose one of: "
                + ", ".join(TARGETS),
                ExitCode.USAGE,
            )
        if redis_url is not None and chosen != "url":
            raise OpsError(
                f"conformance: --redis-url only goes with --target url, not --target {chosen}",
                ExitCode.USAGE,
            )
        if has_stack and chosen != "stack":
            raise OpsError(
                f"conformance: --stack/--outputs only go with --target stack, not --target "
                f"{chosen}",
                ExitCode.USAGE,
            )
        if chosen == "stack" and not has_stack:
            raise OpsError(
                "conformance: --target stack needs --stack NAME or --outputs FILE", ExitCode.USAGE
            )
        if chosen == "url" and redis_url is None and not environ.get("REDIS_URL", "").strip():
            raise OpsError(
                "conformance: --target url needs an endpoint: pass --redis-url URL or set "
                "REDIS_URL",
                ExitCode.USAGE,
            )
        return chosen
    if has_stack:
        return "stack"
    if redis_url is not None or environ.get("REDIS_URL", "").strip():
        return "url"
    return "local"


def _check_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise OpsError(
            "conformance: the Redis URL has a bad host or port", ExitCode.USAGE
        ) from None
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise OpsError(
            "conformance: the Redis URL must be redis://… or rediss://… with a host",
            ExitCode.USAGE,
        )


def mask_url(url: str) -> str:
    """The URL with its password — or a token in the user slot — replaced by ``***``
    (safe to print): berthcache's one rule, :func:`berthcache._config.masked_url`."""
    return masked_url(url)


def check_prerequisites(run: SuiteRun, environ: Mapping[str, str]) -> None:
    """Fail in one line, before pytest starts, when the suite cannot run here: the ``testing``
    extra missing, or — for the local target — no ``redis-server`` >= 7."""
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
    if run.target != "local" or _names_redis_server(run.argv):
        return
    binary = environ.get("REDIS_SERVER") or shutil.which("redis-server", path=environ.get("PATH"))
    major = _redis_major(binary) if binary else None
    if major is not None and major >= 7:
        return
    found = "none on PATH" if not binary else f"{binary}: version {major or 'unknown'}"
    raise OpsError(
        f"conformance: the local target needs redis-server >= 7 (found: {found}). Install it "
        f"with `{INSTALL_REDIS}` (macOS: `brew install redis`), or set REDIS_SERVER to a "
        "redis-server 7 binary, or test another target: --redis-url URL, --stack NAME, "
        "--outputs FILE",
        ExitCode.USAGE,
    )


def _names_redis_server(argv: Sequence[str]) -> bool:
    return any(arg == "--redis-server" or arg.startswith("--redis-server=") for arg in argv)


def _redis_major(binary: str) -> int | None:
    try:
        done = subprocess.run(
            [binary, "--version"],
            capture_output=True,
            text=True,
            timeout=REDIS_VERSION_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"\bv=(\d+)\.", done.stdout)
    return int(match.group(1)) if match else None


def run_suite(run: SuiteRun) -> int:
    """Run the child pytest in the current directory (so relative paths in pass-through
    arguments mean what the operator meant); its exit status is the result."""
    done = subprocess.run(list(run.argv), env=dict(run.env), check=False)
    return done.returncode
