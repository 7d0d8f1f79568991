"""Encode + decode of the benchmark's payloads through each serializer, in one run.

    .venv/bin/python -m benchmarks.serializers [--rounds 5] [--number 20000]

Prints, per payload, the microseconds of one encode+decode round trip (median of the rounds,
the serializers interleaved within each round so a busy machine slows them alike) and the ratio
to the standard ``json`` module. ``berthcache json`` / ``berthcache orjson`` are the codecs a
cache uses (``serializer="json"`` / ``"orjson"``: error mapping, the NaN check, UTF-8 bytes out);
``raw`` rows call the library alone. msgspec is measured when it is installed (it is not a
dependency).
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import timeit
from collections.abc import Callable
from typing import Any

import orjson

from benchmarks.bench import API_PAYLOAD, SESSION_DATA
from berthcache._serialization import ORJSON, STDLIB_JSON

#: The API payload with a null in each client: the orjson codec then looks for NaN/Infinity.
API_WITH_NULLS = {"clients": [{**c, "discharged": None} for c in API_PAYLOAD["clients"]]}
PAYLOADS: dict[str, Any] = {
    "api payload (20 clients)": API_PAYLOAD,
    "api payload with nulls": API_WITH_NULLS,
    "session dict": SESSION_DATA,
}


def _raw_json(value: Any) -> Any:
    return json.loads(json.dumps(value, separators=(",", ":"), ensure_ascii=False))


def round_trips() -> dict[str, Callable[[Any], Any]]:
    """name -> encode+decode of one value."""
    trips: dict[str, Callable[[Any], Any]] = {
        "raw json": _raw_json,
        "berthcache json": lambda v: STDLIB_JSON.decode_json(
            STDLIB_JSON.encode_json(v, key="k"), key="k"
        ),
        "raw orjson": lambda v: orjson.loads(orjson.dumps(v)),
        "berthcache orjson": lambda v: ORJSON.decode_json(ORJSON.encode_json(v, key="k"), key="k"),
    }
    try:
        import msgspec  # type: ignore[import-not-found,unused-ignore]  # optional here
    except ImportError:
        return trips
    encoder, decoder = msgspec.json.Encoder(), msgspec.json.Decoder()
    trips["raw msgspec"] = lambda v: decoder.decode(encoder.encode(v))
    return trips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--number", type=int, default=20_000)
    args = parser.parse_args()
    trips = round_trips()
    for payload_name, payload in PAYLOADS.items():
        size = len(orjson.dumps(payload))
        samples: dict[str, list[float]] = {name: [] for name in trips}
        for _ in range(args.rounds):
            for name, trip in trips.items():
                seconds = timeit.timeit(functools.partial(trip, payload), number=args.number)
                samples[name].append(seconds / args.number * 1e6)
        base = statistics.median(samples["raw json"])
        print(f"\n{payload_name} ({size} bytes): µs per encode+decode, median of {args.rounds}")
        for name, values in samples.items():
            median = statistics.median(values)
            print(f"  {name:20} {median:7.2f} µs  {base / median:5.2f}x raw json")


if __name__ == "__main__":
    main()
