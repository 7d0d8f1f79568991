"""The offline update check: what a change of stack settings does to each declared resource.

Runs the program under mocks twice, with the stack's settings and with the change, and compares
the inputs of every resource (matched by type and logical name) against
``infra.replacements``: an input the provider replaces on change makes a replace, any other
changed input an update in place. A replace is refused when the resource keeps a fixed physical
name (delete-before-create) and AWS would refuse the delete or the reuse of the name: the group's
data would be gone first, another resource still uses it, it is protected, or the name stays
reserved. Replacements propagate: a successor gets a new id and ARN (unless they derive from an
unchanged name), so the run is repeated with those renewed until nothing more changes.

Like ``infra.plan`` this is NOT a diff against a real account: it knows the program, not what
exists. It needs no AWS credentials and no Pulumi CLI.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import pulumi
from pulumi.runtime import mocks as _pulumi_mocks

from infra.config import NAMESPACE, SETTINGS, InfraConfigError, Setting
from infra.offline import OfflineRun, Registered, plain, run_offline
from infra.replacements import REPLACEMENTS, ReplaceRule, rule_for

__all__ = [
    "Action",
    "ResourceChange",
    "SettingOutcome",
    "UpdatePlan",
    "Verdict",
    "alternative_value",
    "compare",
    "day2_markdown",
    "day2_outcomes",
    "plan_update",
    "with_overrides",
]

Action = Literal["unchanged", "update", "replace", "replace refused", "create", "delete"]
Verdict = Literal[
    "unchanged", "in place", "replace", "replace refused", "refused by config validation"
]
_MAX_ROUNDS = 8
_SUCCESSOR = "-successor"

Key = tuple[str, str]


@dataclasses.dataclass(frozen=True)
class ResourceChange:
    """What the update does to one resource: the action, the inputs that changed and why."""

    type: str
    name: str
    action: Action
    inputs: tuple[str, ...] = ()
    reason: str = ""
    source: str = ""


@dataclasses.dataclass(frozen=True)
class UpdatePlan:
    """Every resource's change, in the program's declaration order."""

    changes: tuple[ResourceChange, ...]

    def of(self, *actions: Action) -> list[ResourceChange]:
        return [c for c in self.changes if c.action in actions]

    @property
    def verdict(self) -> Verdict:
        if self.of("replace refused"):
            return "replace refused"
        if self.of("replace") or any(
            rule_for(c.type).holds_data for c in self.of("delete") if c.type in REPLACEMENTS
        ):
            return "replace"
        if self.of("update", "create", "delete"):
            return "in place"
        return "unchanged"


class _Observing(pulumi.runtime.Mocks):
    """Wraps the program's mocks: records each resource's id, and gives the resources in
    ``renew`` a successor's id and computed outputs (as a replacement would)."""

    def __init__(self, inner: pulumi.runtime.Mocks, renew: frozenset[Key], ids: dict[Key, str]):
        self.inner = inner
        self.renew = renew
        self.ids = ids

    def new_resource(
        self, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str | None, dict[str, Any]]:
        rid, state = self.inner.new_resource(args)
        key = (args.typ, args.name)
        if key in self.renew:
            rid = f"{rid}{_SUCCESSOR}" if rid else rid
            state = {k: v if k in args.inputs else _successor(v) for k, v in state.items()}
        self.ids[key] = rid or ""
        return rid, state

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return self.inner.call(args)


def _successor(value: Any) -> Any:
    if isinstance(value, str):
        return value + _SUCCESSOR
    if isinstance(value, list):
        return [_successor(v) for v in value]
    if isinstance(value, dict):
        return {k: _successor(v) for k, v in value.items()}
    return value


@contextlib.contextmanager
def _observed(renew: frozenset[Key]) -> Iterator[dict[Key, str]]:
    """While active, every ``set_mocks`` (``run_offline`` calls it) gets the observing wrapper."""
    original = _pulumi_mocks.set_mocks
    ids: dict[Key, str] = {}

    def set_mocks(mocks: pulumi.runtime.Mocks, *args: Any, **kwargs: Any) -> None:
        original(_Observing(mocks, renew, ids), *args, **kwargs)

    _pulumi_mocks.set_mocks = set_mocks
    try:
        yield ids
    finally:
        _pulumi_mocks.set_mocks = original


