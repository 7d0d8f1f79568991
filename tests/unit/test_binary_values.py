"""Binary values (issue 12 part 6): ``set_bytes`` / ``get_bytes`` store and read any bytes on
both twins and their pipelines, against a real redis-server; the text path (``get``) refuses a
binary value with an error naming the key and pointing at ``get_bytes``."""

from __future__ import annotations

import asyncio
import gzip
import os
import zlib
from collections.abc import Iterator

import pytest
import redis

from berthcache import AsyncCache, Cache, SerializationError
from berthcache._config import CacheConfig
from berthcache._serialization import is_binary_reply

EVERY_BYTE = bytes(range(256))
#: Values whose bytes are not UTF-8 in different ways: a lone continuation byte, a truncated
#: sequence, an encoded surrogate (CESU), an overlong NUL, bytes above F4.
NOT_UTF8 = [b"\x80", b"\xc3", b"\xed\xa0\x80", b"\xc0\x80", b"\xff\xfe\x00", b"abc\xf5def"]


@pytest.fixture
def cache(config: CacheConfig) -> Iterator[Cache]:
    with Cache(config) as c:
        yield c


@pytest.fixture
def raw_client(config: CacheConfig) -> Iterator[redis.Redis]:
    """A redis-py client without decoding: what another (binary) client stores and reads."""
    client = redis.Redis(host=config.host, port=config.port, password=config.password)
    try:
        yield client
    finally:
        client.close()


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


# -- the sync twin --------------------------------------------------------------------------------


def test_every_byte_value_round_trips_alone_and_together(cache: Cache) -> None:
    for byte in range(256):
        cache.set_bytes(f"b{byte}", bytes([byte]))
    assert [cache.get_bytes(f"b{byte}") for byte in range(256)] == [bytes([b]) for b in range(256)]
    cache.set_bytes("all", EVERY_BYTE)
    assert cache.get_bytes("all") == EVERY_BYTE
    for n, value in enumerate(NOT_UTF8):
        cache.set_bytes(f"odd{n}", value)
        assert cache.get_bytes(f"odd{n}") == value
    cache.set_bytes("empty", b"")
    assert cache.get_bytes("empty") == b""
    assert cache.get_bytes("missing") is None


def test_what_redis_stores_is_the_bytes_given(
    cache: Cache, config: CacheConfig, raw_client: redis.Redis
) -> None:
    cache.set_bytes("k", EVERY_BYTE)
    assert raw_client.get(f"{config.key_prefix}k") == EVERY_BYTE
    raw_client.set(f"{config.key_prefix}other", b"\x1f\x8b\x08\x00\xff")  # another client's
    assert cache.get_bytes("other") == b"\x1f\x8b\x08\x00\xff"


def test_large_compressed_payloads_round_trip(cache: Cache) -> None:
    document = b"".join(b"line %d: %s\n" % (i, os.urandom(8).hex().encode()) for i in range(40000))
    gz = gzip.compress(document)
    z = zlib.compress(os.urandom(2 * 1024 * 1024), 1)  # 2 MB that does not compress
    cache.set_bytes("gz", gz)
    cache.set_bytes("z", z, ttl=60)
    assert gzip.decompress(cache.get_bytes("gz") or b"") == document
    assert cache.get_bytes("z") == z


def test_ttl_applies_as_for_set(cache: Cache) -> None:
    cache.set_bytes("t", b"\xff", ttl=30)
    assert 0 < cache.ttl("t") <= 30
    cache.set_bytes("t", b"\xfe")  # overwriting without a TTL clears it, as set does
    assert cache.ttl("t") == -1
    assert cache.expire("t", 120) is True
    assert 30 < cache.ttl("t") <= 120
    assert cache.get_bytes("t") == b"\xfe"


def test_get_of_a_binary_value_names_the_key_and_get_bytes(cache: Cache) -> None:
    cache.set_bytes("blob", b"\x1f\x8b\x08\x00")
    with pytest.raises(SerializationError, match=r"key 'blob' is binary data.*get_bytes\(\)"):
        cache.get("blob")
    with pytest.raises(SerializationError, match=r"key 'blob' is binary data.*get_bytes\(\)"):
        cache.get_json("blob")
    with pytest.raises(SerializationError, match=r"key 'blob' is binary data"):
        cache.get("blob", parse_json=True)
    assert cache.ping() >= 0  # nothing out of step


def test_text_reads_as_it_always_did(cache: Cache) -> None:
    """Text stored by ``set`` (or by the seed) reads the same through ``get``; ``get_bytes``
    gives its UTF-8 bytes."""
    for n, text in enumerate(["plain", "t\u00e9xt \u2603 \U0001f600", "", "\x00\x7f", "x" * 70000]):
        cache.set(f"t{n}", text)
        assert cache.get(f"t{n}") == text
        assert cache.get_bytes(f"t{n}") == text.encode("utf-8")
    cache.set_bytes("utf8", "caf\u00e9".encode())
    assert cache.get("utf8") == "caf\u00e9"  # UTF-8 bytes are text: get reads them
    cache.set_json("j", {"a": "\u00e9"})
    assert cache.get_json("j") == {"a": "\u00e9"}


