"""Notifications and alarms: the alarm and event SNS topics, one alarm per catalogue entry per
member node (every node of every shard in cluster mode; per cache for serverless), and a
dashboard of every alarmed metric.

Alarms are declared from ``berthcache.ops.alarm_catalogue`` (``specs_for`` the eviction policy
and node type) in ``numCacheClusters`` slots, so they exist at plan time and the policy pack can
count them; each slot's dimensions come from the group's real member list (its
``member_clusters`` output), not from an assumed ``<group>-00N``: after a failover and a scale
change the members can be named otherwise, and a formula would leave a node unwatched. A
changed member list updates the alarms' dimensions in place (their names stay). A serverless
cache has no nodes: its alarms (catalogue scope ``serverless``) watch the cache as a whole
(dimension ``clusterId``) and are named ``<cache>-000-<key>``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

from berthcache.ops.alarm_catalogue import (
    NAMESPACE,
    AlarmSpec,
    runbook_url,
    serverless_specs,
    specs_for,
    threshold_for,
)

__all__ = [
    "Alarms",
    "AlarmsArgs",
    "Notifications",
    "NotificationsArgs",
    "dashboard_body",
    "member_at",
    "node_dimensions",
    "serverless_dimensions",
]

WIDGET_METRICS = 500
"""CloudWatch: at most 500 metrics in one graph widget."""
SERVERLESS_SLOT = "000"
"""The slot in a serverless cache's alarm names (``<cache>-000-<key>``): the cache as a whole."""


def node_dimensions(member: pulumi.Input[str]) -> dict[str, pulumi.Input[str]]:
    """ElastiCache publishes node metrics per cluster member and node (always 0001 here)."""
    return {"CacheClusterId": member, "CacheNodeId": "0001"}


def serverless_dimensions(name: str) -> dict[str, pulumi.Input[str]]:
    """A serverless cache's metrics carry one dimension, ``clusterId`` (AWS, "Serverless
    metrics and events for Valkey and Redis OSS")."""
    return {"clusterId": name}


@dataclasses.dataclass(frozen=True, kw_only=True)
class NotificationsArgs:
    """The topics' names, the alarm topic's key and who gets e-mail."""

    group_id: str
    kms_key_arn: pulumi.Input[str]
    alarm_emails: tuple[str, ...]
    """Subscribed to the topics the program creates (not to your own topics)."""
    tags: Mapping[str, str]
    alarm_topic_arn: str | None = None
    """Your alarm topic (``alarmTopicArn``): none is created. ``None``: an encrypted one."""
    events_topic_arn: str | None = None
    """Your events topic (``eventsTopicArn``, unencrypted): none is created."""
    events_topic: bool = True
    """An events topic at all (a serverless cache sends its events to EventBridge: none)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class AlarmsArgs:
    """The member nodes to alarm on, the thresholds, and where alarms go."""

    group_id: str
    """Names the alarms (``<group>-<NNN>-<key>``, NNN a slot, not a member id) and dashboard."""
    stack: str
    members: pulumi.Input[Sequence[str]]
    """The replication group's real member list (its ``member_clusters`` output)."""
    num_nodes: int
    """How many members the group has (``numCacheClusters``): one alarm slot each."""
    node_type: str
    """Burstable (``cache.t*``) types add the CPUCreditBalance alarm."""
    maxmemory_policy: str
    """``allkeys-*`` drops the DatabaseMemoryUsagePercentage alarm (``specs_for``)."""
    node_vcpus: int
    thresholds: Mapping[str, float]
    """The catalogue's threshold settings by key (``infra.config.THRESHOLD_SETTINGS``)."""
    topic_arn: pulumi.Input[str]
    tags: Mapping[str, str]
    topology: str = "replication-group"
    """``cluster``: ``num_nodes`` is every node of every shard, named ``<group>-SSSS-NNN``;
    ``serverless``: no nodes, the serverless catalogue on the cache itself."""
    replicas_per_shard: int = 1
    """Cluster mode: replicas per shard (for the first-creation member names)."""
    limits: Mapping[str, float] = dataclasses.field(default_factory=dict)
    """Serverless usage limits by setting key (``infra.config.LIMIT_SETTINGS``)."""

    @property
    def serverless(self) -> bool:
        return self.topology == "serverless"

    @property
    def specs(self) -> tuple[AlarmSpec, ...]:
        if self.serverless:
            return serverless_specs()
        return specs_for(self.maxmemory_policy, self.node_type)

    @property
    def threshold_settings(self) -> dict[str, float]:
        """What ``threshold_for`` reads: the threshold settings and the usage limits."""
        return {**self.thresholds, **self.limits}

    def first_member_name(self, slot: int) -> str:
        """ElastiCache's first-creation name of the member in ``slot`` (1-based):
        ``<group>-NNN``, or ``<group>-SSSS-NNN`` (shard, node) in cluster mode."""
        if self.topology == "cluster":
            shard, node = divmod(slot - 1, 1 + self.replicas_per_shard)
            return f"{self.group_id}-{shard + 1:04d}-{node + 1:03d}"
        return f"{self.group_id}-{slot:03d}"


