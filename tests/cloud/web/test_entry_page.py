"""The customer entry page through aiohttp's test client: the real application, its real
database (an SQLite file) and the real signing key; a stand-in only for the MQTT bus, to
see the unlock commands the page sends."""

from __future__ import annotations

import html
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from cloud.app import create_app
from cloud.bus import BUS
from cloud.config import HubConfig
from cloud.db.engine import Database
from cloud.db.tables import entry_attempts
from cloud.signing import load_private_key, mint_pass, write_keypair
from cloud.web.entry import ENTRY, VISITOR_COOKIE
from cloud.web.form_token import AskedQuestion
from storerules.answers import hash_answer
from tests.cloud.web.pass_images import decode_png, rasterize_svg, verify_entry_pass

STORE = "demo-001"
PAGE = f"/s/{STORE}/front"
QUESTIONS = {"本店的门牌号是多少？": "8", "店门口的招牌是什么颜色？": "绿色"}
# Hashing is slow on purpose (scrypt): once per test session is enough.
HASHES = {q: [hash_answer(a)] for q, a in QUESTIONS.items()}


def hub_config(tmp_path: Path, **entry: Any) -> HubConfig:
    questions = [{"question": q, "answers": HASHES[q]} for q in QUESTIONS]
    return HubConfig.model_validate(
        {
            "http": {"listen": "127.0.0.1:0"},
            "storage": {"dir": str(tmp_path / "hub")},
            "signing": {"key_file": str(tmp_path / "keys" / "hub-signing.pem"), "kid": "demo"},
            "mqtt": {"url": "mqtt://127.0.0.1:1883"},
            "stores": [
                {
                    "id": STORE,
                    "name": "演示店",
                    "token": "tok-store-one-0123456789abcdef",
                    "entry": {"doors": ["front"], "questions": questions} | entry,
                },
                {"id": "demo-002", "token": "tok-store-two-0123456789abcdef"},
            ],
        }
    )


class BusStandIn:
    """Records commands; answers as the agent would (or not at all, or not online)."""

    def __init__(self, *, online: bool | None = True, reply: str = "ok") -> None:
        self.online = online
        self.reply = reply
        self.sent: list[dict[str, Any]] = []

    def store_online(self, store: str) -> bool | None:
        return self.online

    async def send_command(
        self,
        store: str,
        cmd: str,
        args: dict[str, Any] | None = None,
        *,
        ttl: int = 60,
        wait_reply: float | None = 5.0,
        sub: str = "shopgate-hub",
    ) -> dict[str, Any] | None:
        self.sent.append({"store": store, "cmd": cmd, "args": args, "ttl": ttl, "sub": sub})
        if self.reply == "ok":
            return {
                "id": "x",
                "ok": True,
                "result": {"door": (args or {}).get("door"), "granted": True, "reason": "granted"},
            }
        if self.reply == "denied":  # the agent decided as at the door: e.g. in lockdown
            return {"id": "x", "ok": True, "result": {"granted": False, "reason": "lockdown"}}
        if self.reply == "refused":
            return {"id": "x", "ok": False, "error": {"code": "failed", "message": "jammed"}}
        if self.reply == "broken":
            raise ConnectionError("broker unreachable")
        return None


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(f"sqlite:///{tmp_path / 'hub' / 'hub.db'}")
    yield database
    await database.close()


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    return write_keypair(tmp_path / "keys", "demo").private_key


@pytest.fixture
async def start(tmp_path: Path, db: Database, keys: Path) -> AsyncIterator[Any]:
    clients: list[TestClient] = []

    async def go(bus: BusStandIn | None = None, **entry: Any) -> TestClient:
        app = create_app(hub_config(tmp_path, **entry), db)
        if bus is not None:
            app[BUS] = bus  # type: ignore[assignment]
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield go
    for c in clients:
        await c.close()


@pytest.fixture
async def client(start: Any) -> TestClient:
    return await start()


def public_key(keys: Path) -> Any:
    return load_private_key(keys, "demo")[0].public_key()


# --- reading the pages -------------------------------------------------------------------


