"""Values on the wire: strings, bytes and numbers as they are; objects as JSON on request.

Encoding errors name the key and the offending type — never the value, which may be personal data.
A value nested deeper than Python's recursion limit (about 1,000 levels: ``json`` recurses once
per level) is a :class:`SerializationError` too, both ways, never a ``RecursionError``.
"""

from __future__ import annotations

import json
import sys
from typing import Any, TypeVar

from berthcache._exceptions import SerializationError

__all__ = ["check_text", "decode_json", "encode_json", "encode_value"]

Scalar = str | bytes | int | float
S = TypeVar("S", bound=Scalar)


def encode_json(value: Any, *, key: str) -> str:
    """Serialize ``value`` as compact JSON, or raise :class:`SerializationError` naming ``key``."""
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise SerializationError(f"value for key {key!r} cannot be stored as JSON: {exc}") from exc
    except RecursionError:
        raise SerializationError(_too_deep("value for", key, "stored as")) from None


def encode_value(value: Any, *, key: str) -> Scalar:
    """What ``set`` stores: scalars unchanged, dicts/lists/tuples/bools/None as JSON (the seed's
    ``typeof value === 'object'`` rule)."""
    if isinstance(value, bool) or value is None or isinstance(value, dict | list | tuple):
        return encode_json(value, key=key)
    if isinstance(value, str | bytes | int | float):
        return value
    raise SerializationError(
        f"value for key {key!r} has type {type(value).__name__}; store str, bytes, numbers, "
        "or JSON-serializable dicts/lists"
    )


def decode_json(raw: str | bytes, *, key: str) -> Any:
    """Parse a stored value as JSON, or raise :class:`SerializationError` naming ``key``."""
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        detail = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise SerializationError(f"value at key {key!r} is not valid JSON: {detail}") from exc
    except RecursionError:
        raise SerializationError(_too_deep("value at", key, "read as")) from None


def _too_deep(what: str, key: str, verb: str) -> str:
    # ``from None``: the RecursionError's traceback is a thousand identical frames.
    return (
        f"{what} key {key!r} is nested too deeply to be {verb} JSON (Python's json recurses "
        f"once per level; the limit is about {sys.getrecursionlimit()} levels)"
    )


def check_text(value: S, *, key: str) -> S:
    """``value`` if it can go to Redis and come back as the same text; else SerializationError.

    Values are read back decoded as UTF-8, so bytes that are not UTF-8 could be written but never
    read: refuse them at ``set`` instead of failing every later ``get``.
    """
    if isinstance(value, str):
        if value.isascii():  # O(1) in CPython: nothing to check, no copy made on the hot path
            return value
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise SerializationError(
                f"value for key {key!r} is not valid Unicode text (lone surrogate at position "
                f"{exc.start}); values are sent to Redis as UTF-8"
            ) from None
    elif isinstance(value, bytes):
        try:
            value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SerializationError(
                f"value for key {key!r} is bytes that are not UTF-8 text (invalid byte at "
                f"position {exc.start}); berthcache reads values back as text, so it could never "
                "be read: store str, or base64-encode binary data"
            ) from None
    return value