def _alarm_topic_policy(topic_arn: str, account_id: str, region: str) -> str:
    """CloudWatch alarms of this account only may publish (``aws:SourceAccount`` and
    ``aws:SourceArn``, the confused-deputy conditions of the SNS access-policy docs)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                _owner_statement(topic_arn, account_id),
                {
                    "Sid": "CloudWatchAlarmsOfThisAccount",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudwatch.amazonaws.com"},
                    "Action": "sns:Publish",
                    "Resource": topic_arn,
                    "Condition": {
                        "StringEquals": {"aws:SourceAccount": account_id},
                        "ArnLike": {
                            "aws:SourceArn": f"arn:aws:cloudwatch:{region}:{account_id}:alarm:*"
                        },
                    },
                },
            ],
        },
        sort_keys=True,
    )


def _events_topic_policy(topic_arn: str, account_id: str) -> str:
    """ElastiCache of this account may publish. AWS: the topic's access policy must use
    ``aws:SourceOwner`` — with ``aws:SourceAccount`` ElastiCache cannot publish
    (https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/ElastiCacheSNS.html)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                _owner_statement(topic_arn, account_id),
                {
                    "Sid": "ElastiCacheEventsOfThisAccount",
                    "Effect": "Allow",
                    "Principal": {"Service": "elasticache.amazonaws.com"},
                    "Action": "sns:Publish",
                    "Resource": topic_arn,
                    "Condition": {"StringEquals": {"aws:SourceOwner": account_id}},
                },
            ],
        },
        sort_keys=True,
    )


def _owner_statement(topic_arn: str, account_id: str) -> dict[str, Any]:
    """What SNS's default policy gives the owning account, kept when the policy is replaced."""
    return {
        "Sid": "AccountOwner",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
        "Action": [
            "sns:GetTopicAttributes",
            "sns:SetTopicAttributes",
            "sns:AddPermission",
            "sns:RemovePermission",
            "sns:DeleteTopic",
            "sns:Subscribe",
            "sns:ListSubscriptionsByTopic",
            "sns:Publish",
        ],
        "Resource": topic_arn,
    }


