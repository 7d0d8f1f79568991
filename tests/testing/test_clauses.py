"""The per-clause summary table: a red clause must say which promise broke, while the exit
status and the rest of pytest's output stay exactly as without the plugin."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from berthcache.testing.clauses import (
    CLAUSES,
    CONTRACT_DOC,
    ClauseResult,
    contract_link,
    format_footer,
    format_table,
    github_anchor,
    summarize,
)

ROOT = Path(__file__).resolve().parents[2]

pytest_plugins = ["pytester"]

# The plugin as ./scripts/conformance loads it; the harness plugin, asyncio and the cache dir are
# kept out of the inner runs (faster, and nothing in them needs Redis).
PLUGIN = (
    "-p",
    "berthcache.testing.clauses",
    "-p",
    "no:berthcache",
    "-p",
    "no:asyncio",
    "-p",
    "no:hypothesispytest",
    "-p",
    "no:cacheprovider",
    # This process imported the module already, so the inner run cannot assert-rewrite it.
    "-W",
    "ignore::pytest.PytestAssertRewriteWarning",
)

SUITE = """
import pytest

pytestmark = pytest.mark.clause("C5")

def test_set_get():
    assert True

def test_expire():
    assert True

@pytest.mark.clause("C8")
def test_session_ttl():
    assert 1 + 1 == 3

@pytest.mark.clause("C12")
def test_pubsub_needs_tls():
    pytest.skip("target lacks tls")
"""


ROW = re.compile(r"^(C\d+)\s+(.+?)\s+(\d+)\s+(\d+)\s+(\d+)\s+(PASS|FAIL|SKIP|NOT COVERED)$")


def _row(output: str, cid: str) -> list[str]:
    """The cells of one clause's row; the status is the last column."""
    for line in output.splitlines():
        match = ROW.match(line.rstrip())
        if match and match[1] == cid:
            return list(match.groups())
    raise AssertionError(f"no row for {cid} in:\n{output}")


def test_failure_in_one_clause_marks_only_that_clause(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_contract=SUITE)
    result = pytester.runpytest(*PLUGIN)
    out = result.stdout.str()
    result.assert_outcomes(passed=2, failed=1, skipped=1)
    assert "cache contract: per-clause summary" in out
    # A module-level pytestmark and a function marker stack: the C8 test counts for C5 too.
    assert _row(out, "C5") == ["C5", "Basic operations", "2", "1", "1", "FAIL"]
    assert _row(out, "C8") == ["C8", "Sessions", "0", "1", "0", "FAIL"]
    assert _row(out, "C12") == ["C12", "Pub/sub", "0", "0", "1", "SKIP"]
    assert _row(out, "C1") == ["C1", "Configuration", "0", "0", "0", "NOT COVERED"]
    assert "clauses failing: C5, C8" in out
    # Where each broken or skipped promise is written, and where the contract is.
    assert "  C5 Basic operations: docs/contract.md#c5-basic-operations" in out
    assert "  C8 Sessions: docs/contract.md#c8-sessions" in out
    assert "clauses skipped: C12\n  C12 Pub/sub: docs/contract.md#c12-pubsub" in out
    # A repository path, said to be one (the installed suite has no docs/ beside it).
    assert "the contract: docs/contract.md in the berthcache repository, one section per" in out


def test_passing_clause_shows_pass_next_to_a_failing_one(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_a="""
        import pytest

        @pytest.mark.clause("C5")
        def test_ok(): pass

        @pytest.mark.clause("C10")
        def test_bad(): assert False
        """
    )
    result = pytester.runpytest(*PLUGIN)
    out = result.stdout.str()
    assert _row(out, "C5")[-1] == "PASS"
    assert _row(out, "C10")[-1] == "FAIL"
    # Every clause of the contract has a row, in order.
    ids = [line.split()[0] for line in out.splitlines() if re.match(r"^C\d+ ", line)]
    assert ids == list(CLAUSES)


def test_exit_status_is_unchanged(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_a="""
        import pytest

        @pytest.mark.clause("C5")
        def test_bad(): assert False
        """
    )
    with_plugin = pytester.runpytest(*PLUGIN)
    without = pytester.runpytest(*PLUGIN[2:])
    assert with_plugin.ret == without.ret == pytest.ExitCode.TESTS_FAILED

    pytester.makepyfile(
        test_a="""
        import pytest

        @pytest.mark.clause("C5")
        def test_ok(): pass
        """
    )
    assert pytester.runpytest(*PLUGIN).ret == pytest.ExitCode.OK


def test_subset_run_with_k_counts_only_what_ran(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_contract=SUITE)
    result = pytester.runpytest(*PLUGIN, "-k", "set_get or expire")
    out = result.stdout.str()
    result.assert_outcomes(passed=2, deselected=2)
    assert _row(out, "C5") == ["C5", "Basic operations", "2", "0", "0", "PASS"]
    assert _row(out, "C8")[-1] == "NOT COVERED"
    assert result.ret == pytest.ExitCode.OK


