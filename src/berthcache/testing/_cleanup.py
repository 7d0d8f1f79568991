"""The harness's clean-up registry: whatever it starts is reaped, however the run ends.

Every ``redis-server`` process and every harness (its proxy thread and temp directory) registers
here when it starts and unregisters when it is closed. Whatever is still registered is closed at
interpreter exit (``atexit``: a normal end, an exception, and Ctrl-C, which pytest turns into a
``KeyboardInterrupt`` and then a normal exit) and on SIGTERM, which would otherwise end the
process without running ``atexit``. SIGKILL cannot be caught: the server side covers it with a
parent-death signal (see :mod:`berthcache.testing._server`).

Owners (a replication group that stops its own servers in order) are closed before the things
they own; the registry holds weak references, so it never keeps a forgotten object alive.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import threading
import weakref
from typing import Any, Protocol

__all__ = ["Closeable", "close_all", "register_for_cleanup", "unregister_for_cleanup"]


class Closeable(Protocol):
    """Anything the registry can reap: ``close()`` must be idempotent."""

    def close(self) -> None: ...


_LIVE: weakref.WeakKeyDictionary[Closeable, bool] = weakref.WeakKeyDictionary()  # obj -> owner
_LOCK = threading.Lock()
_SIGTERM_INSTALLED = False


def register_for_cleanup(obj: Closeable, *, owner: bool = False) -> None:
    """Make sure ``obj.close()`` runs at interpreter exit and on SIGTERM if nobody called it.

    ``owner=True`` for objects that close other registered objects (closed first, so a group
    stops its proxy and servers in its own order)."""
    global _SIGTERM_INSTALLED
    with _LOCK:
        _LIVE[obj] = owner
        if (
            not _SIGTERM_INSTALLED
            and threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        ):
            signal.signal(signal.SIGTERM, _on_sigterm)
            _SIGTERM_INSTALLED = True


def unregister_for_cleanup(obj: Closeable) -> None:
    """``obj`` was closed by its user: nothing left to reap."""
    with _LOCK:
        _LIVE.pop(obj, None)


@atexit.register
def close_all() -> None:
    """Close everything still registered: owners first, then the rest; errors are swallowed so
    one stuck object never keeps the others running."""
    with _LOCK:
        live = list(_LIVE.items())
    for obj, _owner in sorted(live, key=lambda item: not item[1]):
        with contextlib.suppress(Exception):
            obj.close()


def _on_sigterm(signum: int, frame: Any) -> None:
    close_all()
    # Die of SIGTERM as the sender expects (exit status and all), now that nothing is left.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
