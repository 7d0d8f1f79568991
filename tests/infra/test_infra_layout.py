"""The layout docs/platform.md describes ("Inside infra/"), checked on the source: components
know only their own args, the settings machinery knows no component, and infra/ uses only the
public modules of berthcache."""

from __future__ import annotations

import ast

import pytest

from infra.offline import REPO_ROOT

INFRA = REPO_ROOT / "infra"

# Module -> the infra modules it may import. program.py is the one place that sees them all.
ALLOWED = {
    "infra.settings": set(),
    "infra.cidrs": set(),
    "infra.config": {"infra.cidrs", "infra.settings"},
    "infra.network": set(),
    "infra.security": set(),
    "infra.cache": {"infra.network"},  # CACHE_PORT
    "infra.serverless": {"infra.network"},  # CACHE_PORT
    "infra.alarms": set(),
    "infra.program": {
        "infra.alarms",
        "infra.cache",
        "infra.config",
        "infra.network",
        "infra.security",
        "infra.serverless",
    },
}


def _imports(path_name: str) -> set[str]:
    tree = ast.parse((INFRA / path_name).read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):  # function-level and TYPE_CHECKING imports count too
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("module", sorted(ALLOWED))
def test_module_imports_only_what_the_layout_allows(module: str) -> None:
    infra_imports = {m for m in _imports(module.split(".")[1] + ".py") if m.startswith("infra")}
    assert infra_imports <= ALLOWED[module], infra_imports - ALLOWED[module]


def test_infra_uses_only_public_berthcache_modules() -> None:
    for path in sorted(INFRA.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            for name in names:
                if name.startswith("berthcache"):
                    private = [part for part in name.split(".") if part.startswith("_")]
                    assert not private, f"{path.relative_to(REPO_ROOT)} imports {name}"
