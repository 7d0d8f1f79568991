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

from infra.policy.rules import RESOURCE_RULES, Rule, every_node_alarmed

__all__ = ["PACK_NAME", "policies", "resource_validator", "validate_every_node_alarmed"]

PACK_NAME = "berthcache-elasticache"


def resource_validator(rule: Rule) -> Any:
    """A pulumi_policy resource validation calling ``rule``: one violation per message."""

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in rule(args.resource_type, args.props):
            report_violation(f"{args.name}: {message}", None)

    validate.__name__ = f"validate_{rule.__name__}"
    return validate


def validate_every_node_alarmed(
    args: StackValidationArgs, report_violation: ReportViolation
) -> None:
    for message in every_node_alarmed([(r.resource_type, r.props) for r in args.resources]):
        report_violation(message, None)


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
    out.append(
        StackValidationPolicy(
            name="every-node-alarmed",
            description="Every member node of every replication group has the catalogue's "
            "alarms, each with alarm actions.",
            validate=validate_every_node_alarmed,
            enforcement_level=EnforcementLevel.MANDATORY,
        )
    )
    return out
