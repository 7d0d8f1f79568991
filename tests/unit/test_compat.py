"""The seed's module-level functions (berthcache.compat) over one process-wide client."""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from typing import Any

import pytest

import berthcache
from berthcache import compat


@pytest.fixture
def initialized(config: Any) -> Iterator[berthcache.Cache]:
    client = compat.initialize_cache(config)
    yield client
    compat.close_cache()


def test_not_initialized_is_its_own_error_and_says_what_to_call() -> None:
    compat.close_cache()
    with pytest.raises(berthcache.CacheNotInitializedError, match=r"compat\.initialize_cache"):
        compat.get("k")
    with pytest.raises(berthcache.CacheNotInitializedError):
        compat.get_client()
    assert not issubclass(berthcache.CacheNotInitializedError, berthcache.CacheClosedError)
    assert compat.check_health() == {"healthy": False, "latency": None}


def test_a_star_import_of_compat_shadows_no_builtin() -> None:
    assert set(compat.__all__) & set(dir(builtins)) == set()
    namespace: dict[str, Any] = {}
    exec("from berthcache.compat import *", namespace)  # noqa: S102 - the star import itself
    assert "set" not in namespace
    assert "initialize_cache" in namespace
    assert callable(compat.set)  # still reachable by its seed name


def test_compat_lists_every_function_it_defines_but_set() -> None:
    functions = {
        name
        for name, value in vars(compat).items()
        if callable(value)
        and getattr(value, "__module__", "") == "berthcache.compat"
        and not name.startswith("_")
    }
    assert functions - set(compat.__all__) == {"set"}


def test_seed_functions(initialized: berthcache.Cache) -> None:
    assert compat.get_client() is initialized
    compat.set("k", {"a": 1}, 60)
    assert compat.get("k", True) == {"a": 1}
    assert compat.exists("k") is True
    assert compat.expire("k", 30) is True
    assert 0 < compat.ttl("k") <= 30
    assert compat.delete("k") == 1
    health = compat.check_health()
    assert health["healthy"] is True
    assert health["latency"] > 0

    session_id = compat.create_session("42", {"role": "nurse"})
    assert session_id.startswith("user-42-session-")
    session = compat.get_session(session_id)
    assert session is not None
    assert session["role"] == "nurse"
    assert compat.invalidate_session(session_id) is True
    assert compat.get_session(session_id) is None

    compat.cache_api_response("clients:list", "42", [1, 2])
    assert compat.get_cached_api_response("clients:list", "42") == [1, 2]
    assert compat.invalidate_api_cache("clients:list") == 1

    assert all(compat.check_rate_limit("10.0.0.1", "login", limit=2) for _ in range(2))
    assert compat.check_rate_limit("10.0.0.1", "login", limit=2) is False

    compat.update_presence("42")
    assert compat.is_user_online("42") is True
    assert compat.publish("alerts", {"x": 1}) == 0


def test_initialize_again_closes_the_old_client(initialized: berthcache.Cache, config: Any) -> None:
    newer = compat.initialize_cache(config)
    assert initialized.closed
    assert compat.get_client() is newer
