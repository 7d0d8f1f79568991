"""Command plans: what each data method sends to Redis and how its reply is read; no I/O.

A data method of :class:`~berthcache.Cache` or :class:`~berthcache.AsyncCache` is one line
that hands a plan from :class:`CommandPlanner` to the twin's ``_run`` — the only place a plan
meets the network, through the cache's transport (:mod:`berthcache._transport`) — and a
pipeline queues the very same plans and sends them as one ``batch``. So which command a method
sends, with which arguments, and how its raw reply becomes the result is written once, for
both twins and their pipelines.

A plan is a :class:`Command` (send the raw Redis ``args``, read the raw reply with ``parse``)
or a :class:`Done` (nothing to send: the result is known, as for ``delete()`` with no keys).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Generic, NamedTuple, Self, TypeAlias, TypeVar

from berthcache._exceptions import ConfigurationError, InvalidKeyError
from berthcache._keys import KeyBuilder
from berthcache._lifecycle import Lifecycle
from berthcache._serialization import (
    ORJSON,
    JsonCodec,
    binary_value_error,
    check_bytes,
    is_binary_reply,
)
from berthcache._transport import raise_first_error
from berthcache._ttl import TTLLike, to_seconds

__all__ = [
    "Command",
    "CommandPlanner",
    "Done",
    "NotTextError",
    "PipelineBase",
    "Plan",
    "reply_as_is",
]

T = TypeVar("T")


def reply_as_is(reply: T) -> T:
    """The parse of a command whose reply is already the result."""
    return reply


class Command(NamedTuple, Generic[T]):
    """Send the raw Redis command ``args`` (``("SET", key, value, "EX", 300)``) and read the
    raw reply (``"OK"``, an int, text, ``None``) with ``parse``.

    Immutable, so a plan can be compared (the twin test does) and queued on a pipeline as is.
    """

    args: tuple[Any, ...]
    parse: Callable[[Any], T]


class Done(NamedTuple, Generic[T]):
    """Nothing to send: the result is ``result`` (``delete()`` with no keys removes nothing)."""

    result: T


Plan: TypeAlias = Command[T] | Done[T]

_PING: Command[Any] = Command(("PING",), reply_as_is)
_NOTHING_DELETED: Done[int] = Done(0)


class NotTextError(Exception):
    """``get``'s reply held bytes that are not UTF-8: the caller, which knows the key the user
    gave, raises :func:`~berthcache._serialization.binary_value_error` instead (so the text
    path builds no per-call parser just to name the key)."""


def _text_reply(reply: Any) -> Any:
    """The parse of ``get``: the text as read, ``None`` when missing; a binary value raises
    NotTextError (replies are decoded losslessly: see ``is_binary_reply``)."""
    if type(reply) is str and not reply.isascii() and is_binary_reply(reply):
        raise NotTextError
    return reply


def _bytes_reply(reply: Any) -> bytes | None:
    """The parse of ``get_bytes``: the stored bytes, exactly — as read undecoded (the twins'
    ``call_raw``), or, in a pipeline, encoded back from the lossless ``surrogateescape``
    decoding every batch reply gets."""
    if reply is None or type(reply) is bytes:
        return reply
    return reply.encode("utf-8", "surrogateescape")  # type: ignore[no-any-return]


def _json_reply(json: JsonCodec, key: str, raw: Any) -> Any:
    """A ``get`` reply parsed as JSON (errors name ``key``); ``None`` stays ``None``."""
    return None if raw is None else json.decode_json(raw, key=key)


class CommandPlanner:
    """The plans of one cache's data methods: arguments checked, keys prefixed, values
    encoded — everything that can be decided without the network."""

    __slots__ = ("_json", "_keys")

    def __init__(self, keys: KeyBuilder, json: JsonCodec = ORJSON) -> None:
        self._keys = keys
        self._json = json

    def key(self, key: str, argument: str = "key") -> str:
        """The full (prefixed) key; InvalidKeyError naming ``argument`` when unusable."""
        value: object = key
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise InvalidKeyError(f"{argument} must be a string, got {type(value).__name__}")
        if key == "":
            raise InvalidKeyError(f"{argument} must not be empty")
        try:
            return self._keys(key)
        except InvalidKeyError as exc:
            if argument == "key":  # KeyBuilder's messages already say "key ..."
                raise
            raise InvalidKeyError(f"{argument}: {exc}") from None

    def set(self, key: str, value: Any, ttl: TTLLike | None) -> Command[bool]:
        """SET of ``value`` (dicts/lists/bools/None as JSON); result ``True`` (reply ``OK``)."""
        full = self.key(key)
        encoded = self._json.encode_value(value, key=key)
        if ttl is None:
            return Command(("SET", full, encoded), bool)
        return Command(("SET", full, encoded, "EX", to_seconds(ttl)), bool)

    def set_json(self, key: str, value: Any, ttl: TTLLike | None) -> Command[bool]:
        """SET of ``value`` as JSON, strings too; result ``True`` (reply ``OK``)."""
        full = self.key(key)
        encoded = self._json.encode_json(value, key=key)
        if ttl is None:
            return Command(("SET", full, encoded), bool)
        return Command(("SET", full, encoded, "EX", to_seconds(ttl)), bool)

    def get(self, key: str, parse_json: bool = False) -> Command[Any]:
        """GET; result the text, the parsed JSON with ``parse_json``, or ``None``; a binary
        value raises NotTextError (the twin names the key: :meth:`not_text`)."""
        full = self.key(key)
        if not parse_json:
            return Command(("GET", full), _text_reply)
        # The JSON parser needs the key for its error message: the only per-call partial,
        # and only on the JSON path, where decoding costs far more.
        return Command(("GET", full), functools.partial(_json_reply, self._json, key))

    def set_bytes(self, key: str, data: Any, ttl: TTLLike | None) -> Command[bool]:
        """SET of ``data`` as raw bytes (any bytes, UTF-8 or not); result ``True``."""
        full = self.key(key)
        raw = check_bytes(data, key=key)
        if ttl is None:
            return Command(("SET", full, raw), bool)
        return Command(("SET", full, raw, "EX", to_seconds(ttl)), bool)

    def get_bytes(self, key: str) -> Command[bytes | None]:
        """GET read as raw bytes, whatever they are; ``None`` when missing."""
        return Command(("GET", self.key(key)), _bytes_reply)

    def not_text(self, full_key: str) -> Exception:
        """The error of ``get`` for a binary value at ``full_key``, naming the caller's key."""
        return binary_value_error(self._keys.strip(full_key))

    def delete(self, keys: tuple[str, ...]) -> Plan[int]:
        """DEL; result how many existed (no keys: nothing is sent, nothing removed)."""
        if not keys:
            return _NOTHING_DELETED
        full = tuple(self.key(k, f"keys[{i}]") for i, k in enumerate(keys))
        return Command(("DEL", *full), int)

    def exists(self, key: str) -> Command[bool]:
        """EXISTS; result a bool (the reply is a count)."""
        return Command(("EXISTS", self.key(key)), bool)

    def expire(self, key: str, ttl: TTLLike) -> Command[bool]:
        """EXPIRE; result whether the key existed (reply 1 or 0)."""
        full = self.key(key)
        return Command(("EXPIRE", full, to_seconds(ttl)), bool)

    def ttl(self, key: str) -> Command[int]:
        """TTL; result seconds left, -1 without expiry, -2 when missing."""
        return Command(("TTL", self.key(key)), int)

    def incr(self, key: str, amount: int) -> Command[int]:
        """INCRBY; result the new value."""
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise ConfigurationError("amount", f"must be an integer, got {type(amount).__name__}")
        return Command(("INCRBY", self.key(key), amount), int)

    @staticmethod
    def ping() -> Command[Any]:
        """PING (one plan, built once)."""
        return _PING


