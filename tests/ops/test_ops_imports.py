"""The ops package's dependencies point one way: ops uses the cache module and never the test
harness (berthcache.testing loads ops for its stack target, not the other way round), so an
installed ``berthcache[ops]`` works without the ``testing`` extra."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import berthcache.ops

OPS = Path(berthcache.ops.__file__).parent


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at any level (functions and TYPE_CHECKING blocks too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_no_ops_module_imports_the_test_harness_or_pytest() -> None:
    modules = sorted(OPS.glob("*.py"))
    assert len(modules) > 10
    for path in modules:
        bad = {
            name
            for name in imported_modules(path)
            if name.startswith(("berthcache.testing", "berthcache.conformance", "pytest"))
        }
        assert not bad, f"{path.name} imports {sorted(bad)}"


def test_the_cli_loads_without_pytest_or_the_harness() -> None:
    probe = (
        "import sys; import berthcache.ops.cli, berthcache.ops._conformance; "
        "loaded = [m for m in sys.modules if m.startswith(('pytest', 'berthcache.testing'))]; "
        "print(loaded)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
