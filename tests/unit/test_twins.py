"""Sync and async twins expose the same public methods with the same parameters, and the two
clients send the same command plans."""

from __future__ import annotations

import datetime as dt
import functools
import importlib
import inspect
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio

from berthcache._async_client import AsyncCache
from berthcache._client import Cache, Pipeline
from berthcache._commands import Command, Done, PipelineBase
from berthcache._config import CacheConfig

# Feature classes by their public names: the modules behind them may move, the names stay.
PAIRS = [
    ("berthcache:Cache", "berthcache:AsyncCache"),
    ("berthcache._client:Pipeline", "berthcache._async_client:AsyncPipeline"),
    ("berthcache:SessionStore", "berthcache:AsyncSessionStore"),
    ("berthcache:ResponseCache", "berthcache:AsyncResponseCache"),
    ("berthcache:RateLimiter", "berthcache:AsyncRateLimiter"),
    ("berthcache:Presence", "berthcache:AsyncPresence"),
    ("berthcache:Subscription", "berthcache:AsyncSubscription"),
]
# Protocol differences that are the point of the twin, not drift.
SYNC_ONLY = {"__enter__", "__exit__", "__iter__", "__next__"}
ASYNC_ONLY = {"__aenter__", "__aexit__", "__aiter__", "__anext__", "start"}


def load(spec: str) -> Any:
    """The class named by ``module:name``; a missing module or name fails the test."""
    module, _, name = spec.partition(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        pytest.fail(f"{module} is missing ({exc}): its twin pair cannot be compared")
    if not hasattr(mod, name):
        pytest.fail(f"{module} has no {name}: its twin pair cannot be compared")
    return getattr(mod, name)


def test_a_missing_twin_fails_instead_of_skipping() -> None:
    with pytest.raises(pytest.fail.Exception, match=r"berthcache\._gone is missing"):
        load("berthcache._gone:Thing")
    with pytest.raises(pytest.fail.Exception, match="has no Gone"):
        load("berthcache:Gone")


def public_members(cls: type) -> dict[str, Any]:
    members = {}
    for name, value in inspect.getmembers(cls):
        if name.startswith("_") and name not in SYNC_ONLY | ASYNC_ONLY:
            continue
        if name.startswith("__") and name not in SYNC_ONLY | ASYNC_ONLY:
            continue
        members[name] = value
    return members


def signature(obj: Any) -> list[tuple[str, Any, Any]] | None:
    func = obj.fget if isinstance(obj, property) else obj
    if not callable(func):
        return None
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return None
    return [(p.name, p.kind, p.default) for p in sig.parameters.values()]


@pytest.mark.parametrize(("sync_spec", "async_spec"), PAIRS, ids=[p[0] for p in PAIRS])
def test_twins_have_the_same_methods_and_parameters(sync_spec: str, async_spec: str) -> None:
    sync_cls, async_cls = load(sync_spec), load(async_spec)
    sync_members, async_members = public_members(sync_cls), public_members(async_cls)
    if "close" in sync_members and "close" not in async_members and "aclose" in async_members:
        async_members["close"] = async_members.pop("aclose")  # asyncio's naming for close()
    sync_names = set(sync_members) - SYNC_ONLY
    async_names = set(async_members) - ASYNC_ONLY
    assert sync_names == async_names, (
        f"only in {sync_cls.__name__}: {sorted(sync_names - async_names)}; "
        f"only in {async_cls.__name__}: {sorted(async_names - sync_names)}"
    )
    for name in sorted(sync_names):
        assert signature(sync_members[name]) == signature(async_members[name]), name


def test_async_cache_methods_that_do_io_are_coroutines() -> None:
    for name in (
        "set",
        "get",
        "set_json",
        "get_json",
        "delete",
        "exists",
        "expire",
        "ttl",
        "incr",
        "ping",
        "check_health",
        "publish",
        "subscribe",
        "close",
    ):
        assert inspect.iscoroutinefunction(getattr(AsyncCache, name)), name


# -- both clients send the same command plans ---------------------------------------------------
# Every public data method of Cache / AsyncCache hands a plan from its CommandPlanner to _run
# (ping: _run_timed). Recording those plans instead of sending them shows, without a server,
# that both twins delegate, and that for the same arguments they plan the same command, the
# same arguments and the same reply parser; the pipelines queue those same plans.

DATA_CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("set", ("k", "text"), {}),
    ("set", ("k", {"a": [1, 2]}), {"ttl": 30}),
    ("set", ("k", 7), {"ttl": dt.timedelta(minutes=5)}),
    ("set_json", ("k", "text"), {"ttl": 60}),
    ("get", ("k",), {}),
    ("get", ("k",), {"parse_json": True}),
    ("get_json", ("k",), {}),
    ("set_bytes", ("k", b"\x1f\x8b\xff"), {}),
    ("set_bytes", ("k", bytearray(b"\x00")), {"ttl": 30}),
    ("get_bytes", ("k",), {}),
    ("delete", ("a", "b"), {}),
    ("delete", (), {}),
    ("exists", ("k",), {}),
    ("expire", ("k", dt.timedelta(hours=1)), {}),
    ("ttl", ("k",), {}),
    ("incr", ("k",), {}),
    ("incr", ("k",), {"amount": -3}),
    ("ping", (), {}),
]
DATA_METHODS = {
    "set",
    "set_json",
    "get",
    "get_json",
    "set_bytes",
    "get_bytes",
    "delete",
    "exists",
    "expire",
    "ttl",
    "incr",
}
RUNNERS = ("_run", "_run_raw", "_run_timed")


