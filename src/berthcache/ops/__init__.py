"""``berthcache-ops``: the on-call CLI for a deployed berthcache stack.

Commands: ``status``, ``alarms``, ``runbook``, ``diagnose``, ``failover-drill``,
``rotate-auth-token`` and ``conformance`` (see ``docs/oncall.md``). Needs the ``ops`` extra
(boto3, typer, rich). :mod:`.cli` only wires options to operations; the building blocks live in
private modules so tests can drive them without the CLI: :mod:`._stack_outputs` (the Pulumi
outputs), :mod:`._connection` (Secrets Manager, URL, TLS CA -> how to connect), :mod:`._aws` (the
one boundary where botocore errors become one-line :class:`OpsError` messages), :mod:`._status`,
:mod:`._diagnose`, :mod:`._drill`, :mod:`._rotate`, :mod:`._conformance` (the packaged suite in a
child pytest), :mod:`._runbooks` (runbook lookup) and :mod:`._render` (text / JSON output). The
alarm data is the public :mod:`.alarm_catalogue`; ``runbooks.md`` is package data.
"""

from berthcache.ops._errors import ExitCode, OpsError

__all__ = ["ExitCode", "OpsError"]
