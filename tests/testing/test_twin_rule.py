"""The conformance suite guarantees the twin story: a test that does not run with both the sync
and the async client fails collection, naming the test, unless it says why with a marker."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

# The suite's own conftest, loaded as a plugin: the rule under test is the real one. Nothing in
# these inner runs needs Redis (client_kind alone does not connect).
PLUGINS = (
    "-p",
    "berthcache.conformance.conftest",
    "-p",
    "no:berthcache",
    "-p",
    "no:cacheprovider",
    "-p",
    "no:hypothesispytest",
    "--strict-markers",
    "-o",
    "asyncio_default_fixture_loop_scope=function",
    "-W",
    "ignore::pytest.PytestAssertRewriteWarning",
)

TWINNED = """
import pytest

def test_both(client_kind):
    assert client_kind in ("sync", "async")

@pytest.mark.parametrize("n", [1, 2])
def test_both_with_params(client_kind, n):
    pass

@pytest.mark.not_twinned(reason="config parsing: no client involved")
def test_parsing():
    pass
"""


def test_tests_on_both_twins_and_marked_exceptions_are_collected(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_ok=TWINNED)
    result = pytester.runpytest(*PLUGINS)
    result.assert_outcomes(passed=7)  # 2 + 2 x 2 + 1


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        pytest.param(
            "def test_sync_only(): pass",
            "test_one.py::test_sync_only runs with neither client",
            id="no-client",
        ),
        pytest.param(
            "import pytest\n"
            "@pytest.mark.parametrize('client_kind', ['sync'])\n"
            "def test_sync_only(client_kind): pass",
            "test_one.py::test_sync_only runs with the sync client only",
            id="one-twin",
        ),
        pytest.param(
            "import pytest\n"
            "@pytest.mark.parametrize(('client_kind', 'n'), [('sync', 1), ('async', 2)])\n"
            "def test_split(client_kind, n): pass",
            "test_one.py::test_split misses one twin for some of its parameters",
            id="split-over-params",
        ),
        pytest.param(
            "import pytest\n@pytest.mark.not_twinned\ndef test_why(): pass",
            "test_one.py::test_why: @pytest.mark.not_twinned needs a reason",
            id="marker-without-reason",
        ),
        pytest.param(
            "import pytest\n"
            "@pytest.mark.not_twinned(reason='stale')\n"
            "def test_both(client_kind): pass",
            "test_one.py::test_both is marked not_twinned but runs with both twins",
            id="stale-marker",
        ),
    ],
)
def test_a_test_not_on_both_twins_fails_collection_naming_it(
    pytester: pytest.Pytester, body: str, complaint: str
) -> None:
    pytester.makepyfile(test_one=body, test_ok=TWINNED)
    result = pytester.runpytest(*PLUGINS)
    assert result.ret == pytest.ExitCode.INTERRUPTED  # a collection error stops the run
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    assert "ERROR collecting test_one.py" in out
    assert complaint in out
    assert "every conformance test runs with both client twins" in out
    assert "test_ok.py" not in out.split("short test summary info")[-1]  # only the offender


def test_a_subset_run_cannot_hide_a_one_twin_test(pytester: pytest.Pytester) -> None:
    """Selecting only the twin that exists (-k or a node id) still fails: the rule is checked
    on what the module defines, before selection."""
    pytester.makepyfile(
        test_one="import pytest\n"
        "@pytest.mark.parametrize('client_kind', ['async'])\n"
        "def test_async_only(client_kind): pass"
    )
    by_keyword = pytester.runpytest(*PLUGINS, "-k", "async")
    by_node_id = pytester.runpytest(*PLUGINS, "test_one.py::test_async_only[async]")
    for result in (by_keyword, by_node_id):
        assert result.ret in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.USAGE_ERROR)
        assert "ERROR collecting test_one.py" in result.stdout.str()
        assert "test_async_only runs with the async client only" in result.stdout.str()


def test_all_offenders_of_a_module_are_named_at_once(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_one="""
        def test_first(): pass
        def test_fine(client_kind): pass
        def test_second(): pass
        """,
        test_two="""
        class TestGroup:
            def test_in_a_class(self): pass
            def test_fine(self, client_kind): pass
        """,
    )
    out = pytester.runpytest(*PLUGINS).stdout.str()
    assert "test_one.py::test_first runs with neither client" in out
    assert "test_one.py::test_second runs with neither client" in out
    assert "test_two.py::TestGroup::test_in_a_class runs with neither client" in out
    assert "test_fine" not in out
