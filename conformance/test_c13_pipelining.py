"""C13 Pipelining: bulk operations go to Redis in one round trip and come back parsed."""

from __future__ import annotations

from typing import Any

import pytest

from .support import AnyCache, aw, record_sends, run_pipeline

pytestmark = [pytest.mark.clause("C13"), pytest.mark.asyncio]


async def test_bulk_results_in_order(cache: AnyCache) -> None:
    def fill(p: Any) -> None:
        for n in range(50):
            p.set(f"bulk:{n}", {"n": n}, ttl=60)
        for n in range(50):
            p.get(f"bulk:{n}", parse_json=True)
        p.exists("bulk:0")
        p.ttl("bulk:0")
        p.incr("bulk:count", 3)
        p.delete("bulk:1", "bulk:2")

    results = await run_pipeline(cache, fill)
    assert results[:50] == [True] * 50
    assert results[50:100] == [{"n": n} for n in range(50)]
    assert results[100] is True
    assert 55 <= results[101] <= 60
    assert results[102:] == [3, 2]
    assert await aw(cache.get("bulk:3", parse_json=True)) == {"n": 3}  # keys are prefixed


async def test_transaction(cache: AnyCache) -> None:
    def fill(p: Any) -> None:
        p.incr("tx:a")
        p.incr("tx:a")
        p.get("tx:a")

    assert await run_pipeline(cache, fill, transaction=True) == [1, 2, "2"]


async def test_one_round_trip(cache: AnyCache, monkeypatch: pytest.MonkeyPatch) -> None:
    """Count the writes to the socket that carry our commands: the whole batch is one."""
    await aw(cache.ping())  # connect (and authenticate) first
    marker = cache.config.key_prefix.encode()
    sends = record_sends(cache, monkeypatch, marker)

    def fill(p: Any) -> None:
        for n in range(100):
            p.set(f"rt:{n}", n)

    results = await run_pipeline(cache, fill)
    assert results == [True] * 100
    counts = [blob.count(marker) for blob in sends]
    if cache.config.cluster:
        # One write per node (the batch split by hash slot), all 100 commands among them.
        assert sum(counts) == 100, counts
        assert len(counts) <= 3, f"expected at most one write per primary, got {counts}"
    else:
        assert counts == [100], f"expected one write carrying all 100 commands, got {counts}"
