"""The seed's module-level functions over one process-wide client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import berthcache
from berthcache._exceptions import CacheClosedError


@pytest.fixture
def initialized(config: Any) -> Iterator[berthcache.Cache]:
    client = berthcache.initialize_cache(config)
    yield client
    berthcache.close_cache()


def test_not_initialized_is_explained() -> None:
    berthcache.close_cache()
    with pytest.raises(CacheClosedError, match="initialize_cache"):
        berthcache.get("k")
    assert berthcache.check_health() == {"healthy": False, "latency": None}


def test_seed_functions(initialized: berthcache.Cache) -> None:
    assert berthcache.get_client() is initialized
    berthcache.set("k", {"a": 1}, 60)
    assert berthcache.get("k", True) == {"a": 1}
    assert berthcache.exists("k") is True
    assert berthcache.expire("k", 30) is True
    assert 0 < berthcache.ttl("k") <= 30
    assert berthcache.delete("k") == 1
    health = berthcache.check_health()
    assert health["healthy"] is True
    assert health["latency"] > 0

    session_id = berthcache.create_session("42", {"role": "nurse"})
    assert session_id.startswith("user-42-session-")
    session = berthcache.get_session(session_id)
    assert session is not None
    assert session["role"] == "nurse"
    assert berthcache.invalidate_session(session_id) is True
    assert berthcache.get_session(session_id) is None

    berthcache.cache_api_response("clients:list", "42", [1, 2])
    assert berthcache.get_cached_api_response("clients:list", "42") == [1, 2]
    assert berthcache.invalidate_api_cache("clients:list") == 1

    assert all(berthcache.check_rate_limit("10.0.0.1", "login", limit=2) for _ in range(2))
    assert berthcache.check_rate_limit("10.0.0.1", "login", limit=2) is False

    berthcache.update_presence("42")
    assert berthcache.is_user_online("42") is True
    assert berthcache.publish("alerts", {"x": 1}) == 0


def test_initialize_again_closes_the_old_client(initialized: berthcache.Cache, config: Any) -> None:
    newer = berthcache.initialize_cache(config)
    assert initialized.closed
    assert berthcache.get_client() is newer
