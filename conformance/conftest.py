"""Fixtures of the conformance suite, and the rule that every test runs on both twins.

``cache`` is parametrized over ``sync`` (:class:`berthcache.Cache`) and ``async``
(:class:`berthcache.AsyncCache`), so every test proves its clause for both twins. Each test gets
its own key prefix under the run's namespace (``redis_namespace``): tests never see each other's
keys, and everything they write is removed by the harness at the end of the run. Every client a
test builds is closed at teardown, whatever happens.

The project's twin story is "both twins written by hand; the conformance suite runs every test on
both", so the suite enforces it at collection: a test that does not run with both the sync and
the async client (through ``cache``, ``cache_factory`` or ``client_kind``) fails collection with
the reason, unless it is marked ``@pytest.mark.not_twinned(reason="...")``: a test about neither
client (pure config parsing, a constant) or about one twin's own idiom (``async for``).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Generator, Sequence
from typing import Any

import pytest
import pytest_asyncio

from berthcache import CacheConfig

from .support import CLIENT_KINDS, AnyCache, CacheFactory, aw, make_cache

NOT_TWINNED = "not_twinned"
#: What ``--event-loop`` takes.
EVENT_LOOPS = ("asyncio", "uvloop")
_KIND = "client_kind"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--event-loop",
        dest="berthcache_event_loop",
        choices=EVENT_LOOPS,
        default="asyncio",
        help="the event loop the tests run on (the async twin's calls): asyncio's own "
        "(default) or uvloop's, what uvicorn[standard] serves an API on",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("berthcache_event_loop", default="asyncio") == "uvloop":
        try:
            import uvloop  # noqa: F401
        except ImportError:
            raise pytest.UsageError(
                "--event-loop uvloop: uvloop is not installed (pip install uvloop; "
                "it is a dev dependency of berthcache)"
            ) from None
    # pytest-asyncio >= 1.x prefers its loop-factory hook, which the releases pyproject.toml
    # admits (>= 0.24) lack; the policy fixture below works on both.
    config.addinivalue_line(
        "filterwarnings", 'ignore:Overriding the "event_loop_policy" fixture is deprecated'
    )
    # Also registered by berthcache.testing.clauses; repeated here so --strict-markers holds
    # when the suite runs without that plugin.
    config.addinivalue_line("markers", "clause(id, ...): the contract clause(s) a test proves")
    config.addinivalue_line(
        "markers",
        f"{NOT_TWINNED}(reason): this conformance test does not run with both Cache and "
        "AsyncCache, because it is about neither (pure config parsing, a constant) or about "
        "one twin's own idiom; the reason is required",
    )


# -- both twins, always --------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    """Fail the collection of a module (or class) holding a test that is not run on both twins,
    naming every such test and what to do. Checked on everything the module defines, before
    ``-k``/node-id selection, so a subset run cannot hide it."""
    report = yield
    if report.passed and isinstance(collector, pytest.Module | pytest.Class):
        problems = twin_problems(collector.nodeid, report.result)
        if problems:
            report.outcome = "failed"
            report.longrepr = "\n".join(
                [
                    "every conformance test runs with both client twins (Cache and AsyncCache):",
                    *(f"  {p}" for p in problems),
                    "take the `cache`, `cache_factory` or `client_kind` fixture, or mark a test "
                    "that is about neither client (or one twin's own idiom) "
                    f"@pytest.mark.{NOT_TWINNED}(reason=...)",
                ]
            )
            report.result = []
    return report


def twin_problems(parent: str, nodes: Sequence[pytest.Item | pytest.Collector]) -> list[str]:
    """One line per test function under ``parent`` that breaks the rule, in definition order."""
    by_function: dict[str, list[pytest.Function]] = {}
    for node in nodes:
        if isinstance(node, pytest.Function):
            by_function.setdefault(node.originalname, []).append(node)
    problems = []
    for name, items in by_function.items():
        where = f"{parent}::{name}"
        marker = items[0].get_closest_marker(NOT_TWINNED)
        kinds_of = [_kind(item) for item in items]
        if marker is not None:
            reason = marker.kwargs.get("reason", marker.args[0] if marker.args else "")
            if not isinstance(reason, str) or not reason.strip():
                problems.append(f"{where}: @pytest.mark.{NOT_TWINNED} needs a reason")
            elif {kind for kind in kinds_of if kind is not None} == set(CLIENT_KINDS):
                problems.append(
                    f"{where} is marked {NOT_TWINNED} but runs with both twins; drop the marker"
                )
            continue
        # Each combination of the other parameters needs both kinds. The values are the same
        # objects in every combination pytest builds, so their identity tells them apart.
        seen: dict[tuple[tuple[str, int], ...], set[str]] = {}
        for item, kind in zip(items, kinds_of, strict=True):
            params = getattr(getattr(item, "callspec", None), "params", {})
            key = tuple(sorted((k, id(v)) for k, v in params.items() if k != _KIND))
            seen.setdefault(key, set())
            if kind is not None:
                seen[key].add(kind)
        if all(kinds == set(CLIENT_KINDS) for kinds in seen.values()):
            continue
        ran = set().union(*seen.values())
        if not ran:
            problems.append(f"{where} runs with neither client")
        elif len(ran) == 1:
            problems.append(f"{where} runs with the {ran.pop()} client only")
        else:
            problems.append(f"{where} misses one twin for some of its parameters")
    return problems


def _kind(item: pytest.Function) -> str | None:
    callspec = getattr(item, "callspec", None)
    kind = callspec.params.get(_KIND) if callspec is not None else None
    return kind if isinstance(kind, str) else None


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def event_loop_policy(request: pytest.FixtureRequest) -> asyncio.AbstractEventLoopPolicy:
    """The loops pytest-asyncio runs the tests on (``--event-loop``)."""
    if request.config.getoption("berthcache_event_loop") == "uvloop":
        import uvloop

        policy: asyncio.AbstractEventLoopPolicy = uvloop.EventLoopPolicy()
        return policy
    return asyncio.get_event_loop_policy()


def pytest_report_header(config: pytest.Config) -> str:
    loop = config.getoption("berthcache_event_loop")
    if loop == "uvloop":
        return "event loop: uvloop (the AsyncCache tests only: Cache does not run on a loop)"
    return f"event loop: {loop}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On uvloop only the async twin's tests run: the sync twin never touches the loop, so
    running it again there would prove nothing."""
    if config.getoption("berthcache_event_loop") != "uvloop":
        return
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        on_sync = isinstance(item, pytest.Function) and _kind(item) == "sync"
        (dropped if on_sync else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture
def test_prefix(redis_namespace: str) -> str:
    """A key prefix of this test's own, under the run's namespace."""
    return f"{redis_namespace}{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def conf(cache_config: CacheConfig, test_prefix: str) -> CacheConfig:
    """The target's settings with this test's prefix."""
    return cache_config.replace(key_prefix=test_prefix)


@pytest.fixture(params=CLIENT_KINDS)
def client_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest_asyncio.fixture
async def cache_factory(client_kind: str, conf: CacheConfig) -> AsyncIterator[CacheFactory]:
    """Build more clients of this test's kind (``factory(**overrides)``); all closed at the end."""
    made: list[AnyCache] = []

    def factory(config: CacheConfig | None = None, **overrides: Any) -> AnyCache:
        client = make_cache(client_kind, config or conf, **overrides)
        made.append(client)
        return client

    try:
        yield factory
    finally:
        for client in reversed(made):
            with contextlib.suppress(Exception):
                await aw(client.close())


@pytest.fixture
def cache(cache_factory: CacheFactory) -> AnyCache:
    """A connected client on the target: ``Cache`` or ``AsyncCache`` (both, by parametrization)."""
    return cache_factory()
