"""The per-clause summary of the conformance suite: which promises of the cache contract held.

Loaded with ``-p berthcache.testing.clauses`` (``./scripts/conformance`` and ``./scripts/test``
do). Tests name the clause they prove with ``@pytest.mark.clause("C5")`` (or a module-level
``pytestmark``); after the run a table lists every clause C1-C16 with its passed / failed /
skipped counts and a status, and the lines under it say where the clauses are written — one
section of ``docs/contract.md`` each, linked for every clause that failed or was skipped
(``C5 Basic operations: docs/contract.md#c5-basic-operations``) — so a red run says *which
promise* broke and where to read it, not only which test.

The clause and its link also go into each test's ``user_properties``, so ``--junitxml`` carries
``<property name="clause" value="C5"/>`` and
``<property name="contract" value="docs/contract.md#c5-basic-operations"/>``.
The plugin never changes the exit status.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping

import pytest

__all__ = [
    "CLAUSES",
    "CONTRACT_DOC",
    "ClauseResult",
    "clause_ids",
    "contract_anchor",
    "contract_link",
    "format_footer",
    "format_table",
    "github_anchor",
    "summarize",
]

#: Where the clauses are written, relative to the repository root: one ``## C<n> <title>``
#: section per clause.
CONTRACT_DOC = "docs/contract.md"

#: The contract's clauses, keyed by id, with their titles (the headings of CONTRACT_DOC).
CLAUSES: dict[str, str] = {
    "C1": "Configuration",
    "C2": "Connection and retry",
    "C3": "Connection events",
    "C4": "Health",
    "C5": "Basic operations",
    "C6": "JSON",
    "C7": "Key prefix",
    "C8": "Sessions",
    "C9": "API response cache",
    "C10": "Rate limiting",
    "C11": "Presence",
    "C12": "Pub/sub",
    "C13": "Pipelining",
    "C14": "Graceful shutdown",
    "C15": "TLS and AUTH",
    "C16": "Memory pressure and TTL guidelines",
}

_PROPERTY = "clause"
_LINK_PROPERTY = "contract"
_MARKER_HELP = (
    "clause(id, ...): the cache-contract clause(s) this test proves, e.g. clause('C5'); "
    "summarized per clause by berthcache.testing.clauses"
)


@dataclasses.dataclass
class _TestOutcome:
    clauses: tuple[str, ...]
    outcome: str = "passed"  # becomes "failed" / "skipped" as phase reports arrive


@dataclasses.dataclass(frozen=True)
class ClauseResult:
    """One row of the table."""

    id: str
    title: str
    passed: int
    failed: int
    skipped: int

    @property
    def link(self) -> str:
        """Where the clause is written (its section of the contract)."""
        return contract_link(self.id) if self.id in CLAUSES else ""

    @property
    def status(self) -> str:
        """FAIL wins over everything; SKIP only when nothing ran to a verdict."""
        if self.failed:
            return "FAIL"
        if self.passed:
            return "PASS"
        if self.skipped:
            return "SKIP"
        return "NOT COVERED"


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation other than ``-`` and
    ``_`` dropped, spaces turned into ``-`` (``"C12 Pub/sub"`` -> ``"c12-pubsub"``)."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def contract_anchor(cid: str) -> str:
    """The anchor of clause ``cid``'s section: ``"C1"`` -> ``"c1-configuration"``."""
    return github_anchor(f"{cid} {CLAUSES[cid]}")


def contract_link(cid: str) -> str:
    """Where clause ``cid`` is written: ``docs/contract.md#c1-configuration``."""
    return f"{CONTRACT_DOC}#{contract_anchor(cid)}"


def clause_ids(item: pytest.Item) -> tuple[str, ...]:
    """The clause ids an item is marked with (closest marker first, duplicates dropped).

    An unknown id is a typo that would silently leave a clause uncovered, so it is an error.
    """
    found: list[str] = []
    for marker in item.iter_markers(name=_PROPERTY):
        if not marker.args:
            raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.clause needs a clause id")
        for arg in marker.args:
            cid = str(arg).upper()
            if cid not in CLAUSES:
                raise pytest.UsageError(
                    f"{item.nodeid}: unknown clause {arg!r} in @pytest.mark.clause; "
                    f"known clauses are C1-C{len(CLAUSES)}"
                )
            if cid not in found:
                found.append(cid)
    return tuple(found)


