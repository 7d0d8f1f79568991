"""Values on the wire: strings, bytes and numbers as they are; objects as JSON on request.

Encoding errors name the key and the offending type — never the value, which may be personal data.
"""

from __future__ import annotations

import json
from typing import Any

from berthcache._exceptions import SerializationError

__all__ = ["decode_json", "encode_json", "encode_value"]

Scalar = str | bytes | int | float


def encode_json(value: Any, *, key: str) -> str:
    """Serialize ``value`` as compact JSON, or raise :class:`SerializationError` naming ``key``."""
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise SerializationError(f"value for key {key!r} cannot be stored as JSON: {exc}") from exc


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
