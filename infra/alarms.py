"""Notifications and alarms: the SNS topic, one alarm per catalogue entry per member node, and a
dashboard of every alarmed metric.

Alarms are declared from ``berthcache.ops.alarm_catalogue`` for the member ids ElastiCache
will give the nodes (``<group>-001``…), so they exist at plan time and the policy pack can
check them.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_aws as aws

from berthcache.ops.alarm_catalogue import (
    CATALOGUE,
    NAMESPACE,
    AlarmSpec,
    runbook_url,
    threshold_for,
)

__all__ = [
    "Alarms",
    "AlarmsArgs",
    "Notifications",
    "NotificationsArgs",
    "dashboard_body",
    "node_dimensions",
]


def node_dimensions(member: str) -> dict[str, str]:
    """ElastiCache publishes node metrics per cluster member and node (always 0001 here)."""
    return {"CacheClusterId": member, "CacheNodeId": "0001"}


@dataclasses.dataclass(frozen=True, kw_only=True)
class NotificationsArgs:
    """The alarm topic's name, its key and who gets e-mail."""

    group_id: str
    kms_key_arn: pulumi.Input[str]
    alarm_emails: tuple[str, ...]
    tags: Mapping[str, str]


@dataclasses.dataclass(frozen=True, kw_only=True)
class AlarmsArgs:
    """The member nodes to alarm on, the thresholds, and where alarms go."""

    group_id: str
    """Names the dashboard."""
    stack: str
    member_cluster_ids: tuple[str, ...]
    node_vcpus: int
    thresholds: Mapping[str, float]
    """The catalogue's threshold settings by key (``infra.config.THRESHOLD_SETTINGS``)."""
    topic_arn: pulumi.Input[str]
    tags: Mapping[str, str]


class Notifications(pulumi.ComponentResource):
    """The SNS topic for alarms and ElastiCache events, encrypted, with e-mail subscriptions."""

    topic_arn: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: NotificationsArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("berthcache:infra:Notifications", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        topic = aws.sns.Topic(
            f"{name}-topic",
            name=f"{args.group_id}-alerts",
            kms_master_key_id=args.kms_key_arn,
            tags=args.tags,
            opts=child,
        )
        for i, email in enumerate(args.alarm_emails):
            aws.sns.TopicSubscription(
                f"{name}-email-{i + 1}",
                topic=topic.arn,
                protocol="email",
                endpoint=email,
                opts=child,
            )
        self.topic_arn = topic.arn
        self.register_outputs({"topic_arn": self.topic_arn})


def _metric_alarm_args(spec: AlarmSpec, member: str) -> dict[str, Any]:
    dims = node_dimensions(member)
    if spec.metric is not None:
        return {
            "namespace": NAMESPACE,
            "metric_name": spec.metric,
            "statistic": spec.statistic,
            "period": spec.period_seconds,
            "dimensions": dims,
        }
    assert spec.math_expression is not None
    queries: list[dict[str, Any]] = [
        {
            "id": metric_id,
            "return_data": False,
            "metric": {
                "namespace": NAMESPACE,
                "metric_name": metric,
                "stat": spec.statistic,
                "period": spec.period_seconds,
                "dimensions": dims,
            },
        }
        for metric_id, metric in zip(("hits", "misses"), spec.math_metrics, strict=True)
    ]
    queries.append(
        {
            "id": "e1",
            "expression": spec.math_expression,
            "label": f"{spec.title} (%)",
            "return_data": True,
        }
    )
    return {"metric_queries": queries}


def dashboard_body(args: AlarmsArgs, region: str) -> str:
    """One widget per catalogue entry, one line per node and metric, with the threshold."""
    widgets: list[dict[str, Any]] = []
    for i, spec in enumerate(CATALOGUE):
        metrics = [
            [NAMESPACE, metric, "CacheClusterId", member, "CacheNodeId", "0001"]
            for metric in spec.dashboard_metrics
            for member in args.member_cluster_ids
        ]
        threshold = threshold_for(spec, args.thresholds, args.node_vcpus)
        props: dict[str, Any] = {
            "title": spec.title,
            "region": region,
            "metrics": metrics,
            "stat": spec.statistic,
            "period": spec.period_seconds,
            "view": "timeSeries",
        }
        if spec.metric is not None:
            props["annotations"] = {"horizontal": [{"label": "alarm", "value": threshold}]}
        widgets.append(
            {
                "type": "metric",
                "x": (i % 2) * 12,
                "y": (i // 2) * 6,
                "width": 12,
                "height": 6,
                "properties": props,
            }
        )
    return json.dumps({"widgets": widgets}, sort_keys=True)


class Alarms(pulumi.ComponentResource):
    """Every catalogue alarm for every member node, plus the dashboard."""

    alarm_names: list[str]
    dashboard_name: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: AlarmsArgs,
        *,
        depends_on: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("berthcache:infra:Alarms", name, None, opts)
        # Each alarm waits for the group itself: its member nodes exist only then.
        child = pulumi.ResourceOptions(parent=self, depends_on=depends_on)
        self.alarm_names = []
        for member in args.member_cluster_ids:
            for spec in CATALOGUE:
                alarm_name = f"{member}-{spec.key}"
                threshold = threshold_for(spec, args.thresholds, args.node_vcpus)
                aws.cloudwatch.MetricAlarm(
                    f"{name}-{alarm_name}",
                    name=alarm_name,
                    alarm_description=(
                        f"{spec.title} on {member} ({args.stack}). {spec.meaning} "
                        f"Runbook: {runbook_url(spec)}"
                    ),
                    comparison_operator=spec.comparison,
                    threshold=threshold,
                    evaluation_periods=spec.evaluation_periods,
                    datapoints_to_alarm=spec.datapoints_to_alarm,
                    treat_missing_data=spec.treat_missing_data,
                    alarm_actions=[args.topic_arn],
                    ok_actions=[args.topic_arn],
                    tags={**args.tags, "CacheClusterId": member, "Runbook": spec.runbook_anchor},
                    opts=child,
                    **_metric_alarm_args(spec, member),
                )
                self.alarm_names.append(alarm_name)

        region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self))
        dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=args.group_id,
            dashboard_body=region.region.apply(lambda r: dashboard_body(args, r)),
            opts=child,
        )
        self.dashboard_name = dashboard.dashboard_name
        self.register_outputs({"dashboard_name": self.dashboard_name})