def summarize(
    outcomes: Iterable[tuple[Iterable[str], str]],
    clauses: Mapping[str, str] = CLAUSES,
) -> list[ClauseResult]:
    """Count ``(clause ids, outcome)`` pairs per clause; every clause gets a row."""
    counts = {cid: {"passed": 0, "failed": 0, "skipped": 0} for cid in clauses}
    for ids, outcome in outcomes:
        for cid in ids:
            if cid in counts and outcome in counts[cid]:
                counts[cid][outcome] += 1
    return [ClauseResult(cid, title, **counts[cid]) for cid, title in clauses.items()]


def format_table(rows: Iterable[ClauseResult]) -> list[str]:
    """The table as text lines (fixed-width columns, no colour). The status stays the last
    column, so scripts that look for ``PASS`` at the end of a clause's line keep working."""
    rows = list(rows)
    title_width = max([len("clause"), *(len(r.title) for r in rows)])
    header = (
        f"{'id':<4} {'clause':<{title_width}} {'passed':>6} {'failed':>6} {'skipped':>7}  status"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r.id:<4} {r.title:<{title_width}} {r.passed:>6} {r.failed:>6} {r.skipped:>7}"
            f"  {r.status}"
        )
    return lines


def format_footer(rows: Iterable[ClauseResult]) -> list[str]:
    """The lines under the table: where the clauses are written, and for every clause that
    failed or was skipped the link to its section, so a red run points at the promise."""
    rows = list(rows)
    lines = [
        f"the contract: {CONTRACT_DOC} in the berthcache repository, one section per clause "
        f"(e.g. {contract_link(next(iter(CLAUSES)))})"
    ]
    failing = [r for r in rows if r.status == "FAIL"]
    skipped = [r for r in rows if r.status == "SKIP"]
    uncovered = [r.id for r in rows if r.status == "NOT COVERED"]
    for label, group in (("clauses failing", failing), ("clauses skipped", skipped)):
        if group:
            lines.append(f"{label}: {', '.join(r.id for r in group)}")
            lines.extend(f"  {r.id} {r.title}: {r.link}" for r in group)
    if uncovered:
        lines.append(f"clauses not covered by the tests that ran: {', '.join(uncovered)}")
    return lines


# -- pytest hooks ----------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", _MARKER_HELP)
    config.pluginmanager.register(_ClauseSummary(config), "berthcache-clause-summary")


class _ClauseSummary:
    """Per-run state lives here (not in module globals), so in-process pytester runs and
    repeated sessions never see each other's results."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.outcomes: dict[str, _TestOutcome] = {}

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        # trylast: runs after -k/-m deselection, so only the tests that will run are marked.
        for item in items:
            for cid in clause_ids(item):
                for prop in ((_PROPERTY, cid), (_LINK_PROPERTY, contract_link(cid))):
                    if prop not in item.user_properties:
                        item.user_properties.append(prop)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # The clause travels on the report (user_properties), so reports that come from
        # elsewhere (xdist workers) are counted too, without the item at hand.
        ids = tuple(dict.fromkeys(str(v) for k, v in report.user_properties if k == _PROPERTY))
        if not ids:
            return
        entry = self.outcomes.setdefault(report.nodeid, _TestOutcome(clauses=ids))
        if report.failed:
            entry.outcome = "failed"  # any phase failing (a setup error too) fails the test
        elif report.skipped and entry.outcome != "failed":
            # xfail lands here too: a known failure proves nothing about the clause.
            entry.outcome = "skipped"

    def results(self) -> list[ClauseResult]:
        return summarize((o.clauses, o.outcome) for o in self.outcomes.values())

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if hasattr(self.config, "workerinput"):  # an xdist worker: the controller prints it
            return
        if not self.outcomes:
            return
        rows = self.results()
        tr = terminalreporter
        tr.write_sep("=", "cache contract: per-clause summary")
        lines = format_table(rows)
        for line in lines[:2]:
            tr.write_line(line)
        for row, line in zip(rows, lines[2:], strict=True):
            colour = {"PASS": "green", "FAIL": "red", "SKIP": "yellow"}.get(row.status)
            if colour:
                tr.write_line(line, **{colour: True})
            else:
                tr.write_line(line)
        red = False
        for line in format_footer(rows):
            if not line.startswith("  "):
                red = line.startswith("clauses failing")
            if red:
                tr.write_line(line, red=True)
            else:
                tr.write_line(line)
