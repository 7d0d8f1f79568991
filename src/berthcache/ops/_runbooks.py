"""Runbook lookup: from an alarm name, key or anchor to its entry and its runbook section.

The alarm data is :mod:`berthcache.ops.alarm_catalogue` (the Pulumi program's single source of
alarms); the runbooks are ``runbooks.md``, package data of :mod:`berthcache.ops`, read with
:mod:`importlib.resources` so the installed package needs no checkout. An alarm without a
section falls back to the catalogue's own meaning / first steps. Links are URLs under a
configurable base (:func:`runbook_base_url`), not repository paths.
"""

from __future__ import annotations

import importlib.resources
import os
import re
from collections.abc import Mapping

from berthcache.ops._errors import ExitCode, OpsError
from berthcache.ops.alarm_catalogue import CATALOGUE, AlarmSpec, runbook_url

__all__ = [
    "alarm_key",
    "catalogue",
    "find_spec",
    "parse_runbook_sections",
    "runbook_base_url",
    "runbook_link",
    "runbook_text",
    "slugify",
]

#: Where runbook links point: a base URL the repository path is appended to (a fork, a mirror,
#: an internal Git host, a docs site laid out like the repository).
RUNBOOK_BASE_ENV = "BERTHCACHE_RUNBOOK_BASE_URL"
#: The earlier name of :data:`RUNBOOK_BASE_ENV`, still read when the new one is unset.
RUNBOOK_BASE_ENV_OLD = "BERTHCACHE_RUNBOOK_BASE"
#: The project's repository (``[project.urls] Repository`` in pyproject.toml) on its main branch.
DEFAULT_RUNBOOK_BASE_URL = "https://github.com/berthcache/berthcache/blob/main/"


def catalogue() -> tuple[AlarmSpec, ...]:
    """Every alarm the Pulumi program creates per node."""
    return CATALOGUE


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


def runbook_base_url(environ: Mapping[str, str] | None = None) -> str:
    """``$BERTHCACHE_RUNBOOK_BASE_URL`` (else the older ``$BERTHCACHE_RUNBOOK_BASE``, else
    :data:`DEFAULT_RUNBOOK_BASE_URL`), ending in ``/``; a value that is not a URL is an error
    naming the variable."""
    env = os.environ if environ is None else environ
    for name in (RUNBOOK_BASE_ENV, RUNBOOK_BASE_ENV_OLD):
        value = env.get(name, "").strip()
        if value:
            scheme, sep, rest = value.partition("://")
            if not sep or not scheme.isalpha() or not rest.strip("/"):
                raise OpsError(
                    f"{name}={value!r} is not a URL; give a base such as "
                    f"{DEFAULT_RUNBOOK_BASE_URL}",
                    ExitCode.USAGE,
                )
            return value.rstrip("/") + "/"
    return DEFAULT_RUNBOOK_BASE_URL


def runbook_link(spec: AlarmSpec, environ: Mapping[str, str] | None = None) -> str:
    """The runbook section's URL: ``<base>src/berthcache/ops/runbooks.md#<anchor>`` under
    :func:`runbook_base_url`, so a link works from a pager, a browser or a chat message."""
    return runbook_base_url(environ) + runbook_url(spec)


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
    """The runbook section for ``spec`` from the packaged ``runbooks.md``, or the catalogue's
    summary."""
    runbooks = importlib.resources.files("berthcache.ops").joinpath("runbooks.md")
    section = parse_runbook_sections(runbooks.read_text(encoding="utf-8")).get(spec.runbook_anchor)
    if section is not None:
        return section
    return (
        f"## {spec.title}\n\n**What it means:** {spec.meaning}\n\n"
        f"**First steps:** {spec.first_steps}\n\n(Full runbook: {runbook_link(spec)})\n"
    )
