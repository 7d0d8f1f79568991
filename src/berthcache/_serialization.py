"""Values on the wire: strings, bytes and numbers as they are; objects as JSON through the
configured serializer — ``orjson`` (the default), the standard ``json`` module, or an object of
your own with ``dumps``/``loads`` (:class:`Serializer`).

A cache holds one :class:`JsonCodec` (``cache._json``) and every feature encodes and decodes
through it, so the setting applies everywhere. The built-in serializers write the same bytes
for the values the seed stores (compact, non-ASCII kept as UTF-8); where they differ is listed
in docs/api.md ("Serializers"). Errors are :class:`SerializationError` naming the key and the
offending *type* — never the value, which may be personal data — and are the same for both
built-ins: NaN/Infinity, lone surrogates, unsupported types and dict keys, nesting too deep
(never a ``RecursionError``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import enum
import json
import math
import sys
import uuid
from typing import Any, Final, Literal, Protocol, TypeVar

import orjson

from berthcache._exceptions import SerializationError

__all__ = [
    "SERIALIZERS",
    "JsonCodec",
    "Serializer",
    "SerializerName",
    "binary_value_error",
    "check_bytes",
    "check_text",
    "codec_for",
    "decode_json",
    "encode_json",
    "encode_value",
    "is_binary_reply",
]

Scalar = str | bytes | int | float
S = TypeVar("S", bound=Scalar)
SerializerName = Literal["orjson", "json"]
#: The names ``serializer=`` / ``REDIS_SERIALIZER`` accept; any other value must be an object
#: with ``dumps`` and ``loads`` (:class:`Serializer`).
SERIALIZERS: tuple[SerializerName, ...] = ("orjson", "json")

#: orjson's own limits: it writes at most 254 levels of nesting and reads at most 1,024.
ORJSON_WRITE_DEPTH: Final = 254
ORJSON_READ_DEPTH: Final = 1024


class Serializer(Protocol):
    """What ``serializer=`` accepts besides a name: ``dumps`` returns JSON text (``str`` or
    UTF-8 ``bytes``) and raises for a value it cannot write; ``loads`` takes ``str`` or
    ``bytes`` and raises for text that is not JSON. Whatever they raise becomes a
    :class:`SerializationError` naming the key and the exception's type (not its message,
    which might quote the value)."""

    def dumps(self, value: Any, /) -> str | bytes: ...

    def loads(self, data: str | bytes, /) -> Any: ...


class JsonCodec:
    """Encoding and decoding through one serializer, every failure a SerializationError naming
    the key. The features call ``encode_json`` / ``decode_json`` / ``encode_value`` on the
    cache's codec exactly as they once called the module functions of the same names."""

    __slots__ = ()
    name: str = ""

    def encode_json(self, value: Any, *, key: str) -> str | bytes:
        """``value`` as compact JSON — valid UTF-8, ready to send — or SerializationError."""
        raise NotImplementedError

    def decode_json(self, raw: str | bytes, *, key: str) -> Any:
        """A stored value parsed as JSON, or SerializationError naming ``key``."""
        raise NotImplementedError

    def encode_value(self, value: Any, *, key: str) -> Scalar:
        """What ``set`` stores: scalars unchanged, dicts/lists/tuples/bools/None as JSON (the
        seed's ``typeof value === 'object'`` rule) — checked to be text Redis gives back."""
        if isinstance(value, bool) or value is None or isinstance(value, dict | list | tuple):
            return self.encode_json(value, key=key)
        if isinstance(value, str | bytes | int | float):
            return check_text(value, key=key)
        raise SerializationError(
            f"value for key {key!r} has type {type(value).__name__}; store str, bytes, numbers, "
            "or JSON-serializable dicts/lists"
        )

    def decode_or_text(self, text: str) -> Any:
        """``text`` parsed as JSON, or ``text`` itself when it is not JSON (pub/sub messages:
        plain text, or JSON nested too deeply to parse, is delivered as sent)."""
        try:
            return self.decode_json(text, key="")
        except SerializationError:
            return text

    def __repr__(self) -> str:
        return f"<JsonCodec {self.name}>"


