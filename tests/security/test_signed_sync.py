"""Order sync over HTTP: what the agent takes from `GET {hub.url}/.../orders` must be
signed by a hub key it trusts, bound to the question it asked, and fresh.

The attack: anyone who answers hub.url (a man on the path of a plain-HTTP hub URL, a
hijacked DNS name) used to plant an order with a pickup code of their choosing (the
door opened for 777777), make a paid locker order dispense, or cancel real orders. The
real agent and simulator run as separate processes against a fake hub on loopback.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.clock import Clock
from agent.journal import Journal, PutSetting
from agent.journal.view import JournalView
from agent.order_sync import OrderSync, SyncFailed, SyncRefused
from agent.rules.key_trust import pem_of
from agent.rules.passes import PassVerifier
from agent.services.orders import PendingOrders
from cloud.signing import SYNC_SCOPE, sign_command, sign_store_data
from tests.agent.order_sync.test_order_sync_catch_up import hub_process, order_service
from tests.cloud.delivery.inproc import new_order
from tests.e2e.test_door import ORDER, _decision, reason, scan, unlocks
from tests.support.agent import DEMO_CONFIG, Keys, agent_command, seed_orders, start_agent
from tests.support.fake_hub import FakeHub, Request, json_answer
from tests.support.sim import SimHandle, wait_until

STORE = "demo-001"

PLANTED = {
    "id": "evil-1",
    "platform": "meituan",
    "platform_order_id": "666",
    "day_seq": 1,
    "pickup_code": "777777",
    "status": "pending",
    "items": [{"barcode": "6901028075022", "name": "可口可乐 500ml", "qty": 1}],
}
# A "paid" order for a locker compartment: the locker service opens it as soon as it hears
# of the order (docs/lockers.md).
PLANTED_PAID = {
    "id": "evil-2",
    "platform": "local",
    "status": "pending",
    "items": [{"barcode": "6901028075022", "name": "可口可乐 500ml", "qty": 1, "price": 3.5}],
    "paid": True,
    "payment": {"id": "pay-evil-2", "method": "wechat"},
    "dispense": {"device": "locker-1", "slot": 1},
}


def impostor(req: Request) -> tuple[int, str, bytes]:
    """The hub's unsigned answer, as the old API gave it: plants two orders, cancels the
    store's real one."""
    if not req.path.endswith("/orders"):
        return json_answer({"error": {"code": "not_found"}}, 404)
    if req.param("status") == "cancelled":
        cancelled = {**ORDER, "status": "cancelled"}
        return json_answer({"orders": [cancelled], "now": "2030-01-01T00:00:00Z"})
    return json_answer({"orders": [PLANTED, PLANTED_PAID], "now": "2030-01-01T00:00:00Z"})


def test_a_fake_hub_cannot_plant_codes_dispense_or_cancel(
    sim: SimHandle, keys: Keys, run_dir: Path
) -> None:
    seed_orders(run_dir, [ORDER])  # a real courier order, code 483920
    with (
        FakeHub(impostor) as fake,
        start_agent(run_dir, env={"SHOPGATE_HUB_URL": fake.url}) as agent,
    ):
        fake.wait_for(lambda r: r.path.endswith("/orders"))

        def sync_done() -> bool | None:
            # Either the agent took the answer (the planted order is in its journal) or
            # it refused it (journaled): only then is the door worth trying.
            if agent.journal.order_status(PLANTED["id"]) is not None:
                return True
            return bool(agent.journal.events("sync.refused")) or None

        wait_until(sync_done, 10, "the agent to take or refuse the fake hub's orders")
        seq = agent.journal.last_seq()
        scan(sim, "777777")
        assert reason(_decision(agent, seq)) == "unknown_order"
        assert unlocks(sim) == 0
        assert unlocks(sim, board=2, channel=1) == 0  # the locker stayed shut
        assert agent.journal.order_status(PLANTED["id"]) is None
        refused = agent.journal.events("sync.refused")[0]["data"]
        assert refused["what"] == "orders" and refused["reason"] == "malformed"
        assert "not signed" in refused["detail"]
        assert "order sync refused" in agent.log()

        seq = agent.journal.last_seq()
        scan(sim, ORDER["pickup_code"])  # the real order was not cancelled by the impostor
        assert reason(_decision(agent, seq)) == "granted"
        wait_until(lambda: unlocks(sim) == 1, 3, "the lock board to see the open frame")


