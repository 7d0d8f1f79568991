"""Property tests: whatever key and value a caller gives ``Cache`` / ``AsyncCache`` comes back
unchanged, or is refused at ``set`` with an error naming the key — never written and then
unreadable.

What comes back, by value type (the seed's ioredis semantics: Redis stores text):

* ``str`` -> the same ``str`` (any Unicode, empty included);
* ``int`` / ``float`` -> their text (``"42"``); ``get`` does not guess types back;
* ``dict`` / ``list`` / ``bool`` / ``None`` -> JSON; ``get(key, parse_json=True)`` returns an
  equal object (integers in them within 64 bits: the default serializer, orjson, refuses larger
  ones — tests/unit/test_serialization.py);
* ``bytes`` -> decoded as UTF-8, returned as ``str``; bytes that are not UTF-8 are refused at
  ``set`` with :class:`SerializationError` (``get`` could never read them back as text);
* any ``bytes`` through ``set_bytes`` -> ``get_bytes`` returns them unchanged; ``get`` returns
  them as text exactly when they are UTF-8, else refuses with :class:`SerializationError`;
* text with a lone surrogate (not encodable as UTF-8) -> :class:`InvalidKeyError` for a key,
  :class:`SerializationError` for a value;
* a JSON value nested at any depth -> back equal, or (too deep for the serializer) refused with
  :class:`SerializationError` naming the key — never a ``RecursionError``, never half-written.

And any whole-second TTL from 1 to ``TTL.MAX`` is accepted by the server as given; beyond it,
:class:`InvalidTTLError` before anything is sent.

Runs on the session's Redis target (locally: TLS + ACL app user + replica, as in production).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from berthcache import TTL, AsyncCache, Cache, InvalidKeyError, InvalidTTLError, SerializationError
from berthcache.testing import Target

# Few examples, no deadline (network round trips vary), no example database left in the repo.
# The only function-scoped fixture is the plugin's autouse ``requires`` check, which keeps no
# state between examples.
PROPS = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

#: Every code point UTF-8 can carry (no lone surrogates), plus the characters keys trip over.
TEXT_CHARS = st.one_of(st.characters(codec="utf-8"), st.sampled_from(" \n\r\t:*?[]\\\x00"))
keys = st.text(TEXT_CHARS, min_size=1, max_size=40)
texts = st.text(TEXT_CHARS, max_size=200)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(texts, inner, max_size=5)),
    max_leaves=20,
)
json_objects = st.dictionaries(texts, json_values, max_size=6)
LONE_SURROGATES = st.characters(categories=["Cs"])

FIVE_MB = 5 * 1024 * 1024


@pytest.fixture(scope="module")
def prefix(redis_namespace: str) -> str:
    """Under the run's namespace, which the plugin deletes at the end of the session."""
    return f"{redis_namespace}props:"


@pytest.fixture(scope="module")
def cache(redis_target: Target, prefix: str) -> Iterator[Cache]:
    with Cache(redis_target.cache_config(key_prefix=prefix + "sync:")) as client:
        yield client


@pytest.fixture(scope="module")
def runner() -> Iterator[asyncio.Runner]:
    """One event loop for all examples, so the async client's pool is reused between them."""
    with asyncio.Runner() as loop_runner:
        yield loop_runner


@pytest.fixture(scope="module")
def acache(redis_target: Target, prefix: str, runner: asyncio.Runner) -> Iterator[AsyncCache]:
    client = AsyncCache(redis_target.cache_config(key_prefix=prefix + "async:"))
    try:
        yield client
    finally:
        runner.run(client.close())


# -- values come back -------------------------------------------------------------------------


@PROPS
@given(key=keys, value=texts)
def test_text_round_trips_under_any_key(cache: Cache, key: str, value: str) -> None:
    cache.set(key, value, ttl=60)
    assert cache.get(key) == value
    assert cache.exists(key)
    assert 0 < cache.ttl(key) <= 60
    assert cache.delete(key) == 1
    assert cache.get(key) is None


