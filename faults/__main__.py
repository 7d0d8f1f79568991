"""``./scripts/faults [--short] [--json] [--rows ID,ID] [--doc PATH | --no-doc]``

Runs the rows on local Redis servers it starts, prints the table and, for a full run of every
row, writes it to docs/reliability.md. Exits 1 when a check fails (see ``report.problems``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from faults.report import machine, problems, render_machine, render_table, write_doc
from faults.rows import FULL, ROWS, SHORT, Row, run_rows

DOC = Path(__file__).resolve().parent.parent / "docs" / "reliability.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./scripts/faults", description=__doc__)
    parser.add_argument("--short", action="store_true", help="short phases, 10 s soak (~1 min)")
    parser.add_argument("--json", action="store_true", help="also print one JSON line at the end")
    parser.add_argument("--rows", help=f"comma-separated row ids (default all): {', '.join(ROWS)}")
    parser.add_argument("--doc", type=Path, help=f"write the table here (default {DOC.name})")
    parser.add_argument("--no-doc", action="store_true", help="print only")
    args = parser.parse_args(argv)
    only = [r.strip() for r in args.rows.split(",") if r.strip()] if args.rows else None
    unknown = sorted(set(only or ()) - set(ROWS))
    if unknown:
        parser.error(f"unknown row(s) {', '.join(unknown)}; known: {', '.join(ROWS)}")
    # The connection logger warns on every reconnect; the table counts what callers saw.
    logging.getLogger("berthcache").addHandler(logging.NullHandler())
    plan, name = (SHORT, "short") if args.short else (FULL, "full")
    info = machine()
    began = time.monotonic()

    def progress(row: Row) -> None:
        state = "FAILED" if row.failure else f"{row.seconds:.1f} s"
        print(f"  {row.id}: {state}", file=sys.stderr, flush=True)

    try:
        rows = run_rows(plan, only, on_row=progress)
    except KeyboardInterrupt:  # each row's group has stopped its servers on the way out
        print("interrupted: every server this run started has been stopped", file=sys.stderr)
        return 130
    section = render_machine(info, name, time.monotonic() - began) + "\n\n" + render_table(rows)
    found = problems(rows)
    print(section)
    for problem in found:
        print(f"PROBLEM: {problem}")
    doc = args.doc or (DOC if not args.short and only is None else None)
    if doc is not None and not args.no_doc:
        write_doc(doc, section)
        print(f"written to {doc}", file=sys.stderr)
    if args.json:
        rows_json = [r.as_dict() for r in rows]
        print(json.dumps({"plan": name, "machine": info, "rows": rows_json, "problems": found}))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
