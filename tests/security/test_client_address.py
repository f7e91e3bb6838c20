"""Who the client is (cloud/limits/addresses.py), for any header content: the right-most
untrusted hop, never a trusted proxy while an untrusted hop is there to take, and never
an address the client wrote itself."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from cloud.config import load_hub_config
from cloud.limits.addresses import (
    IPAddress,
    TrustedProxies,
    bucket,
    client_address,
    header_hops,
    parse_address,
    parse_network,
)
from cloud.signing import write_keypair
from runtime.config.errors import ConfigError

PROXIES = TrustedProxies.parse(["10.0.0.0/8", "192.168.1.1", "2001:db8:ffff::/48"])
HEADERS = st.sampled_from(["x-forwarded-for", "forwarded"])
ANY_TEXT = st.text(max_size=300)
# Header text as an attacker may send it: addresses, separators, quotes and junk.
HOSTILE = st.lists(
    st.one_of(
        st.ip_addresses().map(str),
        st.sampled_from([",", ";", '"', "for=", "[", "]", ":", " ", "unknown", "_x", "\t"]),
        ANY_TEXT,
    ),
    max_size=12,
).map("".join)


def normal(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def untrusted_addresses(trusted: TrustedProxies) -> st.SearchStrategy[IPAddress]:
    return st.ip_addresses().map(normal).filter(lambda a: a not in trusted)


def trusted_addresses() -> st.SearchStrategy[IPAddress]:
    return st.one_of(
        st.integers(0, 2**24 - 1).map(lambda n: ipaddress.IPv4Address((10 << 24) + n)),
        st.just(ipaddress.IPv4Address("192.168.1.1")),
        st.integers(0, 2**80 - 1).map(lambda n: ipaddress.IPv6Address((0x20010DB8FFFF << 80) + n)),
    )


def written(address: IPAddress, header: str) -> str:
    """A hop as a proxy writes it."""
    if header == "forwarded":
        shown = f"[{address}]" if address.version == 6 else str(address)
        return f'for="{shown}"' if address.version == 6 else f"for={shown}"
    return str(address)


@given(peer=st.one_of(st.none(), ANY_TEXT), values=st.lists(HOSTILE, max_size=4), header=HEADERS)
def test_any_header_content_is_read_without_crashing(
    peer: str | None, values: list[str], header: str
) -> None:
    found = client_address(peer, header_hops(values, header), PROXIES)  # type: ignore[arg-type]
    assert found is None or isinstance(found, ipaddress.IPv4Address | ipaddress.IPv6Address)
    assert bucket(found)


@given(peer=untrusted_addresses(PROXIES), values=st.lists(HOSTILE, max_size=4), header=HEADERS)
def test_an_untrusted_peer_is_the_client_whatever_it_sends(
    peer: IPAddress, values: list[str], header: str
) -> None:
    hops = header_hops(values, header)  # type: ignore[arg-type]
    assert client_address(str(peer), hops, PROXIES) == peer


@given(
    sent=HOSTILE,
    client=untrusted_addresses(PROXIES),
    proxies=st.lists(trusted_addresses(), min_size=1, max_size=5),
    header=HEADERS,
    one_line=st.booleans(),
)
def test_what_the_client_writes_never_chooses_its_address(
    sent: str, client: IPAddress, proxies: list[IPAddress], header: str, one_line: bool
) -> None:
    """The client sends anything; each trusted proxy appends the address it saw (the
    first proxy saw the client); the last proxy is the socket's peer."""
    appended = [written(client, header)] + [written(p, header) for p in proxies[:-1]]
    values = [", ".join([sent, *appended])] if one_line else [sent, *appended]
    hops = header_hops(values, header)  # type: ignore[arg-type]
    assert client_address(str(proxies[-1]), hops, PROXIES) == client


@given(
    peer=st.one_of(trusted_addresses().map(str), ANY_TEXT),
    values=st.lists(
        st.lists(
            st.one_of(trusted_addresses().map(str), st.ip_addresses().map(str), HOSTILE),
            max_size=6,
        ).map(", ".join),
        max_size=3,
    ),
    header=HEADERS,
)
def test_a_trusted_proxy_is_the_client_only_when_no_untrusted_hop_is_there(
    peer: str, values: list[str], header: str
) -> None:
    hops = header_hops(values, header)  # type: ignore[arg-type]
    found = client_address(peer, hops, PROXIES)
    chain = [parse_address(h) for h in [*hops, peer]]
    if found is not None and found in PROXIES:
        # Every hop, all the way left, is a proxy we trust.
        assert all(a is not None and a in PROXIES for a in chain)
    if found is not None:
        assert found in chain  # an address somebody on the path actually wrote


