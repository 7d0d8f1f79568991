"""The asyncio transport's tests again, on uvloop's event loop (what ``uvicorn[standard]`` runs
an API on): its C loop and TLS layer must keep every behaviour the stdlib loop does —
timeouts, cancellations, retries, READONLY, drained close, the queue bound, TLS with ACL.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.unit.test_mux import *  # noqa: F403  # the same tests, collected here once more

# Not loop tests (they make their own standard loops): run once, in test_mux.py.
del test_another_event_loop_gets_a_clear_error  # noqa: F821
del test_the_settings_name_themselves  # noqa: F821

uvloop = pytest.importorskip("uvloop", reason="uvloop is not installed (a dev dependency)")

# pytest-asyncio >= 1.x prefers its pytest_asyncio_loop_factories hook, which older releases
# that pyproject.toml admits (>= 0.24) lack; the policy fixture works on both.
pytestmark = pytest.mark.filterwarnings(
    'ignore:Overriding the "event_loop_policy" fixture is deprecated'
)


@pytest.fixture
def event_loop_policy() -> asyncio.AbstractEventLoopPolicy:
    """pytest-asyncio runs this module's tests on loops from this policy."""
    policy: asyncio.AbstractEventLoopPolicy = uvloop.EventLoopPolicy()
    return policy


@pytest.mark.asyncio
async def test_these_tests_run_on_uvloop() -> None:
    assert type(asyncio.get_running_loop()).__module__.startswith("uvloop")
