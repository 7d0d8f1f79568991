"""The ``stack`` target: the deployed ElastiCache group, found from its Pulumi outputs.

Endpoint and port come from the outputs (``--stack-outputs FILE``, or ``--stack NAME`` through
``pulumi stack output --json --show-secrets``); the AUTH token and user from the stack's secret in
Secrets Manager (boto3's credential chain; the region as the AWS CLI finds it, AWS_REGION first
then AWS_DEFAULT_REGION and the profile: berthcache.ops._aws). TLS is verified against the
system CA bundle (certifi's where the system has none) unless ``--tls-ca`` names another CA.

The endpoint is shared production: capabilities are ``tls``/``auth`` as configured and
``replica`` when the group has more than one member — never ``admin``, so tests that need
``CONFIG``/``DEBUG``/``CLIENT KILL`` skip with the reason. The suite's own namespace rules
(per-run prefix, deleted with SCAN + UNLINK) apply as on every target.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import pytest

from berthcache.ops._connection import default_ca_bundle
from berthcache.testing._target import Target, UsageError, probe_capabilities

__all__ = ["default_ca_bundle", "stack_target"]


def stack_target(
    *,
    stack: str | None = None,
    outputs_file: str | Path | None = None,
    tls_ca_file: str | None = None,
) -> Target:
    """Build the target from the outputs and Secrets Manager. Skips when no stack is named;
    :class:`UsageError` (one line, naming what is missing, no secret) when a named stack cannot
    be resolved or does not answer."""
    if stack is None and outputs_file is None:
        # Like the docker target without an engine: skip, saying what to give.
        pytest.skip(
            "stack target: no stack given: pass --stack NAME (uses the pulumi CLI) or "
            "--stack-outputs FILE (from `pulumi stack output --json --show-secrets`)"
        )
    # The ops modules import boto3 only when they make a client, long after their own import:
    # ask for it here, or a missing ops extra surfaces as a bare ImportError mid-run.
    try:
        from berthcache.ops._connection import resolve_connection
        from berthcache.ops._errors import OpsError
        from berthcache.ops._stack_outputs import load_outputs
    except ImportError as exc:
        missing: str | None = str(exc)
    else:
        missing = None if importlib.util.find_spec("boto3") else "No module named 'boto3'"
    if missing is not None:
        raise UsageError(
            f"the stack target needs berthcache[ops] (boto3): {missing}; "
            "install it with `pip install 'berthcache[ops]'`"
        )
    try:
        outputs = load_outputs(stack=stack, outputs_file=outputs_file)
        connection = resolve_connection(outputs)
    except OpsError as exc:
        raise UsageError(f"stack target: {exc.message}") from None
    if not connection.tls:
        raise UsageError(
            f"stack target: {connection.masked_url} has TLS off; the deployed group must use "
            "TLS in transit (C15)"
        )
    capabilities = {"tls"}
    if connection.password:
        capabilities.add("auth")
    if len(outputs.member_clusters) > 1:
        capabilities.add("replica")
    target = Target(
        name="stack",
        url=connection.url(),
        tls_ca_file=tls_ca_file or default_ca_bundle(),
        started_by_us=False,
    )
    # PING (an unreachable endpoint fails the run here, once, with the reason); never admin.
    probed = probe_capabilities(target)
    return dataclasses.replace(target, capabilities=frozenset((capabilities | probed) - {"admin"}))