class Page:
    def __init__(self, status: int, text: str, headers: Any) -> None:
        self.status, self.text, self.headers = status, text, headers

    def field(self, pattern: str) -> str | None:
        m = re.search(pattern, self.text, re.S)
        return html.unescape(m[1]) if m else None

    @property
    def token(self) -> str:
        token = self.field(r'name="t" value="([^"]+)"')
        assert token, self.text
        return token

    @property
    def question(self) -> str:
        question = self.field(r'<p class="question" id="question">(.*?)</p>')
        assert question, self.text
        return question

    @property
    def svg(self) -> str:
        svg = self.field(r'<div class="qr" id="pass-qr">(<svg.*?</svg>)</div>')
        assert svg, self.text
        return svg

    @property
    def png_url(self) -> str:
        url = self.field(r'href="([^"]+/pass\.png\?t=[^"]+)"')
        assert url, self.text
        return url


async def page(resp: ClientResponse) -> Page:
    return Page(resp.status, await resp.text(), resp.headers)


async def ask(client: TestClient) -> Page:
    return await page(await client.get(PAGE))


async def answer(client: TestClient, asked: Page, text: str | None = None) -> Page:
    reply = QUESTIONS[asked.question] if text is None else text
    return await page(await client.post(PAGE, data={"t": asked.token, "answer": reply}))


def pass_of(result: Page, keys: Path) -> Any:
    token = decode_png(rasterize_svg(result.svg))
    return verify_entry_pass(token, public_key(keys), store=STORE)


async def attempts(db: Database) -> list[Any]:
    async with db.read() as conn:
        rows = await conn.execute(select(entry_attempts).order_by(entry_attempts.c.id))
        return list(rows)


# --- the question ------------------------------------------------------------------------


async def test_the_page_asks_a_question_of_the_bank_in_chinese(client: TestClient) -> None:
    asked = await ask(client)
    assert asked.status == 200
    assert asked.headers["Content-Type"] == "text/html; charset=utf-8"
    assert '<meta name="viewport" content="width=device-width' in asked.text
    assert "演示店" in asked.text and asked.question in QUESTIONS
    assert 'method="post"' in asked.text and 'name="answer"' in asked.text
    assert "<script" not in asked.text and "http" not in asked.text.split("<body>")[1]
    assert "default-src 'none'" in asked.headers["Content-Security-Policy"]
    assert asked.headers["Cache-Control"] == "no-store"
    assert VISITOR_COOKIE in asked.headers["Set-Cookie"]


async def test_each_visit_may_get_another_question(client: TestClient) -> None:
    seen = {(await ask(client)).question for _ in range(30)}
    assert seen == set(QUESTIONS)  # both, with odds of failing of 2 * 2**-30


@pytest.mark.parametrize(
    "path", ["/s/nowhere/front", f"/s/{STORE}/back", "/s/demo-002/front", f"{PAGE}/pass.png"]
)
async def test_an_unknown_store_or_door_is_a_friendly_404(client: TestClient, path: str) -> None:
    result = await page(await client.get(path))
    assert result.status == 404
    assert "找不到这扇门" in result.text and "请扫描门上张贴的二维码" in result.text
    posted = await page(await client.post(path, data={"answer": "8"}))
    assert posted.status in (404, 405)


# --- right answers -----------------------------------------------------------------------


async def test_a_right_answer_shows_a_pass_the_door_accepts(
    client: TestClient, keys: Path, db: Database
) -> None:
    result = await answer(client, await ask(client))
    assert result.status == 200
    assert "验证通过" in result.text and "请在门口扫描二维码" in result.text
    claims = pass_of(result, keys)
    assert (claims.store, claims.scope, claims.door) == (STORE, "entry", "front")
    assert claims.exp - claims.iat == 300
    assert claims.sub.startswith("visitor-")
    [row] = await attempts(db)
    assert (row.store_id, row.door, row.ok, row.outcome) == (STORE, "front", True, "granted")
    assert row.pass_jti == claims.jti and row.unlocked is None


async def test_the_answer_is_normalised_as_a_phone_types_it(client: TestClient) -> None:
    asked = await ask(client)
    typed = "  ８ " if QUESTIONS[asked.question] == "8" else " 绿 色 "
    result = await answer(client, asked, typed)
    assert "验证通过" in result.text


async def test_the_pass_png_is_the_same_pass(client: TestClient, keys: Path) -> None:
    result = await answer(client, await ask(client))
    resp = await client.get(result.png_url)
    assert resp.status == 200 and resp.content_type == "image/png"
    assert decode_png(await resp.read()) == decode_png(rasterize_svg(result.svg))


