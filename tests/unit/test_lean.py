"""LeanTransport (issue 10 part 4), the sync per-call path, against real redis-server processes:
replies and error replies as redis-py gives them, batches and transactions, many threads on a
bounded set of connections, timeouts that never leave a connection out of step, the retry policy
and its events, READONLY after a failover, time budgets, close() and fork."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import redis.exceptions as rex

from berthcache._budget import Budget, BudgetExceededError
from berthcache._config import CacheConfig
from berthcache._events import ConnectionEvent, ConnectionEvents
from berthcache._exceptions import CacheClosedError
from berthcache._lean import LeanTransport
from berthcache.testing import ACLUser, RedisServer, TCPProxy, TLSFiles
from tests.unit.support import config_for

SLACK = 0.15


class Recorder:
    """The connection events a transport emitted, in order."""

    def __init__(self, config: CacheConfig) -> None:
        self.events = ConnectionEvents(config.url, secrets=[config.password])
        self.seen: list[ConnectionEvent] = []
        for name in ("connect", "ready", "error", "close", "reconnecting"):
            self.events.on(name, self.seen.append)

    def names(self) -> list[str]:
        return [event.name for event in self.seen]


@contextlib.contextmanager
def transport(config: CacheConfig) -> Iterator[tuple[LeanTransport, Recorder]]:
    recorder = Recorder(config)
    lean = LeanTransport(config, recorder.events)
    try:
        yield lean, recorder
    finally:
        lean.close()


def wait_until_blocked(config: CacheConfig, clients: int = 1, timeout: float = 5.0) -> None:
    """Return once ``clients`` connections are blocked in a command on the server (BLPOP)."""
    with redis.Redis(**_kwargs(config)) as admin:
        deadline = time.monotonic() + timeout
        while int(admin.info("clients")["blocked_clients"]) < clients:
            assert time.monotonic() < deadline, "the blocking command never reached the server"
            time.sleep(0.01)


def key(config: CacheConfig, name: str) -> str:
    return f"{config.key_prefix}{name}"


# -- replies ---------------------------------------------------------------------------------------


def test_replies_are_raw_redis_replies_decoded_as_text(config: CacheConfig) -> None:
    with transport(config) as (lean, _):
        k, items = key(config, "k"), key(config, "list")
        assert lean.call(("PING",)) == "PONG"
        assert lean.call(("SET", k, "caf\u00e9 \u2615", "EX", 60)) == "OK"
        assert lean.call(("GET", k)) == "caf\u00e9 \u2615"
        assert lean.call(("GET", key(config, "missing"))) is None
        assert lean.call(("INCRBYFLOAT", key(config, "f"), 1.5)) == "1.5"
        assert lean.call(("RPUSH", items, b"raw", 7, "x")) == 3
        assert lean.call(("LRANGE", items, 0, -1)) == ["raw", "7", "x"]
        assert lean.call(["EXISTS", k, items]) == 2  # type: ignore[arg-type]  # a list works too
        assert lean.open_connections == 1


def test_an_error_reply_raises_redis_pys_class_and_the_connection_stays_usable(
    config: CacheConfig,
) -> None:
    with transport(config) as (lean, recorder):
        k = key(config, "text")
        lean.call(("SET", k, "not a number"))
        with pytest.raises(rex.ResponseError, match="not an integer"):
            lean.call(("INCR", k))
        with pytest.raises(rex.NoScriptError):
            lean.call(("EVALSHA", "0" * 40, 0))
        assert lean.call(("ECHO", "still in step")) == "still in step"
        assert lean.open_connections == 1
        assert recorder.names().count("connect") == 1
        assert "error" not in recorder.names()  # an error reply is an answer, not a fault


def test_an_error_reply_redis_py_maps_to_a_connection_error_raises_and_drops_the_connection(
    server_factory: Callable[..., RedisServer],
) -> None:
    """WRONGPASS is an AuthenticationError (a ConnectionError in redis-py): raised, not returned,
    not retried, and the connection it came on is replaced."""
    server = server_factory(password="lean-right-pw")
    with transport(config_for(server)) as (lean, recorder):
        with pytest.raises(rex.AuthenticationError):
            lean.call(("AUTH", "not-the-password"))
        assert "reconnecting" not in recorder.names()
        assert lean.open_connections == 0
        assert lean.call(("PING",)) == "PONG"


def test_a_reply_that_is_not_utf8_is_read_losslessly(config: CacheConfig) -> None:
    """Replies are decoded with surrogateescape (issue 12 part 6): a value that is not UTF-8
    comes back with its bytes kept (``get_bytes`` encodes them back; ``get`` refuses it), text
    exactly as a strict decode; no error event, the next call in step."""
    with transport(config) as (lean, recorder):
        k = key(config, "binary")
        lean.call(("SET", k, b"\xff\xfe"))
        reply = lean.call(("GET", k))
        assert reply == "\udcff\udcfe"
        assert reply.encode("utf-8", "surrogateescape") == b"\xff\xfe"
        assert lean.batch([("GET", k), ("ECHO", "t\u00e9xt")]) == [reply, "t\u00e9xt"]
        assert lean.batch([("GET", k)], transaction=True) == [reply]
        assert lean.call(("ECHO", "next")) == "next"
        assert "error" not in recorder.names()


def test_call_raw_reads_one_reply_undecoded_and_the_next_calls_decode_again(
    config: CacheConfig,
) -> None:
    """``call_raw`` (get_bytes): bulk strings as bytes, with and without a budget; the same
    connection then reads text as text; an error reply still raises."""
    with transport(config) as (lean, recorder):
        k = key(config, "raw")
        payload = bytes(range(256)) * 600  # larger than the 64 KB read buffer
        lean.call(("SET", k, payload))
        assert lean.call_raw(("GET", k)) == payload
        assert lean.call(("ECHO", "t\u00e9xt")) == "t\u00e9xt"
        budget = Budget(1000, "health_timeout_ms")
        assert lean.call_raw(("GET", k), budget=budget) == payload
        assert lean.call_raw(("GET", key(config, "none"))) is None
        assert lean.call(("ECHO", "again")) == "again"
        with pytest.raises(rex.ResponseError, match="WRONGTYPE"):
            lean.call(("LPUSH", k, "x"))
        with pytest.raises(rex.ResponseError, match="wrong number"):
            lean.call_raw(("GET",))
        assert lean.call(("PING",)) == "PONG"
        assert lean.open_connections == 1
        assert "error" not in recorder.names()


def test_an_argument_redis_cannot_take_is_refused_before_anything_is_sent(
    config: CacheConfig,
) -> None:
    with transport(config) as (lean, _):
        with pytest.raises(rex.DataError, match=r"argument 2 of 'SET' is a NoneType"):
            lean.call(("SET", key(config, "k"), None))
        assert lean.open_connections == 0


# -- batches and transactions ----------------------------------------------------------------------


def test_a_batch_returns_replies_in_order_with_error_replies_as_instances(
    config: CacheConfig,
) -> None:
    with transport(config) as (lean, recorder):
        k, text = key(config, "n"), key(config, "text")
        replies = lean.batch(
            [("SET", text, "x"), ("INCR", text), ("INCR", k), ("INCR", k), ("GET", k)]
        )
        assert replies[0] == "OK"
        assert isinstance(replies[1], rex.ResponseError)
        assert replies[2:] == [1, 2, "2"]
        assert lean.batch([]) == []
        assert lean.open_connections == 1
        assert recorder.names().count("connect") == 1


def test_a_transaction_returns_execs_list_and_is_atomic(config: CacheConfig) -> None:
    with transport(config) as (lean, _):
        k, text = key(config, "n"), key(config, "text")
        replies = lean.batch(
            [("SET", text, "x"), ("INCR", text), ("INCR", k), ("EXPIRE", k, 60)],
            transaction=True,
        )
        assert replies[0] == "OK"
        assert isinstance(replies[1], rex.ResponseError)  # a run-time error inside EXEC
        assert replies[2:] == [1, 1]

        # Many threads incrementing twice per transaction: nobody sees an odd value, so no
        # command ever ran between the two of a transaction.
        counter, odd = key(config, "counter"), []

        def worker() -> None:
            for _ in range(50):
                first, second = lean.batch([("INCR", counter), ("INCR", counter)], transaction=True)
                if first % 2 == 0 or second != first + 1:
                    odd.append((first, second))

        threads = [threading.Thread(target=worker) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not odd
        assert lean.call(("GET", counter)) == str(6 * 50 * 2)


def test_a_refused_queued_command_aborts_the_transaction(config: CacheConfig) -> None:
    with transport(config) as (lean, _):
        k = key(config, "k")
        with pytest.raises(rex.ResponseError) as caught:
            lean.batch([("SET", k, "v"), ("SET", k)], transaction=True)
        # The refused command's own error, named as redis-py names it, without its arguments.
        assert str(caught.value).startswith("Command # 2 (SET) of pipeline caused error: ")
        assert "wrong number of arguments" in str(caught.value)
        assert k not in str(caught.value)
        assert lean.call(("EXISTS", k)) == 0  # nothing ran
        assert lean.call(("PING",)) == "PONG"  # and the connection is in step


# -- threads ---------------------------------------------------------------------------------------


def test_many_threads_share_a_bounded_set_of_connections_without_mixing_replies(
    redis_server: RedisServer,
) -> None:
    name = f"bc-lean-{uuid.uuid4().hex[:8]}"
    config = config_for(redis_server, max_connections=3, client_name=name)
    admin = redis_server.client()
    mixed: list[tuple[str, Any]] = []
    peak = [0]
    stop = threading.Event()

    def watch() -> None:  # the server's view: connections carrying our client name
        while not stop.is_set():
            clients = admin.client_list()
            peak[0] = max(peak[0], sum(1 for c in clients if c.get("name") == name))
            stop.wait(0.005)

    with transport(config) as (lean, _):

        def worker(n: int) -> None:
            for i in range(150):
                token = f"{n}-{i}"
                if i % 3:
                    reply: Any = lean.call(("ECHO", token))
                    if reply != token:
                        mixed.append((token, reply))
                else:
                    replies = lean.batch([("ECHO", token), ("ECHO", token + "!")])
                    if replies != [token, token + "!"]:
                        mixed.append((token, replies))

        watcher = threading.Thread(target=watch)
        watcher.start()
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        stop.set()
        watcher.join(timeout=5)
        assert not any(thread.is_alive() for thread in threads)
        assert not mixed
        assert 1 <= peak[0] <= 3
        assert lean.open_connections <= 3
    admin.close()


def test_a_caller_waits_for_a_free_connection_up_to_pool_timeout(config: CacheConfig) -> None:
    """One connection, held by a blocking command: a second caller gets a clear error after
    pool_timeout; with a longer pool_timeout it waits and gets the connection."""
    busy = key(config, "never-filled")
    with transport(config.replace(max_connections=1, pool_timeout=0.2)) as (lean, _):
        holder = threading.Thread(target=lean.call, args=(("BLPOP", busy, 1),))
        holder.start()
        wait_until_blocked(config)  # the holder has the only connection, blocked on the server
        start = time.perf_counter()
        with pytest.raises(rex.ConnectionError, match="max_connections or pool_timeout"):
            lean.call(("PING",))
        assert time.perf_counter() - start < 0.2 + SLACK
        holder.join(timeout=5)
    with transport(config.replace(max_connections=1, pool_timeout=5)) as (lean, _):
        holder = threading.Thread(target=lean.call, args=(("BLPOP", busy, 0.5),))
        holder.start()
        wait_until_blocked(config)
        assert lean.call(("ECHO", "waited")) == "waited"
        holder.join(timeout=5)
        assert lean.open_connections == 1


# -- timeouts, retries, events ---------------------------------------------------------------------


def test_a_timed_out_connection_is_dropped_never_reused_out_of_step(
    server_factory: Callable[..., RedisServer],
) -> None:
    server = server_factory()
    config = config_for(server, socket_timeout=0.3, retry_strategy="none")
    with transport(config) as (lean, recorder):
        assert lean.call(("PING",)) == "PONG"
        with server.paused():
            start = time.perf_counter()
            with pytest.raises(rex.TimeoutError):
                lean.call(("ECHO", "late"))
            assert time.perf_counter() - start < 0.3 + SLACK
            assert lean.open_connections == 0
        # The paused server answers "late" on the dropped connection; ours gets its own reply.
        assert lean.call(("ECHO", "fresh")) == "fresh"
        # As on the redis-py path: the connection closes, the error is reported, a new one opens.
        assert recorder.names() == ["connect", "ready", "close", "error", "connect", "ready"]


def test_connections_the_server_closed_while_idle_are_replaced_without_a_retry(
    server_factory: Callable[..., RedisServer],
) -> None:
    """After a restart every idle connection is dead: the next call replaces them and goes out
    on a new one — not a retry (none are allowed here), no error, no backoff — as redis-py's pool
    does on checkout. The same within a budget."""
    server = server_factory()
    config = config_for(server, retry_strategy="none")
    with transport(config) as (lean, recorder):
        lean.batch([("PING",)])
        holder = threading.Thread(target=lean.call, args=(("BLPOP", key(config, "e"), 0.2),))
        holder.start()
        wait_until_blocked(config)
        lean.call(("PING",))  # a second connection while the first is busy
        holder.join(timeout=5)
        assert lean.open_connections == 2
        server.restart()
        assert lean.call(("ECHO", "back")) == "back"
        assert recorder.names()[4:] == ["close", "close", "connect", "ready"]
        assert lean.open_connections == 1
        server.restart()
        budget = Budget(1000, "health_timeout_ms")
        assert lean.call(("ECHO", "budget"), budget=budget) == "budget"
        assert "error" not in recorder.names()


def test_an_outage_is_retried_on_the_schedule_until_the_server_is_back(
    server_factory: Callable[..., RedisServer],
) -> None:
    server = server_factory()
    config = config_for(server, max_retries_per_request=10)
    with transport(config) as (lean, recorder):
        lean.call(("PING",))
        server.stop()
        back = threading.Timer(0.1, server.start)  # the outage lasts a moment
        back.start()
        try:
            assert lean.call(("ECHO", "back")) == "back"
        finally:
            back.join(timeout=15)
        reconnecting = [e.details for e in recorder.seen if e.name == "reconnecting"]
        assert reconnecting  # it did have to wait
        expected = [{"attempt": n, "delay_ms": 50 * n} for n in range(1, len(reconnecting) + 1)]
        assert reconnecting == expected
        assert recorder.names()[-2:] == ["connect", "ready"]


def test_retries_stop_after_max_retries_per_request(
    server_factory: Callable[..., RedisServer],
) -> None:
    server = server_factory()
    config = config_for(server, max_retries_per_request=2)
    with transport(config) as (lean, recorder):
        lean.call(("PING",))
        server.stop()
        with pytest.raises(rex.ConnectionError):
            lean.call(("PING",))
        reconnecting = [e.details for e in recorder.seen if e.name == "reconnecting"]
        assert reconnecting == [{"attempt": 1, "delay_ms": 50}, {"attempt": 2, "delay_ms": 100}]
        assert recorder.names().count("error") == 3
        assert lean.open_connections == 0


def test_a_wrong_password_is_not_retried_and_never_shown(
    server_factory: Callable[..., RedisServer],
) -> None:
    server = server_factory(password="right-password-1")
    config = config_for(server, password="wrong-password-2")
    with transport(config) as (lean, recorder):
        with pytest.raises(rex.AuthenticationError) as caught:
            lean.call(("PING",))
        assert "reconnecting" not in recorder.names()
        assert recorder.names().count("error") == 1
        shown = " ".join([str(caught.value), repr(lean), *(str(e) for e in recorder.seen)])
        assert "wrong-password-2" not in shown
        assert lean.open_connections == 0


def test_readonly_after_a_failover_reconnects_to_the_new_primary(
    server_factory: Callable[..., RedisServer],
) -> None:
    """The endpoint (a proxy, as the DNS name) moves to the new primary while our connection to
    the demoted one stays open: its READONLY reply drops that connection and the retry reaches
    the new primary."""
    old, new = server_factory(), server_factory()
    with TCPProxy((old.host, old.port)) as proxy:
        config = config_for(old).replace(host=proxy.host, port=proxy.port)
        with transport(config) as (lean, recorder):
            k = key(config, "k")
            assert lean.call(("SET", k, "before")) == "OK"
            proxy.retarget((new.host, new.port), drop_connections=False)
            with old.client() as admin:
                admin.execute_command("REPLICAOF", new.host, str(new.port))
            assert lean.call(("SET", k, "after")) == "OK"
            with new.client() as admin:
                assert admin.get(k) == b"after"
            assert recorder.names().count("connect") == 2
            assert "reconnecting" in recorder.names()


# -- budgets ---------------------------------------------------------------------------------------


def test_a_budget_bounds_a_call_to_a_paused_server_and_the_connection_is_dropped(
    server_factory: Callable[..., RedisServer],
) -> None:
    server = server_factory()
    budget = Budget(200, "health_timeout_ms")
    with transport(config_for(server)) as (lean, recorder):
        lean.call(("PING",))
        with server.paused():
            start = time.perf_counter()
            with pytest.raises(BudgetExceededError, match="200 ms"):
                lean.call(("ECHO", "late"), budget=budget)
            with pytest.raises(BudgetExceededError):
                lean.batch([("ECHO", "a"), ("ECHO", "b")], budget=budget)
            assert time.perf_counter() - start < 2 * 0.2 + SLACK
            assert "reconnecting" not in recorder.names()  # one attempt, no retries
        assert lean.call(("ECHO", "fresh"), budget=budget) == "fresh"


def test_a_budget_covers_waiting_for_a_free_connection(config: CacheConfig) -> None:
    busy = key(config, "never-filled")
    with transport(config.replace(max_connections=1, pool_timeout=5)) as (lean, _):
        holder = threading.Thread(target=lean.call, args=(("BLPOP", busy, 1),))
        holder.start()
        wait_until_blocked(config)
        start = time.perf_counter()
        with pytest.raises(BudgetExceededError):
            lean.call(("PING",), budget=Budget(200, "health_timeout_ms"))
        assert time.perf_counter() - start < 0.2 + SLACK
        holder.join(timeout=5)


def test_a_budget_covers_connecting(server_factory: Callable[..., RedisServer]) -> None:
    server = server_factory()
    with TCPProxy((server.host, server.port)) as proxy:
        config = config_for(server).replace(host=proxy.host, port=proxy.port)
        with transport(config) as (lean, _):
            proxy.cut()  # new connections hang: the handshake never finishes
            start = time.perf_counter()
            with pytest.raises(BudgetExceededError):
                lean.call(("PING",), budget=Budget(250, "rate_limit_timeout_ms"))
            assert time.perf_counter() - start < 0.25 + SLACK
            proxy.heal()
            assert lean.call(("PING",), budget=Budget(1000, "health_timeout_ms")) == "PONG"


def test_within_a_budget_an_answer_in_time_is_raised_as_is(
    server_factory: Callable[..., RedisServer],
) -> None:
    server = server_factory()
    config = config_for(server)
    budget = Budget(500, "response_cache_timeout_ms")
    with transport(config) as (lean, _):
        with pytest.raises(rex.ResponseError, match="wrong number"):
            lean.call(("GET",), budget=budget)
        assert lean.call(("PING",), budget=budget) == "PONG"
        server.stop()
        start = time.perf_counter()
        with pytest.raises(rex.ConnectionError) as caught:  # refused: not a budget overrun
            lean.call(("PING",), budget=budget)
        assert not isinstance(caught.value, BudgetExceededError)
        assert time.perf_counter() - start < 0.5


def test_a_budgeted_call_leaves_the_ordinary_socket_timeout_behind(
    server_factory: Callable[..., RedisServer],
) -> None:
    server = server_factory()
    busy = key(config_for(server), "empty")
    with transport(config_for(server, socket_timeout=2.0)) as (lean, _):
        assert lean.call(("PING",), budget=Budget(100, "rate_limit_timeout_ms")) == "PONG"
        # The same connection, no budget: a 0.5 s blocking command outlives the 100 ms budget.
        assert lean.call(("BLPOP", busy, 0.5)) is None
        assert lean.open_connections == 1


# -- TLS, ACL user, client name, db ----------------------------------------------------------------


def test_tls_with_an_acl_user_client_name_and_db(
    server_factory: Callable[..., RedisServer], tls_files: TLSFiles
) -> None:
    user = ACLUser("leanapp", "lean-secret-pw", "~* &* +@all")
    server = server_factory(tls=tls_files, users=[user])
    config = config_for(
        server, username="leanapp", password="lean-secret-pw", db=3, client_name="lean-tls"
    )
    with transport(config) as (lean, recorder):
        assert lean.call(("SET", key(config, "k"), "v")) == "OK"
        assert lean.call(("CLIENT", "GETNAME")) == "lean-tls"
        assert lean.call(("ACL", "WHOAMI")) == "leanapp"
        assert lean.batch([("PING",), ("ECHO", "tls")], transaction=True) == ["PONG", "tls"]
        assert recorder.names() == ["connect", "ready"]
        assert "lean-secret-pw" not in repr(lean)
    with server.client(user="leanapp", db=3) as admin:
        assert admin.get(key(config, "k")) == b"v"
    assert recorder.names()[-1] == "close"


# -- close and fork --------------------------------------------------------------------------------


def test_close_closes_every_connection_and_later_calls_raise(config: CacheConfig) -> None:
    busy = key(config, "empty")
    recorder = Recorder(config)
    lean = LeanTransport(config, recorder.events)
    holder = threading.Thread(target=lean.call, args=(("BLPOP", busy, 0.3),))
    holder.start()
    wait_until_blocked(config)  # the holder's connection is busy: PING opens a second one
    lean.call(("PING",))
    assert lean.open_connections == 2
    lean.close()
    assert recorder.names().count("close") == 1  # the idle one; the busy one is in use
    holder.join(timeout=5)
    assert recorder.names().count("close") == 2  # closed when its call gave it back
    assert lean.open_connections == 0
    with pytest.raises(CacheClosedError):
        lean.call(("PING",))
    with pytest.raises(CacheClosedError):
        lean.batch([("PING",)])
    lean.close()  # idempotent


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_opens_its_own_connection(config: CacheConfig) -> None:
    with transport(config) as (lean, _):
        parent_id = lean.call(("CLIENT", "ID"))
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report its connection's id, then leave without cleanup
            try:
                child_id = lean.call(("CLIENT", "ID"))
                os.write(write_end, str(child_id).encode())
            finally:
                os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end) as reader:
            child_id = int(reader.read() or -1)
        os.waitpid(pid, 0)
        assert child_id not in (-1, parent_id)
        # The parent's connection was not touched by the child: still in step.
        assert lean.call(("CLIENT", "ID")) == parent_id
        assert lean.call(("ECHO", "parent")) == "parent"


def test_writes_can_be_observed_one_per_call_or_batch(config: CacheConfig) -> None:
    """The testing seam the conformance suite counts round trips with."""
    writes: list[bytes] = []
    with transport(config) as (lean, _):
        lean.call(("PING",))  # an idle connection before observing: observed too
        lean.observe_writes(writes.append)
        lean.call(("SET", key(config, "k"), "v"))
        lean.batch([("INCR", key(config, f"n{i}")) for i in range(100)])
        lean.batch([("PING",), ("PING",)], transaction=True)
        assert [w.count(config.key_prefix.encode()) for w in writes] == [1, 100, 0]
        assert writes[2].startswith(b"*1\r\n$5\r\nMULTI")
        lean.observe_writes(None)
        lean.call(("PING",))
        assert len(writes) == 3


def test_redis_py_reads_what_the_transport_writes(config: CacheConfig) -> None:
    """Same bytes as redis-py for str / int / float arguments."""
    with transport(config) as (lean, _), redis.Redis(**_kwargs(config)) as client:
        for n, value in enumerate(["t\u00e9xt", 42, 1.5, 1e20, -0.1, b"\x00\xff"]):
            k = key(config, f"v{n}")
            lean.call(("SET", k, value))
            client.set(k + "-py", value)
            assert client.get(k) == client.get(k + "-py")


def _kwargs(config: CacheConfig) -> dict[str, Any]:
    kwargs = config.connection_kwargs()
    kwargs.pop("max_connections")
    return kwargs


# -- review findings (issue 10): time bounds that must hold --------------------------------------


def test_a_hung_server_is_bounded_even_while_signals_arrive(
    server_factory: Callable[..., RedisServer],
) -> None:
    """A periodic signal (a profiler, a watchdog) restarts an interrupted receive: the timeout
    must still count from the call's start, not from the last signal."""
    server = server_factory()
    config = config_for(server, socket_timeout=0.5, retry_strategy="none")
    ticks: list[int] = []
    previous = signal.signal(signal.SIGALRM, lambda *_: ticks.append(1))
    try:
        with transport(config) as (lean, _):
            assert lean.call(("PING",)) == "PONG"
            for budget in (None, Budget(300, "health_timeout_ms")):
                with server.paused():
                    signal.setitimer(signal.ITIMER_REAL, 0.1, 0.1)
                    start = time.perf_counter()
                    try:
                        with pytest.raises((rex.TimeoutError, BudgetExceededError)):
                            lean.call(("PING",), budget=budget)
                    finally:
                        signal.setitimer(signal.ITIMER_REAL, 0)
                    limit = 0.5 if budget is None else 0.3
                    assert time.perf_counter() - start < limit + SLACK
        assert len(ticks) >= 3, "signals arrived while the call waited"
    finally:
        signal.signal(signal.SIGALRM, previous)


def test_a_budget_counts_the_wait_for_a_free_connection_then_the_reply(
    server_factory: Callable[..., RedisServer],
) -> None:
    """Time spent waiting for the only connection comes off what the reply may take."""
    server = server_factory()
    config = config_for(server, max_connections=1)
    pid = server.pid
    assert pid is not None
    with transport(config) as (lean, _):
        assert lean.call(("PING",)) == "PONG"
        held = lean._checkout(None)  # another thread's call holds the only connection

        def give_back() -> None:
            time.sleep(0.3)
            os.kill(pid, signal.SIGSTOP)  # ... and the server hangs as it is returned
            lean._checkin(held)

        giver = threading.Thread(target=give_back)
        giver.start()
        start = time.perf_counter()
        try:
            with pytest.raises(BudgetExceededError):
                lean.call(("PING",), budget=Budget(500, "health_timeout_ms"))
            assert time.perf_counter() - start < 0.5 + SLACK
        finally:
            giver.join()
            os.kill(pid, signal.SIGCONT)