class Notifications(pulumi.ComponentResource):
    """Two SNS topics, both with e-mail subscriptions: alarms (encrypted with the stack's key)
    and ElastiCache events (NOT encrypted: ElastiCache cannot publish to an encrypted topic,
    the topic turns inactive — AWS, "Event Notifications and Amazon SNS",
    https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/ElastiCacheSNS.html). Events say
    nothing secret: event name, group and node ids."""

    topic_arn: pulumi.Output[str]
    """The alarm topic."""
    events_topic_arn: pulumi.Output[str] | None
    """The replication group's event topic (unencrypted); ``None`` without one."""

    def __init__(
        self,
        name: str,
        args: NotificationsArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("berthcache:infra:Notifications", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        account = aws.get_caller_identity_output(opts=invoke).account_id
        region = aws.get_region_output(opts=invoke).region
        if args.alarm_topic_arn is not None:
            self.topic_arn = pulumi.Output.from_input(args.alarm_topic_arn)
        else:
            topic = aws.sns.Topic(
                f"{name}-topic",
                name=f"{args.group_id}-alerts",
                kms_master_key_id=args.kms_key_arn,
                tags=args.tags,
                opts=child,
            )
            aws.sns.TopicPolicy(
                f"{name}-topic-policy",
                arn=topic.arn,
                policy=pulumi.Output.all(topic.arn, account, region).apply(
                    lambda a: _alarm_topic_policy(a[0], a[1], a[2])
                ),
                opts=child,
            )
            self._subscribe(name, "", topic.arn, args.alarm_emails, child)
            self.topic_arn = topic.arn
        if not args.events_topic:
            self.events_topic_arn = None
        elif args.events_topic_arn is not None:
            self.events_topic_arn = pulumi.Output.from_input(args.events_topic_arn)
        else:
            events = aws.sns.Topic(
                f"{name}-events-topic",
                name=f"{args.group_id}-events",
                tags=args.tags,
                opts=child,
            )
            aws.sns.TopicPolicy(
                f"{name}-events-topic-policy",
                arn=events.arn,
                policy=pulumi.Output.all(events.arn, account).apply(
                    lambda a: _events_topic_policy(a[0], a[1])
                ),
                opts=child,
            )
            self._subscribe(name, "-events", events.arn, args.alarm_emails, child)
            self.events_topic_arn = events.arn
        self.register_outputs(
            {"topic_arn": self.topic_arn, "events_topic_arn": self.events_topic_arn}
        )

    @staticmethod
    def _subscribe(
        name: str,
        suffix: str,
        topic_arn: pulumi.Output[str],
        emails: Sequence[str],
        opts: pulumi.ResourceOptions,
    ) -> None:
        for i, email in enumerate(emails):
            aws.sns.TopicSubscription(
                f"{name}{suffix}-email-{i + 1}",
                topic=topic_arn,
                protocol="email",
                endpoint=email,
                opts=opts,
            )


def member_at(members: Sequence[str], slot: int, group_id: str, fallback: str | None = None) -> str:
    """The member an alarm slot (1-based) watches: the group's real members, sorted. Only a
    list shorter than the node count (a scale change or resharding still in flight) falls
    back to ElastiCache's first-creation name (``fallback``, by default ``<group>-<NNN>``);
    the next ``pulumi up`` corrects it."""
    ordered = sorted(members or ())
    if slot <= len(ordered):
        return ordered[slot - 1]
    return fallback if fallback is not None else f"{group_id}-{slot:03d}"


def _metric_alarm_args(
    spec: AlarmSpec, member: pulumi.Input[str], *, serverless: bool = False
) -> dict[str, Any]:
    dims = serverless_dimensions(str(member)) if serverless else node_dimensions(member)
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


def dashboard_body(args: AlarmsArgs, region: str, members: Sequence[str]) -> str:
    """One widget per alarmed catalogue entry, one line per node and metric, with the
    threshold; ``members`` is the group's real member list."""
    widgets: list[dict[str, Any]] = []
    watched = [
        member_at(members, slot, args.group_id, args.first_member_name(slot))
        for slot in range(1, args.num_nodes + 1)
    ]
    for spec in args.specs:
        metrics = [
            [NAMESPACE, metric, "CacheClusterId", member, "CacheNodeId", "0001"]
            for metric in spec.dashboard_metrics
            for member in watched
        ]
        if args.serverless:
            metrics = [
                [NAMESPACE, metric, "clusterId", args.group_id] for metric in spec.dashboard_metrics
            ]
        threshold = threshold_for(spec, args.threshold_settings, args.node_vcpus)
        # A graph takes at most 500 metrics (CloudWatch dashboard body structure): a large
        # cluster's nodes are spread over several widgets of the same alarm.
        parts = [metrics[i : i + WIDGET_METRICS] for i in range(0, len(metrics), WIDGET_METRICS)]
        for n, part in enumerate(parts, start=1):
            title = spec.title if len(parts) == 1 else f"{spec.title} ({n}/{len(parts)})"
            props: dict[str, Any] = {
                "title": title,
                "region": region,
                "metrics": part,
                "stat": spec.statistic,
                "period": spec.period_seconds,
                "view": "timeSeries",
            }
            if spec.metric is not None:
                props["annotations"] = {"horizontal": [{"label": "alarm", "value": threshold}]}
            i = len(widgets)
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
        members: pulumi.Output[Sequence[str]] = pulumi.Output.from_input(args.members)

        def slot_member(slot: int) -> pulumi.Output[str]:
            fallback = args.first_member_name(slot)
            return members.apply(lambda m: member_at(m, slot, args.group_id, fallback))

        def describe(spec: AlarmSpec, member: pulumi.Output[str]) -> pulumi.Output[str]:
            return member.apply(
                lambda m: (
                    f"{spec.title} on {m} ({args.stack}). {spec.meaning} "
                    f"Runbook: {runbook_url(spec)}"
                )
            )

        slots = [(f"{slot:03d}", slot_member(slot)) for slot in range(1, args.num_nodes + 1)]
        if args.serverless:
            slots = [(SERVERLESS_SLOT, pulumi.Output.from_input(args.group_id))]
        for slot_name, member in slots:
            for spec in args.specs:
                alarm_name = f"{args.group_id}-{slot_name}-{spec.key}"
                threshold = threshold_for(spec, args.threshold_settings, args.node_vcpus)
                description = describe(spec, member)
                aws.cloudwatch.MetricAlarm(
                    f"{name}-{alarm_name}",
                    name=alarm_name,
                    alarm_description=description,
                    comparison_operator=spec.comparison,
                    threshold=threshold,
                    evaluation_periods=spec.evaluation_periods,
                    datapoints_to_alarm=spec.datapoints_to_alarm,
                    treat_missing_data=spec.treat_missing_data,
                    alarm_actions=[args.topic_arn],
                    ok_actions=[args.topic_arn],
                    tags={**args.tags, "CacheClusterId": member, "Runbook": spec.runbook_anchor},
                    opts=child,
                    **_metric_alarm_args(
                        spec,
                        args.group_id if args.serverless else member,
                        serverless=args.serverless,
                    ),
                )
                self.alarm_names.append(alarm_name)

        region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self))
        dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=args.group_id,
            dashboard_body=pulumi.Output.all(region.region, members).apply(
                lambda a: dashboard_body(args, a[0], a[1])
            ),
            opts=child,
        )
        self.dashboard_name = dashboard.dashboard_name
        self.register_outputs({"dashboard_name": self.dashboard_name})
