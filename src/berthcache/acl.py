"""The application user's ACL rules, in one place.

The deployed RBAC user (``infra/security.py``) and the local test harness's app user
(``berthcache.testing``) both use :func:`app_user_access`, so a check that passes against the
local harness cannot fail on the stack for lack of a permission (or the reverse). Who wraps the
rules is the caller's business: ElastiCache needs ``on`` in front (passwords are set through its
API, never in the access string); a ``redis-server`` config line adds ``reset on >password``.
"""

from __future__ import annotations

from collections.abc import Iterable

from berthcache._parts import glob_escape  # re-exported: its home is the shared helpers

__all__ = ["app_user_access", "glob_escape"]


def app_user_access(key_prefix: str, *, channels: Iterable[str] = ()) -> str:
    """ACL rules of the application user: keys and pub/sub channels under ``key_prefix`` only;
    every command except ``@dangerous`` (FLUSHALL, FLUSHDB, KEYS, CONFIG, DEBUG, SHUTDOWN,
    CLIENT KILL, MONITOR ...), plus ``INFO`` back — it is read-only, and the memory and hit-rate
    checks (C9, C16) need ``INFO memory`` / ``INFO stats`` on the stack as well as locally.

    ``channels`` adds bare channel names, each as a literal (no pattern): for services that
    publish and subscribe without the prefix (``prefix_channels=False``, as the seed does on
    ``alerts``). The app user gets exactly those names, nothing more.

    Raises ``ValueError`` naming the argument for an empty prefix (it would grant every key), or
    a prefix or channel name that is empty or holds whitespace (it would split the rule string).
    """
    if not key_prefix:
        raise ValueError("key_prefix must not be empty: the app user would reach every key")
    if any(c.isspace() for c in key_prefix):
        raise ValueError(f"key_prefix {key_prefix!r} must not contain whitespace")
    if isinstance(channels, str):
        raise ValueError("channels must be a collection of channel names, not one string")
    granted = []
    for channel in channels:
        if not isinstance(channel, str) or not channel or any(c.isspace() for c in channel):
            raise ValueError(
                f"channels: {channel!r} is not a channel name (non-empty, no whitespace)"
            )
        granted.append(f"&{glob_escape(channel)}")
    pattern = glob_escape(key_prefix) + "*"
    extra = "".join(f" {rule}" for rule in dict.fromkeys(granted))
    return f"~{pattern} &{pattern}{extra} +@all -@dangerous +info"