def test_setup_error_and_xfail(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_a="""
        import pytest

        @pytest.fixture
        def broken():
            raise RuntimeError("harness down")

        @pytest.mark.clause("C2")
        def test_needs_harness(broken): pass

        @pytest.mark.clause("C3")
        @pytest.mark.xfail(reason="known bug")
        def test_known_bug(): assert False
        """
    )
    out = pytester.runpytest(*PLUGIN).stdout.str()
    assert _row(out, "C2")[-1] == "FAIL"  # an error in setup is not a pass
    assert _row(out, "C3")[-1] == "SKIP"  # a known failure proves nothing


def test_unknown_clause_id_is_an_error_naming_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_a="""
        import pytest

        @pytest.mark.clause("C99")
        def test_typo(): pass
        """
    )
    result = pytester.runpytest(*PLUGIN)
    assert result.ret != pytest.ExitCode.OK
    text = result.stdout.str() + result.stderr.str()
    assert "test_typo" in text
    assert "C99" in text


def test_junitxml_carries_the_clause(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_contract=SUITE)
    xml_path = pytester.path / "out.xml"
    pytester.runpytest(*PLUGIN, f"--junitxml={xml_path}")
    root = ET.parse(xml_path).getroot()  # noqa: S314 -- our own file, written just now
    props = {
        case.get("name"): sorted(
            p.get("value", "") for p in case.iter("property") if p.get("name") == "clause"
        )
        for case in root.iter("testcase")
    }
    assert props["test_set_get"] == ["C5"]
    assert props["test_session_ttl"] == ["C5", "C8"]
    links = {
        case.get("name"): sorted(
            p.get("value", "") for p in case.iter("property") if p.get("name") == "contract"
        )
        for case in root.iter("testcase")
    }
    assert links["test_set_get"] == ["docs/contract.md#c5-basic-operations"]
    assert links["test_session_ttl"] == [
        "docs/contract.md#c5-basic-operations",
        "docs/contract.md#c8-sessions",
    ]


def test_no_table_when_no_test_has_a_clause(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a="def test_plain(): pass")
    result = pytester.runpytest(*PLUGIN)
    assert "per-clause summary" not in result.stdout.str()


def test_summarize_counts_multi_clause_tests_once_per_clause() -> None:
    rows = {
        r.id: r
        for r in summarize([(("C5", "C7"), "passed"), (("C7",), "failed"), (("C9",), "skipped")])
    }
    assert rows["C5"].status == "PASS"
    assert (rows["C7"].passed, rows["C7"].failed, rows["C7"].status) == (1, 1, "FAIL")
    assert rows["C9"].status == "SKIP"
    assert rows["C16"].status == "NOT COVERED"
    assert len(rows) == 16


def test_titles_and_links_of_the_table() -> None:
    assert CLAUSES["C1"] == "Configuration"
    assert CLAUSES["C16"] == "Memory pressure and TTL guidelines"
    assert list(CLAUSES) == [f"C{i}" for i in range(1, 17)]
    lines = format_table([ClauseResult("C4", "Health", 1, 0, 0)])
    assert lines[0].split() == ["id", "clause", "passed", "failed", "skipped", "status"]
    assert lines[2].split() == ["C4", "Health", "1", "0", "0", "PASS"]
    assert ClauseResult("C4", "Health", 1, 0, 0).link == "docs/contract.md#c4-health"
    footer = format_footer([ClauseResult("C4", "Health", 0, 1, 0)])
    assert footer[1:] == ["clauses failing: C4", "  C4 Health: docs/contract.md#c4-health"]


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("C1 Configuration", "c1-configuration"),
        ("C12 Pub/sub", "c12-pubsub"),
        ("C15 TLS and AUTH", "c15-tls-and-auth"),
        (
            "Safety on endpoints the suite did not start",
            "safety-on-endpoints-the-suite-did-not-start",
        ),
    ],
)
def test_anchors_follow_githubs_slug_rules(heading: str, anchor: str) -> None:
    assert github_anchor(heading) == anchor


def _contract_sections() -> dict[str, str]:
    """``{anchor: heading}`` of every ``## `` section of the contract in the repository."""
    text = (ROOT / CONTRACT_DOC).read_text(encoding="utf-8")
    headings = [line[3:].strip() for line in text.splitlines() if line.startswith("## ")]
    return {github_anchor(h): h for h in headings}


def test_every_clause_links_to_its_section_of_the_contract() -> None:
    sections = _contract_sections()
    for cid, title in CLAUSES.items():
        path, _, anchor = contract_link(cid).partition("#")
        assert path == CONTRACT_DOC
        assert anchor in sections, f"{CONTRACT_DOC} has no section #{anchor} for {cid}"
        assert sections[anchor] == f"{cid} {title}"


def test_every_clause_section_of_the_contract_is_a_known_clause() -> None:
    clause_headings = [h for h in _contract_sections().values() if re.match(r"C\d+\b", h)]
    assert clause_headings == [f"{cid} {title}" for cid, title in CLAUSES.items()]


def test_links_inside_the_contract_resolve() -> None:
    text = (ROOT / CONTRACT_DOC).read_text(encoding="utf-8")
    sections = _contract_sections()
    links = re.findall(r"\]\(#([^)]+)\)", text)
    assert links, "the contract cross-references its clauses"
    assert sorted(set(links) - set(sections)) == []