@given(address=st.ip_addresses(), port=st.integers(1, 65535))
def test_addresses_read_as_proxies_and_sockets_write_them(address: IPAddress, port: int) -> None:
    expected = normal(address)
    assert parse_address(str(address)) == expected
    if address.version == 6:
        assert parse_address(f"[{address}]:{port}") == expected
        assert parse_address(f'"[{address}]"') == expected
    else:
        assert parse_address(f"{address}:{port}") == expected


@given(a=st.integers(0, 2**64 - 1), b=st.integers(0, 2**64 - 1), net=st.integers(0, 2**64 - 1))
def test_an_ipv6_64_is_one_bucket_and_ipv4_addresses_are_their_own(
    a: int, b: int, net: int
) -> None:
    first = ipaddress.IPv6Address((net << 64) + a)
    second = ipaddress.IPv6Address((net << 64) + b)
    neighbour = ipaddress.IPv6Address((((net + 1) % 2**64) << 64) + a)
    assert bucket(first) == bucket(second)
    assert bucket(first) != bucket(neighbour)
    assume(a != b and a < 2**32 and b < 2**32)
    assert bucket(ipaddress.IPv4Address(a)) != bucket(ipaddress.IPv4Address(b))


def test_mapped_and_zoned_addresses_count_as_the_address() -> None:
    assert parse_address("::ffff:203.0.113.7") == ipaddress.IPv4Address("203.0.113.7")
    assert parse_address("fe80::1%eth0") == ipaddress.IPv6Address("fe80::1")
    assert bucket(parse_address("::ffff:203.0.113.7")) == "203.0.113.7"
    trusted = TrustedProxies.parse(["::ffff:10.0.0.0/104"])
    assert ipaddress.IPv4Address("10.1.2.3") in trusted


def test_the_forwarded_header_is_read_as_rfc_7239_writes_it() -> None:
    values = ['for=192.0.2.60;proto=http;by=203.0.113.43, for="[2001:db8:cafe::17]:4711"']
    assert header_hops(values, "forwarded") == ["192.0.2.60", '"[2001:db8:cafe::17]:4711"']
    hops = header_hops(values, "forwarded")
    found = client_address("10.0.0.1", hops, PROXIES)
    assert found == ipaddress.IPv6Address("2001:db8:cafe::17")
    # An element with no `for` is a hop that cannot be read: the client is unknown.
    assert client_address("10.0.0.1", header_hops(["proto=https"], "forwarded"), PROXIES) is None


def test_an_unterminated_quote_does_not_swallow_the_proxies_hops() -> None:
    hops = header_hops(['for="', "for=203.0.113.9"], "forwarded")
    assert client_address("10.0.0.1", hops, PROXIES) == ipaddress.IPv4Address("203.0.113.9")
    hops = header_hops(['for="a, for=203.0.113.9'], "forwarded")
    assert client_address("10.0.0.1", hops, PROXIES) == ipaddress.IPv4Address("203.0.113.9")


def test_a_trusted_proxy_that_reports_garbage_gives_an_unknown_client() -> None:
    assert client_address("10.0.0.1", ["unknown"], PROXIES) is None
    assert bucket(None) == "unknown"
    # With no header at all, the proxy itself made the request (a health check).
    assert client_address("10.0.0.1", [], PROXIES) == ipaddress.IPv4Address("10.0.0.1")


def test_networks_are_configured_as_addresses_or_blocks() -> None:
    assert str(parse_network("10.0.0.5")) == "10.0.0.5/32"
    assert str(parse_network("10.0.0.1/8")) == "10.0.0.0/8"
    assert str(parse_network("2001:db8::/48")) == "2001:db8::/48"


def test_a_bad_trusted_proxy_or_door_limit_is_named_by_file_and_line(tmp_path: Path) -> None:
    write_keypair(tmp_path / "keys", "demo")
    config = tmp_path / "hub.yaml"
    config.write_text(
        "http: {listen: '127.0.0.1:0'}\n"  # 1
        "storage: {dir: data}\n"  # 2
        f"signing: {{key_file: {tmp_path}/keys/hub-signing.pem, kid: demo}}\n"  # 3
        "mqtt: {url: 'mqtt://127.0.0.1:1883'}\n"  # 4
        "limits:\n"  # 5
        "  trusted_proxies: [10.0.0.0/8, nginx.local]\n"  # 6
        "  client_header: x-real-ip\n"  # 7
        "stores:\n"  # 8
        "  - id: s1\n"  # 9
        "    token: tok-s1-0123456789abcdef0123\n"  # 10
        "    entry:\n"  # 11
        "      doors: [front]\n"  # 12
        "      door_limit: {window_seconds: 600, max_pause_seconds: 300}\n"  # 13
    )
    with pytest.raises(ConfigError) as e:
        load_hub_config(config, {})
    text = str(e.value)
    assert ":6: limits.trusted_proxies: " in text and "'nginx.local' is not an address" in text
    assert ":7: limits.client_header: " in text
    assert ":13: stores.0.entry.door_limit: " in text and "max_pause_seconds" in text