@PROPS
@given(key=keys, value=texts)
def test_async_text_round_trips_under_any_key(
    acache: AsyncCache, runner: asyncio.Runner, key: str, value: str
) -> None:
    async def body() -> None:
        await acache.set(key, value, ttl=60)
        assert await acache.get(key) == value
        assert await acache.exists(key)
        assert 0 < await acache.ttl(key) <= 60
        assert await acache.delete(key) == 1
        assert await acache.get(key) is None

    runner.run(body())


@PROPS
@given(pair=st.lists(keys, min_size=2, max_size=2, unique=True), values=st.tuples(texts, texts))
def test_different_keys_never_share_a_value(
    cache: Cache, pair: list[str], values: tuple[str, str]
) -> None:
    """Keys that differ only by spaces, case, colons or normalization stay different keys."""
    (first, second), (one, two) = pair, values
    cache.set(first, one)
    cache.set(second, two)
    assert cache.get(first) == one
    assert cache.get(second) == two
    cache.delete(first, second)


@PROPS
@given(key=keys, number=st.one_of(st.integers(), st.floats(allow_nan=False)))
def test_numbers_come_back_as_their_text(cache: Cache, key: str, number: float) -> None:
    cache.set(key, number)
    text = cache.get(key)
    assert isinstance(text, str)
    assert text == repr(number)
    assert type(number)(text) == number


@PROPS
@given(key=keys, value=json_objects)
def test_objects_round_trip_as_json(cache: Cache, key: str, value: dict[str, Any]) -> None:
    cache.set(key, value)
    assert cache.get(key, parse_json=True) == value
    stored = cache.get(key)
    assert isinstance(stored, str)
    assert json.loads(stored) == value  # plain JSON text, readable by any client


@PROPS
@given(key=keys, value=json_values)
def test_set_json_round_trips_any_json_value(cache: Cache, key: str, value: Any) -> None:
    cache.set_json(key, value)
    assert cache.get_json(key) == value


@PROPS
@given(key=keys, value=json_objects)
def test_async_objects_round_trip_as_json(
    acache: AsyncCache, runner: asyncio.Runner, key: str, value: dict[str, Any]
) -> None:
    async def body() -> None:
        await acache.set(key, value)
        assert await acache.get(key, parse_json=True) == value

    runner.run(body())


@settings(PROPS, max_examples=15)
@given(items=st.dictionaries(keys, json_objects, min_size=1, max_size=8))
def test_pipeline_round_trips_in_order(cache: Cache, items: dict[str, dict[str, Any]]) -> None:
    with cache.pipeline() as pipe:
        for key, value in items.items():
            pipe.set(key, value)
        for key in items:
            pipe.get(key, parse_json=True)
        results = pipe.execute()
    assert results == [True] * len(items) + list(items.values())


# -- bytes and text Redis cannot carry ------------------------------------------------------


@PROPS
@given(key=keys, value=texts)
def test_utf8_bytes_come_back_as_text(cache: Cache, key: str, value: str) -> None:
    cache.set(key, value.encode("utf-8"))
    assert cache.get(key) == value


@PROPS
@given(key=keys, value=st.binary(max_size=256))
def test_any_bytes_round_trip_through_set_bytes(cache: Cache, key: str, value: bytes) -> None:
    cache.set_bytes(key, value)
    assert cache.get_bytes(key) == value
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        with pytest.raises(SerializationError, match="binary data") as info:
            cache.get(key)
        assert repr(key) in str(info.value)
    else:
        assert cache.get(key) == text


@PROPS
@given(key=keys, value=st.binary(min_size=1, max_size=64))
def test_bytes_that_are_not_utf8_are_refused_at_set(cache: Cache, key: str, value: bytes) -> None:
    try:
        expected = value.decode("utf-8")
    except UnicodeDecodeError:
        cache.delete(key)
        with pytest.raises(SerializationError, match="not UTF-8") as info:
            cache.set(key, value)
        assert repr(key) in str(info.value)
        assert not cache.exists(key), "a refused value must not be written"
        with pytest.raises(SerializationError, match="not UTF-8"), cache.pipeline() as pipe:
            pipe.set(key, value)
    else:
        cache.set(key, value)
        assert cache.get(key) == expected


