"""The transport contract (src/berthcache/_transport.py), checked on every transport against a
real redis-server: raw replies, error replies as redis-py exceptions, batches and transactions,
budgets, retries, events, close — and that no secret shows.

Each test body runs once per transport through :class:`Driver`, which awaits the asyncio ones;
a new transport joins the contract by being added to ``SYNC`` or ``ASYNC`` below.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio
import redis.exceptions as rex

from berthcache._budget import Budget, BudgetExceededError
from berthcache._config import CacheConfig
from berthcache._events import ConnectionEvent, ConnectionEvents
from berthcache._lean import LeanTransport
from berthcache._mux import AsyncMultiplexer
from berthcache._transport import (
    AsyncPooledTransport,
    PooledTransport,
    parse_error,
    raise_first_error,
)
from berthcache.testing import RedisServer
from tests.unit.support import config_for

#: The transports under contract: constructible as ``X(config, events)``.
SYNC: list[type] = [LeanTransport, PooledTransport]
ASYNC: list[type] = [AsyncMultiplexer, AsyncPooledTransport]
KINDS = [*SYNC, *ASYNC]
SLACK = 0.15


class Driver:
    """One transport, its events and config; ``call`` / ``batch`` / ``close`` awaitable for both
    kinds (a sync transport blocks the loop: fine in a test that runs nothing else)."""

    def __init__(self, kind: type, config: CacheConfig) -> None:
        self.config = config
        self.events = ConnectionEvents(config.url, secrets=[config.password])
        self.seen: list[ConnectionEvent] = []
        for name in ("connect", "ready", "error", "close", "reconnecting"):
            self.events.on(name, self.seen.append)
        self.transport = kind(config, self.events)
        self.is_async = kind in ASYNC

    async def call(self, *args: Any, budget: Budget | None = None) -> Any:
        result = self.transport.call(args, budget=budget)
        return await result if self.is_async else result

    async def batch(
        self, *commands: tuple[Any, ...], transaction: bool = False, budget: Budget | None = None
    ) -> list[Any]:
        result = self.transport.batch(commands, transaction=transaction, budget=budget)
        return await result if self.is_async else result  # type: ignore[no-any-return]

    async def close(self) -> None:
        if self.is_async:
            await self.transport.aclose()
        else:
            self.transport.close()

    def names(self) -> list[str]:
        return [event.name for event in self.seen]


@pytest_asyncio.fixture(params=KINDS, ids=lambda kind: kind.__name__)
async def driver(request: pytest.FixtureRequest, config: CacheConfig) -> AsyncIterator[Driver]:
    made = Driver(request.param, config)
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture(params=KINDS, ids=lambda kind: kind.__name__)
def kind(request: pytest.FixtureRequest) -> type:
    return request.param  # type: ignore[no-any-return]


def key(driver: Driver, name: str) -> str:
    return f"{driver.config.key_prefix}{name}"


# -- replies --------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_replies_are_raw_and_decoded(driver: Driver) -> None:
    k, n = key(driver, "text"), key(driver, "n")
    assert await driver.call("SET", k, "héllo ✓", "EX", 300) == "OK"
    assert await driver.call("GET", k) == "héllo ✓"
    assert await driver.call("GET", key(driver, "missing")) is None
    assert await driver.call("EXISTS", k) == 1
    assert await driver.call("INCRBY", n, 5) == 5
    assert await driver.call("SET", n, 2.5) == "OK"
    assert await driver.call("GET", n) == "2.5"
    assert await driver.call("MGET", k, key(driver, "missing")) == ["héllo ✓", None]
    assert await driver.call("SET", k, b"bytes") == "OK"
    assert await driver.call("GET", k) == "bytes"
    assert await driver.call("PING") == "PONG"
    assert await driver.call("TTL", key(driver, "n")) == -1  # no expiry


@pytest.mark.asyncio
async def test_an_error_reply_raises_its_redis_py_class_and_the_connection_stays_usable(
    driver: Driver,
) -> None:
    k = key(driver, "text")
    await driver.call("SET", k, "not a number")
    with pytest.raises(rex.ResponseError, match="not an integer"):
        await driver.call("INCRBY", k, 1)
    with pytest.raises(rex.NoScriptError):
        await driver.call("EVALSHA", "0" * 40, 0)
    assert await driver.call("GET", k) == "not a number"  # in step: its own reply


def test_error_replies_map_to_redis_py_classes() -> None:
    assert isinstance(parse_error("NOSCRIPT No matching script."), rex.NoScriptError)
    assert isinstance(parse_error("READONLY You can't write against a replica."), rex.ReadOnlyError)
    assert isinstance(parse_error("NOAUTH Authentication required."), rex.AuthenticationError)
    wrongpass = parse_error("WRONGPASS invalid username-password pair")
    assert isinstance(wrongpass, rex.AuthenticationError)
    assert isinstance(parse_error("OOM command not allowed"), rex.OutOfMemoryError)
    assert isinstance(parse_error("EXECABORT Transaction discarded."), rex.ExecAbortError)
    assert type(parse_error("ERR unknown command")) is rex.ResponseError


# -- batches --------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_batch_returns_replies_in_order_with_errors_as_instances(driver: Driver) -> None:
    k = key(driver, "b")
    replies = await driver.batch(
        ("SET", k, "secret-value"), ("INCRBY", k, 1), ("GET", k), ("EXISTS", k)
    )
    assert replies[0] == "OK"
    assert isinstance(replies[1], rex.ResponseError)
    assert replies[2:] == ["secret-value", 1]
    with pytest.raises(rex.ResponseError) as info:
        raise_first_error(replies, [("SET", k, "secret-value"), ("INCRBY", k, 1)])
    assert str(info.value).startswith("Command # 2 (INCRBY) of pipeline caused error: ")
    assert "secret-value" not in str(info.value)
    assert k not in str(info.value)
    with pytest.raises(rex.ResponseError) as again:  # named once, however often raised
        raise_first_error(replies, [("SET", k, "secret-value"), ("INCRBY", k, 1)])
    assert str(again.value).count("Command # ") == 1
    assert await driver.batch() == []
    assert await driver.call("GET", k) == "secret-value"


@pytest.mark.asyncio
async def test_a_transaction_returns_exec_s_list(driver: Driver) -> None:
    k, s = key(driver, "t"), key(driver, "set")
    replies = await driver.batch(
        ("SET", k, "text", "EX", 60),
        ("SADD", s, "a", "b"),
        ("EXPIRE", s, 60, "NX"),
        ("INCRBY", k, 1),  # fails when EXEC runs it: an instance in EXEC's list
        transaction=True,
    )
    assert replies[:3] == ["OK", 2, 1]
    assert isinstance(replies[3], rex.ResponseError)
    assert await driver.call("GET", k) == "text"


@pytest.mark.asyncio
async def test_a_refused_queued_command_aborts_the_transaction(driver: Driver) -> None:
    """EXECABORT: nothing of the transaction ran; the refused command's error is raised,
    named by position and command only."""
    k = key(driver, "aborted")
    with pytest.raises(rex.ResponseError) as info:
        await driver.batch(("SET", k, "v"), ("SET", k), transaction=True)  # wrong arity
    assert "Command # 2 (SET)" in str(info.value)
    assert await driver.call("EXISTS", k) == 0
    assert await driver.call("PING") == "PONG"  # the connection is back in step


# -- budgets, retries, events ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_budget_bounds_the_whole_call_and_the_connection_stays_in_step(
    kind: type, server_factory: Callable[..., RedisServer]
) -> None:
    server = server_factory()
    driver = Driver(kind, config_for(server))
    budget = Budget(200, "rate_limit_timeout_ms")
    n = key(driver, "count")
    try:
        assert await driver.call("INCRBY", n, 1, budget=budget) == 1
        with server.paused():
            start = time.perf_counter()
            with pytest.raises(BudgetExceededError, match="200 ms"):
                await driver.call("INCRBY", n, 1, budget=budget)
            assert time.perf_counter() - start <= 0.2 + SLACK
            with pytest.raises(BudgetExceededError):
                await driver.batch(("INCRBY", n, 1), transaction=True, budget=budget)
        # The replies the paused server owed must not reach the next callers. (The commands it
        # had received may still have run once it resumed: the count may be 1 to 3 here.)
        base = await driver.call("INCRBY", n, 0)
        assert base in (1, 2, 3)
        for step in (1, 2, 3):
            assert await driver.call("INCRBY", n, 1, budget=budget) == base + step
            assert await driver.call("GET", n) == str(base + step)
    finally:
        await driver.close()


@pytest.mark.asyncio
async def test_a_refused_connection_within_a_budget_raises_as_is(kind: type) -> None:
    """No server on the port: an answer in time (refused), not the budget running out."""
    driver = Driver(kind, CacheConfig(host="127.0.0.1", port=9, max_retries_per_request=3))
    try:
        with pytest.raises(rex.ConnectionError) as info:
            await driver.call("PING", budget=Budget(1000, "health_timeout_ms"))
        assert not isinstance(info.value, BudgetExceededError)
        assert "reconnecting" not in driver.names()  # one attempt, no retries
    finally:
        await driver.close()


@pytest.mark.asyncio
async def test_without_a_budget_a_dead_server_is_retried_on_the_schedule(
    kind: type, server_factory: Callable[..., RedisServer]
) -> None:
    server = server_factory()
    driver = Driver(kind, config_for(server, max_retries_per_request=2, retry_base_delay_ms=10))
    try:
        assert await driver.call("PING") == "PONG"
        server.stop()
        with pytest.raises(rex.ConnectionError):
            await driver.call("PING")
        attempts = [e.details["attempt"] for e in driver.seen if e.name == "reconnecting"]
        assert attempts == [1, 2]
        server.restart()
        assert await driver.call("PING") == "PONG"  # reconnects by itself
    finally:
        await driver.close()


@pytest.mark.asyncio
async def test_connections_open_lazily_and_report_their_events(kind: type, config: Any) -> None:
    driver = Driver(kind, config)
    try:
        assert driver.names() == []  # nothing dialled at construction
        assert await driver.call("PING") == "PONG"
        assert driver.names()[:2] == ["connect", "ready"]
    finally:
        await driver.close()
    assert driver.names()[-1] == "close"


def test_no_secret_in_a_transport_repr(kind: type, server_factory: Any) -> None:
    secret = "transport-" + "s3cr3t-pw"
    server = server_factory(password=secret)
    transport = kind(config_for(server), ConnectionEvents("redis://x", secrets=[secret]))
    assert secret not in repr(transport)