async def test_the_pass_png_renders_only_our_passes_for_that_door(
    client: TestClient, keys: Path
) -> None:
    key = load_private_key(keys, "demo")[0]
    staff = mint_pass(key, "demo", store=STORE, scope="staff", sub="s", door="front")
    other_door = mint_pass(key, "demo", store=STORE, scope="entry", sub="s", door="back")
    for t in ("hello", staff, other_door, jwt.encode({"a": 1}, "k" * 32, algorithm="HS256")):
        resp = await client.get(f"{PAGE}/pass.png", params={"t": t})
        assert resp.status == 404


async def test_a_right_answer_opens_the_door_when_the_agent_is_online(
    start: Any, keys: Path, db: Database
) -> None:
    bus = BusStandIn(online=True, reply="ok")
    client = await start(bus)
    result = await answer(client, await ask(client))
    assert "门已打开" in result.text
    [sent] = bus.sent
    assert (sent["store"], sent["cmd"]) == (STORE, "enter")
    assert sent["args"]["door"] == "front"
    # the agent gets the very pass the page shows, to decide as at the door
    assert sent["args"]["pass"] == decode_png(rasterize_svg(result.svg))
    assert sent["ttl"] <= 30  # a late unlock must not open the door after the customer left
    claims = pass_of(result, keys)  # the pass is shown all the same
    assert sent["sub"] == claims.sub
    [row] = await attempts(db)
    assert row.unlocked is True


@pytest.mark.parametrize(
    ("online", "reply", "sent", "unlocked"),
    [
        (False, "ok", 0, None),  # the agent is offline: the pass alone
        (None, "ok", 0, None),  # never heard of
        (True, "silent", 1, False),  # no reply in time
        (True, "refused", 1, False),
        (True, "denied", 1, False),  # the agent's door rules said no
        (True, "broken", 1, False),
    ],
)
async def test_without_a_confirmed_unlock_the_page_says_scan_at_the_door(
    start: Any,
    keys: Path,
    db: Database,
    online: bool | None,
    reply: str,
    sent: int,
    unlocked: bool | None,
) -> None:
    bus = BusStandIn(online=online, reply=reply)
    client = await start(bus)
    result = await answer(client, await ask(client))
    assert result.status == 200
    assert "请在门口扫描二维码" in result.text and "门已打开" not in result.text
    assert len(bus.sent) == sent
    pass_of(result, keys)
    [row] = await attempts(db)
    assert row.unlocked is unlocked


async def test_a_store_without_questions_hands_out_passes_on_a_tap(
    tmp_path: Path, db: Database, keys: Path
) -> None:
    cfg = hub_config(tmp_path)
    store = cfg.stores[0]
    entry = store.entry.model_copy(update={"questions": []})  # type: ignore[union-attr]
    cfg = cfg.model_copy(update={"stores": [store.model_copy(update={"entry": entry})]})
    async with TestClient(TestServer(create_app(cfg, db))) as client:
        asked = await ask(client)
        assert "领取进门码" in asked.text and 'name="answer"' not in asked.text
        result = await page(await client.post(PAGE, data={"t": asked.token}))
        assert "验证通过" in result.text
        pass_of(result, keys)


# --- wrong answers -----------------------------------------------------------------------


async def test_a_wrong_answer_says_so_and_asks_the_same_question(
    client: TestClient, db: Database, tmp_path: Path
) -> None:
    asked = await ask(client)
    result = await answer(client, asked, "不知道的答案")
    assert result.status == 200
    assert "答案不正确" in result.text and "还可以尝试 4 次" in result.text
    assert result.question == asked.question
    assert "pass-qr" not in result.text
    [row] = await attempts(db)
    assert (row.ok, row.outcome, row.pass_jti) == (False, "wrong_answer", None)
    # The typed answer is kept nowhere: not in the table, not in the database file.
    assert "不知道的答案".encode() not in b"".join(
        p.read_bytes() for p in (tmp_path / "hub").iterdir()
    )


async def test_the_answer_is_checked_against_the_question_asked(client: TestClient) -> None:
    asked = await ask(client)
    other = next(a for q, a in QUESTIONS.items() if q != asked.question)
    result = await answer(client, asked, other)
    assert "答案不正确" in result.text


