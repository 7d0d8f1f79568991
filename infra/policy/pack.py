"""The ``pulumi_policy`` objects wrapping ``rules``; ``__main__`` serves them as a pack."""

from __future__ import annotations

from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from infra.policy.rules import RESOURCE_RULES, STACK_RULES, Rule, StackRule, every_node_alarmed

__all__ = [
    "PACK_NAME",
    "policies",
    "resource_validator",
    "stack_validator",
    "validate_every_node_alarmed",
]

PACK_NAME = "berthcache-elasticache"


def resource_validator(rule: Rule) -> Any:
    """A pulumi_policy resource validation calling ``rule``: one violation per message."""

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in rule(args.resource_type, args.props):
            report_violation(f"{args.name}: {message}", None)

    validate.__name__ = f"validate_{rule.__name__}"
    return validate


def stack_validator(rule: StackRule) -> Any:
    """A pulumi_policy stack validation calling ``rule`` on every resource's props."""

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        for message in rule([(r.resource_type, r.props) for r in args.resources]):
            report_violation(message, None)

    validate.__name__ = f"validate_{rule.__name__}"
    return validate


validate_every_node_alarmed = stack_validator(every_node_alarmed)


def policies() -> list[Any]:
    """Every policy, all mandatory."""
    out: list[Any] = [
        ResourceValidationPolicy(
            name=name,
            description=description,
            validate=resource_validator(rule),
            enforcement_level=EnforcementLevel.MANDATORY,
        )
        for name, (description, rule) in RESOURCE_RULES.items()
    ]
    out += [
        StackValidationPolicy(
            name=name,
            description=description,
            validate=stack_validator(rule),
            enforcement_level=EnforcementLevel.MANDATORY,
        )
        for name, (description, rule) in STACK_RULES.items()
    ]
    return out