def test_set_still_refuses_bytes_that_are_not_utf8_and_points_at_set_bytes(cache: Cache) -> None:
    with pytest.raises(SerializationError, match=r"key 'k' is bytes that are not UTF-8.*set_bytes"):
        cache.set("k", b"\xff")
    assert cache.exists("k") is False


@pytest.mark.parametrize("bad", ["text", 42, None, [1]])
def test_set_bytes_refuses_what_is_not_bytes(cache: Cache, bad: object) -> None:
    with pytest.raises(SerializationError, match=r"key 'k' has type \w+; set_bytes\(\) stores"):
        cache.set_bytes("k", bad)  # type: ignore[arg-type]
    assert cache.exists("k") is False


def test_bytearray_and_memoryview_are_stored_as_bytes(cache: Cache) -> None:
    cache.set_bytes("ba", bytearray(b"\xff\x00"))
    cache.set_bytes("mv", memoryview(b"\x00\xfe\xff")[1:])
    assert cache.get_bytes("ba") == b"\xff\x00"
    assert cache.get_bytes("mv") == b"\xfe\xff"


def test_pipelines_and_transactions_carry_bytes(cache: Cache) -> None:
    for transaction in (False, True):
        with cache.pipeline(transaction=transaction) as pipe:
            pipe.set_bytes("p1", EVERY_BYTE).set_bytes("p2", b"\xff", ttl=60).set("p3", "text")
            pipe.get_bytes("p1").get_bytes("p2").get("p3").get_bytes("p3").get_bytes("none")
            pipe.ttl("p2")
            results = pipe.execute()
        assert results[:3] == [True, True, True]
        assert results[3:8] == [EVERY_BYTE, b"\xff", "text", b"text", None]
        assert 0 < results[8] <= 60


def test_a_pipelined_get_of_a_binary_value_names_its_key(cache: Cache) -> None:
    cache.set_bytes("bin", b"\xff")
    for transaction in (False, True):
        with cache.pipeline(transaction=transaction) as pipe:
            pipe.set("fine", "x").get("fine").get("bin")
            with pytest.raises(SerializationError, match=r"key 'bin' is binary data"):
                pipe.execute()
        assert cache.get("fine") == "x"


def test_is_binary_reply_is_exact() -> None:
    """Lossless: every byte string decodes (surrogateescape) and encodes back unchanged, and is
    called binary exactly when it is not UTF-8."""
    samples = [EVERY_BYTE, *NOT_UTF8, b"", b"ascii", "\u00e9\u2603".encode(), os.urandom(4096)]
    for raw in samples:
        decoded = raw.decode("utf-8", "surrogateescape")
        assert decoded.encode("utf-8", "surrogateescape") == raw
        try:
            raw.decode("utf-8")
            utf8 = True
        except UnicodeDecodeError:
            utf8 = False
        assert is_binary_reply(decoded) is not utf8


# -- the async twin -------------------------------------------------------------------------------


def test_the_async_twin_round_trips_bytes(config: CacheConfig) -> None:
    async def scenario() -> None:
        async with AsyncCache(config) as cache:
            for byte in range(256):
                await cache.set_bytes(f"b{byte}", bytes([byte]))
            got = await asyncio.gather(*(cache.get_bytes(f"b{b}") for b in range(256)))
            assert got == [bytes([b]) for b in range(256)]
            payload = gzip.compress(os.urandom(512 * 1024))
            await cache.set_bytes("gz", payload, ttl=45)
            assert await cache.get_bytes("gz") == payload
            assert 0 < await cache.ttl("gz") <= 45
            assert await cache.get_bytes("missing") is None
            with pytest.raises(SerializationError, match=r"key 'gz' is binary data.*get_bytes"):
                await cache.get("gz")
            with pytest.raises(SerializationError, match=r"key 'gz' is binary data"):
                await cache.get_json("gz")
            await cache.set("t", "t\u00e9xt")
            assert await cache.get("t") == "t\u00e9xt"  # the text path unchanged
            for transaction in (False, True):
                async with cache.pipeline(transaction=transaction) as pipe:
                    pipe.set_bytes("p", EVERY_BYTE).get_bytes("p").get("t").get_bytes("t")
                    assert await pipe.execute() == [True, EVERY_BYTE, "t\u00e9xt", b"t\xc3\xa9xt"]
                async with cache.pipeline(transaction=transaction) as pipe:
                    pipe.get("t").get("gz")
                    with pytest.raises(SerializationError, match=r"key 'gz' is binary data"):
                        await pipe.execute()
            assert await cache.get("t") == "t\u00e9xt"

    run(scenario())


@pytest.mark.parametrize("serializer", ["orjson", "json"])
def test_get_json_of_a_binary_value_is_refused_by_every_serializer(
    config: CacheConfig, serializer: str
) -> None:
    """``json.loads`` would accept a lone surrogate inside a JSON string: the refusal comes
    before the serializer runs, whichever it is."""
    with Cache(config, serializer=serializer) as cache:
        cache.set_bytes("j", b'"\xff"')
        with pytest.raises(SerializationError, match=r"key 'j' is binary data"):
            cache.get_json("j")
        with pytest.raises(SerializationError, match=r"key 'j' is binary data"):
            cache.get("j", parse_json=True)
        cache.set_json("ok", {"a": "\u00e9"})
        assert cache.get_json("ok") == {"a": "\u00e9"}
