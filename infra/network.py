"""Network: the VPC and private subnets the cache lives in, its subnet group and security group.

The security group admits the cache port only from configured security groups or CIDRs; config
validation has already refused 0.0.0.0/0, and the group has no other ingress.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable, Mapping

import pulumi
import pulumi_aws as aws

__all__ = ["CACHE_PORT", "Network", "NetworkArgs"]

CACHE_PORT = 6379


@dataclasses.dataclass(frozen=True, kw_only=True)
class NetworkArgs:
    """Where the cache lives and who may reach it (already validated: private CIDRs only)."""

    group_id: str
    """Names the subnet group, the security group and a created VPC's resources."""
    vpc_id: str | None
    """An existing VPC, or ``None`` to create one from ``vpc_cidr`` over ``az_count`` AZs."""
    subnet_ids: tuple[str, ...]
    vpc_cidr: str
    az_count: int
    allowed_security_group_ids: tuple[str, ...]
    allowed_cidrs: tuple[str, ...]
    tags: Mapping[str, str]
    security_group_ids: tuple[str, ...] = ()
    """Your security groups (``securityGroupIds``): none is created, no rule is added."""
    subnet_group_name: str | None = None
    """Your subnet group (``subnetGroupName``): none is created."""
    subnet_group: bool = True
    """Create a subnet group (a serverless cache takes the subnets themselves: none)."""
    last_port: int = CACHE_PORT
    """The ingress rules admit ``CACHE_PORT`` up to this port: a serverless cache's reader
    endpoint listens on 6380, next to its endpoint on 6379."""


def _nth_az(i: int) -> Callable[[list[str]], str]:
    """Subnet i goes to the i-th available AZ (wrapping if the region has fewer)."""

    def pick(names: list[str]) -> str:
        return names[i % len(names)]

    return pick


class Network(pulumi.ComponentResource):
    """An existing VPC or a dedicated one, plus the cache's subnet group and security group."""

    vpc_id: pulumi.Output[str]
    subnet_ids: pulumi.Output[list[str]]
    """The private subnets: yours (``subnetIds``) or the created VPC's."""
    subnet_group_name: pulumi.Output[str]
    security_group_ids: pulumi.Output[list[str]]

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("berthcache:infra:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        subnet_ids: list[pulumi.Output[str]]
        if args.vpc_id is not None:
            vpc_id = pulumi.Output.from_input(args.vpc_id)
            subnet_ids = [pulumi.Output.from_input(s) for s in args.subnet_ids]
        else:
            vpc = aws.ec2.Vpc(
                f"{name}-vpc",
                cidr_block=args.vpc_cidr,
                enable_dns_support=True,
                enable_dns_hostnames=True,
                tags={**args.tags, "Name": f"{args.group_id}-vpc"},
                opts=child,
            )
            vpc_id = vpc.id
            azs = aws.get_availability_zones_output(
                state="available", opts=pulumi.InvokeOutputOptions(parent=self)
            )
            net = ipaddress.ip_network(args.vpc_cidr)
            blocks = list(net.subnets(new_prefix=net.prefixlen + 4))
            subnet_ids = []
            for i in range(args.az_count):
                subnet = aws.ec2.Subnet(
                    f"{name}-private-{i + 1}",
                    vpc_id=vpc.id,
                    cidr_block=str(blocks[i]),
                    availability_zone=azs.names.apply(_nth_az(i)),
                    map_public_ip_on_launch=False,
                    tags={
                        **args.tags,
                        "Name": f"{args.group_id}-private-{i + 1}",
                        "Tier": "private",
                    },
                    opts=child,
                )
                subnet_ids.append(subnet.id)

        self.subnet_ids = pulumi.Output.all(*subnet_ids).apply(list)
        if args.subnet_group_name is not None or not args.subnet_group:
            self.subnet_group_name = pulumi.Output.from_input(args.subnet_group_name or "")
        else:
            self.subnet_group_name = aws.elasticache.SubnetGroup(
                f"{name}-subnet-group",
                name=f"{args.group_id}-subnets",
                description=f"Private subnets of {args.group_id}",
                subnet_ids=subnet_ids,
                tags=args.tags,
                opts=child,
            ).name
        if args.security_group_ids:
            self.security_group_ids = pulumi.Output.from_input(list(args.security_group_ids))
        else:
            self.security_group_ids = self._security_group(name, args, vpc_id, child)
        self.vpc_id = vpc_id
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "subnet_group_name": self.subnet_group_name,
                "security_group_ids": self.security_group_ids,
            }
        )

    @staticmethod
    def _security_group(
        name: str, args: NetworkArgs, vpc_id: pulumi.Output[str], child: pulumi.ResourceOptions
    ) -> pulumi.Output[list[str]]:
        """The stack's own security group, admitting the named clients on the cache port."""
        sg = aws.ec2.SecurityGroup(
            f"{name}-sg",
            name=f"{args.group_id}-cache",
            description=f"Cache port {CACHE_PORT} of {args.group_id}, from named clients only",
            vpc_id=vpc_id,
            tags=args.tags,
            opts=child,
        )
        for i, source_sg in enumerate(args.allowed_security_group_ids):
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-from-sg-{i + 1}",
                security_group_id=sg.id,
                referenced_security_group_id=source_sg,
                ip_protocol="tcp",
                from_port=CACHE_PORT,
                to_port=args.last_port,
                description=f"Redis from {source_sg}",
                tags=args.tags,
                opts=child,
            )
        for i, cidr in enumerate(args.allowed_cidrs):
            v6 = ipaddress.ip_network(cidr).version == 6
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-from-cidr-{i + 1}",
                security_group_id=sg.id,
                cidr_ipv6=cidr if v6 else None,
                cidr_ipv4=None if v6 else cidr,
                ip_protocol="tcp",
                from_port=CACHE_PORT,
                to_port=args.last_port,
                description=f"Redis from {cidr}",
                tags=args.tags,
                opts=child,
            )

        return sg.id.apply(lambda i: [i])
