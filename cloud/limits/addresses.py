"""Who the client is, from the socket's peer and the proxies' forwarding header (pure).

A header that says where a request came from is believed only as far as it was written
by proxies we trust: starting from the socket's peer, each hop that is a trusted proxy
tells us the hop before it; the first untrusted hop, walking right to left, is the
client. What a client writes into the header itself is left of that hop, so it can
neither choose its address nor hide it. A hop that cannot be read, or a chain of trusted
proxies that never ends, gives an unknown client (all of them share one count).

Hops are split on every comma (and `Forwarded` parameters on every semicolon), quotes or
not: `for="a,b"` is no address anyway, and a quote-aware split would let a client's
unterminated quote swallow the hops that the proxies appended after it.

Counts are kept per *bucket*: an IPv4 address, or an IPv6 address's /64 (one home or
phone network gets a /64, and picks any address in it at will).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Header = Literal["x-forwarded-for", "forwarded"]

UNKNOWN = "unknown"
MAX_HOPS = 32  # a longer chain of trusted proxies is a loop or a lie
MAX_HOP_CHARS = 100


def parse_address(text: str) -> IPAddress | None:
    """An address as proxies and sockets write it ("192.0.2.1", "192.0.2.1:443",
    "2001:db8::1", "[2001:db8::1]:443", "fe80::1%eth0"), or None. IPv4-mapped IPv6
    addresses are their IPv4 address."""
    text = text.strip().strip('"').strip()
    if not text or len(text) > MAX_HOP_CHARS:
        return None
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or (text[end + 1 :] and not _is_port(text[end + 1 :])):
            return None
        text = text[1:end]
    elif text.count(":") == 1:  # IPv4 with a port
        host, _, port = text.partition(":")
        if not _is_port(":" + port):
            return None
        text = host
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.scope_id:  # fe80::1%eth0: the zone names our interface, not theirs
            address = ipaddress.IPv6Address(int(address))
    return address


def _is_port(text: str) -> bool:
    return (
        text.startswith(":") and 1 <= len(text) <= 6 and text[1:].isascii() and text[1:].isdigit()
    )


def parse_network(text: str) -> IPNetwork:
    """A trusted proxy as configured: an address or a CIDR block (host bits ignored)."""
    text = text.strip()
    address = parse_address(text)
    if address is not None:
        return ipaddress.ip_network(address)
    network = ipaddress.ip_network(text, strict=False)
    if isinstance(network, ipaddress.IPv6Network):
        mapped = network.network_address.ipv4_mapped
        if mapped is not None and network.prefixlen >= 96:
            return ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}", strict=False)
    return network


@dataclass(frozen=True)
class TrustedProxies:
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> TrustedProxies:
        return cls(tuple(parse_network(e) for e in entries))

    def __contains__(self, address: IPAddress) -> bool:
        return any(address in n for n in self.networks)

    def __bool__(self) -> bool:
        return bool(self.networks)


def header_hops(values: Sequence[str], header: Header) -> list[str]:
    """The hops a forwarding header lists, left (furthest) to right (nearest); several
    header lines are one list, in order."""
    hops: list[str] = []
    for value in values:
        for element in value.split(","):
            if header == "x-forwarded-for":
                hops.append(element)
                continue
            # RFC 7239: `for=...;proto=...;by=...`; an element without `for` is unknown.
            found = ""
            for pair in element.split(";"):
                name, eq, hop = pair.partition("=")
                if eq and name.strip().lower() == "for":
                    found = hop
            hops.append(found)
    return hops


def client_address(
    peer: str | None, hops: Sequence[str], trusted: TrustedProxies
) -> IPAddress | None:
    """The client: the right-most hop that is not a trusted proxy, the socket's peer
    being the right-most of all; None when unknown."""
    address = parse_address(peer or "")
    if address is None or address not in trusted:
        return address
    for n, hop in enumerate(reversed(hops)):
        if n >= MAX_HOPS:
            return None
        earlier = parse_address(hop)
        if earlier is None:
            return None
        address = earlier
        if address not in trusted:
            return address
    # Every hop is a trusted proxy: the request was made by the first of them.
    return address


def bucket(address: IPAddress | None, ipv6_prefix: int = 64) -> str:
    """What one client's counts are kept under: "192.0.2.1", "2001:db8:1:2::/64"."""
    if address is None:
        return UNKNOWN
    if isinstance(address, ipaddress.IPv4Address):
        return str(address)
    return str(ipaddress.ip_network(f"{address}/{ipv6_prefix}", strict=False))