async def test_an_order_the_store_missed_arrives_signed_from_the_real_hub_and_opens(
    sim: SimHandle, keys: Keys, run_dir: Path
) -> None:
    """The same path with the real hub process: the demo store (loopback, the demo's own
    key) syncs an order it never got over MQTT, and the courier's code opens the door."""
    hub = await asyncio.to_thread(hub_process, run_dir)
    try:
        async with order_service(run_dir, hub) as service:
            order = await new_order(service, 1)
        agent = await asyncio.to_thread(start_agent, run_dir, env=hub.agent_env)
        try:
            await asyncio.to_thread(
                wait_until,
                lambda: agent.journal.order_status(order.id) == "pending" or None,
                10,
                "the order to reach the store by signed sync",
            )
            seq = agent.journal.last_seq()
            await asyncio.to_thread(scan, sim, order.pickup_code)
            assert reason(await asyncio.to_thread(_decision, agent, seq)) == "granted"
            assert agent.journal.events("sync.refused") == []
            assert agent.journal.settings()["order_sync.high_water"] > 0
        finally:
            await asyncio.to_thread(agent.stop)
    finally:
        await asyncio.to_thread(hub.stop)


# --- the property: no answer that is not the hub's, fresh, to this request, changes a thing

NOW_ORDER = {**ORDER, "id": "mt-2001", "pickup_code": "222333"}
SEEDED = [ORDER, {**ORDER, "id": "mt-2002", "pickup_code": "333444", "status": "cancelled"}]

