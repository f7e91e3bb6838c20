"""Who may call the hub: stores and merchants, each known by the SHA-256 of its token.

Tokens are long random strings, so an unsalted SHA-256 is enough to make a stolen database
useless for calling the hub, and lets a request's caller be found by an indexed lookup.
For now hub.yaml is the only source: `sync_principals` makes the tables match it at start.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import delete, select

from cloud import consttime
from cloud.config import MerchantEntry, StoreEntry
from cloud.db.engine import Database
from cloud.db.tables import merchant_stores, merchants, stores
from cloud.db.times import now_text


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    kind: Literal["store", "merchant"]
    id: str
    stores: frozenset[str]

    def can_read(self, store_id: str) -> bool:
        return store_id in self.stores

    def can_write(self, store_id: str) -> bool:
        """Only a store itself posts its events."""
        return self.kind == "store" and self.id == store_id


async def sync_principals(
    db: Database, store_entries: Sequence[StoreEntry], merchant_entries: Sequence[MerchantEntry]
) -> None:
    """Make the stores and merchants tables hold exactly these, tokens hashed."""
    now = now_text()
    async with db.write() as conn:
        if store_entries:
            ins = db.insert(stores)
            await conn.execute(
                ins.on_conflict_do_update(
                    index_elements=[stores.c.id],
                    set_={
                        "name": ins.excluded.name,
                        "token_hash": ins.excluded.token_hash,
                        "updated_at": ins.excluded.updated_at,
                    },
                ),
                [
                    {
                        "id": s.id,
                        "name": s.name,
                        "token_hash": token_hash(s.token),
                        "updated_at": now,
                    }
                    for s in store_entries
                ],
            )
        await conn.execute(delete(stores).where(stores.c.id.not_in([s.id for s in store_entries])))
        await conn.execute(delete(merchant_stores))
        await conn.execute(delete(merchants))
        if merchant_entries:
            await conn.execute(
                merchants.insert(),
                [
                    {"id": m.id, "token_hash": token_hash(m.token), "updated_at": now}
                    for m in merchant_entries
                ],
            )
            links = [
                {"merchant_id": m.id, "store_id": s} for m in merchant_entries for s in m.stores
            ]
            await conn.execute(merchant_stores.insert(), links)


async def find_principal(db: Database, token: str, store_id: str | None = None) -> Principal | None:
    """The store or merchant whose token this is, or None. `store_id` is the store the
    request is about: its own token, the usual case, is checked first, in constant time."""
    digest = token_hash(token)
    async with db.read() as conn:
        if store_id is not None:
            query = select(stores.c.token_hash).where(stores.c.id == store_id)
            stored = (await conn.execute(query)).scalar_one_or_none()
            if stored is not None and consttime.equal(stored, digest):
                return Principal("store", store_id, frozenset([store_id]))
        # Another caller's token; found by its hash, which reveals nothing about the token.
        query = select(stores.c.id).where(stores.c.token_hash == digest)
        found = (await conn.execute(query)).scalars().first()
        if found is not None:
            return Principal("store", found, frozenset([found]))
        query = select(merchants.c.id).where(merchants.c.token_hash == digest)
        merchant = (await conn.execute(query)).scalars().first()
        if merchant is None:
            return None
        query = select(merchant_stores.c.store_id).where(merchant_stores.c.merchant_id == merchant)
        linked = (await conn.execute(query)).scalars()
        return Principal("merchant", merchant, frozenset(linked))
