"""The serializer setting (issue 10): JSON through orjson by default, the standard ``json`` module
or an object of the caller's on request — the same bytes where docs/api.md ("Serializers") says
so, readable by the seed's ``JSON.parse``, and the same refusals, each a SerializationError
naming the key and the type, never the value."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from berthcache import AsyncCache, Cache, CacheConfig, ConfigurationError, SerializationError
from berthcache._serialization import (
    ORJSON,
    ORJSON_READ_DEPTH,
    ORJSON_WRITE_DEPTH,
    STDLIB_JSON,
    JsonCodec,
    codec_for,
)
from berthcache.testing import RedisServer
from tests.unit.support import config_for

BUILT_IN = {"orjson": ORJSON, "json": STDLIB_JSON}
SECRET = "s3cret-Zoë"  # never in an error message


def seed_bytes(value: Any) -> bytes:
    """What berthcache stored before orjson; both built-ins store it for the seed's values."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


#: The values the seed stores (JSON.stringify of its objects): sessions, API responses, plain
#: documents — non-ASCII, escapes, nulls, numbers JavaScript has.
SEED_VALUES: list[Any] = [
    {"role": "nurse", "name": "Ada", "unit": "3B", "shift": "night"},
    {"clients": [{"id": i, "name": f"client {i}", "room": 100 + i} for i in range(20)]},
    {"id": 7, "name": "Zoë", "tags": ["a", "b"], "nested": {"ok": True, "none": None}},
    {"text": 'Æøå ✓ 😀 日本語 \u2028\u2029 </script> "q" \\ \n\t\x00\x1f\x7f'},
    [],
    {},
    [1, -1, 0, 2**53, -(2**53), 9_007_199_254_740_993, 2**63 - 1, -(2**63), 2**64 - 1],
    [
        0.0,
        -0.0,
        0.5,
        0.1,
        1.0,
        100.0,
        1e-4,
        1.5e-10,
        3.14159,
        1e15,
        1e16,
        1e21,
        1.7976931348623157e308,
    ],
    [5e-324, 123456789.123, 12345678901234567.0, -2.5e-300, 0.0001234],
    True,
    False,
    None,
    "just a string, stored as JSON by set_json",
    {"deep": [[[[{"a": [None, {"b": [True, False]}]}]]]]},
]


# -- the same bytes -----------------------------------------------------------------------------


@pytest.mark.parametrize("value", SEED_VALUES, ids=range(len(SEED_VALUES)))
def test_both_built_ins_write_the_bytes_berthcache_always_wrote(value: Any) -> None:
    assert ORJSON.encode_json(value, key="k") == seed_bytes(value)
    assert STDLIB_JSON.encode_json(value, key="k") == seed_bytes(value)


#: The JSON the seed can store: integers JavaScript holds exactly, floats outside the one range
#: where the texts differ (below).
seed_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not 1e-9 <= abs(f) < 1e-4)
    | st.text(st.characters(codec="utf-8")),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.text(st.characters(codec="utf-8")), inner, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None, database=None)
@given(value=seed_json)
def test_any_seed_json_is_byte_identical_across_serializers(value: Any) -> None:
    expected = seed_bytes(value)
    assert ORJSON.encode_json(value, key="k") == expected
    assert STDLIB_JSON.encode_json(value, key="k") == expected


@settings(max_examples=200, deadline=None, database=None)
@given(
    f=st.floats(min_value=1e-9, max_value=1e-4, exclude_max=True) | st.sampled_from([1e-5, 1e-9])
)
@pytest.mark.parametrize("sign", [1, -1])
def test_tiny_floats_differ_in_text_only(f: float, sign: int) -> None:
    """1e-9 <= |x| < 1e-4: json writes ``1e-05``, orjson ``0.00001`` / ``1e-7`` — the same
    number for every reader, and the only floats whose text differs."""
    value = sign * f
    a, b = ORJSON.encode_json(value, key="k"), STDLIB_JSON.encode_json(value, key="k")
    assert json.loads(a) == json.loads(b) == value
    assert ORJSON.decode_json(b, key="k") == STDLIB_JSON.decode_json(a, key="k") == value
    assert ORJSON.encode_json(1e-5, key="k") == b"0.00001"
    assert STDLIB_JSON.encode_json(1e-5, key="k") == b"1e-05"