@dataclasses.dataclass(frozen=True)
class _Observation:
    run: OfflineRun
    ids: Mapping[Key, str]

    def by_key(self) -> dict[Key, Registered]:
        return {(r.type, r.name): r for r in self.run.resources}


def _observe(config: Mapping[str, Any], stack: str, renew: frozenset[Key]) -> _Observation:
    with _observed(renew) as ids:
        run = run_offline(config, stack=stack)
    return _Observation(run, dict(ids))


def _camel(path: str) -> str:
    head = re.split(r"[.\[]", path, maxsplit=1)[0]
    first, *rest = head.split("_")
    return first + "".join(p[:1].upper() + p[1:] for p in rest)


def _changed_inputs(before: Registered, after: Registered) -> list[str]:
    ignored = {_camel(p) for p in after.ignore_changes}
    keys = sorted(set(before.inputs) | set(after.inputs))
    return [
        k
        for k in keys
        if k not in ignored and plain(before.inputs.get(k)) != plain(after.inputs.get(k))
    ]


def _leaves(value: Any) -> Iterator[str]:
    value = plain(value)
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)


def _identity(res: Registered, rule: ReplaceRule, rid: str) -> set[str]:
    """The values another resource would hold to refer to ``res``: its id, its computed
    outputs and its physical name."""
    found = {rid} if rid else set()
    for key, value in res.state.items():
        if key not in res.inputs:
            found.update(_leaves(value))
    for key in rule.physical_name:
        found.update(_leaves(res.inputs.get(key)))
    return {v for v in found if v}


def _fixed_name(rule: ReplaceRule, before: Registered, after: Registered) -> tuple[str, str]:
    """(input, value) of a physical name set explicitly and unchanged, or ("", "")."""
    for key in rule.physical_name:
        old, new = plain(before.inputs.get(key)), plain(after.inputs.get(key))
        if old is not None and old == new:
            return key, str(new)
    return "", ""


def _refusal(
    rule: ReplaceRule,
    before: Registered,
    after: Registered,
    users: Sequence[Registered],
) -> str:
    """Why AWS or Pulumi refuses this replacement ('' when it goes through)."""
    if before.protect:
        return "it is protected (protect=True): Pulumi refuses to delete it"
    key, name = _fixed_name(rule, before, after)
    if not key:
        return ""
    prefix = f"{key} {name!r} is fixed, so it is deleted before its successor is created"
    if rule.holds_data:
        return f"{prefix}: the cache and its data are gone until then (give it a new {key})"
    if users:
        names = ", ".join(sorted(u.name for u in users))
        return f"{prefix}, and AWS refuses to delete it while {names} still use it"
    if rule.same_name_blocked is not None:
        blocked = rule.same_name_blocked(plain(after.inputs))
        if blocked:
            return f"{prefix}, and {blocked}"
    return ""