order_strategy = st.fixed_dictionaries(
    {
        "id": st.from_regex(r"\A(evil|mt)-[0-9]{1,4}\Z"),
        "platform": st.sampled_from(["meituan", "eleme", "jddj", "douyin", "local"]),
        "pickup_code": st.one_of(st.just("777777"), st.from_regex(r"\A[0-9]{6}\Z")),
        "status": st.sampled_from(["pending", "cancelled"]),
        "items": st.just([]),
    }
)
ATTACKS = [
    "unsigned",
    "forged",
    "unknown_key",
    "wrong_store",
    "expired",
    "replayed",
    "other_question",
    "older_than_taken",
    "alg_none",
    "alg_hs256",
    "tampered",
    "a_command",
    "a_pass",
]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(
    attack: str, req: Request, hub: Keys, orders: list[dict[str, Any]], age: int
) -> tuple[int, str, bytes]:
    """One attacker's answer to `req`: everything right but the one thing `attack` says
    (the attacker may hold anything but the hub's private key: recorded answers, the
    public key, signed commands and passes)."""
    status = [req.param("status")]
    since = req.param("updated_after")
    nonce = req.param("nonce")
    sync = {"orders": orders, "now": "2030-01-01T00:00:00Z", "status": status,
            "updated_after": since, "nonce": nonce}  # fmt: skip
    now = time.time()

    def signed(key: Any = hub.key, kid: str = hub.kid, **kw: Any) -> bytes:
        args = {"store": STORE, "scope": SYNC_SCOPE, "claims": {"sync": sync}, "now": now} | kw
        return sign_store_data(key, kid, **args).encode()

    jwt_type = "application/jwt"
    if attack == "unsigned":
        return json_answer({"orders": orders, "now": sync["now"]})
    if attack == "forged":
        return 200, jwt_type, signed(Ed25519PrivateKey.generate())
    if attack == "unknown_key":
        return 200, jwt_type, signed(Ed25519PrivateKey.generate(), "attacker")
    if attack == "wrong_store":
        return 200, jwt_type, signed(store="demo-002")
    if attack == "expired":
        return 200, jwt_type, signed(now=now - 120 - 60 - age, ttl=120)
    if attack == "replayed":  # recorded from an earlier request: another nonce
        sync["nonce"] = secrets.token_urlsafe(24)
        return 200, jwt_type, signed()
    if attack == "other_question":  # an answer about the other list, passed off as this one
        sync["status"] = ["cancelled" if status == ["pending"] else "pending"]
        return 200, jwt_type, signed()
    if attack == "older_than_taken":  # signed long ago with a long life: the mark stops it
        # (the hub's own signer refuses such a life, so it is encoded by hand: a leaked key)
        iat = int(now) - 3600 - age
        claims = {"iss": "shopgate-hub", "aud": STORE, "sub": "shopgate-hub",
                  "scope": SYNC_SCOPE, "jti": secrets.token_hex(8), "iat": iat,
                  "exp": iat + 10 * 86400, "sync": sync}  # fmt: skip
        token = pyjwt.encode(claims, hub.key, algorithm="EdDSA", headers={"kid": hub.kid})
        return 200, jwt_type, token.encode()
    if attack in ("alg_none", "alg_hs256"):
        claims = {"iss": "shopgate-hub", "aud": STORE, "sub": "shopgate-hub",
                  "scope": SYNC_SCOPE, "jti": "x", "iat": int(now), "exp": int(now) + 120,
                  "sync": sync}  # fmt: skip
        if attack == "alg_none":
            head = _b64(json.dumps({"alg": "none", "kid": hub.kid}).encode())
            token = f"{head}.{_b64(json.dumps(claims).encode())}."
            return 200, jwt_type, token.encode()
        public_pem = pem_of(hub.key.public_key()).encode()
        head = _b64(json.dumps({"alg": "HS256", "kid": hub.kid, "typ": "JWT"}).encode())
        body = _b64(json.dumps(claims).encode())
        mac = hmac.new(public_pem, f"{head}.{body}".encode(), hashlib.sha256).digest()
        return 200, jwt_type, f"{head}.{body}.{_b64(mac)}".encode()
    if attack == "tampered":  # a real answer with another payload under its signature
        real = signed().decode().split(".")
        sync["orders"] = [PLANTED]
        other = signed().decode().split(".")
        return 200, jwt_type, ".".join([real[0], other[1], real[2]]).encode()
    if attack == "a_command":
        token = sign_command(hub.key, hub.kid, store=STORE, cmd="orders.upsert",
                             args={"orders": orders})  # fmt: skip
        return 200, jwt_type, token.encode()
    assert attack == "a_pass"
    return 200, jwt_type, hub.mint(scope="pickup", sub="c", orders=["evil-1"]).encode()


def legit(req: Request, hub: Keys, orders: list[dict[str, Any]]) -> tuple[int, str, bytes]:
    """The real hub's answer (cloud/api/orders.py signs it just so)."""
    sync = {"orders": orders, "now": "2030-01-01T00:00:00Z", "status": [req.param("status")],
            "updated_after": req.param("updated_after"), "nonce": req.param("nonce")}  # fmt: skip
    token = sign_store_data(hub.key, hub.kid, store=STORE, scope=SYNC_SCOPE, claims={"sync": sync})
    return 200, "application/jwt", token.encode()


@dataclass
class Store:
    run_dir: Path
    keys: Keys
    fake: FakeHub


@pytest.fixture
def store(run_dir: Path, keys: Keys) -> Iterator[Store]:
    seed_orders(run_dir, SEEDED)
    with FakeHub(lambda req: json_answer({}, 404)) as fake:
        yield Store(run_dir, keys, fake)