@pytest_asyncio.fixture(params=["orjson", "json"])
async def twins(
    request: pytest.FixtureRequest, redis_server: RedisServer
) -> AsyncIterator[tuple[Cache, AsyncCache]]:
    config = config_for(redis_server, serializer=request.param)
    sync, async_ = Cache(config), AsyncCache(config.replace(key_prefix=config.key_prefix + "a:"))
    try:
        yield sync, async_
    finally:
        sync.close()
        await async_.close()


def _raw_client(config: CacheConfig) -> redis.Redis:
    return redis.Redis(host=config.host, port=config.port, password=config.password)


@pytest.mark.asyncio
async def test_both_twins_store_the_same_bytes_through_every_writer(
    twins: tuple[Cache, AsyncCache],
) -> None:
    """set, set_json, responses.set, sessions.create and publish: byte for byte what the seed's
    encoding gives, from the sync and the async client alike, under either serializer."""
    sync, async_ = twins
    raw = _raw_client(sync.config)
    try:
        for i, value in enumerate(SEED_VALUES):
            sync.set_json(f"v{i}", value)
            await async_.set_json(f"v{i}", value)
            a, b = raw.get(sync.keys(f"v{i}")), raw.get(async_.keys(f"v{i}"))
            assert a == b == seed_bytes(value), (sync.config.serializer, i)
        doc = SEED_VALUES[2]
        sync.set("doc", doc)
        await async_.set("doc", doc)
        assert raw.get(sync.keys("doc")) == raw.get(async_.keys("doc")) == seed_bytes(doc)
        sync.responses.set("clients:list", 42, SEED_VALUES[1])
        await async_.responses.set("clients:list", 42, SEED_VALUES[1])
        stored = {raw.get(c.keys("api", "clients:list", "42")) for c in (sync, async_)}
        assert stored == {seed_bytes(SEED_VALUES[1])}
        sid = sync.sessions.create(42, SEED_VALUES[0])
        asid = await async_.sessions.create(42, SEED_VALUES[0])
        assert raw.get(sync.keys("session", sid)) == seed_bytes(SEED_VALUES[0])
        assert raw.get(async_.keys("session", asid)) == seed_bytes(SEED_VALUES[0])
        # and back, decoded by the configured serializer
        assert sync.get_json("v1") == await async_.get_json("v1") == SEED_VALUES[1]
        assert sync.sessions.get(sid) == await async_.sessions.get(asid) == SEED_VALUES[0]
    finally:
        raw.close()


# -- JSON.parse ---------------------------------------------------------------------------------

NODE = shutil.which("node")

#: Parses each stored text with JSON.parse and writes the parsed values back as one JSON array.
NODE_SCRIPT = """
let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (c) => { input += c; });
process.stdin.on('end', () => {
  const texts = JSON.parse(input);
  process.stdout.write(JSON.stringify(texts.map((t) => JSON.parse(t))));
});
"""


