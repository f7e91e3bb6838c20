"""The customer entry page, `/s/{store}/{door}`: what a door poster's QR opens.

GET asks one question of the store's bank (a new pick per visit) with a form token
(form_token.py). POST checks the answer (scrypt, in a thread) against the question the
token names; a right one mints an entry pass for that door, shown as a QR code that the
door's scanner accepts offline, and, when the store's agent is online, also opens the door
at once with a signed `unlock`. Every answer is counted before it is checked (cloud/limits:
atomic in the database, shared by every hub process): per visitor (a cookie), per address
(the client behind the trusted proxies; an IPv6 /64 counts as one) and per door (everyone
together, so that dropping the cookie and changing address does not escape); a right
answer is given back. A full count pauses (429); a full door count pauses the door's page
for everyone but its regulars and tells the owner (DOOR_PAUSED hooks: the alerts). Each
answer is a row of `entry_attempts`; the typed answer is never stored or logged. Plain
HTML forms, no script: it works in any phone browser.

`GET /s/{store}/{door}/pass.png?t=PASS` renders a pass the hub minted for that door as a
PNG, for saving to the phone's photos.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import logging
import math
import re
import secrets
import uuid
from dataclasses import dataclass
from urllib.parse import quote

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud import signing
from cloud.api.appkeys import CONFIG, DB
from cloud.api.auth import public
from cloud.bus import BUS
from cloud.config import EntryConfig, StoreEntry
from cloud.db.entry_attempts import Attempt, Outcome, granted_since, record_attempt
from cloud.limits.counters import Counter, Limiter, Refused, Reservation
from cloud.limits.entry_rules import ADDRESS, DOOR_SCOPES, VISITOR, answer_counters
from cloud.limits.web import DOOR_PAUSED, LIMITER, client_bucket
from cloud.remote_entry import CommandSender, enter_remotely
from cloud.web.form_token import AskedQuestion, FormTokenError, FormTokens, derive_key
from cloud.web.pages import Pages
from cloud.web.pass_qr import pass_png, pass_svg
from storerules.answers import answer_matches

log = logging.getLogger("cloud.web.entry")

VISITOR_COOKIE = "sg_vid"
_VISITOR_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
VISITOR_COOKIE_DAYS = 365
MAX_FORM_BYTES = 8 * 1024
MAX_ANSWER_CHARS = 100


@dataclass(frozen=True)
class Signer:
    """The hub's key, and what the page derives from it."""

    key: Ed25519PrivateKey
    kid: str
    tokens: FormTokens
    hash_key: bytes

    @classmethod
    def from_key(cls, key: Ed25519PrivateKey, kid: str) -> Signer:
        return cls(
            key, kid, FormTokens(derive_key(key, "entry-form")), derive_key(key, "entry-hash")
        )

    def client_hash(self, kind: str, value: str) -> str:
        # Keyed, so the table cannot be turned back into addresses by hashing all of them.
        return hmac.new(self.hash_key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class EntryState:
    pages: Pages
    # None when no store has an entry page (then no door is found, and nothing is signed).
    signer: Signer | None

    @property
    def sign(self) -> Signer:
        if self.signer is None:
            raise RuntimeError("the entry page has no signing key")
        return self.signer


ENTRY = web.AppKey("entry_page", EntryState)


@dataclass(frozen=True, slots=True)
class Door:
    store: StoreEntry
    entry: EntryConfig
    door: str

    @property
    def name(self) -> str:
        return self.store.name or self.store.id

    @property
    def path(self) -> str:
        return f"/s/{quote(self.store.id)}/{quote(self.door)}"

    @property
    def bank(self) -> list[str]:
        return [q.question for q in self.entry.questions]


def add_routes(app: web.Application) -> None:
    app.on_startup.append(_load)
    app.router.add_get("/s/{store}/{door}", entry_form)
    app.router.add_post("/s/{store}/{door}", entry_answer)
    app.router.add_get("/s/{store}/{door}/pass.png", entry_pass_png)


async def _load(app: web.Application) -> None:
    cfg = app[CONFIG]
    pages = Pages()
    await asyncio.to_thread(pages.load)
    signer = None
    if any(store.entry is not None for store in cfg.stores):
        key, kid = await asyncio.to_thread(
            signing.load_private_key, cfg.signing.key_file, cfg.signing.kid
        )
        signer = Signer.from_key(key, kid)
    app[ENTRY] = EntryState(pages, signer)


@public
async def entry_form(request: web.Request) -> web.StreamResponse:
    state = request.app[ENTRY]
    door = _find_door(request)
    if door is None:
        return _not_found(state)
    visitor, is_new = _visitor(request)
    limiter = request.app[LIMITER]
    counters = await _counters(request, door, visitor, known=not is_new)
    pause = await limiter.paused(counters)
    if pause is not None:
        response = _paused_page(state, door, pause, limiter)
    else:
        index = secrets.randbelow(len(door.bank)) if door.bank else -1
        response = _question_page(state, door, visitor, index)
    return _with_visitor(request, response, visitor, is_new)


@public
async def entry_answer(request: web.Request) -> web.StreamResponse:
    state = request.app[ENTRY]
    door = _find_door(request)
    if door is None:
        return _not_found(state)
    if request.content_length is not None and request.content_length > MAX_FORM_BYTES:
        return _message(state, door, 413, "内容过长", "请只输入问题的答案。", again=True)
    try:
        form = await request.post()
    except ValueError:
        return _message(state, door, 400, "无法读取", "请重新扫描门上的二维码。", again=True)
    cookie = request.cookies.get(VISITOR_COOKIE)
    visitor = cookie if cookie and _VISITOR_ID.match(cookie) else None
    try:
        asked = state.sign.tokens.verify(
            str(form.get("t", "")),
            store=door.store.id,
            door=door.door,
            visitor=visitor,
            bank=door.bank,
        )
    except FormTokenError as e:
        return _ask_again(request, state, door, visitor, e)
    if visitor is None:  # verify() refuses a token without its visitor; this tells mypy
        return _ask_again(request, state, door, None, FormTokenError("no visitor"))

    now = dt.datetime.now(dt.UTC)
    db = request.app[DB]
    limiter = request.app[LIMITER]
    client = state.sign.client_hash("visitor", visitor)
    ip = state.sign.client_hash("ip", client_bucket(request))
    counters = await _counters(request, door, visitor, known=True)
    # The decision: this answer is counted now, before it is checked (and before the
    # scrypt below), atomically with every other hub process's answers.
    taken = await limiter.reserve(counters)
    if isinstance(taken, Refused):
        outcome: Outcome = (
            "door_paused" if taken.counter.rule.scope in DOOR_SCOPES else "rate_limited"
        )
        await record_attempt(db, Attempt(door.store.id, door.door, outcome, client, ip), now)
        return _paused_page(state, door, taken, limiter)

    answer = str(form.get("answer", ""))
    right = asked.index == -1 or await _answer_is_right(door, asked, answer)
    if not right:
        await record_attempt(db, Attempt(door.store.id, door.door, "wrong_answer", client, ip), now)
        log.info("wrong answer", extra={"store": door.store.id, "door": door.door})
        await _tell_if_door_paused(request, door, taken)
        full = [c for c in taken.counts if c.full]
        if full:
            last = max(full, key=lambda c: c.resets_at)
            return _paused_page(state, door, Refused(last.counter, last.resets_at), limiter)
        left = min(c.left for c in taken.counts if c.counter.rule.scope in (VISITOR, ADDRESS))
        error = f"答案不正确，请再试一次（还可以尝试 {left} 次）"
        return _question_page(state, door, visitor, asked.index, error=error)

    await limiter.refund(taken)
    sub = f"visitor-{state.sign.client_hash('visitor', visitor)[:16]}"
    ttl = door.entry.pass_ttl_seconds
    jti = uuid.uuid4().hex
    token = signing.mint_pass(
        state.sign.key,
        state.sign.kid,
        store=door.store.id,
        scope="entry",
        sub=sub,
        door=door.door,
        ttl=ttl,
        jti=jti,
    )
    unlocked = await _unlock(request, door, sub, token)
    attempt = Attempt(door.store.id, door.door, "granted", client, ip, jti, unlocked)
    await record_attempt(db, attempt, now)
    log.info(
        "entry pass minted",
        extra={"store": door.store.id, "door": door.door, "jti": jti, "unlocked": unlocked},
    )
    return state.pages.render(
        "pass.html",
        store_name=door.name,
        opened=unlocked is True,
        qr_svg=pass_svg(token, label="进门二维码"),
        minutes=max(1, ttl // 60),
        png_url=f"{door.path}/pass.png?t={quote(token)}",
    )


@public
async def entry_pass_png(request: web.Request) -> web.StreamResponse:
    """A pass minted here for this door, as a PNG; anything else is 404 (this is no
    QR-rendering service for arbitrary text)."""
    state = request.app[ENTRY]
    door = _find_door(request)
    token = request.query.get("t", "")
    if door is None or not token:
        return _not_found(state)
    try:
        claims = jwt.decode(
            token,
            state.sign.key.public_key(),
            algorithms=["EdDSA"],
            audience=door.store.id,
            issuer=signing.ISSUER,
        )
    except jwt.PyJWTError:
        return _not_found(state)
    if claims.get("scope") != "entry" or claims.get("door") != door.door:
        return _not_found(state)
    png = await asyncio.to_thread(pass_png, token)
    return web.Response(
        body=png,
        content_type="image/png",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


def _find_door(request: web.Request) -> Door | None:
    store_id, door = request.match_info["store"], request.match_info["door"]
    for store in request.app[CONFIG].stores:
        if store.id == store_id and store.entry is not None and door in store.entry.doors:
            return Door(store, store.entry, door)
    return None


def _visitor(request: web.Request) -> tuple[str, bool]:
    cookie = request.cookies.get(VISITOR_COOKIE)
    if cookie and _VISITOR_ID.match(cookie):
        return cookie, False
    return secrets.token_urlsafe(16), True


def _with_visitor(
    request: web.Request, response: web.Response, visitor: str, is_new: bool
) -> web.Response:
    if is_new:
        response.set_cookie(
            VISITOR_COOKIE,
            visitor,
            max_age=VISITOR_COOKIE_DAYS * 86400,
            path="/s/",
            httponly=True,
            # Lax: a post from another site arrives without it, so its form token fails.
            samesite="Lax",
            secure=request.secure,
        )
    return response


async def _answer_is_right(door: Door, asked: AskedQuestion, answer: str) -> bool:
    if not answer.strip() or len(answer) > MAX_ANSWER_CHARS:
        return False
    hashes = door.entry.questions[asked.index].answers
    # scrypt takes tens of milliseconds and 16 MiB per try: off the event loop.
    return await asyncio.to_thread(answer_matches, answer, hashes)


async def _counters(
    request: web.Request, door: Door, visitor: str, *, known: bool
) -> list[Counter]:
    """The counts an answer from this visitor takes at this door. A regular (this browser
    got a pass at the store lately) is spared the door's pause, not its own counts."""
    entry = door.entry
    return answer_counters(
        door.store.id,
        door.door,
        visitor=visitor,
        address=client_bucket(request),
        max_wrong=entry.max_wrong,
        max_wrong_per_address=entry.max_wrong_per_ip,
        window_s=entry.wrong_window_seconds,
        limit=entry.door_limit,
        regular=known and await _is_regular(request, door, visitor),
    )


async def _is_regular(request: web.Request, door: Door, visitor: str) -> bool:
    days = door.entry.door_limit.regulars_days
    if days == 0:
        return False
    client = request.app[ENTRY].sign.client_hash("visitor", visitor)
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    return await granted_since(request.app[DB], door.store.id, client, since)


async def _tell_if_door_paused(request: web.Request, door: Door, taken: Reservation) -> None:
    """This wrong answer filled a door count (one answer per window does): the page now
    pauses for everyone but the door's regulars, and the owner is told."""
    for count in taken.counts:
        if count.counter.rule.scope in DOOR_SCOPES and count.hits == count.limit:
            rule = count.counter.rule
            log.warning(
                "entry page paused: too many wrong answers at the door",
                extra={"store": door.store.id, "door": door.door, "until": count.resets_at},
            )
            for hook in request.app[DOOR_PAUSED]:
                try:
                    await hook(door.store.id, door.door, count.resets_at, count.hits, rule.window_s)
                except Exception:
                    log.exception("entry page pause: a hook failed")


async def _unlock(request: web.Request, door: Door, sub: str, token: str) -> bool | None:
    bus: CommandSender | None = request.app.get(BUS)
    return await enter_remotely(
        bus, door.store.id, door.door, token, sub=sub, wait_s=door.entry.unlock_wait_seconds
    )


def _question_page(
    state: EntryState,
    door: Door,
    visitor: str,
    index: int,
    *,
    error: str | None = None,
    notice: str | None = None,
    status: int = 200,
) -> web.Response:
    question = door.bank[index] if index >= 0 else ""
    asked = AskedQuestion(door.store.id, door.door, index)
    ttl = door.entry.question_ttl_seconds
    token = state.sign.tokens.mint(asked, question, visitor, ttl_seconds=ttl)
    return state.pages.render(
        "question.html",
        status=status,
        store_name=door.name,
        question=question,
        token=token,
        action=door.path,
        error=error,
        notice=notice,
    )


def _ask_again(
    request: web.Request,
    state: EntryState,
    door: Door,
    visitor: str | None,
    error: FormTokenError,
) -> web.Response:
    """A fresh question, when the token was late, stale, or not this browser's."""
    if error.expired:
        notice, status = "页面停留时间过长，请重新回答", 200
    elif visitor is None:
        notice, status = "请允许浏览器保存 Cookie 后重新回答", 400
    else:
        notice, status = "页面已失效，请重新回答", 400
    log.info(
        "form token refused: %s",
        error,
        extra={"store": door.store.id, "door": door.door},
    )
    fresh, is_new = (visitor, False) if visitor is not None else _visitor(request)
    index = secrets.randbelow(len(door.bank)) if door.bank else -1
    response = _question_page(state, door, fresh, index, notice=notice, status=status)
    return _with_visitor(request, response, fresh, is_new)


def _paused_page(state: EntryState, door: Door, refused: Refused, limiter: Limiter) -> web.Response:
    seconds = refused.retry_after(limiter.now())
    minutes = math.ceil(seconds / 60)
    if refused.counter.rule.scope in DOOR_SCOPES:
        title = "暂停验证"
        message = f"此门答错次数异常，线上验证已暂停，请 {minutes} 分钟后再试，或联系店家。"
    else:
        title, message = "请稍后再试", f"答错次数过多，请 {minutes} 分钟后再试。"
    response = _message(state, door, 429, title, message, again=False)
    response.headers["Retry-After"] = str(seconds)
    return response


def _message(
    state: EntryState, door: Door | None, status: int, title: str, message: str, *, again: bool
) -> web.Response:
    return state.pages.render(
        "message.html",
        status=status,
        store_name=door.name if door else "",
        title=title,
        message=message,
        again_url=door.path if (door and again) else None,
    )


def _not_found(state: EntryState) -> web.Response:
    return _message(
        state,
        None,
        404,
        "找不到这扇门",
        "此二维码无效或已停用，请扫描门上张贴的二维码，或联系店家。",
        again=False,
    )
