"""Who is calling: the socket peer, or the client a trusted proxy says it forwarded."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_ip(value: str | None) -> IPAddress | None:
    if not value:
        return None
    text = value.strip()
    if text.startswith("[") and "]" in text:  # "[::1]:443" from some proxies
        text = text[1 : text.index("]")]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # An IPv4 client on a dual-stack socket shows up as ::ffff:a.b.c.d.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_loopback_host(host: str | None) -> bool:
    """Whether a URL's host can only mean this machine: 127.0.0.0/8, ::1, `localhost` or a
    name under `.localhost` (RFC 6761 reserves them for loopback)."""
    if not host:
        return False
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    address = parse_ip(name)
    return address is not None and address.is_loopback


def in_networks(address: IPAddress, networks: Iterable[Network]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def client_address(
    peer: str | None, forwarded_for: list[str], trusted_proxies: tuple[Network, ...]
) -> IPAddress | None:
    """The caller's address: the peer, unless the peer is a trusted proxy, in which case
    the rightmost X-Forwarded-For hop that is not itself a trusted proxy.

    Hops left of an untrusted one are ignored: anyone can write them.
    """
    address = parse_ip(peer)
    if address is None or not in_networks(address, trusted_proxies):
        return address
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
    for hop in reversed(hops):
        hop_address = parse_ip(hop)
        if hop_address is None:
            return None  # a garbled chain proves nothing
        if not in_networks(hop_address, trusted_proxies):
            return hop_address
        address = hop_address
    return address