def _diff(before: _Observation, after: _Observation) -> tuple[ResourceChange, ...]:
    old_by_key, new_by_key = before.by_key(), after.by_key()
    changes: dict[Key, ResourceChange] = {}
    replaced: set[Key] = set()
    for key, new in new_by_key.items():
        if new.type.startswith(f"{NAMESPACE}:"):
            continue  # components: their children carry the changes
        old = old_by_key.get(key)
        if old is None:
            changes[key] = ResourceChange(new.type, new.name, "create")
            continue
        rule = rule_for(new.type)
        changed = _changed_inputs(old, new)
        if not changed:
            changes[key] = ResourceChange(new.type, new.name, "unchanged")
            continue
        reasons = [
            r
            for k in changed
            if (r := rule.replaces(k, plain(old.inputs.get(k)), plain(new.inputs.get(k))))
        ]
        if not reasons:
            changes[key] = ResourceChange(new.type, new.name, "update", tuple(changed))
            continue
        replaced.add(key)
        changes[key] = ResourceChange(
            new.type, new.name, "replace", tuple(changed), "; ".join(reasons), rule.source
        )
    for key in list(replaced):
        old, new = old_by_key[key], new_by_key[key]
        rule = rule_for(new.type)
        identity = _identity(old, rule, before.ids.get(key, ""))
        users = [
            r
            for k, r in old_by_key.items()
            if k != key
            and k not in replaced
            and k in new_by_key
            and not r.type.startswith(f"{NAMESPACE}:")
            and identity & set(_leaves(r.inputs))
        ]
        refusal = _refusal(rule, old, new, users)
        if refusal:
            change = changes[key]
            changes[key] = dataclasses.replace(
                change, action="replace refused", reason=f"{change.reason}; {refusal}"
            )
    deleted = [
        old
        for key, old in old_by_key.items()
        if key not in new_by_key and not old.type.startswith(f"{NAMESPACE}:")
    ]
    for old in deleted:
        if old.protect:  # e.g. a prod cache whose topology changes: Pulumi refuses the delete
            changes[(old.type, old.name)] = ResourceChange(
                old.type,
                old.name,
                "replace refused",
                reason="it is deleted, but protected (protect=True): Pulumi refuses to delete it",
            )
            continue
        changes[(old.type, old.name)] = ResourceChange(old.type, old.name, "delete")
    for key, change in list(changes.items()):
        if change.action == "create":
            clash = _name_clash(new_by_key[key], deleted)
            if clash:
                changes[key] = dataclasses.replace(change, action="replace refused", reason=clash)
    return tuple(changes.values())


def _name_clash(new: Registered, deleted: Sequence[Registered]) -> str:
    """A new resource (new logical name) that takes the physical name of one being deleted:
    Pulumi creates first, so AWS refuses the name."""
    rule = rule_for(new.type)
    for old in deleted:
        if old.type != new.type:
            continue
        for key in rule.physical_name:
            name = plain(new.inputs.get(key))
            if name is not None and name == plain(old.inputs.get(key)):
                hint = (
                    "a new topology is a new cache: give it a new replicationGroupId, move "
                    "the apps, then retire the old stack"
                    if rule.holds_data
                    else "add an alias to keep the resource"
                )
                return (
                    f"{key} {name!r} is still taken by {old.name}, which Pulumi deletes only "
                    f"after creating this one; the name is fixed ({hint})"
                )
    return ""


def _needs_new_identity(change: ResourceChange, before: _Observation, after: _Observation) -> bool:
    """A successor gets a new id/ARN unless they derive from a name that stays the same."""
    key = (change.type, change.name)
    if key not in before.by_key() or key not in after.by_key():  # created or deleted
        return False
    rule = rule_for(change.type)
    fixed, _ = _fixed_name(rule, before.by_key()[key], after.by_key()[key])
    return not (rule.name_is_identity and fixed)


def compare(before: OfflineRun, after: OfflineRun) -> UpdatePlan:
    """One comparison of two runs, without the propagation of successors' ids
    (:func:`plan_update` repeats it until replacements stop spreading)."""
    return UpdatePlan(_diff(_Observation(before, {}), _Observation(after, {})))


def plan_update(
    before: Mapping[str, Any], after: Mapping[str, Any], *, stack: str = "dev"
) -> UpdatePlan:
    """What changing the stack's config from ``before`` to ``after`` does, resource by resource.
    Raises :class:`InfraConfigError` (naming the setting) when either config is invalid."""
    old = _observe(before, stack, frozenset())
    renew: frozenset[Key] = frozenset()
    changes: tuple[ResourceChange, ...] = ()
    for _ in range(_MAX_ROUNDS):
        new = _observe(after, stack, renew)
        changes = _diff(old, new)
        wanted = frozenset(
            (c.type, c.name)
            for c in changes
            if c.action in ("replace", "replace refused") and _needs_new_identity(c, old, new)
        )
        if wanted <= renew:
            break
        renew = renew | wanted
    return UpdatePlan(changes)


