"""Progress of the long commands on stderr: how long it has run and what it is waiting for.

``failover-drill`` can take up to 900 s and ``rotate-auth-token`` waits a 300 s grace period
(plus ElastiCache's modifications): without a sign of life on-call cannot tell a wait from a hang.
:class:`Progress` shows ``<command>: <elapsed> s: <what it waits for>`` on stderr — a rich
spinner line that updates in place on a terminal, plain lines otherwise (a CI log, a pipe: one
line when the wait changes, and at most every ``every`` seconds while it does not). stdout stays
the command's result, so ``--output json`` remains machine-readable.

The clock is injected, so tests advance time instead of waiting for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.markup import escape

__all__ = ["Clock", "Progress", "Report", "silent"]

Clock = Callable[[], float]
#: ``report(what, detail)``: what the operation now waits for; :meth:`Progress.update` is one.
Report = Callable[[str, str], None]


class Progress:
    """Report ``update(what)`` calls for ``command`` on ``console`` (stderr by default).

    ``enabled=False`` (``--no-progress``) shows nothing. ``live`` chooses the rich spinner
    (default: when the console is a terminal). Plain lines are throttled to one per ``every``
    seconds of the same wait, so a loop may call :meth:`update` as often as it likes.
    """

    def __init__(
        self,
        command: str,
        *,
        console: Console | None = None,
        clock: Clock = time.monotonic,
        every: float = 15.0,
        enabled: bool = True,
        live: bool | None = None,
    ) -> None:
        self.command = command
        self.console = console or Console(stderr=True, highlight=False, soft_wrap=True)
        self.clock = clock
        self.every = every
        self.enabled = enabled
        self.live = self.console.is_terminal if live is None else live
        self._started = clock()
        self._last_what: str | None = None
        self._last_shown = float("-inf")
        self._status: Any = None

    def elapsed(self) -> float:
        return self.clock() - self._started

    def line(self, what: str, detail: str = "") -> str:
        """The text shown for ``what`` (and ``detail``) now."""
        return f"{self.command}: {self.elapsed():.0f} s: {what}" + (
            f" ({detail})" if detail else ""
        )

    def update(self, what: str, detail: str = "") -> None:
        """Say what the command now waits for; ``detail`` (counters) may change on every call
        without making a new plain line — only a new ``what`` or ``every`` seconds do. Cheap
        to call in a tight loop."""
        if not self.enabled:
            return
        now = self.clock()
        if self.live:
            if self._status is None:
                self._status = self.console.status(escape(self.line(what, detail)))
                self._status.start()
            elif what != self._last_what or now - self._last_shown >= 0.5:
                self._status.update(escape(self.line(what, detail)))
            else:
                return
        else:
            if what == self._last_what and now - self._last_shown < self.every:
                return
            self.console.print(
                f"berthcache-ops: {self.line(what, detail)}", markup=False, highlight=False
            )
        self._last_what, self._last_shown = what, now

    def done(self, what: str) -> None:
        """The final line (always printed, also on a terminal, so it stays in the scrollback)."""
        self.close()
        if self.enabled:
            self.console.print(f"berthcache-ops: {self.line(what)}", markup=False, highlight=False)

    def close(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def silent(what: str, detail: str = "") -> None:
    """The progress callback of library calls nobody watches."""