# -- orjson ---------------------------------------------------------------------------------------

_orjson_dumps = orjson.dumps
_orjson_loads = orjson.loads
_NON_STR_KEYS: Final = orjson.OPT_NON_STR_KEYS


class OrjsonCodec(JsonCodec):
    """orjson, with the refusals of the ``json`` module kept: NaN and Infinity (orjson writes
    ``null`` for them silently) are refused, non-``str`` dict keys converted as ``json`` does.
    Integers beyond 64 bits are refused: orjson cannot write them and reads them back as floats.
    """

    __slots__ = ()
    name = "orjson"

    def encode_json(self, value: Any, *, key: str) -> bytes:
        try:
            out = _orjson_dumps(value)
        except TypeError as exc:
            if str(exc) != "Dict key must be str":
                raise _orjson_refusal(exc, value, key) from None
            try:  # int/float/bool/None keys, converted as json does; slower, so only on demand
                out = _orjson_dumps(value, option=_NON_STR_KEYS)
            except TypeError as again:
                raise _orjson_refusal(again, value, key) from None
        # orjson writes NaN/Infinity as null: only when there is a null, look for them.
        if b"null" in out and _has_non_finite(value, out):
            raise SerializationError(_non_finite_message(key))
        return out

    def decode_json(self, raw: str | bytes, *, key: str) -> Any:
        try:
            return _orjson_loads(raw)
        except orjson.JSONDecodeError as exc:
            if type(raw) is str and is_binary_reply(raw):  # orjson refuses lone surrogates
                raise binary_value_error(key) from None
            if exc.msg.startswith("depth limit exceeded") or exc.msg.startswith("recursion"):
                limit = f"orjson reads at most {ORJSON_READ_DEPTH}"
                raise SerializationError(_too_deep("value at", key, "read as", limit)) from None
            raise SerializationError(f"value at key {key!r} is not valid JSON: {exc.msg}") from exc


def _orjson_refusal(exc: TypeError, value: Any, key: str) -> SerializationError:
    """orjson's TypeError as our message (the same as the json codec's where both refuse)."""
    text = str(exc)
    if "64-bit" in text:
        return SerializationError(
            f"value for key {key!r} holds an int beyond 64 bits, which orjson cannot store "
            "(and reads back as a float; JavaScript reads integers beyond 2**53 inexactly "
            "anyway): store it as a string, or choose serializer='json'"
        )
    if text == "Recursion limit reached":
        return SerializationError(
            _too_deep("value for", key, "stored as", f"orjson writes at most {ORJSON_WRITE_DEPTH}")
            + "; or it contains itself"
        )
    if "surrogates not allowed" in text:
        return SerializationError(_surrogate_message(key))
    if text.startswith("Dict key must"):
        bad = _bad_key_type(value)
        return SerializationError(
            f"value for key {key!r} cannot be stored as JSON: keys must be str, int, float, "
            f"bool or None, not {bad}"
        )
    if text.startswith("Type is not JSON serializable: "):
        shown = text.removeprefix("Type is not JSON serializable: ")
        return SerializationError(
            f"value for key {key!r} cannot be stored as JSON: "
            f"Object of type {shown.rsplit('.', 1)[-1]} is not JSON serializable"
        )
    return SerializationError(f"value for key {key!r} cannot be stored as JSON: {text}")


# -- the standard json module ---------------------------------------------------------------------


def _json_default(obj: Any) -> Any:
    """The types orjson writes natively, written by ``json`` the same way (same bytes)."""
    if isinstance(obj, datetime.time) and obj.tzinfo is not None:
        raise TypeError("datetime.time must not have tzinfo set")  # as orjson refuses it
    if isinstance(obj, datetime.date | datetime.time):  # datetime is a date
        return obj.isoformat()
    if isinstance(obj, uuid.UUID):
        return str(obj)
    if isinstance(obj, enum.Enum):
        return obj.value
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        attrs = getattr(obj, "__dict__", None)  # orjson writes __dict__, else the slots
        if attrs is not None:
            return dict(attrs)
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


_json_encode = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_json_default
).encode
_json_loads = json.loads


