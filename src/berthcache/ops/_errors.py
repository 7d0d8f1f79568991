"""The one error type of the ops CLI and its exit codes.

Every failure an operator can cause or meet (bad input, AWS refusing, Redis unreachable) becomes
an :class:`OpsError`: one line, naming what is missing, never a secret. The CLI prints it to
stderr and exits with its code, so scripts can branch on the kind of failure.
"""

from __future__ import annotations

import enum

__all__ = ["ExitCode", "OpsError"]


class ExitCode(enum.IntEnum):
    """Exit codes of ``berthcache-ops`` (documented in ``docs/oncall.md``)."""

    OK = 0
    FAILED = 1  # the operation ran and failed or was aborted (drill unrecovered, rotation aborted)
    USAGE = 2  # bad input: unknown alarm, missing/invalid outputs, unknown stack
    AWS = 3  # AWS refused: credentials, permission, group not found, throttling
    REDIS = 4  # the Redis endpoint could not be reached or refused the credentials
    ALARMING = 5  # --fail-on-alarm and at least one alarm is in ALARM


class OpsError(Exception):
    """A one-line, secret-free explanation and the exit code it deserves."""

    def __init__(self, message: str, code: ExitCode = ExitCode.FAILED) -> None:
        self.message = " ".join(message.split())  # one line, whatever the source said
        self.code = code
        super().__init__(self.message)
