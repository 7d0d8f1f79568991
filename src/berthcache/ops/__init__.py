"""``berthcache-ops``: the on-call CLI for a deployed berthcache stack.

Commands: ``status``, ``alarms``, ``runbook``, ``diagnose``, ``failover-drill``,
``rotate-auth-token`` and ``conformance`` (see ``docs/oncall.md``). Needs the ``ops`` extra
(boto3, typer, rich). The building blocks live in private modules so tests can drive them
without the CLI: :mod:`._outputs` (stack outputs + Secrets Manager), :mod:`._aws` (the one
boundary where botocore errors become one-line :class:`OpsError` messages), :mod:`._diagnose`,
:mod:`._drill` and :mod:`._rotate`.
"""

from berthcache.ops._errors import ExitCode, OpsError

__all__ = ["ExitCode", "OpsError"]