@pytest.mark.skipif(NODE is None, reason="node is not on this machine: no JSON.parse to read with")
@pytest.mark.parametrize("serializer", ["orjson", "json"])
def test_stored_values_are_read_by_the_seeds_json_parse(
    redis_server: RedisServer, serializer: str
) -> None:
    """What each serializer stored, read from Redis, parsed by node's JSON.parse: the same
    values (numbers as JavaScript holds them: integers beyond 2**53 are not in the corpus)."""
    corpus = [v for v in SEED_VALUES if v != SEED_VALUES[6]]  # 2**63 is inexact in JavaScript
    corpus.append([2**53, -(2**53), 1e-5, 1.5e-7, 2.5e-9])  # the tiny floats whose text differs
    corpus.append(
        {
            "at": dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC),
            "id": uuid.UUID(int=42),
            "day": dt.date(2024, 5, 1),
        }
    )
    with Cache(config_for(redis_server, serializer=serializer)) as cache:
        texts = []
        for i, value in enumerate(corpus):
            cache.set_json(f"n{i}", value)
            texts.append(cache.get(f"n{i}"))
    assert NODE is not None
    done = subprocess.run(
        [NODE, "-e", NODE_SCRIPT],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    parsed = json.loads(done.stdout)
    assert len(parsed) == len(corpus)
    for value, seen in zip(corpus[:-1], parsed[:-1], strict=True):
        assert seen == value
    assert parsed[-1] == {
        "at": "2024-05-01T12:30:00+00:00",
        "id": "00000000-0000-0000-0000-00000000002a",
        "day": "2024-05-01",
    }


# -- refusals: SerializationError naming the key and the type, never the value -------------------


@dataclasses.dataclass
class Reading:
    value: float
    label: str = SECRET


def _refusal(codec: JsonCodec, value: Any) -> SerializationError:
    with pytest.raises(SerializationError) as info:
        codec.encode_json(value, key="bad:key")
    message = str(info.value)
    assert "'bad:key'" in message
    assert SECRET not in message
    assert "Traceback" not in message
    return info.value


@pytest.mark.parametrize("codec", BUILT_IN.values(), ids=BUILT_IN.keys())
@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        float("inf"),
        -float("inf"),
        [SECRET, float("nan")],
        {"secret": SECRET, "n": None, "x": {"y": [1.0, float("inf")]}},
        (SECRET, float("-inf")),
        {"r": Reading(float("nan"))},
        {float("nan"): SECRET},
    ],
    ids=["nan", "inf", "-inf", "list", "nested-with-null", "tuple", "dataclass", "key"],
)
def test_nan_and_infinity_are_refused_by_both(codec: JsonCodec, value: Any) -> None:
    """orjson would write ``null`` silently; both serializers refuse instead."""
    err = _refusal(codec, value)
    assert "NaN or Infinity" in str(err)
    assert err.__cause__ is None


@pytest.mark.parametrize("codec", BUILT_IN.values(), ids=BUILT_IN.keys())
def test_null_next_to_finite_floats_is_not_a_false_alarm(codec: JsonCodec) -> None:
    value = {"a": None, "b": 1.5, "c": "null", "d": [None, 2.0], "e": (None, 1e300), 1: None}
    assert json.loads(codec.encode_json(value, key="k")) == {
        "a": None,
        "b": 1.5,
        "c": "null",
        "d": [None, 2.0],
        "e": [None, 1e300],
        "1": None,
    }


def test_ints_beyond_64_bits_orjson_refuses_json_keeps() -> None:
    """orjson cannot write them and reads them back as floats: refused, naming the type. The
    json serializer stores them exactly, as berthcache always did."""
    for big in (2**64, -(2**63) - 1, 10**30):
        err = _refusal(ORJSON, {"n": big, "s": SECRET})
        assert "int beyond 64 bits" in str(err)
        assert str(big) not in str(err)
        assert STDLIB_JSON.decode_json(STDLIB_JSON.encode_json([big], key="k"), key="k") == [big]
        _refusal(ORJSON, {big: 1})  # as a key too
    for edge in (2**64 - 1, -(2**63)):
        assert ORJSON.decode_json(ORJSON.encode_json([edge], key="k"), key="k") == [edge]


