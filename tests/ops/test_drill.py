"""failover-drill: the measuring loop with a scripted probe, against the local primary/replica
with the harness performing the failover, and the AWS trigger (test_failover via Stubber)."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from berthcache import Cache, CacheConfig, CacheUnavailableError
from berthcache.ops import ExitCode, OpsError
from berthcache.ops._aws import AwsClients
from berthcache.ops._drill import aws_failover_trigger, cache_probe, measure_failover
from berthcache.testing.plugin import LocalRedisFactory


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_measuring_loop_reports_errors_window_and_recovery() -> None:
    clock = FakeClock()
    # Probes at t = 0, 1, 2, ...: fail at 3, 4, 5 (a 3 s window), then again at 8.
    failing = {3.0, 4.0, 5.0, 8.0}

    def probe() -> None:
        if clock.now in failing:
            raise CacheUnavailableError("connection reset")

    report = measure_failover(
        probe, lambda: None, interval=1.0, settle=3.0, timeout=60, clock=clock, sleep=clock.sleep
    )
    assert report.recovered
    assert report.errors == 4
    assert report.error_kinds == {"CacheUnavailableError": 4}
    assert report.longest_error_window == 3.0
    assert report.time_to_recovery == 9.0  # first success after the last error
    assert report.error_times == [3.0, 4.0, 5.0, 8.0]


def test_measuring_loop_gives_up_at_the_timeout() -> None:
    clock = FakeClock()

    def probe() -> None:
        raise CacheUnavailableError("down")

    report = measure_failover(
        probe, lambda: None, interval=1.0, settle=1.0, timeout=10, clock=clock, sleep=clock.sleep
    )
    assert not report.recovered
    assert report.time_to_recovery is None
    assert report.longest_error_window >= 10


def test_failover_of_the_local_group_under_probe_load(
    local_redis_factory: LocalRedisFactory,
) -> None:
    group = local_redis_factory(replica=True)
    assert group.ca_file is not None
    old_primary = group.primary
    # No retries: every dropped connection shows up as an error the drill must measure.
    config = CacheConfig.from_url(
        group.url("app"),
        tls_ca_file=group.ca_file,
        max_retries_per_request=0,
        key_prefix="berthcare:drill:",
    )
    with Cache(config) as cache:
        report = measure_failover(
            cache_probe(cache), group.failover, interval=0.01, settle=0.3, timeout=30
        )
    assert report.recovered, report
    assert report.trigger_error is None
    assert group.primary is not old_primary
    assert report.probes > 10
    assert report.time_to_recovery is not None
    assert report.time_to_recovery < 30
    if report.errors:  # the endpoint dropped a connection mid-command
        assert report.longest_error_window > 0
        assert set(report.error_kinds) <= {"CacheUnavailableError", "ReadOnlyError"}


def test_aws_trigger_calls_test_failover_for_the_node_group(aws_env: None) -> None:
    """moto has no test_failover: Stubber answers both calls on this client."""
    client = boto3.client("elasticache")
    stubber = Stubber(client)
    group = {
        "ReplicationGroupId": "bc-test",
        "Status": "available",
        "AutomaticFailover": "enabled",
        "NodeGroups": [{"NodeGroupId": "0001"}],
    }
    stubber.add_response(
        "describe_replication_groups",
        {"ReplicationGroups": [group]},
        {"ReplicationGroupId": "bc-test"},
    )
    stubber.add_response(
        "test_failover",
        {"ReplicationGroup": {**group, "Status": "modifying"}},
        {"ReplicationGroupId": "bc-test", "NodeGroupId": "0001"},
    )
    with stubber:
        trigger = aws_failover_trigger(AwsClients(elasticache=client), "bc-test", "0001")
        trigger()
    stubber.assert_no_pending_responses()


def test_aws_trigger_refuses_an_unknown_node_group(mocked_aws: None) -> None:
    from tests.ops.support import GROUP, boto_clients, make_stack

    make_stack(boto_clients())
    with pytest.raises(OpsError, match="node group '0007' is not in replication group") as info:
        aws_failover_trigger(boto_clients(), GROUP, "0007")
    assert info.value.code == ExitCode.USAGE
