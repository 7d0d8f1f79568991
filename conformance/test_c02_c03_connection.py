"""C2 connection and retry (the seed's schedule — ``REDIS_RETRY_STRATEGY=exponential``: 50, 100,
150 … ms capped at 2000 ms — bounded retries per command, recovery after a restart) and C3
connection events (connect, ready, error, close, reconnecting, end)."""

from __future__ import annotations

from typing import Any

import pytest

from berthcache import CacheConfig, CacheUnavailableError, retry_schedule

from .support import (
    WAIT,
    CacheFactory,
    aw,
    config_environ,
    dead_port,
    elapsed,
    server_config,
    start_server,
)

pytestmark = pytest.mark.asyncio


class Recorder:
    """Every connection event a client emits, in order."""

    def __init__(self, cache: Any) -> None:
        self.events: list[Any] = []
        for name in ("connect", "ready", "error", "close", "reconnecting", "end"):
            cache.events.on(name, self.events.append)

    def names(self) -> list[str]:
        return [e.name for e in self.events]

    def delays(self) -> list[float]:
        return [e.details["delay_ms"] for e in self.events if e.name == "reconnecting"]

    def attempts(self) -> list[int]:
        return [e.details["attempt"] for e in self.events if e.name == "reconnecting"]


@pytest.fixture
def down(conf: CacheConfig) -> CacheConfig:
    """Settings pointing at a local port where nothing listens, with short timeouts."""
    return conf.replace(
        host="127.0.0.1",
        port=dead_port(),
        tls=False,
        tls_ca_file=None,
        connect_timeout=0.5,
        socket_timeout=0.5,
    )


@pytest.mark.clause("C2")
async def test_default_backoff_is_the_seeds_50ms_steps(
    cache_factory: CacheFactory, down: CacheConfig
) -> None:
    cache = cache_factory(down, max_retries_per_request=3)
    events = Recorder(cache)
    with elapsed() as took, pytest.raises(CacheUnavailableError):
        await aw(cache.get("k"))
    assert events.attempts() == [1, 2, 3]
    assert events.delays() == [50, 100, 150]
    # The waits really happened, and the command gave up instead of retrying forever.
    assert 0.29 <= took[0] < WAIT


@pytest.mark.clause("C2")
async def test_backoff_is_capped(cache_factory: CacheFactory, down: CacheConfig) -> None:
    cache = cache_factory(
        down, max_retries_per_request=5, retry_base_delay_ms=10, retry_max_delay_ms=25
    )
    events = Recorder(cache)
    with pytest.raises(CacheUnavailableError):
        await aw(cache.get("k"))
    assert events.delays() == [10, 20, 25, 25, 25]


def seed_delay_ms(attempt: int) -> int:
    """The seed's documented delay before retry ``attempt``: 50 ms per attempt, capped."""
    return min(50 * attempt, 2000)


@pytest.mark.clause("C2")
@pytest.mark.not_twinned(reason="the retry schedule is computed from config, no client")
async def test_default_schedule_reaches_the_2000ms_cap() -> None:
    # The documented schedule: 50, 100, 150 ... capped at 2000 ms, as the public function says.
    schedule = retry_schedule("exponential", 45)
    assert [d.min_ms for d in schedule] == [seed_delay_ms(n) for n in range(1, 46)]
    assert all(d.exact for d in schedule)
    assert schedule[39].min_ms == 2000
    assert retry_schedule("linear", 45) == schedule  # another name for the same schedule


@pytest.mark.clause("C1", "C2")
async def test_the_seeds_env_gives_the_seeds_schedule(
    cache_factory: CacheFactory, down: CacheConfig
) -> None:
    # The seed's .env: REDIS_RETRY_STRATEGY=exponential  # 50ms -> 2000ms
    env = config_environ(down) | {
        "REDIS_RETRY_STRATEGY": "exponential",
        "REDIS_MAX_RETRIES_PER_REQUEST": "3",
    }
    cache = cache_factory(CacheConfig.from_env(env, key_prefix=down.key_prefix))
    events = Recorder(cache)
    with pytest.raises(CacheUnavailableError):
        await aw(cache.get("k"))
    # Three retries tell the seed's min(50 n, 2000) from doubling: 50, 100, then 150 (not 200).
    assert events.delays() == [50, 100, 150]
    assert events.delays() == [seed_delay_ms(n) for n in (1, 2, 3)]


