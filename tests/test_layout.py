"""The layout rules of docs/architecture.md, checked on the source: dependencies point one way.

Every import between modules of ``src/berthcache`` counts — module level, inside functions and
under ``TYPE_CHECKING`` — because a cycle hidden behind a lazy import is still a cycle a reader
has to untangle. A module imports another package's private (underscore) module only where
docs/architecture.md lists it as an allowed exception. The repository also stands alone: no
file names the folder outside it that the design notes once lived in.
"""

from __future__ import annotations

import ast
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = SRC / "berthcache"
#: conformance/ ships as berthcache.conformance (a package-dir mapping in pyproject.toml).
SUITE = ROOT / "conformance"
#: The packages whose private modules are theirs alone; "berthcache" is the cache module.
PACKAGES = (
    "berthcache.conformance",
    "berthcache.observability",
    "berthcache.ops",
    "berthcache.testing",
    "berthcache.web",
    "berthcache",
)
ARCHITECTURE = ROOT / "docs" / "architecture.md"
ALLOWED_HEADING = "### Private imports across packages"


def _module_name(path: Path) -> str:
    if path.is_relative_to(SUITE):
        parts = ["berthcache", "conformance", *path.relative_to(SUITE).with_suffix("").parts]
    else:
        parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def import_graph() -> dict[str, set[str]]:
    """``{module: modules of berthcache it imports}`` for every module under src/berthcache and
    of the suite (as ``berthcache.conformance``)."""
    files = {_module_name(p): p for p in [*PACKAGE.rglob("*.py"), *SUITE.rglob("*.py")]}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, is_package, node)
                # "from pkg import mod" imports the submodule when there is one.
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base
                    for alias in node.names
                ]
            for target in targets:
                # "import a.b.c" depends on a.b.c; keep the longest known module name.
                while target and target not in files:
                    target = target.rpartition(".")[0]
                if target and target != name and target.startswith("berthcache"):
                    graph[name].add(target)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_the_cycle_finder_sees_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_in_the_package() -> None:
    cycles = find_cycles(import_graph())
    assert not cycles, (
        "import cycles (type-checking and function-level imports count):\n"
        + "\n".join(" <-> ".join(cycle) for cycle in cycles)
    )


def test_the_cache_module_imports_neither_ops_nor_testing() -> None:
    """The layers point down: testing, ops and web use the cache module, never the reverse
    (and the cache module never needs Starlette)."""
    graph = import_graph()
    upper = ("berthcache.ops", "berthcache.testing", "berthcache.web", "berthcache.observability")
    for module, imports in graph.items():
        if module.startswith((*upper, "berthcache.conformance")):
            continue
        wrong = sorted(i for i in imports if i.startswith(upper))
        assert not wrong, f"{module} imports {wrong}"


def package_of(module: str) -> str:
    return next(p for p in PACKAGES if module == p or module.startswith(p + "."))


def is_private(module: str) -> bool:
    return any(part.startswith("_") for part in module.split(".")[1:])


def private_imports_across_packages(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    """``(importer, imported)`` where ``imported`` is another package's underscore module."""
    return {
        (module, imported)
        for module, imports in graph.items()
        for imported in imports
        if is_private(imported) and package_of(imported) != package_of(module)
    }


def allowed_private_imports(text: str) -> set[tuple[str, str]]:
    """The pairs docs/architecture.md lists under ALLOWED_HEADING, one bullet per importer
    group: ``- `a`, `b` → `c`, `d`: why``."""
    assert ALLOWED_HEADING in text, f"docs/architecture.md lost its {ALLOWED_HEADING!r} section"
    section = text.split(ALLOWED_HEADING, 1)[1].split("\n#", 1)[0]
    pairs: set[tuple[str, str]] = set()
    for line in section.splitlines():
        if not line.startswith("- ") or "→" not in line:
            continue
        left, right = line.split("→", 1)
        right = right.split("`: ", 1)[0] + "`"
        names = re.compile(r"`(berthcache[\w.]*)`")
        pairs |= {(a, b) for a in names.findall(left) for b in names.findall(right)}
    return pairs


def test_the_private_import_rule_sees_a_violation() -> None:
    graph = {
        "berthcache.testing.plugin": {"berthcache._config", "berthcache.testing._harness"},
        "berthcache.ops._rotate": {"berthcache.ops._errors", "berthcache"},
    }
    assert private_imports_across_packages(graph) == {
        ("berthcache.testing.plugin", "berthcache._config")
    }
    doc = f"{ALLOWED_HEADING}\n\n- `berthcache.x`, `berthcache.y` → `berthcache._z`: why `a`\n"
    assert allowed_private_imports(doc) == {
        ("berthcache.x", "berthcache._z"),
        ("berthcache.y", "berthcache._z"),
    }


def test_no_package_imports_another_packages_private_module_unless_listed() -> None:
    """Packages meet through public names; the few exceptions are listed, with why, in
    docs/architecture.md — and the list holds nothing that no longer happens."""
    found = private_imports_across_packages(import_graph())
    allowed = allowed_private_imports(ARCHITECTURE.read_text(encoding="utf-8"))
    assert sorted(found - allowed) == [], (
        "import a public name instead, or list the exception (with why) under "
        f"{ALLOWED_HEADING!r} in docs/architecture.md"
    )
    assert sorted(allowed - found) == [], "docs/architecture.md lists imports that no longer exist"


def test_every_package_under_src_ships_in_the_wheel() -> None:
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {_module_name(p) for p in PACKAGE.rglob("__init__.py")}
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert "berthcache.conformance" in listed


def test_no_file_refers_outside_the_repository() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    outside = "../" + "shared"  # spelled in two parts so this file does not match itself
    offenders = [
        name
        for name in tracked
        if (ROOT / name).is_file() and outside in (ROOT / name).read_text(errors="replace")
    ]
    assert offenders == []


@pytest.mark.parametrize(
    ("home", "libraries"),
    [
        ("berthcache.web", ("starlette", "fastapi")),
        ("berthcache.observability", ("prometheus_client", "opentelemetry")),
    ],
)
def test_only_the_extras_package_imports_its_libraries(
    home: str, libraries: tuple[str, ...]
) -> None:
    """Starlette and FastAPI are the ``web`` extra's, prometheus-client and OpenTelemetry the
    ``prometheus`` / ``otel`` extras': the cache module (``health_app`` included, a plain ASGI
    callable), ``berthcache.caching``, ops and testing never need them."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if _module_name(path).startswith(home):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            if any(n.split(".")[0] in libraries for n in names):
                offenders.append(_module_name(path))
    assert offenders == []
