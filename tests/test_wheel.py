"""The wheel stands alone: built from this checkout, installed into a fresh venv outside it, its
``berthcache-ops`` prints a runbook and runs the packaged conformance suite from a directory that
knows nothing of the checkout, with a clean environment.

The only reason to skip: the package registry cannot be reached and uv's cache cannot stand in
for it. Anything of ours missing (a file not in the wheel, a dependency not declared) fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
UV = Path(sys.executable).with_name("uv")
#: Build and install from a warm uv cache take a few seconds; a cold cache downloads ~60 MB.
INSTALL_TIMEOUT = 240.0
RUN_TIMEOUT = 120.0
#: Not copied into the build tree: virtualenvs, VCS data, caches and earlier build output.
NOT_SOURCES = shutil.ignore_patterns(
    ".venv",
    ".git",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    ".hypothesis",
    "node_modules",
)

pytestmark = pytest.mark.timeout(INSTALL_TIMEOUT + 3 * RUN_TIMEOUT)


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    workdir: Path  # an empty directory outside the checkout, the cwd of every run
    env: dict[str, str]  # a clean environment: the venv's bin and redis-server on PATH

    def run(
        self, *args: str, cwd: Path | None = None, timeout: float = RUN_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.venv / "bin" / "berthcache-ops"), *args],
            cwd=cwd or self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _index_url() -> str:
    for var in ("UV_DEFAULT_INDEX", "UV_INDEX_URL", "PIP_INDEX_URL"):
        if os.environ.get(var):
            return os.environ[var].split()[0]
    return "https://pypi.org/simple/"


def _registry_reachable() -> tuple[bool, str]:
    url = _index_url()
    if not url.startswith(("http://", "https://")):
        return True, url  # a local index: nothing to reach over the network
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/pip/", timeout=10):  # noqa: S310
            return True, url
    except (urllib.error.URLError, OSError) as exc:
        return False, f"{url} ({exc})"


def _uv(*args: str, offline: bool, what: str, registry: str) -> None:
    command = [str(UV), *args, *(["--offline"] if offline else [])]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
    )
    if done.returncode == 0:
        return
    detail = (done.stdout + done.stderr)[-3000:]
    if offline:
        pytest.skip(
            f"the package registry is unreachable ({registry}) and uv's cache cannot {what}: "
            f"{detail}"
        )
    pytest.fail(f"{what} failed: {' '.join(command)}\n{detail}", pytrace=False)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    assert UV.is_file(), f"uv is not in the venv ({UV}): ./scripts/test installs it"
    root = tmp_path_factory.mktemp("wheel")
    try:
        yield _build_and_install(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)  # a venv is ~100 MB: do not keep it around


def _build_and_install(root: Path) -> Installed:
    reachable, registry = _registry_reachable()
    # Build from a copy: setuptools reuses build/lib, so files deleted from src/ could linger.
    source = root / "source"
    shutil.copytree(REPO, source, ignore=NOT_SOURCES)
    dist = root / "dist"
    _uv(
        "build", "--wheel", "--quiet", "--out-dir", str(dist), str(source),
        offline=not reachable, what="build the wheel", registry=registry,
    )  # fmt: skip
    wheels = list(dist.glob("berthcache-*.whl"))
    assert len(wheels) == 1, wheels
    venv = root / "venv"
    _uv(
        "venv", "--quiet", "--python", sys.executable, str(venv),
        offline=not reachable, what="create a venv", registry=registry,
    )  # fmt: skip
    python = venv / "bin" / "python"
    _uv(
        "pip", "install", "--quiet", "--python", str(python), f"{wheels[0]}[ops,testing]",
        offline=not reachable, what="install the wheel with [ops,testing]", registry=registry,
    )  # fmt: skip
    workdir = root / "elsewhere"
    workdir.mkdir()
    home = root / "home"
    home.mkdir()
    path = [str(venv / "bin")]
    redis_server = shutil.which("redis-server")
    if redis_server:
        path.append(str(Path(redis_server).parent))
    env = {"PATH": os.pathsep.join(path), "HOME": str(home), "LANG": "C.UTF-8"}
    return Installed(wheel=wheels[0], venv=venv, workdir=workdir, env=env)


def test_the_wheel_carries_the_package_data_and_nothing_of_the_checkout(
    installed: Installed,
) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    for wanted in (
        "berthcache/py.typed",
        "berthcache/ops/runbooks.md",
        "berthcache/ops/alarm_catalogue.py",
        "berthcache/conformance/__init__.py",
        "berthcache/conformance/conftest.py",
        "berthcache/conformance/support.py",
        "berthcache/conformance/packaged-pytest.ini",
        "berthcache/testing/plugin.py",
    ):
        assert wanted in names, f"{wanted} is not in {installed.wheel.name}"
    scripts = sorted(p.name for p in (REPO / "src" / "berthcache" / "resources").glob("*.lua"))
    assert scripts
    for script in scripts:
        assert f"berthcache/resources/{script}" in names
    suite = sorted(p.name for p in (REPO / "conformance").glob("test_c*.py"))
    assert {f"berthcache/conformance/{name}" for name in suite} <= names
    tops = {name.split("/", 1)[0] for name in names}
    assert tops == {"berthcache", f"{installed.wheel.name.split('-py3')[0]}.dist-info"}, tops


def test_the_installed_package_imports_nothing_from_the_checkout(installed: Installed) -> None:
    done = subprocess.run(
        [
            str(installed.venv / "bin" / "python"),
            "-c",
            "import berthcache, berthcache.conformance, berthcache.ops.cli; "
            "print(berthcache.__file__); print(berthcache.conformance.__file__)",
        ],
        cwd=installed.workdir,
        env=installed.env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for line in done.stdout.splitlines():
        assert Path(line).is_relative_to(installed.venv), line
        assert not Path(line).is_relative_to(REPO), line


def test_runbook_prints_the_section_from_any_directory(installed: Installed) -> None:
    done = installed.run("runbook", "database-memory-usage")
    assert done.returncode == 0, done.stdout + done.stderr
    # A URL under the default base (the repository on GitHub); the section is printed below it.
    assert (
        "runbook: https://github.com/berthcache/berthcache/blob/main/"
        "src/berthcache/ops/runbooks.md#database-memory-usage\n"
    ) in done.stdout
    assert "Database memory usage" in done.stdout
    assert "What it means:" in done.stdout
    assert "not found" not in done.stdout + done.stderr


def test_conformance_help_names_every_target(installed: Installed) -> None:
    done = installed.run("conformance", "--help")
    assert done.returncode == 0, done.stdout + done.stderr
    for option in ("--target", "--redis-url", "--stack", "--outputs", "--tls-ca", "--junitxml"):
        assert option in done.stdout, option


def test_conformance_runs_the_packaged_suite_on_the_local_target(installed: Installed) -> None:
    assert shutil.which("redis-server"), "the local target needs redis-server >= 7 on PATH"
    done = installed.run("conformance", "-k", "c05")
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    assert "berthcache target: local (from default)" in done.stdout  # the plugin chose it
    row = re.search(r"^C5\s+Basic operations\s+(\d+)\s+0\s+0\s+PASS\s*$", out, re.M)
    assert row, out[-3000:]
    assert int(row.group(1)) > 0
    summary = re.search(r"=+ (\d+) passed, (\d+) deselected in [\d.]+s =+$", out, re.M)
    assert summary, out[-3000:]  # nothing failed, errored or skipped
    assert list(installed.workdir.iterdir()) == []  # no .pytest_cache, no stray files


#: What a project directory's pytest config may say; none of it may reach the packaged suite.
HOSTILE_PYTEST_INI = """\
[pytest]
addopts = -x --cov=app
filterwarnings = error
berthcache_redis_url = redis://elsewhere.invalid:6379/0
"""


def test_conformance_ignores_the_pytest_config_of_the_directory_it_runs_in(
    installed: Installed, tmp_path: Path
) -> None:
    """Run from an app's checkout: its pytest.ini (unknown --cov, warnings as errors, a
    berthcache_redis_url) and conftest.py used to configure the suite (rc 4, failures)."""
    (tmp_path / "pytest.ini").write_text(HOSTILE_PYTEST_INI)
    (tmp_path / "conftest.py").write_text("raise RuntimeError('the cwd conftest was loaded')\n")
    done = installed.run("conformance", "-k", "c05 or c15", "-q", cwd=tmp_path)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    assert re.search(r"^C15\s+TLS and AUTH\s+\d+\s+0\s+0\s+PASS\s*$", out, re.M), out[-3000:]
    assert "Unknown config option" not in out


def test_the_installed_cli_reports_the_wheels_version(installed: Installed) -> None:
    done = installed.run("--version")
    assert done.returncode == 0, done.stderr
    version = installed.wheel.name.split("-")[1]  # berthcache-<version>-py3-none-any.whl
    assert done.stdout == f"berthcache-ops {version}\n"