async def test_too_many_wrong_answers_pause_the_visitor(client: TestClient, db: Database) -> None:
    asked = await ask(client)
    for left in (4, 3, 2, 1):
        asked = await answer(client, asked, "错")
        assert f"还可以尝试 {left} 次" in asked.text
    paused = await answer(client, asked, "错")
    assert paused.status == 429
    assert "请稍后再试" in paused.text and "请 10 分钟后再试" in paused.text
    assert 540 < int(paused.headers["Retry-After"]) <= 600
    # Even the right answer now waits, and so does a new visit.
    fresh = await ask(client)
    assert fresh.status == 429 and "请稍后再试" in fresh.text
    refused = await answer(client, asked)
    assert refused.status == 429 and "pass-qr" not in refused.text
    outcomes = [r.outcome for r in await attempts(db)]
    assert outcomes == ["wrong_answer"] * 5 + ["rate_limited"]


async def test_a_new_cookie_does_not_reset_the_count_for_the_address(start: Any) -> None:
    client = await start(max_wrong=2, max_wrong_per_ip=3)
    for _ in range(3):
        client.session.cookie_jar.clear()  # a new visitor each time, from one address
        asked = await ask(client)
        assert asked.status == 200
        await answer(client, asked, "错")
    client.session.cookie_jar.clear()
    assert (await ask(client)).status == 429


# --- the form token ----------------------------------------------------------------------


async def test_a_late_answer_is_asked_again(client: TestClient) -> None:
    asked = await ask(client)
    visitor = visitor_of(client)
    state = client.app[ENTRY]  # type: ignore[index]
    index = list(QUESTIONS).index(asked.question)
    old = state.sign.tokens.mint(
        AskedQuestion(STORE, "front", index),
        asked.question,
        visitor,
        ttl_seconds=600,
        now=time.time() - 601,
    )
    result = await page(
        await client.post(PAGE, data={"t": old, "answer": QUESTIONS[asked.question]})
    )
    assert result.status == 200
    assert "页面停留时间过长，请重新回答" in result.text and "pass-qr" not in result.text
    assert result.token != old


async def test_a_post_without_the_visitors_cookie_is_refused(client: TestClient) -> None:
    asked = await ask(client)
    client.session.cookie_jar.clear()  # as a cross-site post (SameSite=Lax) arrives
    result = await answer(client, asked)
    assert result.status == 400 and "pass-qr" not in result.text
    assert "Cookie" in result.text


@pytest.mark.parametrize("token", ["", "nonsense", "a.b.c"])
async def test_a_bad_form_token_is_asked_again(client: TestClient, token: str) -> None:
    await ask(client)
    result = await page(await client.post(PAGE, data={"t": token, "answer": "8"}))
    assert result.status == 400
    assert "页面已失效，请重新回答" in result.text and "pass-qr" not in result.text


async def test_a_token_for_another_door_is_refused(start: Any) -> None:
    client = await start(doors=["front", "back"])
    asked = await ask(client)
    result = await page(
        await client.post(
            f"/s/{STORE}/back", data={"t": asked.token, "answer": QUESTIONS[asked.question]}
        )
    )
    assert result.status == 400 and "pass-qr" not in result.text


def visitor_of(client: TestClient) -> str:
    return client.session.cookie_jar.filter_cookies(client.make_url(PAGE))[VISITOR_COOKIE].value


async def post_as(client: TestClient, visitor: str, data: dict[str, str]) -> Page:
    client.session.cookie_jar.clear()
    headers = {"Cookie": f"{VISITOR_COOKIE}={visitor}"}
    return await page(await client.post(PAGE, data=data, headers=headers))


async def test_another_hub_process_with_the_same_key_accepts_the_answer(start: Any) -> None:
    first, second = await start(), await start()
    asked = await ask(first)
    data = {"t": asked.token, "answer": QUESTIONS[asked.question]}
    result = await post_as(second, visitor_of(first), data)
    assert "验证通过" in result.text


async def test_a_changed_question_bank_asks_again(start: Any) -> None:
    first = await start()
    asked = await ask(first)
    # The hub restarted with its questions in the other order: the token's question
    # number now names the other question, whose answer must not be what is checked.
    swapped = [{"question": q, "answers": HASHES[q]} for q in reversed(QUESTIONS)]
    second = await start(questions=swapped)
    data = {"t": asked.token, "answer": QUESTIONS[asked.question]}
    result = await post_as(second, visitor_of(first), data)
    assert "页面停留时间过长，请重新回答" in result.text and "pass-qr" not in result.text
