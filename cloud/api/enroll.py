"""`POST /api/v1/enroll`: a new store's agent trades a one-time code for its identity,
credentials and config (CONTRACTS section 9; cloud/enrollment).

Body `{"code": "1234-5678-9012", "public_key": "<the agent's Ed25519 public key, PEM>"}`.
200: the bundle (cloud/enrollment/bundle.py). 400 `bad_body`; 403 `unknown_code`;
410 `used_code` / `expired_code`; 429 `paused` with Retry-After. No token: the code is
the credential, so every try is counted against the caller's address before the code is
looked at, and only a right code is given back its count.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)
from sqlalchemy import select

from cloud.api.appkeys import CONFIG, DB
from cloud.api.auth import public
from cloud.api.bodies.base import read_body
from cloud.api.bodies.enroll import EnrollRequest
from cloud.api.errors import ApiError
from cloud.api.hub_key import hub_signing_key, install
from cloud.enrollment import codes
from cloud.enrollment.bundle import TemplateError, bundle, store_settings
from cloud.limits.counters import Refused
from cloud.limits.web import LIMITER, address_counter, client_bucket, retry_headers

log = logging.getLogger(__name__)

PATH = "/api/v1/enroll"
_WHY = {
    "unknown_code": (403, "no such enrollment code: check the digits, or make a new code"),
    "used_code": (410, "this enrollment code was used already: make a new one at the hub"),
    "expired_code": (410, "this enrollment code has expired: make a new one at the hub"),
}


def add_routes(app: web.Application) -> None:
    install(app)
    app.router.add_post(PATH, enroll)


def _public_key(text: object) -> tuple[str, str]:
    if not isinstance(text, str):
        raise ApiError(400, "bad_body", "public_key must be the agent's Ed25519 key as PEM")
    try:
        key = load_pem_public_key(text.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise ApiError(400, "bad_body", "public_key is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ApiError(400, "bad_body", "public_key must be an Ed25519 key")
    raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    pem = key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    return pem, hashlib.sha256(raw).hexdigest()  # as `shopgate-agent keys list` shows it


@public
async def enroll(request: web.Request) -> web.Response:
    cfg = request.app[CONFIG]
    db = request.app[DB]
    limiter = request.app[LIMITER]
    counted = await limiter.reserve(
        [address_counter(request, "enroll.code", cfg.limits.enrollment_codes)]
    )
    if isinstance(counted, Refused):
        wait = counted.retry_after(limiter.now())
        raise ApiError(
            429,
            "paused",
            f"too many wrong enrollment codes from this address; try again in {wait} s",
            retry_headers(limiter, counted),
        )
    body = await read_body(request, EnrollRequest)
    code = body.code
    pem, fp = _public_key(body.public_key)
    # Which store, before the code is spent: a store whose config cannot be built keeps
    # its code for a second try once the hub's file is fixed.
    async with db.read() as conn:
        store_id = (
            await conn.execute(
                select(codes.enroll_codes.c.store_id).where(
                    codes.enroll_codes.c.code_hash == codes.code_hash(code)
                )
            )
        ).scalar_one_or_none()
    store = next((s for s in cfg.stores if s.id == store_id), None)
    if store_id is not None and store is None:
        raise ApiError(409, "unknown_store", f"store {store_id!r} is no longer in hub.yaml")
    settings = None
    if store is not None:
        try:
            settings = await asyncio.to_thread(store_settings, cfg, store)
        except TemplateError as e:
            log.error("enrollment of %s: %s", store.id, e)
            raise ApiError(500, "bad_template", str(e)) from None
    key, kid = await hub_signing_key(request.app)
    result = await codes.redeem(
        db, code, public_key_pem=pem, fingerprint=fp, client=client_bucket(request)
    )
    if isinstance(result, codes.NotRedeemed):
        status, message = _WHY[result.why]
        log.warning("enrollment refused: %s", result.why, extra={"client": client_bucket(request)})
        raise ApiError(status, result.why, message)
    assert store is not None and settings is not None  # the code named a known store
    await limiter.refund(counted)
    log.info("store %s enrolled", store.id, extra={"agent_key": fp})
    return web.json_response(bundle(cfg, store, key, kid, settings))