def with_overrides(config: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with ``overrides`` applied; bare keys get the ``berthcache:`` namespace."""
    out = dict(config)
    for key, value in overrides.items():
        out[key if ":" in key else f"{NAMESPACE}:{key}"] = value
    return out


# Settings whose declaration alone does not give a second valid value.
_ALTERNATIVES: Mapping[str, Any] = {
    "engineVersion": "7.0",
    "replicationGroupId": "berthcache-dev2",
    "keyPrefix": "tenant1:",
    "appUserChannels": ["alerts"],
    "maintenanceWindow": "mon:05:00-mon:06:00",
    "snapshotWindow": "04:00-05:00",
    "vpcCidr": "10.41.0.0/16",
    "subnetIds": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
    "allowedCidrs": ["10.40.0.0/17"],
    "alarmEmails": ["platform-alerts@example.com", "oncall@example.com"],
    "dailySnapshotTime": "04:00",
}


def alternative_value(setting: Setting, current: Any) -> Any:
    """Another value the setting's own declaration accepts (None when none is known)."""
    if setting.key in _ALTERNATIVES and _ALTERNATIVES[setting.key] != current:
        return _ALTERNATIVES[setting.key]
    if setting.type == "boolean":
        return not bool(current)
    if setting.choices:
        others = [c for c in setting.choices if c != current]
        if others:
            ordered = list(setting.choices)
            return (
                ordered[ordered.index(current) + 1 - len(ordered)]
                if current in ordered
                else others[0]
            )
    if setting.type == "integer":
        value = int(current)
        if setting.maximum is None or value + 1 <= setting.maximum:
            return value + 1
        return value - 1
    if setting.type == "array" and setting.example:
        return [*(current or []), setting.example]
    if setting.example and setting.example != current:
        return setting.example
    return None


@dataclasses.dataclass(frozen=True)
class SettingOutcome:
    """What changing one setting does to the stack (a row of docs/platform.md's day-2 table)."""

    key: str
    old: Any
    new: Any
    verdict: Verdict
    detail: str


def _summary(plan: UpdatePlan) -> str:
    parts = []
    for change in plan.changes:
        if change.action in ("replace", "replace refused"):
            parts.append(f"{change.action} {change.name}: {change.reason}")
    if not parts:
        updated = plan.of("update", "create", "delete")
        kinds = sorted({f"{c.action} {c.type.split(':')[-1]}" for c in updated})
        parts.append(", ".join(kinds))
    return " | ".join(parts)


def day2_outcomes(
    base: Mapping[str, Any], *, stack: str = "dev", settings: Sequence[Setting] = SETTINGS
) -> list[SettingOutcome]:
    """Change every setting in turn to another valid value and record what happens: the verdict
    of the update check, or the config validation's refusal with its reason."""
    outcomes = []
    for setting in settings:
        full = f"{NAMESPACE}:{setting.key}"
        current = base.get(full, setting.default)
        new = alternative_value(setting, current)
        if new is None:
            raise ValueError(f"{full}: no alternative value known; add one to _ALTERNATIVES")
        try:
            plan = plan_update(base, with_overrides(base, {full: new}), stack=stack)
        except InfraConfigError as exc:
            outcomes.append(
                SettingOutcome(setting.key, current, new, "refused by config validation", str(exc))
            )
            continue
        outcomes.append(SettingOutcome(setting.key, current, new, plan.verdict, _summary(plan)))
    return outcomes


def day2_markdown(outcomes: Sequence[SettingOutcome]) -> str:
    """The outcomes as a Markdown table (to compare with docs/platform.md's day-2 table)."""
    lines = ["| setting | change | outcome | why |", "|---|---|---|---|"]
    for o in outcomes:
        why = o.detail.replace("|", "/")
        lines.append(f"| `{o.key}` | `{o.old!r}` -> `{o.new!r}` | {o.verdict} | {why} |")
    return "\n".join(lines)


if __name__ == "__main__":
    # `python -m infra.update_check [STACK]`: the day-2 table for Pulumi.<STACK>.yaml (default dev).
    import sys

    from infra.offline import load_stack_file, stack_file

    name = sys.argv[1] if len(sys.argv) > 1 else "dev"
    print(day2_markdown(day2_outcomes(load_stack_file(stack_file(name)), stack=name)))
