"""`shopgate-hub enroll-code --store S`: the code on stdout, the rest on stderr, so a
script can take the code with `$(...)`."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
from pathlib import Path

from cloud.config import HubConfig, load_hub_config
from cloud.db.engine import Database, DatabaseError
from cloud.enrollment import codes
from runtime.config.errors import ConfigError

PROG = "shopgate-hub enroll-code"


# The demo hub's config in a source checkout (the repository's hub.yaml).
CHECKOUT_CONFIG = Path(__file__).resolve().parents[2] / "hub.yaml"


def default_config() -> Path:
    """$SHOPGATE_HUB_CONFIG, else the installed /etc/shopgate/hub.yaml, else ./hub.yaml,
    else this checkout's demo hub.yaml."""
    env = os.environ.get("SHOPGATE_HUB_CONFIG")
    if env:
        return Path(env)
    for candidate in (Path("/etc/shopgate/hub.yaml"), Path("hub.yaml"), CHECKOUT_CONFIG):
        if candidate.exists():
            return candidate
    return Path("/etc/shopgate/hub.yaml")


def qr_payload(code: str, hub_url: str | None) -> str:
    """What the QR holds: the code, and where to redeem it when known. The agent's
    enrollment mode reads it from the store's own scanner."""
    return f"shopgate-enroll:{code}" + (f"@{hub_url.rstrip('/')}" if hub_url else "")


def enroll_code_main(ns: argparse.Namespace) -> int:
    path = ns.config or default_config()
    try:
        cfg = load_hub_config(path)
    except ConfigError as e:
        print(str(e), file=sys.stderr)
        return 2
    if ns.store not in {s.id for s in cfg.stores}:
        known = ", ".join(s.id for s in cfg.stores) or "none"
        print(f"{PROG}: error: no store {ns.store!r} in {path} (stores: {known})", file=sys.stderr)
        return 2
    ttl_h = ns.ttl_hours if ns.ttl_hours is not None else cfg.enrollment.code_ttl_hours
    if not 0 < ttl_h <= 14 * 24:
        print(f"{PROG}: error: --ttl-hours must be above 0 and at most 336", file=sys.stderr)
        return 2
    try:
        issued = asyncio.run(_issue(cfg, ns.db, ns.store, ttl_h * 3600))
    except DatabaseError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    if ns.qr is not None:
        import qrcode

        try:
            ns.qr.parent.mkdir(parents=True, exist_ok=True)
            qrcode.make(qr_payload(issued.code, ns.hub_url or cfg.http.public_url)).save(ns.qr)
        except OSError as e:
            print(f"{PROG}: error: cannot write {ns.qr}: {e.strerror or e}", file=sys.stderr)
            return 2
    until = dt.datetime.fromtimestamp(issued.expires_at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(codes.pretty(issued.code))
    print(
        f"store {issued.store}: works once, until {until}; on the store's Pi: "
        f"shopgate-agent enroll {codes.pretty(issued.code)} --hub <hub URL>",
        file=sys.stderr,
    )
    return 0


async def _issue(cfg: HubConfig, db_url: str | None, store: str, ttl_s: float) -> codes.Issued:
    db = await Database.open(cfg.database_url(db_url))
    try:
        return await codes.issue(db, store, ttl_s, by="cli")
    finally:
        await db.close()
