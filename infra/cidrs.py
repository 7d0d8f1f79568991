"""Which networks may reach the cache port: private ones only, the same list for the config
check (``infra/config.py``) and the policy pack (``infra/policy/rules.py``).

Spelled out instead of ``ipaddress``'s ``is_private``, which is a moving target across Python
versions and counts documentation, loopback, link-local and benchmarking ranges as "private"
while ``100.64.0.0/10`` (carrier-grade NAT, used by many VPC designs) is neither private nor
global. Checking containment also catches a public range split in pieces (``0.0.0.0/1`` plus
``128.0.0.0/1``), which a check for the literal ``0.0.0.0/0`` lets through.
"""

from __future__ import annotations

import ipaddress

__all__ = ["PRIVATE_NETWORKS", "PRIVATE_NETWORKS_TEXT", "is_private_network", "parse_network"]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_PRIVATE_V4 = (
    ipaddress.IPv4Network("10.0.0.0/8"),  # RFC 1918
    ipaddress.IPv4Network("172.16.0.0/12"),  # RFC 1918
    ipaddress.IPv4Network("192.168.0.0/16"),  # RFC 1918
    ipaddress.IPv4Network("100.64.0.0/10"),  # RFC 6598, carrier-grade NAT
)
_PRIVATE_V6 = (ipaddress.IPv6Network("fc00::/7"),)  # RFC 4193, unique local addresses
PRIVATE_NETWORKS: tuple[IPNetwork, ...] = (*_PRIVATE_V4, *_PRIVATE_V6)
PRIVATE_NETWORKS_TEXT = ", ".join(str(n) for n in PRIVATE_NETWORKS)


def parse_network(value: str, *, strict: bool = True) -> IPNetwork:
    """``value`` as a network; ``ValueError`` if it is not a CIDR (or, strict, has host bits)."""
    return ipaddress.ip_network(value.strip(), strict=strict)


def is_private_network(net: IPNetwork) -> bool:
    """True if every address of ``net`` lies inside one of :data:`PRIVATE_NETWORKS`."""
    if isinstance(net, ipaddress.IPv4Network):
        return any(net.subnet_of(p) for p in _PRIVATE_V4)
    return any(net.subnet_of(p) for p in _PRIVATE_V6)