@PROPS
@given(
    key=keys,
    surrogate=LONE_SURROGATES,
    where=st.integers(min_value=0, max_value=40),
)
def test_lone_surrogates_are_refused_with_our_errors(
    cache: Cache, runner: asyncio.Runner, acache: AsyncCache, key: str, surrogate: str, where: int
) -> None:
    bad = key[:where] + surrogate + key[where:]
    with pytest.raises(InvalidKeyError, match=r"^key is not valid Unicode"):
        cache.set(bad, "v")
    with pytest.raises(InvalidKeyError, match=r"^key is not valid Unicode"):
        cache.get(bad)
    with pytest.raises(SerializationError, match="not valid Unicode") as info:
        cache.set(key, bad)
    assert repr(key) in str(info.value)
    with pytest.raises(SerializationError, match="not valid Unicode"):
        cache.set(key, {"nested": [bad]})

    async def body() -> None:
        with pytest.raises(InvalidKeyError, match=r"^key is not valid Unicode"):
            await acache.set(bad, "v")
        with pytest.raises(SerializationError, match="not valid Unicode"):
            await acache.set(key, bad)

    runner.run(body())


# -- nesting and TTL edges -----------------------------------------------------------------


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for level in range(depth):
        value = [value] if level % 2 else {"n": value}
    return value


@PROPS
@given(key=keys, depth=st.integers(min_value=1, max_value=5000))
def test_any_nesting_round_trips_or_is_refused_naming_the_key(
    cache: Cache, key: str, depth: int
) -> None:
    value = _nested(depth)
    cache.delete(key)  # other examples and tests of this module may have used the key
    refused: SerializationError | None = None
    try:
        cache.set_json(key, value, ttl=60)
    except SerializationError as exc:
        refused = exc
    if refused is not None:
        assert repr(key) in str(refused)
        assert cache.exists(key) is False
        return
    assert cache.get_json(key) == value
    cache.delete(key)


@PROPS
@given(ttl=st.integers(min_value=1, max_value=TTL.MAX))
def test_every_ttl_up_to_the_bound_is_accepted_as_given(cache: Cache, ttl: int) -> None:
    cache.set("ttl", "v", ttl=ttl)
    assert ttl - 2 <= cache.ttl("ttl") <= ttl


@PROPS
@given(ttl=st.integers(min_value=TTL.MAX + 1, max_value=2**80))
def test_every_ttl_past_the_bound_is_refused_before_sending(cache: Cache, ttl: int) -> None:
    with pytest.raises(InvalidTTLError, match=r"^ttl"):
        cache.set("past", "v", ttl=ttl)
    assert cache.exists("past") is False


# -- size ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["text", "json"])
def test_five_megabyte_values_round_trip(cache: Cache, kind: str) -> None:
    if kind == "text":
        unit = "berth é 🚢 "
        value: Any = unit * (FIVE_MB // len(unit.encode()) + 1)
        cache.set("big", value, ttl=60)
        assert cache.get("big") == value, "the 5 MB text changed on the way"
    else:
        value = {"rows": [{"id": n, "name": f"row {n} ✓"} for n in range(180_000)]}
        cache.set("big", value, ttl=60)
        assert cache.get("big", parse_json=True) == value, "the 5 MB object changed on the way"
    stored = cache.get("big")  # (STRLEN is not granted to the app user)
    assert isinstance(stored, str)
    assert len(stored.encode("utf-8")) >= FIVE_MB
    cache.delete("big")


def test_async_five_megabyte_value_round_trips(acache: AsyncCache, runner: asyncio.Runner) -> None:
    value = "x" * FIVE_MB

    async def body() -> None:
        await acache.set("big", value, ttl=60)
        assert await acache.get("big") == value
        await acache.delete("big")

    runner.run(body())
