"""The benchmark harness (``./scripts/bench``): every side runs, the JSON line has the shape
docs/benchmarks.md documents, the seed's ioredis module sends the seed's commands, and a machine
without node gets a one-line skip instead of a failure. Tiny runs (``--ops 200 --rounds 1``):
the numbers themselves are not checked, only that each side produced one.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from benchmarks import bench, ioredis_side
from berthcache.testing import RedisServer, make_tls_files

ROOT = Path(__file__).resolve().parents[1]
NO_IOREDIS = ioredis_side.unavailable()
needs_ioredis = pytest.mark.skipif(
    NO_IOREDIS is not None, reason=f"ioredis side unavailable: {NO_IOREDIS}"
)


def _run_bench(*args: str) -> tuple[dict[str, Any], str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench", "--json", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stdout, done.stderr


def _positive(value: Any) -> bool:
    return isinstance(value, float) and value > 0


@pytest.fixture(scope="module")
def full_run() -> tuple[dict[str, Any], str, str]:
    """One tiny run of the default set-up: plain TCP, then TLS, then the memory figure."""
    return _run_bench("--ops", "200", "--rounds", "1", "--callers", "300", "--markdown")


@pytest.mark.parametrize("key", ["workloads", "workloads_tls"])
def test_every_workload_has_berthcache_raw_and_ioredis_figures(
    full_run: tuple[dict[str, Any], str, str], key: str
) -> None:
    payload = full_run[0]
    assert set(payload[key]) == set(bench.WORKLOADS)
    for name, row in payload[key].items():
        # The keys older readers know, with the headline twin behind them.
        assert _positive(row["berthcache"]), name
        assert _positive(row["raw"]), name
        assert "ioredis" in row
        if name == bench.CONCURRENT:
            assert row["berthcache"] == row["berthcache_async"]
            assert row["raw"] == row["raw_async"]
            assert "berthcache_sync" not in row
        else:
            assert row["berthcache"] == row["berthcache_sync"]
            assert row["raw"] == row["raw_sync"]
            assert _positive(row["berthcache_async"])
            assert _positive(row["raw_async"])
        if NO_IOREDIS is None:
            assert _positive(row["ioredis"]), name
        else:
            assert row["ioredis"] is None
    if NO_IOREDIS is None:
        assert _positive(payload[key][bench.CONCURRENT]["ioredis_autopipelining"])
        same = {name for name, row in payload[key].items() if "ioredis_same_commands" in row}
        assert same == set(bench.SAME_COMMANDS)
        assert all(_positive(payload[key][name]["ioredis_same_commands"]) for name in same)


def test_ratios_are_printed_and_in_the_json(full_run: tuple[dict[str, Any], str, str]) -> None:
    payload, stdout, _ = full_run
    for transport, key in (("plain", "workloads"), ("tls", "workloads_tls")):
        for name, ratio in payload["ratios"][transport].items():
            row = payload[key][name]
            assert ratio["berthcache/raw"] == pytest.approx(row["berthcache"] / row["raw"], 0.01)
            if NO_IOREDIS is None:
                expected = row["berthcache"] / row["ioredis"]
                assert ratio["berthcache/ioredis"] == pytest.approx(expected, 0.01)
                if name in bench.SAME_COMMANDS:
                    expected = row["berthcache"] / row["ioredis_same_commands"]
                    assert ratio["berthcache/ioredis_same_commands"] == pytest.approx(
                        expected, 0.01
                    )
    assert "bc/ioredis" in stdout
    assert "bc/raw" in stdout
    assert "plain TCP (ops/s" in stdout
    assert "TLS (ops/s" in stdout
    # --markdown: the tables of docs/benchmarks.md, one row per workload and transport.
    assert stdout.count("| workload | ioredis (seed) |") == 2
    assert stdout.count("| ping |") == 2


def test_the_memory_figure_covers_berthcache_and_raw_asyncio(
    full_run: tuple[dict[str, Any], str, str],
) -> None:
    figures = full_run[0]["memory"]
    assert figures["callers"] == 300
    sides = ["berthcache_async", "raw_async"] + (["ioredis"] if NO_IOREDIS is None else [])
    for side in sides:
        assert figures[side]["callers"] == 300
        assert figures[side]["ops_per_s"] > 0
        assert figures[side]["failed"] == 0
        assert figures[side]["rss_delta"] >= 0
    assert figures["berthcache_async"]["traced_peak"] > 0
    assert "300 concurrent callers" in full_run[1]


def test_without_node_the_ioredis_side_is_one_skip_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real_which = shutil.which
    no_node = SimpleNamespace(which=lambda name: None if name == "node" else real_which(name))
    monkeypatch.setattr(ioredis_side, "shutil", no_node)
    assert ioredis_side.unavailable() == "node not found on PATH"
    assert bench.main(["--json", "--plain", "--ops", "64", "--rounds", "1", "--callers", "0"]) == 0
    out, err = capsys.readouterr()
    assert [line for line in err.splitlines() if "ioredis" in line] == [
        "ioredis: skipped (node not found on PATH)"
    ]
    payload = json.loads(out.strip().splitlines()[-1])
    assert payload["ioredis"] == {"skipped": "node not found on PATH"}
    assert all(row["ioredis"] is None for row in payload["workloads"].values())
    assert "memory" not in payload


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    files = make_tls_files(tmp_path_factory.mktemp("bench-tls"))
    with RedisServer(password="bench-secret", appendonly=False, tls=files, name="bench") as server:
        yield server


def _node_side(
    server: RedisServer, prefix: str, rate_limit_script: str | None = None
) -> tuple[ioredis_side.IoredisSide | None, str | None]:
    """The ioredis child connected over TLS to ``server`` under ``prefix``."""
    assert server.tls is not None
    return ioredis_side.start(
        host=server.host,
        port=server.port,
        password="bench-secret",
        prefix=prefix,
        ca_file=str(server.tls.ca_file),
        rate_limit_script=rate_limit_script,
    )


@needs_ioredis
def test_the_seed_module_writes_the_seeds_keys_over_tls(tls_server: RedisServer) -> None:
    """Sessions: SETEX 7 days under session:user-{id}-session-{uuid}; rate limit: INCR, then
    EXPIRE 60 on the first hit — command for command what the seed sends."""
    prefix = "berthcare:bench-test:"
    side, reason = _node_side(tls_server, prefix)
    assert side is not None, reason
    try:
        assert side.versions["ioredis"].startswith("5.")
        assert side.ops_per_s("session_set_get", 2) > 0
        assert side.ops_per_s("rate_limit_check", 1) > 0
        with pytest.raises(ioredis_side.IoredisError, match="not cached"):
            side.ops_per_s(bench.CONCURRENT, 64)
    finally:
        side.close()
    client = tls_server.client(user=None, decode_responses=True)
    try:
        [session_key] = [str(key) for key in client.keys(f"{prefix}session:*")]
        assert session_key.startswith(f"{prefix}session:user-0-session-")
        assert json.loads(str(client.get(session_key))) == bench.SESSION_DATA
        assert 604_700 < client.ttl(session_key) <= 604_800
        counter = f"{prefix}ratelimit:10.0.0.0:/api/clients"
        assert client.get(counter) == "1"
        assert 0 < client.ttl(counter) <= 60
    finally:
        client.close()


@needs_ioredis
def test_the_same_commands_side_sends_berthcaches_commands(tls_server: RedisServer) -> None:
    """The context column: ioredis writing what berthcache writes — the session in the user's
    index (which expires no sooner than the session), the counter with its window set by
    berthcache's own Lua script (EVALSHA/EVAL, PEXPIRE inside it: never the seed's EXPIRE)."""
    prefix = "berthcare:bench-same:"
    client = tls_server.client(user=None, decode_responses=True)
    side, reason = _node_side(tls_server, prefix, rate_limit_script=bench.rate_limit_script())
    try:
        assert side is not None, reason
        client.config_resetstat()
        assert side.ops_per_s("rate_limit_check", 2, same_commands=True) > 0
        stats = client.info("commandstats")
        scripted = sum(
            stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("eval", "evalsha")
        )
        assert scripted == 2, stats
        assert "cmdstat_expire" not in stats, "the seed's EXPIRE, not berthcache's script"
        assert stats["cmdstat_pexpire"]["calls"] == 2, "set inside the script, one per new window"
        counters = sorted(str(key) for key in client.keys(f"{prefix}ratelimit:*"))
        assert counters == [
            f"{prefix}ratelimit:10.0.0.0:/api/clients",
            f"{prefix}ratelimit:10.0.1.1:/api/clients",
        ]
        assert [client.get(c) for c in counters] == ["1", "1"]
        assert all(0 < client.pttl(c) <= 60_000 for c in counters)

        assert side.ops_per_s("session_set_get", 2, same_commands=True) > 0
        [session_key] = [str(key) for key in client.keys(f"{prefix}session:*")]
        session_id = session_key.removeprefix(f"{prefix}session:")
        assert session_id.startswith("user-0-session-")
        assert json.loads(str(client.get(session_key))) == bench.SESSION_DATA
        index = f"{prefix}session-index:user-0"
        assert client.smembers(index) == {session_id}
        assert client.ttl(index) >= client.ttl(session_key) > 604_000
    finally:
        if side is not None:
            side.close()
        client.close()


def test_bad_knobs_are_refused_naming_them(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--ops", "10"])
    assert exit_info.value.code == 2
    assert "--ops must be at least 64" in capsys.readouterr().err


def test_the_cluster_run_times_every_workload_on_a_cluster_and_on_one_node() -> None:
    """``./scripts/bench --cluster``: both twins on a local Redis Cluster against one node."""
    payload, out, _ = _run_bench("--cluster", "--ops", "128", "--rounds", "1")
    assert set(payload["workloads"]) == {
        "ping",
        "set_get",
        "session_set_get",
        "rate_limit_check",
        "api_cache_get_async64",
    }
    for workload, figures in payload["workloads"].items():
        expected = {"cluster_async", "single_async"}
        if workload != "api_cache_get_async64":
            expected |= {"cluster_sync", "single_sync"}
        assert set(figures) == expected
        assert all(_positive(v) for v in figures.values()), figures
    assert payload["ratios"]["ping"]["sync"] > 0
    assert "| workload | `Cache`, cluster | `Cache`, one node | ratio |" in out