class PipelineBase:
    """Queues the cache's command plans and, on execute, sends them as one transport ``batch``
    (MULTI … EXEC with ``transaction``) and parses their replies, so a pipelined command sends
    and parses exactly what the direct one does."""

    def __init__(
        self, planner: CommandPlanner, lifecycle: Lifecycle, transport: Any, transaction: bool
    ) -> None:
        self._plan = planner
        self._lifecycle = lifecycle
        self._transport = transport
        self._transaction = transaction
        self._plans: list[Plan[Any]] = []

    def _queue(self, plan: Plan[Any]) -> Self:
        self._lifecycle.check_open()
        self._plans.append(plan)
        return self

    def set(self, key: str, value: Any, ttl: TTLLike | None = None) -> Self:
        """Queue ``set`` (dicts/lists/bools/None as JSON); result ``True``."""
        return self._queue(self._plan.set(key, value, ttl))

    def set_json(self, key: str, value: Any, ttl: TTLLike | None = None) -> Self:
        """Queue ``set`` of ``value`` as JSON; result ``True``."""
        return self._queue(self._plan.set_json(key, value, ttl))

    def get(self, key: str, parse_json: bool = False) -> Self:
        """Queue ``get``; result the text, parsed JSON, or ``None``."""
        return self._queue(self._plan.get(key, parse_json))

    def get_json(self, key: str) -> Self:
        """Queue ``get`` parsed as JSON."""
        return self._queue(self._plan.get(key, True))

    def set_bytes(
        self, key: str, data: bytes | bytearray | memoryview, ttl: TTLLike | None = None
    ) -> Self:
        """Queue ``set_bytes`` (raw bytes, UTF-8 or not); result ``True``."""
        return self._queue(self._plan.set_bytes(key, data, ttl))

    def get_bytes(self, key: str) -> Self:
        """Queue ``get_bytes``; result the stored bytes, or ``None``."""
        return self._queue(self._plan.get_bytes(key))

    def delete(self, *keys: str) -> Self:
        """Queue ``del``; result the number of keys removed."""
        return self._queue(self._plan.delete(keys))

    def exists(self, key: str) -> Self:
        """Queue ``exists``; result a bool."""
        return self._queue(self._plan.exists(key))

    def expire(self, key: str, ttl: TTLLike) -> Self:
        """Queue ``expire``; result whether the key existed."""
        return self._queue(self._plan.expire(key, ttl))

    def ttl(self, key: str) -> Self:
        """Queue ``ttl``; result seconds, -1 without expiry, -2 when missing."""
        return self._queue(self._plan.ttl(key))

    def incr(self, key: str, amount: int = 1) -> Self:
        """Queue ``incrby``; result the new value."""
        return self._queue(self._plan.incr(key, amount))

    def __len__(self) -> int:
        return len(self._plans)

    def _take_plans(self) -> tuple[list[Plan[Any]], list[tuple[Any, ...]]]:
        """The queued plans (the pipeline starts empty again) and the commands they send."""
        plans, self._plans = self._plans, []
        return plans, [plan.args for plan in plans if isinstance(plan, Command)]

    def _results(
        self, plans: list[Plan[Any]], commands: list[tuple[Any, ...]], replies: list[Any]
    ) -> list[Any]:
        """One result per queued plan, in order; a :class:`Done` takes no reply. The first
        error reply raises, named by its position and command (as redis-py's pipeline); a
        ``get`` of a binary value raises naming its key."""
        if len(commands) != len(replies):
            raise RuntimeError(
                f"pipeline sent {len(commands)} command(s) but got {len(replies)} replies"
            )
        raise_first_error(replies, commands)
        results: list[Any] = []
        pending = iter(replies)
        for plan in plans:
            if isinstance(plan, Done):
                results.append(plan.result)
                continue
            try:
                results.append(plan.parse(next(pending)))
            except NotTextError:
                raise self._plan.not_text(plan.args[1]) from None
        return results
