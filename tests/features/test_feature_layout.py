"""Feature modules share helpers through one home each, never through each other.

Key-part checks and reply text live in ``_parts``, the protocol of the client in ``_host``, the
Lua loader in ``_scripts``; a feature importing another feature (as the rate limiter once took
``check_part`` from sessions) fails here, by name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import berthcache

PACKAGE = Path(berthcache.__file__).parent
FEATURES = {"_sessions", "_responses", "_ratelimit", "_presence", "_pubsub"}
SHARED_HOMES = {"_parts", "_host", "_scripts"}


def imported_modules(name: str) -> set[str]:
    """The ``berthcache._x`` modules ``name`` imports, wherever the import sits."""
    tree = ast.parse((PACKAGE / f"{name}.py").read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("berthcache."):
            found.add((node.module or "").removeprefix("berthcache."))
        elif isinstance(node, ast.Import):
            found |= {a.name.removeprefix("berthcache.") for a in node.names}
    return found


def test_no_feature_imports_another_feature() -> None:
    for name in sorted(FEATURES):
        others = imported_modules(name) & (FEATURES - {name})
        assert not others, f"{name} imports {sorted(others)}: move the shared helper out"


def test_features_take_shared_helpers_from_their_homes() -> None:
    for name in sorted(FEATURES):
        assert "_host" in imported_modules(name), f"{name} does not use _host.CacheHost"
    for home in sorted(SHARED_HOMES):
        assert not imported_modules(home) & FEATURES, f"{home} imports a feature"
    assert "_scripts" in imported_modules("_ratelimit")
    assert "_scripts" in imported_modules("_responses")