@pytest.mark.clause("C1", "C2")
async def test_jittered_exponential_has_its_own_name(
    cache_factory: CacheFactory, down: CacheConfig
) -> None:
    env = config_environ(down) | {
        "REDIS_RETRY_STRATEGY": "exponential-jitter",
        "REDIS_MAX_RETRIES_PER_REQUEST": "2",
    }
    cache = cache_factory(CacheConfig.from_env(env, key_prefix=down.key_prefix))
    events = Recorder(cache)
    with pytest.raises(CacheUnavailableError):
        await aw(cache.get("k"))
    bands = [(d.min_ms, d.max_ms) for d in retry_schedule("exponential-jitter", 2)]
    assert bands == [(25, 50), (50, 100)]
    delays = events.delays()
    assert len(delays) == 2
    assert all(lo <= d <= hi for d, (lo, hi) in zip(delays, bands, strict=True)), delays


@pytest.mark.clause("C2")
async def test_zero_retries_fails_fast(cache_factory: CacheFactory, down: CacheConfig) -> None:
    cache = cache_factory(down, max_retries_per_request=0)
    events = Recorder(cache)
    with elapsed() as took, pytest.raises(CacheUnavailableError) as info:
        await aw(cache.get("k"))
    assert events.delays() == []
    assert took[0] < 2.0
    # The error explains itself.
    assert "unreachable" in str(info.value).lower()


@pytest.mark.clause("C2", "C3")
async def test_recovers_after_server_restart(
    cache_factory: CacheFactory, conf: CacheConfig, local_redis_factory: Any
) -> None:
    server = start_server(local_redis_factory)  # restarting the shared target is not ours to do
    cache = cache_factory(server_config(server, conf))
    events = Recorder(cache)
    await aw(cache.set("c2:before", "1", ttl=60))
    server.restart()
    # The pooled connection died with the server; the next command reconnects transparently.
    assert await aw(cache.get("c2:before")) == "1"  # AOF brought the data back
    names = events.names()
    assert names.count("ready") >= 2, names


@pytest.mark.clause("C3")
async def test_connect_and_ready_on_first_command(cache_factory: CacheFactory) -> None:
    cache = cache_factory()
    events = Recorder(cache)
    await aw(cache.ping())
    names = events.names()
    assert "connect" in names
    assert "ready" in names
    assert names.index("connect") < names.index("ready")
    assert "error" not in names


@pytest.mark.clause("C3")
async def test_close_and_end_on_close(cache_factory: CacheFactory) -> None:
    cache = cache_factory()
    events = Recorder(cache)
    await aw(cache.ping())
    await aw(cache.close())
    names = events.names()
    assert "close" in names
    assert names[-1] == "end"
    assert names.count("end") == 1
    await aw(cache.close())  # idempotent: no second "end"
    assert events.names().count("end") == 1


@pytest.mark.clause("C3")
async def test_error_and_reconnecting_when_unreachable(
    cache_factory: CacheFactory, down: CacheConfig
) -> None:
    cache = cache_factory(down, max_retries_per_request=2)
    events = Recorder(cache)
    with pytest.raises(CacheUnavailableError):
        await aw(cache.get("k"))
    names = events.names()
    assert "error" in names
    assert names.count("reconnecting") == 2
    assert "ready" not in names


@pytest.mark.clause("C3")
async def test_events_never_carry_the_password(
    cache_factory: CacheFactory, down: CacheConfig
) -> None:
    secret = "pw-" + "Lq8v" * 5
    cache = cache_factory(down, password=secret, max_retries_per_request=1)
    events = Recorder(cache)
    with pytest.raises(CacheUnavailableError) as info:
        await aw(cache.get("k"))
    assert secret not in str(info.value)
    for event in events.events:
        assert secret not in repr(event)
