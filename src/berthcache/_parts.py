"""Key parts and reply text for the feature modules: the argument checks every feature makes.

``check_part`` turns a caller's id/name argument into a key part or raises
:class:`InvalidKeyError` naming the argument; ``as_text`` reads a Redis reply as ``str`` whether
or not the client decodes responses; ``glob_escape`` makes a key part a literal in a SCAN/ACL
pattern (the public :mod:`berthcache.acl` re-exports it); ``KeyMemo`` remembers the keys built
for the argument pairs that come back request after request. No I/O; imports only the errors.
"""

from __future__ import annotations

from berthcache._exceptions import InvalidKeyError

__all__ = ["KeyMemo", "as_text", "check_part", "glob_escape"]

_GLOB_SPECIALS = frozenset("*?[]\\")


class KeyMemo:
    """Keys already built, by the arguments they were built from, at most ``size`` of them
    (then it starts over): a hot endpoint or client is looked up, not validated and prefixed
    again on every call. Callers memoize exact ``str`` / ``int`` arguments only, so a subclass
    with its own ``__eq__`` / ``__hash__`` is always checked afresh."""

    __slots__ = ("_keys", "_size")

    def __init__(self, size: int = 4096) -> None:
        self._keys: dict[tuple[object, ...], str] = {}
        self._size = size

    def get(self, args: tuple[object, ...]) -> str | None:
        """The key built for ``args``, or None."""
        return self._keys.get(args)

    def remember(self, args: tuple[object, ...], key: str) -> str:
        """Keep ``key`` for ``args``; returns ``key``."""
        if len(self._keys) >= self._size:
            self._keys.clear()
        self._keys[args] = key
        return key


def as_text(value: str | bytes) -> str:
    """Redis replies as ``str`` whether or not the client decodes responses."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def check_part(value: object, name: str) -> str:
    """A non-empty str/int argument as text, else :class:`InvalidKeyError` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidKeyError(f"{name} must be a string or integer, got {type(value).__name__}")
    text = str(value)
    if not text:
        raise InvalidKeyError(f"{name} must not be empty")
    return text


def glob_escape(text: str) -> str:
    """``text`` as a literal in a Redis glob pattern (``*``, ``?``, ``[``, ``]``, ``\\``)."""
    return "".join("\\" + c if c in _GLOB_SPECIALS else c for c in text)