async def one_pass(store: Store, high_water: float) -> tuple[BaseException | None, dict, Any]:
    journal = await Journal.open(store.run_dir / "agent" / "journal.db", STORE, Clock())
    try:
        await journal.apply([PutSetting("order_sync.high_water", high_water)])
        local = await journal.load_state()
        orders = PendingOrders(journal, local.orders, code_length=6)
        pub = store.keys.key.public_key()
        sync = OrderSync(
            orders,
            hub_url=store.fake.url,
            store_id=STORE,
            token="t" * 32,
            verifier=PassVerifier({store.keys.kid: pub}, skew_seconds=60),
            journal=journal,
        )
        await sync.start()
        error: BaseException | None = None
        try:
            await sync.sync_once()
        except SyncFailed as e:
            error = e
        finally:
            await sync.stop()
        after = await journal.load_state()
        return error, after.orders, after.settings.get("order_sync.high_water")
    finally:
        await journal.close()


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    attack=st.sampled_from(ATTACKS),
    attacked=st.sampled_from(["pending", "cancelled"]),
    orders=st.lists(order_strategy, max_size=4),
    age=st.integers(min_value=1, max_value=10 * 86400),
)
def test_forged_wrong_store_expired_or_replayed_answers_are_refused_and_change_nothing(
    store: Store, attack: str, attacked: str, orders: list[dict[str, Any]], age: int
) -> None:
    planted = [PLANTED, {**ORDER, "status": "cancelled"}, *orders]
    high_water = time.time() - 5  # a pass was taken a moment ago

    def answer(req: Request) -> tuple[int, str, bytes]:
        if req.param("status") == attacked:
            return forge(attack, req, store.keys, planted, age)
        # The other request of the pass gets the real hub's answer: a refused pass must
        # not apply even that (here, a new order that would otherwise be added).
        return legit(req, store.keys, [NOW_ORDER] if attacked == "cancelled" else [])

    store.fake.answer = answer
    before = JournalView(store.run_dir / "agent" / "journal.db")
    refusals = len(before.events("sync.refused"))
    error, held, mark = asyncio.run(one_pass(store, high_water))
    assert isinstance(error, SyncRefused), (attack, error)
    assert {i: o["status"] for i, o in held.items()} == {o["id"]: o["status"] for o in SEEDED}
    assert mark == high_water
    assert len(before.events("sync.refused")) == refusals + 1


def test_the_real_hubs_answer_is_taken(store: Store) -> None:
    """The same harness with the hub's own answers: the property above is not vacuous."""
    store.fake.answer = lambda req: legit(
        req, store.keys, [NOW_ORDER] if req.param("status") == "pending" else []
    )
    error, held, mark = asyncio.run(one_pass(store, time.time() - 5))
    assert error is None
    assert held[NOW_ORDER["id"]]["status"] == "pending"
    assert mark is not None and mark > time.time() - 5


# --- where the store token and the orders travel: check-config ----------------------


def check_config(run_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*agent_command(), "check-config", "--config", str(DEMO_CONFIG)],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "SHOPGATE_RUN": str(run_dir), **env},
    )


def test_check_config_refuses_plain_http_and_the_demo_token_away_from_this_machine(
    run_dir: Path, keys: Keys
) -> None:
    env = {k: "" for k in ("SHOPGATE_HUB_URL", "SHOPGATE_STORE_TOKEN")}
    demo = check_config(run_dir, **env)
    assert (demo.returncode, demo.stdout) == (0, "ok\n")  # the loopback demo still works

    line = next(
        i
        for i, t in enumerate(DEMO_CONFIG.read_text().splitlines(), 1)
        if "url: ${SHOPGATE_HUB_URL" in t
    )
    plain = check_config(run_dir, SHOPGATE_HUB_URL="http://hub.example.com")
    assert plain.returncode == 2
    url_problem, token_problem = plain.stdout.splitlines()
    assert url_problem.startswith(f"{DEMO_CONFIG}:{line}: hub.url: http://hub.example.com is not")
    assert f"{DEMO_CONFIG}:{line + 1}: hub.token: the demo token" in token_problem

    real = check_config(
        run_dir, SHOPGATE_HUB_URL="https://hub.example.com", SHOPGATE_STORE_TOKEN="x" * 40
    )
    assert (real.returncode, real.stdout) == (0, "ok\n")


def test_an_oversized_answer_is_refused_unread(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("agent.order_sync.MAX_ANSWER_BYTES", 100_000)
    store.fake.answer = lambda req: (200, "application/jwt", b"a." * 200_000 + b"b")
    error, held, _ = asyncio.run(one_pass(store, time.time() - 5))
    assert isinstance(error, SyncRefused) and "over 100000 bytes" in str(error)
    assert set(held) == {o["id"] for o in SEEDED}
