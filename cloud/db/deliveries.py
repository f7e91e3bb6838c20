"""What became of the last command that carried each order to its store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from sqlalchemy import select

from cloud.db.engine import Database
from cloud.db.tables import order_deliveries


@dataclass(frozen=True, slots=True)
class Delivery:
    store: str
    order_id: str
    kind: str  # created | updated | cancelled
    cmd: str  # orders.upsert | orders.cancel
    jti: str
    attempts: int
    last_attempt_at: str
    acked_at: str | None
    outcome: str  # sending | acked | refused | no_reply | store_offline | unsent
    error: str | None


async def save_deliveries(db: Database, records: Sequence[Delivery]) -> None:
    """Write these records (one per order, the latest), in one transaction."""
    if not records:
        return
    rows = []
    for r in records:
        row = asdict(r)
        row["store_id"] = row.pop("store")
        if row["error"] is not None:
            row["error"] = row["error"][:2000]
        rows.append(row)
    ins = db.insert(order_deliveries)
    statement = ins.on_conflict_do_update(
        index_elements=[order_deliveries.c.store_id, order_deliveries.c.order_id],
        set_={k: getattr(ins.excluded, k) for k in rows[0] if k not in ("store_id", "order_id")},
    )
    async with db.write() as conn:
        await conn.execute(statement, rows)


async def get_delivery(db: Database, store: str, order_id: str) -> Delivery | None:
    query = select(order_deliveries).where(
        order_deliveries.c.store_id == store, order_deliveries.c.order_id == order_id
    )
    async with db.read() as conn:
        row = (await conn.execute(query)).mappings().first()
    if row is None:
        return None
    fields = {k: row[k] for k in row.keys() if k != "store_id"}
    return Delivery(store=row["store_id"], **fields)
