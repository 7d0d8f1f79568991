"""The asyncio transport (issue 10): many tasks over one shared connection, against real servers.

Each test checks what a caller would notice: the right reply for each caller, errors as
redis-py's classes, the connection kept in step after timeouts and cancellations, retries and
reconnects on the configured schedule with the same events as before, a drained close, a bound
on queued commands, one event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis
import redis.exceptions as rex

from berthcache._budget import Budget, BudgetExceededError
from berthcache._config import CacheConfig
from berthcache._events import ConnectionEvent, ConnectionEvents
from berthcache._exceptions import CacheClosedError, ConfigurationError
from berthcache._mux import AsyncMultiplexer
from berthcache.testing import LocalRedis, RedisServer, TLSFiles
from berthcache.testing._server import ACLUser, app_user_rules, free_port, wait_for
from tests.unit.support import config_for

SLACK = 0.15
#: How early a loop's timer may fire by perf_counter's clock (uvloop: millisecond ticks).
CLOCK_TICK = 0.005
SECRET = "mux-s3cr3t-never-shown"


def make(config: CacheConfig) -> tuple[AsyncMultiplexer, list[ConnectionEvent]]:
    events = ConnectionEvents(config.url, secrets=[config.password])
    seen: list[ConnectionEvent] = []
    for name in ("connect", "ready", "error", "close", "reconnecting", "end"):
        events.on(name, seen.append)
    return AsyncMultiplexer(config, events), seen


def names(seen: list[ConnectionEvent]) -> list[str]:
    return [e.name for e in seen]


@contextlib.asynccontextmanager
async def opened(config: CacheConfig) -> AsyncIterator[tuple[AsyncMultiplexer, list[Any]]]:
    mux, seen = make(config)
    try:
        yield mux, seen
    finally:
        await mux.aclose()


async def until(check: Callable[[], bool], within: float = 5.0) -> None:
    """Let the loop run until ``check()`` holds (internal state; nothing to await)."""
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.001)


def clients_named(server: RedisServer, name: str) -> int:
    admin = server.client()
    try:
        return sum(1 for c in admin.client_list() if c.get("name") == name)
    finally:
        admin.close()


# -- replies and errors ------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_replies_are_decoded_and_error_replies_raise_redis_py_classes(
    config: CacheConfig,
) -> None:
    key = f"{config.key_prefix}k"
    async with opened(config) as (mux, _):
        assert await mux.call(("SET", key, "välue", "EX", 60)) == "OK"
        assert await mux.call(("GET", key)) == "välue"
        assert await mux.call(("GET", f"{config.key_prefix}missing")) is None
        assert await mux.call(("INCRBYFLOAT", f"{config.key_prefix}f", 1.5)) == "1.5"
        assert await mux.call(("RPUSH", f"{config.key_prefix}l", b"a", 2)) == 2
        assert await mux.call(("LRANGE", f"{config.key_prefix}l", 0, -1)) == ["a", "2"]
        with pytest.raises(rex.ResponseError, match="WRONGTYPE"):
            await mux.call(("INCR", f"{config.key_prefix}l"))
        with pytest.raises(rex.NoScriptError):
            await mux.call(("EVALSHA", "0" * 40, 0))
        with pytest.raises(rex.DataError, match="NoneType"):
            await mux.call(("SET", key, None))
        for needs_its_own in (("SUBSCRIBE", "c"), ("blpop", key, 0), ("SELECT", 1)):
            with pytest.raises(rex.DataError, match="connection of its own"):
                await mux.call(needs_its_own)
        with pytest.raises(rex.DataError, match="MULTI"):
            await mux.batch([("MULTI",), ("GET", key), ("EXEC",)])
        assert await mux.call(("GET", key)) == "välue", "still in step after every error"


@pytest.mark.asyncio
async def test_concurrent_callers_share_one_connection_and_each_gets_its_own_reply(
    redis_server: RedisServer,
) -> None:
    config = config_for(redis_server, client_name="bc-mux-share")
    async with opened(config) as (mux, seen):
        keys = [f"{config.key_prefix}{i}" for i in range(500)]
        await asyncio.gather(*(mux.call(("SET", k, f"value-{i}")) for i, k in enumerate(keys)))
        got = await asyncio.gather(*(mux.call(("GET", k)) for k in keys))
        assert got == [f"value-{i}" for i in range(500)]
        assert clients_named(redis_server, "bc-mux-share") == 1
        assert names(seen) == ["connect", "ready"]


@pytest.mark.asyncio
async def test_a_burst_goes_out_in_chunks_redis_can_start_on_and_a_batch_never_splits(
    config: CacheConfig,
) -> None:
    """100 callers in one tick: written in chunks of at most 32 commands (``flush_at``: Redis
    starts on the first while the rest are still being queued), each caller its own reply; a
    pipeline of 100 commands queued among them is still one write."""
    marker = config.key_prefix.encode()
    async with opened(config) as (mux, _):
        await mux.call(("PING",))  # connected: the burst is all that is written below
        writes: list[bytes] = []
        mux.observe_writes(writes.append)
        keys = [f"{config.key_prefix}burst:{i}" for i in range(100)]
        batch = [("INCR", f"{config.key_prefix}burst:batch")] * 100
        replies = await asyncio.gather(
            *(mux.call(("SET", k, i)) for i, k in enumerate(keys[:50])),
            mux.batch(batch),
            *(mux.call(("SET", k, i)) for i, k in enumerate(keys[50:], 50)),
        )
        assert replies[:50] == ["OK"] * 50
        assert replies[51:] == ["OK"] * 50
        assert replies[50] == list(range(1, 101))
        in_batch = [w.count(b"burst:batch") for w in writes]
        singles = [w.count(marker) - n for w, n in zip(writes, in_batch, strict=True)]
        assert max(in_batch) == 100, f"the pipeline went out in one write: {in_batch}"
        assert sum(in_batch) == 100, in_batch
        assert sum(singles) == 100, singles
        assert max(singles) <= 32, f"written in chunks of at most 32, not per tick: {singles}"
        assert len(writes) >= 4, singles
        assert await asyncio.gather(*(mux.call(("GET", k)) for k in keys)) == [
            str(i) for i in range(100)
        ]


@pytest.mark.asyncio
async def test_more_connections_when_asked_and_a_batch_never_splits(
    redis_server: RedisServer,
) -> None:
    config = config_for(redis_server, client_name="bc-mux-three", multiplex_connections=3)
    async with opened(config) as (mux, _):
        counter = f"{config.key_prefix}n"

        async def incr_block() -> list[Any]:
            return await mux.batch([("INCR", counter)] * 20, transaction=True)

        async def load() -> None:
            for _ in range(20):
                await mux.call(("INCR", f"{config.key_prefix}other"))

        blocks = await asyncio.gather(
            *(incr_block() for _ in range(30)), *(load() for _ in range(40))
        )
        for block in blocks[:30]:
            assert block == list(range(block[0], block[0] + 20)), "MULTI/EXEC ran atomically"
        assert clients_named(redis_server, "bc-mux-three") == 3, "opened as load needed them"


@pytest.mark.asyncio
async def test_batch_returns_error_replies_as_exceptions_and_execabort_raises(
    config: CacheConfig,
) -> None:
    key = f"{config.key_prefix}b"
    async with opened(config) as (mux, _):
        replies = await mux.batch([("SET", key, "x"), ("LPUSH", key, "y"), ("GET", key)])
        assert replies[0] == "OK"
        assert replies[2] == "x"
        assert isinstance(replies[1], rex.ResponseError)
        assert "WRONGTYPE" in str(replies[1])
        inside = await mux.batch([("SET", key, "1"), ("LPUSH", key, "y")], transaction=True)
        assert inside[0] == "OK"
        assert isinstance(inside[1], rex.ResponseError)
        # EXECABORT raises the refused command's own error, named by position (as the other
        # transports and redis-py do), and nothing of the transaction ran.
        with pytest.raises(rex.ResponseError, match=r"Command # 2 \(NOSUCHCOMMAND\)") as aborted:
            await mux.batch([("SET", key, "2"), ("NOSUCHCOMMAND",)], transaction=True)
        assert not isinstance(aborted.value, rex.ExecAbortError)
        assert await mux.call(("GET", key)) == "1"
        assert await mux.batch([]) == []
        raw = f"{config.key_prefix}raw"
        await mux.call(("SET", raw, b"\xff\xfe"))
        # A non-UTF-8 value is read losslessly (surrogateescape, issue 12 part 6): get_bytes
        # encodes it back, get refuses it; the text around it is read as before.
        binary = await mux.call(("GET", raw))
        assert binary.encode("utf-8", "surrogateescape") == b"\xff\xfe"
        assert await mux.batch([("GET", raw), ("GET", key)]) == [binary, "1"]
        assert await mux.batch([("GET", raw), ("GET", key)], transaction=True) == [binary, "1"]
        assert await mux.call(("GET", key)) == "1"


@pytest.mark.asyncio
async def test_call_raw_replies_are_bytes_among_concurrent_text_replies(
    config: CacheConfig,
) -> None:
    """Raw callers (get_bytes) share the connection with text callers: each gets its own
    reply in its own form, in the same loop tick, with a budget too; the connection goes on
    decoding text afterwards."""
    binary = f"{config.key_prefix}bin"
    text = f"{config.key_prefix}text"
    payload = bytes(range(256)) * 300
    async with opened(config) as (mux, _):
        await mux.call(("SET", binary, payload))
        await mux.call(("SET", text, "t\u00e9xt"))
        calls = []
        for n in range(60):
            if n % 3 == 0:
                calls.append(mux.call_raw(("GET", binary)))
            elif n % 3 == 1:
                calls.append(mux.call(("GET", text)))
            else:
                calls.append(mux.call_raw(("GET", text), budget=Budget(2000, "health_timeout_ms")))
        replies = await asyncio.gather(*calls)
        for n, reply in enumerate(replies):
            assert reply == [payload, "t\u00e9xt", "t\u00e9xt".encode()][n % 3], n
        assert await mux.call_raw(("GET", f"{config.key_prefix}none")) is None
        with pytest.raises(rex.ResponseError, match="wrong number"):
            await mux.call_raw(("GET",))
        assert await mux.call(("GET", text)) == "t\u00e9xt"
        assert mux._links[0].raw_owed == 0


# -- timeouts, cancellation -------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_budget_fails_that_caller_only_and_the_connection_stays_in_step(
    server_factory: Callable[..., RedisServer],
) -> None:
    server = server_factory()
    config = config_for(server)
    a, b = f"{config.key_prefix}a", f"{config.key_prefix}b"
    async with opened(config) as (mux, seen):
        await mux.batch([("SET", a, "A"), ("SET", b, "B")])
        budget = Budget(200, "rate_limit_timeout_ms")
        with server.paused():
            start = time.perf_counter()
            with pytest.raises(BudgetExceededError, match="200 ms"):
                await mux.call(("GET", a), budget=budget)
            assert time.perf_counter() - start <= 0.2 + SLACK
        # The late reply to GET a arrives now and is dropped: GET b gets B, not A.
        assert await mux.call(("GET", b)) == "B"
        assert await mux.call(("GET", a), budget=budget) == "A"
        assert names(seen).count("connect") == 1, "no reconnect needed"


@pytest.mark.asyncio
async def test_each_budget_length_expires_on_time_whatever_is_queued_before_it(
    server_factory: Callable[..., RedisServer],
) -> None:
    """Budgeted calls share one timer per budget length: a short budget queued behind a long
    one still fails at its own deadline, and the long one at its own."""
    server = server_factory()
    config = config_for(server)
    key = f"{config.key_prefix}k"
    long, short = Budget(600, "health_timeout_ms"), Budget(150, "rate_limit_timeout_ms")
    async with opened(config) as (mux, _):
        await mux.call(("SET", key, "v"))

        async def timed(budget: Budget) -> float:
            start = time.perf_counter()
            with pytest.raises(BudgetExceededError):
                await mux.call(("GET", key), budget=budget)
            return time.perf_counter() - start

        with server.paused():
            first = asyncio.create_task(timed(long))
            await until(lambda: bool(mux._links) and mux._links[0].owed == 1)
            took_short, took_long = await asyncio.gather(timed(short), first)
        assert 0.15 <= took_short <= 0.15 + SLACK
        assert 0.6 <= took_long <= 0.6 + SLACK
        assert await mux.call(("GET", key), budget=short) == "v"  # in step after the pause
        # Answered calls leave their queues: nothing in flight is remembered.
        assert all(f.done() for q in mux._expiries.values() for _, fs, _ in q for f in fs)
        assert len(mux._expiries[short.ms]) <= 1


@pytest.mark.asyncio
async def test_many_callers_of_one_budget_each_fail_at_their_deadline_never_before(
    server_factory: Callable[..., RedisServer],
) -> None:
    """Calls of one budget made together share an expiry entry: each still fails no earlier
    than its own deadline (by the loop's clock) and within the timer's slack after it, and
    none is forgotten."""
    server = server_factory()
    config = config_for(server)
    key = f"{config.key_prefix}k"
    budget = Budget(200, "response_cache_timeout_ms")
    async with opened(config) as (mux, _):
        await mux.call(("SET", key, "v"))

        async def timed(delay: float) -> float:
            await asyncio.sleep(delay)  # spread the calls over a few ms: several entries
            start = time.perf_counter()
            with pytest.raises(BudgetExceededError, match="response_cache_timeout_ms"):
                await mux.call(("GET", key), budget=budget)
            return time.perf_counter() - start

        with server.paused():
            took = await asyncio.gather(*(timed(i * 0.0005) for i in range(64)))
        # uvloop's clock and timers tick in milliseconds (libuv's cached loop time): there a
        # timer may fire a few ms before a perf_counter measurement says it is due.
        assert min(took) >= 0.2 - CLOCK_TICK
        assert max(took) <= 0.2 + SLACK
        replies = await asyncio.gather(*(mux.call(("GET", key), budget=budget) for _ in range(64)))
        assert replies == ["v"] * 64  # in step after the pause
        assert all(f.done() for q in mux._expiries.values() for _, fs, _ in q for f in fs)


@pytest.mark.asyncio
async def test_an_overdue_reply_kills_the_connection_and_retries_follow_the_policy(
    server_factory: Callable[..., RedisServer],
) -> None:
    server = server_factory()
    config = config_for(server, socket_timeout=0.3, max_retries_per_request=1)
    key = f"{config.key_prefix}k"
    async with opened(config) as (mux, seen):
        await mux.call(("SET", key, "v"))
        with server.paused():
            start = time.perf_counter()
            with pytest.raises(rex.TimeoutError):
                await mux.call(("GET", key))
            took = time.perf_counter() - start
        assert 0.6 <= took <= 0.6 + 0.05 + 1.0, "two attempts of 0.3 s, one 50 ms wait"
        assert [e.details for e in seen if e.name == "reconnecting"] == [
            {"attempt": 1, "delay_ms": 50}
        ]
        assert "error" in names(seen)
        assert "close" in names(seen)
        assert await mux.call(("GET", key)) == "v", "a fresh connection, in step"


@pytest.mark.asyncio
async def test_a_cancelled_callers_reply_is_read_and_dropped(config: CacheConfig) -> None:
    key = f"{config.key_prefix}k"
    async with opened(config) as (mux, seen):
        await mux.call(("SET", key, "mine"))
        slow = asyncio.create_task(mux.call(("DEBUG", "SLEEP", "0.2")))
        await until(lambda: bool(mux._links) and mux._links[0].owed == 1)
        slow.cancel()
        assert await mux.call(("GET", key)) == "mine"
        assert slow.cancelled()
        assert names(seen).count("connect") == 1


@pytest.mark.asyncio
async def test_a_budget_covers_connecting_and_a_refusal_is_an_answer_in_time() -> None:
    listener = socket.socket()  # a full accept queue that never accepts: connect() just waits
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        host, port = listener.getsockname()
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex((host, port))
            fillers.append(filler)
        async with opened(CacheConfig(host=host, port=port)) as (mux, _):
            start = time.perf_counter()
            with pytest.raises(BudgetExceededError):
                await mux.call(("PING",), budget=Budget(300, "health_timeout_ms"))
            assert time.perf_counter() - start <= 0.3 + SLACK
    finally:
        for sock in fillers:
            sock.close()
        listener.close()
    async with opened(CacheConfig(host="127.0.0.1", port=free_port())) as (mux, seen):
        with pytest.raises(rex.ConnectionError):
            await mux.call(("PING",), budget=Budget(300, "health_timeout_ms"))
        assert "reconnecting" not in names(seen), "budgeted calls are never retried"
        assert "error" in names(seen)


# -- dropped connections, failover ------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_dropped_connection_is_retried_on_the_schedule_and_reconnects(
    redis_server: RedisServer,
) -> None:
    config = config_for(redis_server, client_name="bc-mux-drop", retry_base_delay_ms=20)
    key = f"{config.key_prefix}k"
    async with opened(config) as (mux, seen):
        await mux.call(("SET", key, "v"))
        admin = redis_server.client()
        try:
            (ours,) = [c["id"] for c in admin.client_list() if c.get("name") == "bc-mux-drop"]
            assert admin.client_kill_filter(_id=ours) == 1
        finally:
            admin.close()
        # Killed: the next calls find out when they are written, retry and reconnect.
        got = await asyncio.gather(*(mux.call(("GET", key)) for _ in range(20)))
        assert got == ["v"] * 20
        assert names(seen)[:2] == ["connect", "ready"]
        later = names(seen)[2:]
        assert "close" in later
        assert later.count("connect") == 1
        assert later[-1] == "ready"
        assert {e.details["delay_ms"] for e in seen if e.name == "reconnecting"} <= {20}


@pytest.mark.asyncio
async def test_an_idle_connection_closed_by_the_server_is_replaced_quietly(
    redis_server: RedisServer,
) -> None:
    config = config_for(redis_server, client_name="bc-mux-idle")
    async with opened(config) as (mux, seen):
        await mux.call(("PING",))
        admin = redis_server.client()
        try:
            (ours,) = [c["id"] for c in admin.client_list() if c.get("name") == "bc-mux-idle"]
            admin.client_kill_filter(_id=ours)
        finally:
            admin.close()
        await until(lambda: not mux._links)  # the loop saw the socket close
        assert await mux.call(("PING",)) == "PONG"
        assert names(seen) == ["connect", "ready", "error", "close", "connect", "ready"]


@pytest.mark.asyncio
async def test_a_restart_under_load_loses_no_caller_and_mixes_no_replies(
    server_factory: Callable[..., RedisServer],
) -> None:
    server = server_factory()
    config = config_for(server, max_retries_per_request=20, retry_base_delay_ms=50)
    async with opened(config) as (mux, seen):
        await mux.call(("PING",))
        wrong: list[tuple[str, Any]] = []
        restarted = asyncio.Event()
        after = [0]

        async def echo(sent: str) -> None:
            got = await mux.call(("ECHO", sent))
            if got != sent:
                wrong.append((sent, got))

        async def worker(n: int) -> None:
            i = 0
            while not restarted.is_set():  # busy before and during the restart
                await echo(f"{n}-{i}")
                i += 1
            for j in range(20):  # and after it
                await echo(f"{n}-after-{j}")
            after[0] += 1

        load = asyncio.gather(*(worker(n) for n in range(64)))
        await until(lambda: bool(mux._links) and mux._links[0].received > 1000)
        await asyncio.to_thread(server.restart)
        restarted.set()
        await asyncio.wait_for(load, timeout=60)
        assert wrong == []
        assert after == [64]
        assert "close" in names(seen)
        assert names(seen)[-1] == "ready"


@pytest.mark.asyncio
async def test_retries_give_up_after_max_retries_with_the_backoff_delays(
    server_factory: Callable[..., RedisServer],
) -> None:
    server = server_factory()
    config = config_for(server, max_retries_per_request=2, retry_base_delay_ms=10)
    async with opened(config) as (mux, seen):
        await mux.call(("PING",))
        server.stop()
        with pytest.raises(rex.ConnectionError):
            await mux.call(("PING",))
        schedule = [e.details for e in seen if e.name == "reconnecting"]
        assert schedule == [
            {"attempt": 1, "delay_ms": 10},
            {"attempt": 2, "delay_ms": 20},
        ]
        # Many callers in one outage: each attempt reported once, not once per caller.
        del seen[:]
        failed = await asyncio.gather(
            *(mux.call(("PING",)) for _ in range(20)), return_exceptions=True
        )
        assert all(isinstance(f, rex.ConnectionError) for f in failed)
        assert [e.details for e in seen if e.name == "reconnecting"] == [
            {"attempt": 1, "delay_ms": 10},
            {"attempt": 2, "delay_ms": 20},
        ]
        server.start()
        assert await mux.call(("PING",)) == "PONG"


@pytest.mark.asyncio
async def test_readonly_drops_the_connection_and_reconnects(
    server_factory: Callable[..., RedisServer],
) -> None:
    server, other = server_factory(), server_factory()
    config = config_for(server, retry_base_delay_ms=1, retry_max_delay_ms=5)
    key = f"{config.key_prefix}k"
    async with opened(config) as (mux, seen):
        await mux.call(("SET", key, "v"))
        admin = redis.Redis(host="127.0.0.1", port=server.port)
        try:
            admin.replicaof("127.0.0.1", other.port)
            with pytest.raises(rex.ReadOnlyError):
                await mux.call(("SET", key, "w"))
            assert names(seen).count("reconnecting") == 3
            assert names(seen).count("connect") == 4, "a new connection for each retry"
            with pytest.raises(rex.ReadOnlyError):
                await mux.batch([("GET", key), ("SET", key, "w")], transaction=True)
            with pytest.raises(rex.ReadOnlyError):
                await mux.batch([("GET", key), ("SET", key, "w")])
            assert names(seen).count("connect") == 12
        finally:
            admin.replicaof("NO", "ONE")
            admin.close()
        assert await mux.call(("SET", key, "again")) == "OK"


def failover_when_ready(group: LocalRedis) -> None:
    """``group.failover()`` once the PRIMARY lists its replica online: the harness waits for
    the replica's side of the link only, and FAILOVER refuses a replica the primary has not
    yet marked online ("FAILOVER target replica is not online", seen in 2 runs of 6)."""
    admin = group.admin_client(group.primary)

    def online() -> bool | None:
        with contextlib.suppress(redis.RedisError, OSError):
            replica = admin.info("replication").get("slave0")
            if isinstance(replica, dict) and replica.get("state") == "online":
                return True
        return None

    try:
        wait_for(online, timeout=10.0, what="the primary to list its replica online")
    finally:
        admin.close()
    group.failover()


@pytest.mark.asyncio
async def test_writes_go_on_through_a_failover_of_the_endpoint() -> None:
    with LocalRedis(tls=False, auth=False) as group:
        host, port = group.endpoint
        config = CacheConfig(host=host, port=port, key_prefix="bc-mux-fo:")
        async with opened(config) as (mux, seen):
            for i in range(50):
                await mux.call(("SET", f"bc-mux-fo:{i}", i))
            await asyncio.to_thread(failover_when_ready, group)
            got = await asyncio.gather(
                *(mux.call(("SET", f"bc-mux-fo:{i}", i * 2)) for i in range(50))
            )
            assert got == ["OK"] * 50
            assert await mux.call(("GET", "bc-mux-fo:49")) == "98"
            assert names(seen).count("ready") >= 2


# -- handshake: TLS, ACL user, client name, db, secrets ----------------------------------------


@pytest.mark.asyncio
async def test_tls_acl_user_client_name_and_db(
    server_factory: Callable[..., RedisServer], tls_files: TLSFiles
) -> None:
    user = ACLUser("app", "app-" + SECRET, app_user_rules("bc-mux:") + " +select +client")
    server = server_factory(tls=tls_files, users=[user])
    config = CacheConfig(
        host=server.host,
        port=server.port,
        username="app",
        password=user.password,
        tls=True,
        tls_ca_file=str(tls_files.ca_file),
        db=3,
        key_prefix="bc-mux:",
        client_name="bc-mux-tls",
    )
    async with opened(config) as (mux, seen):
        assert await mux.call(("SET", "bc-mux:k", "v")) == "OK"
        assert await mux.call(("CLIENT", "GETNAME")) == "bc-mux-tls"
        with pytest.raises(rex.NoPermissionError):
            await mux.call(("SET", "elsewhere", "v"))
        assert SECRET not in repr(mux)
    admin = server.client(user=None, db=3)
    try:
        assert admin.get("bc-mux:k") == b"v"
    finally:
        admin.close()
    assert names(seen) == ["connect", "ready", "close"]


@pytest.mark.asyncio
async def test_a_wrong_password_is_not_retried_and_never_shown(
    server_factory: Callable[..., RedisServer],
) -> None:
    server = server_factory(password="the-real-password-xyz")
    async with opened(config_for(server, password=SECRET)) as (mux, seen):
        with pytest.raises(rex.AuthenticationError) as info:
            await mux.call(("PING",))
        assert SECRET not in str(info.value)
        assert "reconnecting" not in names(seen)
        assert all(SECRET not in str(e.details) for e in seen)


# -- close, bound, loop ------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_aclose_drains_what_is_in_flight_then_refuses(config: CacheConfig) -> None:
    key = f"{config.key_prefix}n"
    mux, seen = make(config)
    await mux.call(("PING",))
    calls = [asyncio.ensure_future(mux.call(("INCR", key))) for _ in range(200)]
    slow = asyncio.ensure_future(mux.call(("DEBUG", "SLEEP", "0.1")))
    await asyncio.sleep(0)  # the calls are written; nothing answered yet
    await mux.aclose()
    assert sorted(await asyncio.gather(*calls)) == list(range(1, 201))
    assert await slow == "OK"
    assert names(seen) == ["connect", "ready", "close"]
    with pytest.raises(CacheClosedError):
        await mux.call(("PING",))


@pytest.mark.asyncio
async def test_queued_commands_are_bounded_and_callers_wait_their_turn(
    server_factory: Callable[..., RedisServer],
) -> None:
    server = server_factory()
    config = config_for(server, max_queued_commands=8)
    key = f"{config.key_prefix}n"
    async with opened(config) as (mux, _):
        await mux.call(("PING",))
        with server.paused():
            calls = [asyncio.ensure_future(mux.call(("INCR", key))) for _ in range(100)]
            await until(lambda: len(mux._space_waiters) == 92)
            assert mux._links[0].owed == 8
        assert sorted(await asyncio.gather(*calls)) == list(range(1, 101))
        # A batch larger than the bound is not split: it goes out whole once the line is clear.
        big = [("INCR", key)] * 50
        results = await asyncio.gather(mux.call(("INCR", key)), mux.batch(big))
        assert results[1] == list(range(results[0] + 1, results[0] + 51))


@pytest.mark.asyncio
async def test_ten_thousand_concurrent_callers_stay_within_the_memory_bound(
    config: CacheConfig,
) -> None:
    """The documented bound (berthcache._mux): under 4 KB per concurrent caller, the caller's
    own task included; the multiplexer holds at most max_queued_commands of them in flight."""
    key = f"{config.key_prefix}k"
    async with opened(config) as (mux, _):
        await mux.call(("SET", key, "x" * 100))
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            got = await asyncio.gather(*(mux.call(("GET", key)) for _ in range(10_000)))
            peak = tracemalloc.get_traced_memory()[1] - before
        finally:
            tracemalloc.stop()
        assert got == ["x" * 100] * 10_000
        assert peak < 10_000 * 4096, f"{peak / 10_000:.0f} bytes per caller"


def test_another_event_loop_gets_a_clear_error(config: CacheConfig) -> None:
    mux, _ = make(config)
    first = asyncio.new_event_loop()
    try:
        assert first.run_until_complete(mux.call(("PING",))) == "PONG"
        with pytest.raises(RuntimeError, match="another event loop"):
            asyncio.run(mux.call(("PING",)))
    finally:
        first.run_until_complete(mux.aclose())
        first.close()
    # Its loop closed, the multiplexer may start over on a new one.
    fresh, _ = make(config)
    first = asyncio.new_event_loop()
    first.run_until_complete(fresh.call(("PING",)))
    first.run_until_complete(asyncio.sleep(0))
    first.close()
    assert asyncio.run(fresh.call(("PING",))) == "PONG"


def test_the_settings_name_themselves() -> None:
    with pytest.raises(ConfigurationError, match="REDIS_MULTIPLEX_CONNECTIONS"):
        CacheConfig.from_env({"REDIS_MULTIPLEX_CONNECTIONS": "0"})
    with pytest.raises(ConfigurationError, match="max_queued_commands"):
        CacheConfig(max_queued_commands=0)
    config = CacheConfig.from_env(
        {"REDIS_MULTIPLEX_CONNECTIONS": "4", "REDIS_MAX_QUEUED_COMMANDS": "100"}
    )
    assert (config.multiplex_connections, config.max_queued_commands) == (4, 100)
    assert (CacheConfig().multiplex_connections, CacheConfig().max_queued_commands) == (1, 4096)


# -- review findings (issue 10) -------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_woken_waiter_cancelled_before_it_runs_passes_the_room_on(
    server_factory: Callable[..., RedisServer],
) -> None:
    """Room for one more command goes to one waiter; if that waiter is cancelled before it
    runs (its wait_for fired in the same tick), the next waiter must get the room."""
    server = server_factory()
    config = config_for(server, max_queued_commands=1)
    async with opened(config) as (mux, _):
        await mux.call(("PING",))
        tasks: dict[str, asyncio.Task[Any]] = {}

        async def first() -> Any:
            reply = await mux.call(("PING",))
            tasks["second"].cancel()  # woken by this reply, cancelled before it runs
            return reply

        with server.paused():
            tasks["first"] = asyncio.create_task(first())
            await until(lambda: bool(mux._links) and mux._links[0].owed == 1)
            tasks["second"] = asyncio.create_task(mux.call(("PING",)))
            tasks["third"] = asyncio.create_task(mux.call(("PING",)))
            await until(lambda: len(mux._space_waiters) == 2)
        assert await tasks["first"] == "PONG"
        assert await asyncio.wait_for(tasks["third"], 5) == "PONG"
        assert tasks["second"].cancelled()


@pytest.mark.asyncio
async def test_close_stops_a_connect_in_progress_and_no_event_follows_end(
    server_factory: Callable[..., RedisServer],
) -> None:
    server = server_factory()
    config = config_for(server, socket_timeout=1.0, connect_timeout=1.0)
    seen: list[str] = []
    events = ConnectionEvents(config.url)
    for name in ("connect", "ready", "error", "close", "end"):
        events.on(name, lambda *_, name=name, **__: seen.append(name))
    mux = AsyncMultiplexer(config, events)
    with server.paused():  # accepts TCP, never answers the handshake
        with pytest.raises(BudgetExceededError):
            await mux.call(("PING",), budget=Budget(100, "health_timeout_ms"))
        await mux.aclose(timeout=0.5)
        events.emit("end")
        assert mux._connecting is None or mux._connecting.done()
    await asyncio.sleep(0.3)  # the server answers now: nothing may connect any more
    assert "ready" not in seen
    assert seen[-1] == "end", seen
