"""Can other machines reach this hub, and is a secret fit for a hub they can reach?

The demo hub.yaml gives every secret a value printed in the repository so that `make demo`
needs no setup; that is safe only while nobody else can call the hub. A hub serves only
this machine when every address it binds is loopback (127.0.0.0/8, ::1, or an IPv4-mapped
127.x) and no `http.public_url` names another host (a reverse proxy on this machine makes
a loopback hub the internet's). Names are judged by every address they resolve to, as the
listening socket will bind them, never by how they look. Pure but for the resolver.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

# Values the repository itself hands out: the demo hub.yaml's defaults and the demo's.
DEMO_VALUES = frozenset({"demo", "demo-secret", "demo-token", "demo-merchant-token"})
DEMO_KID = "demo"
# Tokens the hub hands out (stores, merchants): `openssl rand -hex 24` gives 48.
MIN_TOKEN_CHARS = 24
# Secrets issued by others (platforms, ERPs, DingTalk: 32 or more) and the hub's own.
MIN_SECRET_CHARS = 16

Resolver = Callable[[str, int], Iterable[str]]


def resolve_passive(host: str, port: int) -> list[str]:
    """The addresses a server told to listen on `host` binds: asyncio (and so aiohttp)
    asks getaddrinfo with AI_PASSIVE and binds every answer."""
    infos = socket.getaddrinfo(
        host or None, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
    )
    return [str(info[4][0]) for info in infos]


def is_loopback(address: str) -> bool:
    """127.0.0.0/8, ::1, or an IPv4-mapped 127.x; anything else (0.0.0.0 and :: included,
    and text that is no address) is not."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def bound_reach(addresses: Iterable[str]) -> str | None:
    """Why a server bound to `addresses` is reachable from other machines, or None."""
    others = [a for a in addresses if not is_loopback(a)]
    if not others:
        return None
    return f"it listens on {', '.join(sorted(set(others)))}, beyond this machine"


def listen_reach(host: str, port: int, resolve: Resolver = resolve_passive) -> str | None:
    """Why listening on `host` makes the hub reachable from other machines, or None when
    every address it binds is loopback."""
    listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        addresses = list(resolve(host, port))
    except (OSError, UnicodeError) as e:
        return f"listen {listen}: {host!r} does not resolve ({e}), so it cannot be judged loopback"
    reach = bound_reach(addresses) if addresses else "it resolves to no address"
    return None if reach is None else f"listen {listen}: {reach}"


def public_url_reach(public_url: str) -> str | None:
    """Why `http.public_url` says callers come from elsewhere (a proxy, a domain), or None
    when it is empty or names this machine by a loopback address or `localhost`."""
    if not public_url:
        return None
    host = urlsplit(public_url).hostname or ""
    if host == "localhost" or is_loopback(host):
        return None
    return f"public_url {public_url} is how other machines call it"


def proxy_reach(trusted_proxies: list[str]) -> str | None:
    """Why a hub behind a reverse proxy is reached from elsewhere although it listens on
    loopback (the proxy forwards other machines' requests), or None without one."""
    if not trusted_proxies:
        return None
    return f"limits.trusted_proxies {', '.join(trusted_proxies)} forward other machines' calls"


def weakness(value: str, *, minimum: int, empty_ok: bool) -> str | None:
    """Why `value` cannot guard a hub others reach (never quoting it), or None."""
    if not value:
        return None if empty_ok else "is empty"
    if value.strip().lower() in DEMO_VALUES:
        return "is the demo's value, published in the repository"
    if len(value) < minimum:
        return f"is shorter than {minimum} characters"
    return None
