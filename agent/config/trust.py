"""Config checks of what the agent trusts and sends its secrets to (run by the loader
with the cross-reference checks, so every problem reads FILE:LINE: key: message).

- `hub.url` is https, unless the hub is on this machine (loopback: the demo, a local
  proxy): the store token travels there and the order sync comes back from it.
- `hub.token` for a hub that is not on this machine is a real secret: set, not the
  demo's `demo-token`, at least MIN_TOKEN_CHARS long. Secrets have no defaults outside
  the loopback demo.
- `access.revoked_kids` names no key that `access.keys` trusts.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from agent.config.schema import AgentConfig
from runtime.config.yamltree import Loc

DEMO_TOKEN = "demo-token"
MIN_TOKEN_CHARS = 16


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def hub_problems(cfg: AgentConfig) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    try:
        parts = urlsplit(cfg.hub.url.strip())
        host = parts.hostname
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError as e:
        return [(("hub", "url"), f"not a URL like https://hub.example.com ({e})")]
    if parts.scheme not in ("http", "https") or not host:
        return [(("hub", "url"), "not a URL like https://hub.example.com")]
    if parts.username is not None or parts.password is not None:
        message = "credentials do not go in the URL; the store token is hub.token"
        out.append((("hub", "url"), message))
    local = is_loopback(host)
    if parts.scheme != "https" and not local:
        out.append(
            (
                ("hub", "url"),
                f"http://{host} is not encrypted: the store token and the orders that open "
                "the door would cross the network readable and forgeable; use https:// "
                "(plain http only to a hub on this machine: 127.0.0.1, ::1, localhost)",
            )
        )
    token = cfg.hub.token
    if not local:
        if not token:
            out.append((("hub", "token"), f"a hub at {host} needs this store's token"))
        elif token == DEMO_TOKEN:
            out.append(
                (
                    ("hub", "token"),
                    f"the demo token is only for a hub on this machine, not {host}; "
                    "set this store's own token (SHOPGATE_STORE_TOKEN)",
                )
            )
        elif len(token) < MIN_TOKEN_CHARS:
            out.append(
                (
                    ("hub", "token"),
                    f"too short to be a secret ({len(token)} characters; at least "
                    f"{MIN_TOKEN_CHARS}, e.g. openssl rand -hex 24)",
                )
            )
    return out


def revocation_problems(cfg: AgentConfig) -> list[tuple[Loc, str]]:
    trusted = {k.kid for k in cfg.access.keys}
    return [
        (
            ("access", "revoked_kids", i),
            f"key {kid!r} is both trusted (access.keys) and revoked; remove it from one",
        )
        for i, kid in enumerate(cfg.access.revoked_kids)
        if kid in trusted
    ]
