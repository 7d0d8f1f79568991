"""The alarm catalogue and the runbooks, as the CLI sees them.

The catalogue is ``infra/alarms_catalogue.py`` (the Pulumi program's single source of alarms).
It lives outside the installed package, so when ``infra`` is not importable (the console script
runs with ``.venv/bin`` on ``sys.path``, not the checkout) it is loaded from the checkout this
package was installed from (editable install) or from the current directory's checkout.
``docs/runbooks.md`` is found the same way; without it, ``runbook`` falls back to the
catalogue's own meaning / first steps.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from berthcache.ops._errors import ExitCode, OpsError

if TYPE_CHECKING:
    from infra.alarms_catalogue import AlarmSpec

__all__ = [
    "alarm_key",
    "catalogue",
    "find_spec",
    "parse_runbook_sections",
    "runbook_link",
    "runbook_text",
    "slugify",
]

_CATALOGUE_FILE = Path("infra") / "alarms_catalogue.py"
_RUNBOOKS_FILE = Path("docs") / "runbooks.md"
#: A base URL for runbook links (e.g. the repository's blob URL); default: the repo-relative path.
RUNBOOK_BASE_ENV = "BERTHCACHE_RUNBOOK_BASE"


def _checkouts() -> Iterator[Path]:
    """Directories that may be the project checkout: this file's, then cwd and its parents."""
    here = Path(__file__).resolve()
    yield from here.parents
    cwd = Path.cwd().resolve()
    yield cwd
    yield from cwd.parents


def _find(relative: Path) -> Path | None:
    for root in _checkouts():
        candidate = root / relative
        if candidate.is_file():
            return candidate
    return None


@functools.cache
def _module() -> ModuleType:
    try:
        return importlib.import_module("infra.alarms_catalogue")
    except ImportError:
        pass
    path = _find(_CATALOGUE_FILE)
    if path is None:
        raise OpsError(
            "the alarm catalogue (infra/alarms_catalogue.py) was not found: run berthcache-ops "
            "from the berthcache checkout",
            ExitCode.USAGE,
        )
    name = "berthcache_ops_alarms_catalogue"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve string annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def catalogue() -> tuple[AlarmSpec, ...]:
    """Every alarm the Pulumi program creates per node."""
    specs: tuple[AlarmSpec, ...] = _module().CATALOGUE
    return specs


def alarm_key(alarm_name: str, group_id: str | None = None) -> str | None:
    """The catalogue key of an alarm named ``<group>-<NNN>-<key>`` (of ``group_id`` if given)."""
    group = re.escape(group_id) if group_id else ".+"
    for spec in catalogue():
        suffix = f"-{spec.key}"
        if alarm_name.endswith(suffix) and re.fullmatch(
            rf"{group}-\d{{3}}", alarm_name[: -len(suffix)]
        ):
            return spec.key
    return None


def find_spec(name: str) -> AlarmSpec:
    """The entry for a catalogue key, a runbook anchor or a full alarm name."""
    wanted = name.strip()
    for spec in catalogue():
        if wanted in (spec.key, spec.runbook_anchor) or wanted.lower() == spec.title.lower():
            return spec
    key = alarm_key(wanted)
    if key is not None:
        for spec in catalogue():
            if spec.key == key:
                return spec
    known = ", ".join(spec.key for spec in catalogue())
    raise OpsError(
        f"unknown alarm {wanted!r}: not in the catalogue (known: {known}; a full alarm name "
        "<group>-<NNN>-<key> works too)",
        ExitCode.USAGE,
    )


def runbook_link(spec: AlarmSpec) -> str:
    """``docs/runbooks.md#<anchor>``, under ``$BERTHCACHE_RUNBOOK_BASE`` when set."""
    url: str = _module().runbook_url(spec)
    base = os.environ.get(RUNBOOK_BASE_ENV, "").strip()
    return f"{base.rstrip('/')}/{url}" if base else url


def slugify(heading: str) -> str:
    """GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces -> '-'."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def parse_runbook_sections(markdown: str) -> dict[str, str]:
    """``## `` sections of the runbooks by anchor (heading included, up to the next ``## ``)."""
    sections: dict[str, str] = {}
    current: str | None = None
    lines: list[str] = []
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if not in_code and line.startswith("## "):
            if current is not None:
                sections[current] = "\n".join(lines).strip() + "\n"
            current, lines = slugify(line[3:]), [line]
        elif current is not None:
            lines.append(line)
    if current is not None:
        sections[current] = "\n".join(lines).strip() + "\n"
    return sections


def runbook_text(spec: AlarmSpec) -> str:
    """The runbook section for ``spec`` from ``docs/runbooks.md``, or the catalogue's summary."""
    path = _find(_RUNBOOKS_FILE)
    if path is not None:
        section = parse_runbook_sections(path.read_text(encoding="utf-8")).get(spec.runbook_anchor)
        if section is not None:
            return section
    return (
        f"## {spec.title}\n\n**What it means:** {spec.meaning}\n\n"
        f"**First steps:** {spec.first_steps}\n\n(Full runbook: {runbook_link(spec)})\n"
    )