@pytest.mark.parametrize("codec", BUILT_IN.values(), ids=BUILT_IN.keys())
def test_non_str_keys_convert_as_json_does(codec: JsonCodec) -> None:
    value = {1: "a", 2.5: "b", False: "c", None: "d", "e": {7: [1]}, 1e16: "f"}
    expected = b'{"1":"a","2.5":"b","false":"c","null":"d","e":{"7":[1]},"1e+16":"f"}'
    assert codec.encode_json(value, key="k") == expected
    err = _refusal(codec, {"ok": {(1, 2): SECRET}})
    assert "tuple" in str(err)


@pytest.mark.parametrize("codec", BUILT_IN.values(), ids=BUILT_IN.keys())
@pytest.mark.parametrize("bad", [object(), Decimal("1.5"), {1, 2}, b"bytes", 1j])
def test_unsupported_types_are_named(codec: JsonCodec, bad: Any) -> None:
    err = _refusal(codec, {"x": [SECRET, bad]})
    assert f"Object of type {type(bad).__name__} is not JSON serializable" in str(err)


@pytest.mark.parametrize("codec", BUILT_IN.values(), ids=BUILT_IN.keys())
def test_lone_surrogates_are_refused(codec: JsonCodec) -> None:
    err = _refusal(codec, {"name": "ab\ud800cd", "s": SECRET})
    assert "not valid Unicode" in str(err)
    assert "\ud800" not in str(err)


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_nesting_limits_are_clear_errors_never_recursion_errors() -> None:
    """orjson writes at most 254 levels and reads at most 1,024; json follows about 1,000 both
    ways. Beyond: SerializationError ``nested too deeply``, with the limit, never RecursionError."""
    ok = _nested(ORJSON_WRITE_DEPTH)
    assert ORJSON.decode_json(ORJSON.encode_json(ok, key="k"), key="k") == ok
    err = _refusal(ORJSON, _nested(ORJSON_WRITE_DEPTH + 1))
    assert "nested too deeply" in str(err)
    assert "254 levels" in str(err)
    assert STDLIB_JSON.encode_json(_nested(ORJSON_WRITE_DEPTH + 1), key="k")  # json: deeper ok
    assert "nested too deeply" in str(_refusal(STDLIB_JSON, _nested(5000)))
    text = "[" * ORJSON_READ_DEPTH + "]" * ORJSON_READ_DEPTH
    value, depth = ORJSON.decode_json(text, key="k"), 1
    while value:  # counted, not compared: == on 1,024 levels is a RecursionError itself
        (value,), depth = value, depth + 1
    assert depth == ORJSON_READ_DEPTH
    for codec in BUILT_IN.values():
        with pytest.raises(SerializationError, match=r"'deep'.*nested too deeply") as info:
            codec.decode_json("[" * 5000 + "]" * 5000, key="deep")
        assert info.value.__cause__ is None
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    for codec in BUILT_IN.values():
        _refusal(codec, cyclic)


@pytest.mark.parametrize("serializer", ["orjson", "json"])
def test_a_refused_value_is_not_written(redis_server: RedisServer, serializer: str) -> None:
    with Cache(config_for(redis_server, serializer=serializer)) as cache:
        for value in ({"n": float("nan")}, {"s": "\udfff"}, {"d": Decimal(1)}):
            with pytest.raises(SerializationError, match="'bad'"):
                cache.set("bad", value)
            with pytest.raises(SerializationError, match=r"api:bad:42'"):
                cache.responses.set("bad", 42, value)
            with pytest.raises(SerializationError):
                cache.sessions.create(42, value)
        assert cache.redis.keys(cache.keys.pattern("*")) == []


# -- datetime, date, UUID, dataclass, enum --------------------------------------------------------


