"""Key naming: ``{prefix}{entity}:{id}:{attribute}`` on every key the module writes.

With the seed's prefix (:data:`~berthcache.DEFAULT_KEY_PREFIX`) a session key reads
``berthcare:session:user-42-session-…``.
Key parts may hold any text (spaces, colons, unicode — Redis keys are binary-safe) but not be
empty: an empty part would make two different keys collide.
"""

from __future__ import annotations

from berthcache._exceptions import InvalidKeyError
from berthcache._parts import glob_escape

__all__ = ["MAX_KEY_BYTES", "KeyBuilder"]

# Redis allows 512 MB keys; anything near this is a bug in the caller, not a key.
MAX_KEY_BYTES = 16 * 1024


class KeyBuilder:
    """Builds and checks the full (prefixed) keys of one cache client."""

    __slots__ = ("prefix",)

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __call__(self, *parts: str | int) -> str:
        """Join ``parts`` with ``:`` under the prefix; each part must be non-empty."""
        if not parts:
            raise InvalidKeyError("a key needs at least one part")
        texts = []
        for index, part in enumerate(parts):
            # Every command builds a key: exact-type checks first, the general ones after.
            text = part if type(part) is str else _as_text(part, index)
            if not text:
                raise InvalidKeyError(f"key part {index} is empty")
            texts.append(text)
        key = self.prefix + ":".join(texts)
        if key.isascii():  # the common case: bytes == characters, nothing to encode
            size = len(key)
        else:
            try:
                size = len(key.encode("utf-8"))
            except UnicodeEncodeError as exc:
                raise InvalidKeyError(
                    f"key is not valid Unicode text (lone surrogate at position "
                    f"{exc.start - len(self.prefix)}); keys are sent to Redis as UTF-8"
                ) from None
        if size > MAX_KEY_BYTES:
            raise InvalidKeyError(f"key is longer than {MAX_KEY_BYTES} bytes")
        return key

    def strip(self, full_key: str) -> str:
        """The key without this client's prefix (for listing keys back to callers)."""
        return full_key[len(self.prefix) :] if full_key.startswith(self.prefix) else full_key

    def pattern(self, *parts: str) -> str:
        """A SCAN MATCH pattern under the prefix, glob characters in the prefix escaped."""
        return glob_escape(self.prefix) + ":".join(parts)

    def __repr__(self) -> str:
        return f"KeyBuilder(prefix={self.prefix!r})"


def _as_text(part: object, index: int) -> str:
    if isinstance(part, bool) or not isinstance(part, str | int):
        raise InvalidKeyError(
            f"key part {index} must be a string or integer, got {type(part).__name__}"
        )
    return str(part)