class StdlibJsonCodec(JsonCodec):
    """The standard ``json`` module: berthcache's encoding before orjson (integers of any size,
    ``NaN`` accepted when read), plus datetime/UUID/dataclass/enum written as orjson writes
    them."""

    __slots__ = ()
    name = "json"

    def encode_json(self, value: Any, *, key: str) -> bytes:
        try:
            return _json_encode(value).encode("utf-8")
        except UnicodeEncodeError:
            raise SerializationError(_surrogate_message(key)) from None
        except ValueError as exc:
            if str(exc).startswith("Out of range float values"):
                raise SerializationError(_non_finite_message(key)) from None
            raise _cannot(key, exc) from exc
        except TypeError as exc:
            raise _cannot(key, exc) from exc
        except RecursionError:
            raise SerializationError(
                _too_deep("value for", key, "stored as", _JSON_DEPTH)
            ) from None

    def decode_json(self, raw: str | bytes, *, key: str) -> Any:
        if type(raw) is str and is_binary_reply(raw):  # json would accept lone surrogates
            raise binary_value_error(key)
        try:
            return _json_loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            detail = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            raise SerializationError(f"value at key {key!r} is not valid JSON: {detail}") from exc
        except RecursionError:
            raise SerializationError(_too_deep("value at", key, "read as", _JSON_DEPTH)) from None


def _cannot(key: str, exc: Exception) -> SerializationError:
    return SerializationError(f"value for key {key!r} cannot be stored as JSON: {exc}")


_JSON_DEPTH = f"Python's json recurses once per level; the limit is about {sys.getrecursionlimit()}"


# -- a serializer of the caller's -----------------------------------------------------------------


class CustomCodec(JsonCodec):
    """An object with ``dumps``/``loads``; its exceptions become SerializationError naming the
    key and the exception's type (its message might quote the value, so it is not shown)."""

    __slots__ = ("_dumps", "_loads", "name")

    def __init__(self, serializer: Serializer) -> None:
        self._dumps = serializer.dumps
        self._loads = serializer.loads
        self.name = type(serializer).__name__

    def encode_json(self, value: Any, *, key: str) -> str | bytes:
        try:
            out = self._dumps(value)
        except RecursionError:
            raise SerializationError(_too_deep("value for", key, "stored as", "")) from None
        except Exception as exc:
            raise SerializationError(
                f"value for key {key!r} (type {type(value).__name__}) cannot be stored as JSON: "
                f"the serializer {self.name} raised {type(exc).__name__}"
            ) from None
        if not isinstance(out, str | bytes):
            raise SerializationError(
                f"value for key {key!r}: the serializer {self.name} returned "
                f"{type(out).__name__}; dumps() must return str or bytes"
            )
        return check_text(out, key=key)

    def decode_json(self, raw: str | bytes, *, key: str) -> Any:
        if type(raw) is str and is_binary_reply(raw):  # a loads() may accept lone surrogates
            raise binary_value_error(key)
        try:
            return self._loads(raw)
        except RecursionError:
            raise SerializationError(_too_deep("value at", key, "read as", "")) from None
        except Exception as exc:
            raise SerializationError(
                f"value at key {key!r} is not valid JSON: the serializer {self.name} raised "
                f"{type(exc).__name__}"
            ) from None


# -- choosing -------------------------------------------------------------------------------------

ORJSON: Final = OrjsonCodec()
STDLIB_JSON: Final = StdlibJsonCodec()
_BUILT_IN: Final[dict[str, JsonCodec]] = {"orjson": ORJSON, "json": STDLIB_JSON}


def codec_for(serializer: str | Serializer) -> JsonCodec:
    """The codec of a ``serializer`` setting (validated by CacheConfig before it gets here)."""
    if isinstance(serializer, str):
        return _BUILT_IN[serializer]
    return CustomCodec(serializer)


#: The module functions: the default serializer's (a cache uses its own, ``cache._json``).
encode_json = ORJSON.encode_json
decode_json = ORJSON.decode_json
encode_value = ORJSON.encode_value


# -- what the messages need -----------------------------------------------------------------------


