"""The demo story: start the simulated hardware, a Mosquitto broker, the hub and the
agent, then play a customer, a courier, a forger and a replayer at the front door
through the simulator's control API (as a test would), unlock the door remotely with a
command signed by `shopgate-hub sign-command` and sent with `mosquitto_pub`, and show
the door's events arriving at the hub, printing in plain words what happened. Then a
Meituan order with its pick slip on printer-1, and the scenes of demo/scenes.py: the
locker, the owner's catalog, the vending machine and its jam, the hub's stock ledger and
what Meituan is told, the dashboard and the OpenAPI document. Each step checks its
outcome; the first that does not happen stops the demo (exit 1) with the reason.

Runtime files go to $SHOPGATE_RUN (default .run): sim/, agent/ (the journal), hub/,
broker/, keys/, and the logs sim.log, agent.log, hub.log, broker.log. agent/ and hub/
are cleared at the start, so each run plays on a fresh store.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import time
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.clock import Clock
from agent.journal import Journal
from agent.journal.view import JournalView
from agent.services.orders import PendingOrders
from cloud.signing import load_private_key, mint_pass, write_keypair
from demo import scenes
from demo.commands import Commands
from demo.platform import StandInMeituan
from demo.services import answer_entry_question, hub_events, hub_orders, start_broker, start_hub
from demo.stage import BIN, REPO, RUN, STORE, Sim, Stage, say, wait_for

DEMO_MERCHANT_TOKEN = "demo-merchant-token"  # hub.yaml's default SHOPGATE_MERCHANT_TOKEN


def seed_order(code: str) -> dict[str, Any]:
    order = {
        "id": f"mt-{int(time.time())}",
        "platform": "meituan",
        "platform_order_id": f"2701{random.randint(1000, 9999)}",
        "day_seq": 12,
        "pickup_code": code,
        "status": "pending",
        "note": "少冰",
        "items": [
            {"barcode": "6901028075022", "name": "可口可乐 500ml", "qty": 2, "shelf": "A3"},
            {"barcode": "6920202888883", "name": "乐事薯片 原味", "qty": 1, "shelf": "B1"},
        ],
    }

    async def put() -> None:
        (RUN / "agent").mkdir(parents=True, exist_ok=True)
        journal = await Journal.open(RUN / "agent" / "journal.db", STORE, Clock())
        try:
            await PendingOrders(journal, {}, code_length=6).upsert([order])
        finally:
            await journal.close()

    asyncio.run(put())
    return order


def fresh_state() -> None:
    """Each run plays the story on a fresh store and hub (journal, hub database), so its
    counts start as config.yaml says; the signing keys and the logs are kept."""
    for state in ("agent", "hub"):
        shutil.rmtree(RUN / state, ignore_errors=True)


def stop(proc: subprocess.Popen[Any] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(6)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def main() -> int:
    RUN.mkdir(parents=True, exist_ok=True)
    fresh_state()
    if not (RUN / "keys" / "hub-signing.pem").exists():
        write_keypair(RUN / "keys", "demo")
    key_file = RUN / "keys" / "hub-signing.pem"
    key, kid = load_private_key(key_file)
    env = {**os.environ, "SHOPGATE_RUN": str(RUN)}
    os.environ.update(env)

    say("== shopgate demo: store demo-001, front door on lock board 1, scanner at the door ==")
    token = env.setdefault("SHOPGATE_STORE_TOKEN", "demo-token")
    merchant_token = env.setdefault("SHOPGATE_MERCHANT_TOKEN", DEMO_MERCHANT_TOKEN)
    broker = hub = agent = None
    sim: Sim | None = None
    commands: Commands | None = None
    meituan = StandInMeituan()
    try:
        broker, mqtt_port = start_broker(RUN, open(RUN / "broker.log", "ab"))
        env["SHOPGATE_MQTT_URL"] = f"mqtt://127.0.0.1:{mqtt_port}"
        env["SHOPGATE_MEITUAN_URL"] = meituan.url
        hub, hub_url = start_hub(BIN, REPO / "hub.yaml", env, open(RUN / "hub.log", "ab"))
        env["SHOPGATE_HUB_URL"] = hub_url
        say(f"broker on 127.0.0.1:{mqtt_port}, hub on {hub_url}")
        sim = Sim()
        code = f"{random.randint(0, 999999):06d}"
        order = seed_order(code)
        journal = JournalView(RUN / "agent" / "journal.db")
        start_seq = journal.last_seq()
        agent_log = open(RUN / "agent.log", "ab")
        agent = subprocess.Popen(
            [str(BIN / "shopgate-agent"), "run", "--config", str(REPO / "config.yaml")],
            stdout=agent_log,
            stderr=agent_log,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        commands = Commands(BIN, key_file, STORE, mqtt_port)
        stage = Stage(sim, journal, commands, meituan, hub_url, token, merchant_token)
        story(stage, order, code, key, kid, start_seq)
        return 0
    finally:
        if commands is not None:
            commands.close()
        for proc in (agent, hub, sim.proc if sim is not None else None, broker):
            stop(proc)
        meituan.close()


def story(
    stage: Stage, order: dict[str, Any], code: str, key: Any, kid: str, start_seq: int
) -> None:
    sim, journal, hub_url, token = stage.sim, stage.journal, stage.hub_url, stage.store_token
    wait_for(lambda: journal.events("agent.started", start_seq), "the agent to start")
    say(f"agent running (journal: {journal.path})\n")

    def step(title: str, line: str) -> dict[str, Any]:
        say(title)
        seq = journal.last_seq()
        sim.scan(line)
        ev = wait_for(
            lambda: next(
                (e for e in journal.events(after_seq=seq) if e["type"].startswith("access.")),
                None,
            ),
            "a decision",
        )
        if ev["type"] == "access.granted":
            wait_for(lambda: journal.events("door.unlocked", seq), "the door to unlock")
            say(f"   -> door OPENED (lock board 1 has received {sim.unlocks()} open frame(s))")
        else:
            d = ev["data"]
            say(f"   -> REFUSED: {d['reason']}" + (f" ({d['detail']})" if d.get("detail") else ""))
        return ev

    def walk_through(who: str) -> None:
        seq = journal.last_seq()
        sim.contact(True)
        wait_for(lambda: journal.events("door.opened", seq), "door.opened")
        sim.contact(False)
        wait_for(lambda: journal.events("door.locked", seq), "door.locked")
        say(f"   {who} walks through; the door closes and is locked again")

    alice = mint_pass(key, kid, store=STORE, scope="entry", sub="alice", door="front", ttl=120)
    step("1. Customer Alice scans the entry pass on her phone", alice)
    walk_through("Alice")

    ev = step(f"2. A Meituan courier types pickup code {code} for order #{order['day_seq']}", code)
    for item in ev["data"].get("items", []):
        say(f"   take {item['qty']} x {item['name']} from shelf {item['shelf']}")
    walk_through("The courier")
    wait_for(lambda: journal.events("pickup.completed", ev["seq"]), "pickup.completed")
    say(f"   order {order['id']} is now picked up")

    forger = Ed25519PrivateKey.generate()
    step(
        "3. Someone shows a pass they signed themselves",
        mint_pass(forger, kid, store=STORE, scope="staff", sub="mallory", ttl=120),
    )
    step("4. Someone replays Alice's pass from a screenshot", alice)
    step("5. The courier tries the same pickup code again", code)

    seq = journal.last_seq()
    sim.contact(True)
    wait_for(lambda: journal.events("door.forced", seq), "door.forced")
    sim.contact(False)
    say("6. Someone pulls the door open without a pass -> ALARM: door.forced")

    say("7. The owner unlocks the door remotely for a delivery, from a terminal:")
    for line in stage.commands.shell("unlock", {"door": "front"}):
        say(f"   {line}")
    before = sim.unlocks()
    reply = stage.commands.send("unlock", {"door": "front", "seconds": 5})
    wait_for(lambda: sim.unlocks() > before, "the remote unlock")
    say(f"   reply: {json.dumps(reply, separators=(',', ':'))}")
    say(f"   -> door OPENED remotely (open frames: {sim.unlocks()})")

    say("8. Every event reaches the hub (store-and-forward from the journal):")
    wait_for(
        lambda: len(hub_events(hub_url, STORE, token)) >= journal.last_seq() - start_seq,
        "the hub",
    )
    at_hub = hub_events(hub_url, STORE, token)
    counts: dict[str, int] = {}
    for e in at_hub:
        counts[e["type"]] = counts.get(e["type"], 0) + 1
    say(
        f"   the hub holds {len(at_hub)} events: "
        + ", ".join(f"{n} {t}" for t, n in sorted(counts.items()))
    )
    say("9. A Meituan order arrives (pushed and signed as Meituan does):")
    mt_id = str(int(time.time() * 1000))
    stage.meituan.push_order(
        hub_url,
        mt_id,
        day_seq=27,
        items=[
            {
                "sku": "cola",
                "barcode": "6901028075022",
                "name": "可口可乐 500ml",
                "qty": 1,
                "price": 3.5,
            },
            {
                "sku": "gum",
                "barcode": "6923450657713",
                "name": "绿箭口香糖",
                "qty": 2,
                "price": 2.0,
            },
        ],
    )
    order_id = f"meituan-{mt_id}"
    wait_for(lambda: journal.order_status(order_id) == "pending", "the order to reach the store")
    code = hub_orders(hub_url, STORE, token)[order_id]["pickup_code"]
    say(f"   the hub took it, gave it pickup code {code} and sent it to the store over MQTT")
    scenes.pick_slip(stage, order_id, code, day_seq=27)
    ev = step(f"   the courier types {code} at the door", code)
    for item in ev["data"].get("items", []):
        say(f"   take {item['qty']} x {item['name']} from shelf {item.get('shelf') or '-'}")
    walk_through("The courier")
    wait_for(
        lambda: "/api/v1/order/preparationMealComplete" in stage.meituan.calls,
        "Meituan to hear of it",
    )
    say("   Meituan heard: picking done (signed call back from the hub)")

    say("10. A customer scans the door poster and answers the store's question:")
    say(f"   {hub_url}/s/{STORE}/front  (try it in a browser: the answers are 8 and 绿色)")
    before = sim.unlocks()
    page = answer_entry_question(f"{hub_url}/s/{STORE}/front", {"门牌号": "8", "颜色": "绿色"})
    if "门已打开" in page:
        wait_for(lambda: sim.unlocks() > before, "the door")
        say(f"   right answer -> 门已打开: the door OPENED (open frames: {sim.unlocks()})")
    else:
        say("   right answer -> the page shows an entry pass QR to scan at the door")

    scenes.courier_at_poster(stage, 11)
    scenes.locker(stage, 12)
    stocktake = scenes.catalog(stage, 13)
    moved = scenes.vending(stage, 14)
    scenes.stock(stage, 15, stocktake, moved)
    scenes.owner_pages(stage, 16, DEMO_MERCHANT_TOKEN)
    say(f"\nlogs: {RUN}/agent.log, {RUN}/sim.log, {RUN}/hub.log; journal: {journal.path}")


if __name__ == "__main__":
    raise SystemExit(main())
