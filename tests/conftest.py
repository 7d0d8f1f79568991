"""Fixtures shared by tests in several folders."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from berthcache.testing._cluster import LocalCluster
from berthcache.testing._server import find_redis_server


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """A local Redis Cluster (3 primaries x 1 replica, TLS, ACL users) for the test module."""
    try:
        find_redis_server()
    except Exception as exc:  # pragma: no cover - the README's commands install it
        pytest.skip(f"needs redis-server >= 7: {exc}")
    with LocalCluster() as group:
        yield group
