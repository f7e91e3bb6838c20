"""Shared by the order and platform tests: a hub config for the demo store selling on
every platform, and a fresh hub database on SQLite or PostgreSQL."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import text

from cloud.config import HubConfig
from cloud.db.engine import Database
from cloud.db.principals import sync_principals
from cloud.db.tables import metadata

STORE = "demo-001"
TOKEN = "tok-store-one-0123456789abcdef"
OTHER_STORE = "demo-002"
OTHER_TOKEN = "tok-store-two-0123456789abcdef"
SECRET = "demo-secret"
APP_ID = "demo"
PLATFORM_TOKEN = "merchant-access-token"
NAMES = ("meituan", "eleme", "jddj", "douyin")


def hub_config(
    tmp_path: Path,
    urls: Mapping[str, str] | None = None,
    *,
    auto_accept: bool = True,
    shelves: Mapping[str, str] | None = None,
    public_url: str = "",
) -> HubConfig:
    """Store demo-001 is shop demo-001 on every platform, demo-002 is shop demo-002 on
    Meituan only; `urls` are the platforms' API base URLs (fakes)."""
    platforms = {
        name: {
            "app_id": APP_ID,
            "secret": SECRET,
            "url": (urls or {}).get(name, "http://127.0.0.1:9"),
            "token": PLATFORM_TOKEN,
        }
        for name in NAMES
    }
    return HubConfig.model_validate(
        {
            "http": {"listen": "127.0.0.1:0", "public_url": public_url},
            "storage": {"dir": str(tmp_path / "hub")},
            "signing": {"key_file": str(tmp_path / "keys" / "hub-signing.pem"), "kid": "demo"},
            "mqtt": {"url": "mqtt://127.0.0.1:1883"},
            "stores": [
                {
                    "id": STORE,
                    "token": TOKEN,
                    "platforms": {name: STORE for name in NAMES},
                    "auto_accept": auto_accept,
                    "shelves": dict(shelves or {}),
                },
                {
                    "id": OTHER_STORE,
                    "token": OTHER_TOKEN,
                    "platforms": {"meituan": OTHER_STORE},
                },
            ],
            "platforms": platforms,
        }
    )


@contextlib.asynccontextmanager
async def fresh_database(url: str, cfg: HubConfig | None = None) -> AsyncIterator[Database]:
    """The database at `url`, emptied (PostgreSQL is shared by a module)."""
    db = await Database.open(url)
    try:
        if db.dialect == "postgresql":
            names = ", ".join(t.name for t in metadata.sorted_tables if t.name != "schema_version")
            async with db.write() as conn:
                await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        if cfg is not None:
            await sync_principals(db, cfg.stores, cfg.merchants)
        yield db
    finally:
        await db.close()


async def rows(db: Database, sql: str, **params: Any) -> list[dict[str, Any]]:
    async with db.read() as conn:
        return [dict(r) for r in (await conn.execute(text(sql), params)).mappings()]
