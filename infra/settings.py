"""How a stack setting is declared, and the one generic check every declaration gets.

A :class:`Setting` says everything a value must satisfy on its own: type, default, allowed
values, numeric range, pattern, and — for what data cannot say (a private CIDR, a window at
least an hour long) — one ``check`` function. :func:`parse_setting` turns the text Pulumi hands
the program into a checked value, or raises :class:`InfraConfigError` naming the setting as
``<namespace>:<key>``. Rules that involve several settings live with the table
(``infra/config.py``), not here. This module knows no berthcache setting.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Sequence
from typing import Any, Literal

import pulumi

__all__ = [
    "InfraConfigError",
    "Setting",
    "SettingType",
    "markdown_table",
    "parse_setting",
    "setting_error",
]

_LISTED_CHOICES = 25  # longer lists (node types) are summarised in docs, not spelled out

SettingType = Literal["string", "integer", "boolean", "array"]
"""Pulumi's config types (``Pulumi.yaml``); ``array`` is a list of strings."""


class InfraConfigError(pulumi.RunError):
    """A stack setting is invalid; the message names it. Pulumi prints it without a traceback."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Setting:
    """One stack setting. For an ``array``, ``pattern`` and ``check`` apply to each item."""

    key: str
    type: SettingType
    default: Any
    doc: str
    choices: tuple[str, ...] | tuple[int, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    pattern: str | None = None
    """Full match, e.g. ``vpc-[0-9a-f]{8,17}``; allow ``""`` explicitly when empty is valid."""
    example: str = ""
    """A valid value, shown when ``pattern`` does not match."""
    check: Callable[[Any], Any] | None = None
    """Returns the (normalised) value or raises ``ValueError`` with the reason."""
    secret: bool = False
    """Its value never appears in an error message."""
    replaces: str = ""
    """What changing it replaces (e.g. ``the replication group``); empty when in place."""

    @property
    def allowed(self) -> str:
        """What the declaration allows, in words ("" when any value of the type goes)."""
        parts = []
        if len(self.choices) > _LISTED_CHOICES:
            known = self.default if self.default in self.choices else self.choices[0]
            parts.append(f"One of {len(self.choices)} values such as {known}.")
        elif self.choices:
            parts.append("One of " + ", ".join(str(c) for c in self.choices) + ".")
        if self.minimum is not None or self.maximum is not None:
            parts.append(f"From {self.minimum} to {self.maximum}.")
        if self.example:
            parts.append(f"Example: {self.example}")
        return " ".join(parts)

    @property
    def meaning(self) -> str:
        """``doc`` plus what changing the setting replaces."""
        if not self.replaces:
            return self.doc
        return f"{self.doc} Changing it replaces {self.replaces}."

    def pulumi_declaration(self) -> dict[str, Any]:
        """The setting's entry in ``Pulumi.yaml``'s ``config:`` block."""
        out: dict[str, Any] = {"type": self.type}
        if self.type == "array":
            out["items"] = {"type": "string"}
        out["description"] = f"{self.meaning} {self.allowed}".strip()
        if self.secret:
            out["secret"] = True
        out["default"] = self.default
        return out


def setting_error(namespace: str, key: str, message: str) -> InfraConfigError:
    return InfraConfigError(f"{namespace}:{key}: {message}")


def _got(setting: Setting, value: object) -> str:
    return "" if setting.secret else f", got {value!r}"


def _typed(setting: Setting, raw: str, fail: Callable[[str], InfraConfigError]) -> Any:
    """Pulumi's config text -> a value of the declared type."""
    if setting.type == "string":
        return raw.strip()
    if setting.type == "integer":
        try:
            return int(raw)
        except ValueError:
            raise fail(f"must be an integer{_got(setting, raw)}") from None
    if setting.type == "boolean":
        low = raw.strip().lower()
        if low not in ("true", "false"):
            raise fail(f"must be true or false{_got(setting, raw)}")
        return low == "true"
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        raise fail("must be a list (set it with `pulumi config set --path`)") from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise fail("must be a list of strings")
    return value


def _checked(setting: Setting, value: Any, fail: Callable[[str], InfraConfigError]) -> Any:
    """One scalar (or one array item) against choices, range, pattern and ``check``."""
    if setting.choices and value not in setting.choices:
        allowed = ", ".join(str(c) for c in setting.choices)
        raise fail(f"must be one of {allowed}{_got(setting, value)}")
    if isinstance(value, int) and not isinstance(value, bool):
        lo, hi = setting.minimum, setting.maximum
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise fail(f"must be between {lo} and {hi}{_got(setting, value)}")
    if setting.pattern is not None and not re.fullmatch(setting.pattern, value):
        like = f"look like {setting.example}" if setting.example else "match"
        raise fail(f"must {like} (pattern {setting.pattern}){_got(setting, value)}")
    if setting.check is not None:
        try:
            return setting.check(value)
        except ValueError as exc:
            raise fail("is not valid" if setting.secret else str(exc)) from None
    return value


def parse_setting(setting: Setting, raw: str | None, *, namespace: str) -> Any:
    """Raw config text (``None``: not set) -> the checked value, or the declared default."""

    def fail(message: str) -> InfraConfigError:
        return setting_error(namespace, setting.key, message)

    if raw is None:
        value = setting.default
        return list(value) if isinstance(value, list) else value
    value = _typed(setting, raw, fail)
    if setting.type == "array":
        return [_checked(setting, item, fail) for item in value]
    return _checked(setting, value, fail)


def _cell(value: Any) -> str:
    return f"`{json.dumps(value)}`"


def markdown_table(settings: Sequence[Setting]) -> str:
    """The settings as a Markdown table, for docs/platform.md (a test keeps the two equal)."""
    lines = [
        "| setting | type | default | allowed | meaning |",
        "|---|---|---|---|---|",
    ]
    for s in settings:
        meaning = s.meaning + (" Secret." if s.secret else "")
        lines.append(f"| `{s.key}` | {s.type} | {_cell(s.default)} | {s.allowed} | {meaning} |")
    return "\n".join(lines)