def comparable(plan: Any) -> Any:
    """A plan with any ``functools.partial`` parser replaced by what it would call."""
    if isinstance(plan, Done):
        return plan
    assert isinstance(plan, Command), f"not a plan: {plan!r}"
    args, parse = plan
    if isinstance(parse, functools.partial):
        return args, (parse.func, parse.args, parse.keywords)
    return args, parse


class Bypass:
    """Stands where ``cache._transport`` and ``cache.redis`` were while plans are recorded: a
    data method that sends anything itself instead of through ``_run`` fails here, by name,
    without dialling out."""

    def __getattr__(self, command: str) -> Any:
        raise AssertionError(f"a data method sent {command!r} itself, bypassing _run's plan")


def sync_plans(cache: Cache) -> list[Any]:
    recorded: list[Any] = []

    def record(plan: Any) -> None:
        recorded.append(comparable(plan))

    for runner in RUNNERS:
        setattr(cache, runner, record)
    plans, client, transport = [], cache.redis, cache._transport
    cache.redis = Bypass()  # type: ignore[assignment]
    cache._transport = Bypass()
    try:
        for name, args, kwargs in DATA_CALLS:
            getattr(cache, name)(*args, **kwargs)
            assert len(recorded) == 1, f"Cache.{name} ran {len(recorded)} plans, expected one"
            plans.append(recorded.pop())
    finally:
        cache.redis, cache._transport = client, transport
    return plans


async def async_plans(cache: AsyncCache) -> list[Any]:
    recorded: list[Any] = []

    async def record(plan: Any) -> None:
        recorded.append(comparable(plan))

    for runner in RUNNERS:
        setattr(cache, runner, record)
    plans, client, transport = [], cache.redis, cache._transport
    cache.redis = Bypass()  # type: ignore[assignment]
    cache._transport = Bypass()
    try:
        for name, args, kwargs in DATA_CALLS:
            await getattr(cache, name)(*args, **kwargs)
            assert len(recorded) == 1, f"AsyncCache.{name} ran {len(recorded)} plans, not one"
            plans.append(recorded.pop())
    finally:
        cache.redis, cache._transport = client, transport
    return plans


# Real-server fixtures (the shared unit server from conftest) for the behaviour checks below.
@pytest.fixture
def cache(config: CacheConfig) -> Iterator[Cache]:
    with Cache(config) as client:
        yield client


@pytest_asyncio.fixture
async def acache(config: CacheConfig) -> AsyncIterator[AsyncCache]:
    async with AsyncCache(config) as client:
        yield client


def unconnected() -> tuple[Cache, AsyncCache]:
    """Clients that only build plans: nothing connects (port 9 is never dialled)."""
    options: dict[str, Any] = {"host": "127.0.0.1", "port": 9, "key_prefix": "twin:"}
    return Cache(**options), AsyncCache(**options)


def test_the_plan_table_covers_every_data_method() -> None:
    names = {name for name, _, _ in DATA_CALLS}
    assert names == DATA_METHODS | {"ping"}
    pipeline_methods = set(public_members(Pipeline)) - SYNC_ONLY - {"execute"}
    assert pipeline_methods == DATA_METHODS


@pytest.mark.asyncio
async def test_both_twins_run_the_same_plan_for_every_data_method() -> None:
    sync_cache, async_cache = unconnected()
    try:
        sync_side, async_side = sync_plans(sync_cache), await async_plans(async_cache)
    finally:
        sync_cache.close()
        await async_cache.close()
    for (name, args, kwargs), ours, theirs in zip(DATA_CALLS, sync_side, async_side, strict=True):
        assert ours == theirs, f"{name}{args} {kwargs}: Cache plans {ours}, AsyncCache {theirs}"
    ttl_plan = sync_side[[name for name, _, _ in DATA_CALLS].index("ttl")]
    assert ttl_plan == (("TTL", "twin:k"), int)  # a plan is what Redis is sent
    assert sync_side[DATA_CALLS.index(("delete", (), {}))] == Done(0)  # nothing to send


@pytest.mark.asyncio
async def test_pipelines_queue_the_plans_the_clients_run() -> None:
    sync_cache, async_cache = unconnected()
    try:
        pipes: list[PipelineBase] = [sync_cache.pipeline(), async_cache.pipeline()]
        planned = sync_plans(sync_cache)
        for pipe in pipes:
            expected = []
            for index, (name, args, kwargs) in enumerate(DATA_CALLS):
                if name != "ping":
                    getattr(pipe, name)(*args, **kwargs)
                    expected.append(planned[index])
            assert [comparable(plan) for plan in pipe._take_plans()[0]] == expected
    finally:
        sync_cache.close()
        await async_cache.close()


def test_a_pipelined_delete_of_no_keys_counts_zero_like_the_client(cache: Cache) -> None:
    with cache.pipeline() as p:
        p.delete().set("one", "1").delete("one")
        assert p.execute() == [0, True, 1]
    assert cache.delete() == 0


@pytest.mark.asyncio
async def test_async_twin_runs_plans_against_redis(acache: AsyncCache) -> None:
    async with acache.pipeline() as p:
        p.delete().set_json("j", {"n": 1}).get_json("j").ttl("j")
        assert await p.execute() == [0, True, {"n": 1}, -1]
    assert await acache.incr("n", 2) == 2
    assert await acache.expire("n", 30) is True
    assert 0 < await acache.ttl("n") <= 30
    assert await acache.exists("n") is True
    assert await acache.delete("n", "j", "missing") == 2
    assert await acache.get_json("j") is None