class Colour(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


@dataclasses.dataclass
class Visit:
    id: uuid.UUID
    at: dt.datetime
    room: int
    colour: Colour


@dataclasses.dataclass(slots=True)
class Slot:
    day: dt.date
    start: dt.time


TYPED: list[tuple[Any, bytes]] = [
    (dt.datetime(2024, 5, 1, 12, 30, 5, 123456), b'"2024-05-01T12:30:05.123456"'),
    (dt.datetime(2024, 5, 1, 12, 30), b'"2024-05-01T12:30:00"'),
    (dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC), b'"2024-05-01T12:30:00+00:00"'),
    (
        dt.datetime(2024, 7, 1, 12, 0, tzinfo=ZoneInfo("Europe/Oslo")),
        b'"2024-07-01T12:00:00+02:00"',
    ),
    (
        dt.datetime(2024, 5, 1, tzinfo=dt.timezone(dt.timedelta(hours=-5, minutes=-30))),
        b'"2024-05-01T00:00:00-05:30"',
    ),
    (dt.date(2024, 5, 1), b'"2024-05-01"'),
    (dt.time(7, 5, 0, 10), b'"07:05:00.000010"'),
    (uuid.UUID("12345678-1234-5678-1234-567812345678"), b'"12345678-1234-5678-1234-567812345678"'),
    (Colour.RED, b'"red"'),
    (Level.HIGH, b"3"),
    (
        Visit(uuid.UUID(int=1), dt.datetime(2024, 5, 1, tzinfo=dt.UTC), 12, Colour.RED),
        b'{"id":"00000000-0000-0000-0000-000000000001","at":"2024-05-01T00:00:00+00:00",'
        b'"room":12,"colour":"red"}',
    ),
    (Slot(dt.date(2024, 5, 1), dt.time(9)), b'{"day":"2024-05-01","start":"09:00:00"}'),
]


@pytest.mark.parametrize(("value", "expected"), TYPED, ids=range(len(TYPED)))
def test_typed_values_are_written_alike_by_both(value: Any, expected: bytes) -> None:
    """ISO 8601 text for datetime/date/time (naive ones without an offset), the canonical text
    of a UUID, an enum's value, a dataclass's fields as an object: the same bytes from both
    serializers. They read back as text (str), not as the type."""
    assert ORJSON.encode_json(value, key="k") == expected
    assert STDLIB_JSON.encode_json(value, key="k") == expected
    assert isinstance(ORJSON.decode_json(expected, key="k"), str | int | dict)


def test_typed_keys_and_aware_times() -> None:
    """orjson also writes date/datetime/UUID dict keys (as text); json refuses them. A
    ``time`` with a timezone is refused by both (orjson's rule)."""
    assert ORJSON.encode_json({dt.date(2024, 5, 1): 1}, key="k") == b'{"2024-05-01":1}'
    assert "date" in str(_refusal(STDLIB_JSON, {dt.date(2024, 5, 1): 1}))
    aware = dt.time(9, tzinfo=dt.UTC)
    for codec in BUILT_IN.values():
        assert "tzinfo" in str(_refusal(codec, {"t": aware}))


# -- decoding -----------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", BUILT_IN.values(), ids=BUILT_IN.keys())
def test_decoding_takes_str_and_bytes(codec: JsonCodec) -> None:
    assert codec.decode_json('{"a":"Zoë"}', key="k") == {"a": "Zoë"}
    assert codec.decode_json('{"a":"Zoë"}'.encode(), key="k") == {"a": "Zoë"}


@pytest.mark.parametrize("codec", BUILT_IN.values(), ids=BUILT_IN.keys())
@pytest.mark.parametrize("text", ["not json {", "", "[1,]", "{'a': 1}", b"\xff\xfe"])
def test_text_that_is_not_json_names_the_key(codec: JsonCodec, text: str | bytes) -> None:
    with pytest.raises(SerializationError, match=r"^value at key 'plain' is not valid JSON: "):
        codec.decode_json(text, key="plain")


