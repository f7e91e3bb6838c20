"""Enrollment codes: twelve digits, so they can be typed on a door keypad, kept only as
their SHA-256, used once.

Redeeming is one conditional UPDATE (unused, not expired): two agents racing with one
code, or two hub processes serving them, cannot both win it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select, update

from cloud.db.engine import Database
from cloud.db.tables import ENROLL_TABLES

enroll_codes, agent_keys = ENROLL_TABLES

DIGITS = 12
_SEPARATORS = re.compile(r"[\s-]")


def make_code() -> str:
    return f"{secrets.randbelow(10**DIGITS):0{DIGITS}d}"


def pretty(code: str) -> str:
    """1234-5678-9012: easier to read aloud and type."""
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def normalize(text: str) -> str | None:
    """The code's digits, or None when it cannot be a code (spaces and dashes allowed)."""
    digits = _SEPARATORS.sub("", text)
    return digits if len(digits) == DIGITS and digits.isascii() and digits.isdigit() else None


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Issued:
    code: str
    store: str
    expires_at: float  # epoch seconds


Why = Literal["unknown_code", "used_code", "expired_code"]


@dataclass(frozen=True, slots=True)
class Redeemed:
    store: str


@dataclass(frozen=True, slots=True)
class NotRedeemed:
    why: Why


async def issue(db: Database, store: str, ttl_s: float, by: str) -> Issued:
    now_ms = int(time.time() * 1000)
    code = make_code()
    expires_ms = now_ms + int(ttl_s * 1000)
    async with db.write() as conn:
        await conn.execute(
            enroll_codes.insert().values(
                code_hash=code_hash(code),
                store_id=store,
                created_ms=now_ms,
                expires_ms=expires_ms,
                created_by=by[:64],
            )
        )
    return Issued(code, store, expires_ms / 1000)


async def redeem(
    db: Database, code: str, *, public_key_pem: str, fingerprint: str, client: str
) -> Redeemed | NotRedeemed:
    """Use the code once and keep the store's key; or say why not."""
    now_ms = int(time.time() * 1000)
    h = code_hash(code)
    async with db.write() as conn:
        won = await conn.execute(
            update(enroll_codes)
            .where(
                enroll_codes.c.code_hash == h,
                enroll_codes.c.used_ms.is_(None),
                enroll_codes.c.expires_ms > now_ms,
            )
            .values(used_ms=now_ms, used_from=client[:64])
            .returning(enroll_codes.c.store_id)
        )
        store = won.scalar_one_or_none()
        if store is None:
            row = (
                await conn.execute(
                    select(enroll_codes.c.used_ms).where(enroll_codes.c.code_hash == h)
                )
            ).first()
            if row is None:
                return NotRedeemed("unknown_code")
            return NotRedeemed("used_code" if row.used_ms is not None else "expired_code")
        values = {
            "store_id": store,
            "public_key": public_key_pem,
            "fingerprint": fingerprint,
            "enrolled_ms": now_ms,
        }
        await conn.execute(
            db.insert(agent_keys)
            .values(**values)
            .on_conflict_do_update(
                index_elements=[agent_keys.c.store_id],
                set_={k: v for k, v in values.items() if k != "store_id"},
            )
        )
    return Redeemed(store)


async def store_key(db: Database, store: str) -> str | None:
    """The PEM public key the store enrolled with, if it did."""
    async with db.read() as conn:
        return (
            await conn.execute(
                select(agent_keys.c.public_key).where(agent_keys.c.store_id == store)
            )
        ).scalar_one_or_none()