def _non_finite_message(key: str) -> str:
    return (
        f"value for key {key!r} cannot be stored as JSON: it holds a float that is NaN or "
        "Infinity, which JSON cannot represent"
    )


def _surrogate_message(key: str) -> str:
    return (
        f"value for key {key!r} holds a str that is not valid Unicode text (a lone surrogate); "
        "values are sent to Redis as UTF-8"
    )


def _too_deep(what: str, key: str, verb: str, limit: str) -> str:
    # ``from None`` at the raise: a RecursionError's traceback is a thousand identical frames.
    why = f" ({limit} levels)" if limit else ""
    return f"{what} key {key!r} is nested too deeply to be {verb} JSON{why}"


_FLAT = (str, int, bool, type(None))


def _has_non_finite(value: Any, written: bytes) -> bool:
    """Whether ``value`` holds a NaN or infinite float anywhere orjson looks.

    First in C: orjson wrote NaN/Infinity as ``null``, read back as ``None``, which equals no
    float — so a value equal to what it reads back as holds none (the usual dicts and lists of
    str/int/float/bool/None). Otherwise (tuples, int keys, datetimes, dataclasses ... read back
    different anyway) walk the value in Python, iteratively: it may be 254 levels deep.
    """
    with contextlib.suppress(Exception):  # an __eq__ of the caller's that raises: walk instead
        if _orjson_loads(written) == value:
            return False
    stack = [value]
    pop, push, extend = stack.pop, stack.append, stack.extend
    while stack:
        item = pop()
        kind = type(item)
        if kind in _FLAT:
            continue
        if kind is float or isinstance(item, float):
            if not math.isfinite(item):
                return True
        elif isinstance(item, dict):
            extend(item.values())
            extend(k for k in item if isinstance(k, float))
        elif isinstance(item, list | tuple):
            extend(item)
        elif isinstance(item, enum.Enum):
            push(item.value)
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            attrs = getattr(item, "__dict__", None)
            extend(
                attrs.values()
                if attrs is not None
                else (getattr(item, f.name) for f in dataclasses.fields(item))
            )
    return False


def _bad_key_type(value: Any) -> str:
    """The type name of the first dict key JSON cannot hold (for the error message)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for k, v in item.items():
                if not isinstance(k, str | int | float | type(None)):
                    return type(k).__name__
                stack.append(v)
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return "another type"


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
                f"position {exc.start}); set() stores text, which get() reads back: store "
                "binary data with set_bytes() and read it with get_bytes()"
            ) from None
    return value


def check_bytes(data: Any, *, key: str) -> bytes:
    """What ``set_bytes`` sends: ``bytes`` as is; ``bytearray`` / ``memoryview`` copied to
    ``bytes``; anything else (``str`` included: text goes through ``set``) refused, naming
    ``key`` and the type."""
    if type(data) is bytes:
        return data
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    hint = "; store text with set()" if isinstance(data, str) else ""
    raise SerializationError(
        f"value for key {key!r} has type {type(data).__name__}; set_bytes() stores bytes, "
        f"bytearray or memoryview{hint}"
    )


def is_binary_reply(reply: str) -> bool:
    """Whether a reply held bytes that are not UTF-8.

    The transports decode replies as UTF-8 with ``surrogateescape``: text comes back as the
    same ``str`` as a strict decode gives, and each byte that is not UTF-8 becomes a lone
    surrogate (U+DC80-U+DCFF) — lossless, so ``get_bytes`` re-encodes the original bytes. A
    reply is binary exactly when it holds such a surrogate: strict UTF-8 never decodes to one.
    """
    if reply.isascii():  # O(1): the common case
        return False
    try:
        reply.encode("utf-8")  # C speed; raises at the first lone surrogate
    except UnicodeEncodeError:
        return True
    return False


def binary_value_error(key: str) -> SerializationError:
    """The error of ``get`` / ``get_json`` for a value that is binary data, naming ``key``."""
    return SerializationError(
        f"value at key {key!r} is binary data, not UTF-8 text (stored with set_bytes() or by "
        "another client): read it with get_bytes()"
    )