def test_where_the_readers_differ() -> None:
    """json reads NaN tokens, lone-surrogate escapes and integers of any size exactly; orjson
    refuses the first two and reads integers beyond 64 bits as floats (docs/api.md)."""
    assert STDLIB_JSON.decode_json("[NaN]", key="k")[0] != 0  # nan
    assert STDLIB_JSON.decode_json('"\\ud800"', key="k") == "\ud800"
    for text in ("[NaN]", '"\\ud800"', "1e400"):
        with pytest.raises(SerializationError, match="not valid JSON"):
            ORJSON.decode_json(text, key="k")
    assert STDLIB_JSON.decode_json(str(2**70), key="k") == 2**70
    assert ORJSON.decode_json(str(2**70), key="k") == float(2**70)


# -- the setting ----------------------------------------------------------------------------------


def test_orjson_is_the_default_and_the_setting_picks_the_codec() -> None:
    assert CacheConfig().serializer == "orjson"
    assert codec_for("orjson") is ORJSON
    assert codec_for("json") is STDLIB_JSON
    assert CacheConfig.from_env({"REDIS_SERIALIZER": " JSON "}).serializer == "json"
    assert CacheConfig.from_env({"REDIS_SERIALIZER": ""}).serializer == "orjson"
    assert CacheConfig.from_url("redis://h", serializer="json").serializer == "json"


def test_a_bad_serializer_setting_names_the_setting() -> None:
    with pytest.raises(ConfigurationError, match=r"^REDIS_SERIALIZER: unknown serializer 'yaml'"):
        CacheConfig.from_env({"REDIS_SERIALIZER": "yaml"})
    with pytest.raises(ConfigurationError, match=r"^serializer: unknown serializer 'ujson'"):
        CacheConfig(serializer="ujson")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"^serializer: .*dict has no dumps\(\) or loads"):
        CacheConfig(serializer={})  # type: ignore[arg-type]

    class DumpsOnly:
        def dumps(self, value: Any) -> str:
            return "1"

    with pytest.raises(ConfigurationError, match=r"DumpsOnly has no loads\(\)"):
        CacheConfig(serializer=DumpsOnly())  # type: ignore[arg-type]


class Sorted:
    """A serializer of the caller's: sorted keys, ASCII only."""

    def dumps(self, value: Any) -> str:
        return json.dumps(value, sort_keys=True, separators=(",", ":"))

    def loads(self, data: str | bytes) -> Any:
        if data == "boom":
            raise KeyError(SECRET)
        return json.loads(data)


def test_an_object_with_dumps_and_loads_is_used_everywhere(redis_server: RedisServer) -> None:
    with Cache(config_for(redis_server, serializer=Sorted())) as cache:
        cache.set("doc", {"b": 1, "a": "é"})
        assert cache.get("doc") == '{"a":"\\u00e9","b":1}'
        assert cache.get("doc", parse_json=True) == {"a": "é", "b": 1}
        sid = cache.sessions.create(42, {"z": 1, "y": 2})
        assert cache.redis.get(cache.keys("session", sid)) == '{"y":2,"z":1}'
        with pytest.raises(SerializationError) as info:
            cache.set("bad", {"x": SECRET, "o": object()})
        message = str(info.value)
        assert "'bad'" in message
        assert "TypeError" in message
        assert SECRET not in message
        assert info.value.__cause__ is None  # its message might quote the value
        cache.redis.set(cache.keys("boom"), "boom")
        with pytest.raises(SerializationError, match=r"'boom'.*KeyError") as info:
            cache.get_json("boom")
        assert SECRET not in str(info.value)


def test_published_messages_follow_the_serializer(redis_server: RedisServer) -> None:
    """publish encodes with the cache's serializer: json sends an int orjson refuses."""
    with Cache(config_for(redis_server, serializer="json")) as cache:
        assert cache.publish("ch", {"n": 2**70}) == 0  # no subscriber: sent, heard by none
    with Cache(config_for(redis_server)) as cache:
        with pytest.raises(SerializationError, match="int beyond 64 bits"):
            cache.publish("ch", {"n": 2**70})
        with pytest.raises(SerializationError, match="NaN or Infinity"):
            cache.publish("ch", {"n": float("nan")})
