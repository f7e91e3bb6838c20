"""The remote commands against a running agent (in-process, GPIO door on mock pins):
each one does what an operator expects, refuses bad arguments with `bad_args`, and
what it changes survives a restart."""

from __future__ import annotations

import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from agent.app import Agent
from agent.config import load_config
from agent.model.commands import Caller, CommandError
from agent.remote.commands import StoreCommands
from runtime.systemd import Notifier
from tests.agent.app.conftest import RELAY, events
from tests.support.agent import make_keys
from tests.support.pty_devices import eventually

OPERATOR = Caller(sub="ops-anna", jti="j", kid="demo")


async def call(agent: Agent, cmd: str, **args):
    return await StoreCommands(agent)(cmd, args, OPERATOR)


async def refused(agent: Agent, cmd: str, **args) -> CommandError:
    with pytest.raises(CommandError) as e:
        await call(agent, cmd, **args)
    return e.value


async def scan_reason(agent: Agent, line: str) -> str:
    d = await agent.store.access.on_scan("back", line)
    return str(d.reason)


async def restarted(agent: Agent) -> Agent:
    await agent.stop()
    again = Agent(agent.config_path, load_config(agent.config_path), Notifier(None))
    await again.start()
    return again


async def test_unlock_opens_the_door_and_is_journaled(running):
    agent, _, pins = running
    result = await call(agent, "unlock", door="back", seconds=2)
    assert result == {"door": "back", "seconds": 2}
    assert pins.pin(RELAY).state == 1
    granted = events(agent, "access.granted")[-1]["data"]
    assert granted["method"] == "remote" and granted["sub"] == "ops-anna"
    assert (await refused(agent, "unlock", door="front")).code == "bad_args"
    assert (await refused(agent, "unlock", door="back", seconds=3600)).code == "bad_args"
    assert (await refused(agent, "unlock")).code == "bad_args"


async def test_lockdown_and_business_status_hold_across_a_restart(running):
    agent, _, _ = running
    keys = make_keys(agent.cfg.storage.dir.parent)
    await call(agent, "lockdown", door="back", on=True)
    assert await scan_reason(agent, keys.mint(scope="entry", sub="a")) == "lockdown"
    assert await scan_reason(agent, keys.mint(scope="staff", sub="boss")) == "granted"
    await call(agent, "business", status="closed")
    again = await restarted(agent)
    try:
        assert await scan_reason(again, keys.mint(scope="entry", sub="b")) == "lockdown"
        await call(again, "lockdown", door="back", on=False)
        assert await scan_reason(again, keys.mint(scope="entry", sub="c")) == "closed"
        assert again.state()["business"] == "closed"
        await call(again, "business", status="open")
        assert await scan_reason(again, keys.mint(scope="entry", sub="d")) == "granted"
        assert (await refused(again, "business", status="maybe")).code == "bad_args"
    finally:
        await again.stop()


async def test_orders_pushed_and_cancelled_drive_pickup_codes(running):
    agent, _, _ = running
    order = {
        "id": "eleme-9",
        "platform": "eleme",
        "pickup_code": "654321",
        "items": [{"name": "猫粮", "qty": 1, "shelf": "C2"}],
    }
    assert await call(agent, "orders.upsert", orders=[order]) == {"upserted": ["eleme-9"]}
    await call(
        agent, "orders.upsert", orders=[{**order, "id": "eleme-10", "pickup_code": "111222"}]
    )
    assert await scan_reason(agent, "654321") == "granted"
    assert await scan_reason(agent, "654321") == "already_picked_up"
    result = await call(agent, "orders.cancel", ids=["eleme-10", "eleme-9", "nope"])
    assert result == {"cancelled": ["eleme-10"], "unchanged": ["eleme-9", "nope"]}
    assert await scan_reason(agent, "111222") == "cancelled"
    bad = await refused(agent, "orders.upsert", orders=[{"id": "x", "pickup_code": "12"}])
    assert bad.code == "bad_args" and "pickup_code" in bad.message


async def test_catalog_upsert_checks_barcodes_and_persists(running):
    agent, _, _ = running
    good = {"barcode": "6901028075022", "name": "可口可乐", "price": 3.5, "shelf": "A3"}
    assert await call(agent, "catalog.upsert", products=[good]) == {"upserted": 1}
    bad = await refused(agent, "catalog.upsert", products=[{**good, "barcode": "6901028075023"}])
    assert bad.code == "bad_args" and "check digit" in bad.message
    again = await restarted(agent)
    try:
        assert again.catalog["6901028075022"]["shelf"] == "A3"
    finally:
        await again.stop()


async def test_keys_set_rotates_the_trusted_keys(running):
    agent, _, _ = running
    old = make_keys(agent.cfg.storage.dir.parent)
    new_key = Ed25519PrivateKey.generate()
    pem = (
        new_key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    )
    assert await call(agent, "keys.set", keys=[{"kid": "k2", "pem": pem}]) == {
        "kids": ["demo", "k2"],
        "installed": ["k2"],
        "anchors": ["demo"],
        "anchors_listed": [],
    }
    from cloud.signing import mint_pass

    # The config's key is the anchor: a keys.set cannot take it away (config.yaml can).
    assert await scan_reason(agent, old.mint(scope="entry", sub="x")) == "granted"
    assert (
        await scan_reason(agent, mint_pass(new_key, "k2", store="demo-001", scope="entry", sub="y"))
        == "granted"
    )
    again = await restarted(agent)
    try:
        assert (
            await scan_reason(
                again,
                mint_pass(
                    new_key, "k2", store="demo-001", scope="entry", sub="z", jti=uuid.uuid4().hex
                ),
            )
            == "granted"
        )
    finally:
        await again.stop()
    assert (await refused(agent, "keys.set", keys=[])).code == "bad_args"
    assert (
        await refused(agent, "keys.set", keys=[{"kid": "k3", "pem": "junk"}])
    ).code == "bad_args"


async def test_missing_devices_and_unknown_commands(running):
    agent, _, _ = running
    assert (await refused(agent, "print", printer="printer-1", text="hi")).code == "unsupported"
    assert (await refused(agent, "vend", machine="vending-1", slot=1)).code == "unsupported"
    assert (await refused(agent, "self-destruct")).code == "unknown_command"
    assert (await call(agent, "ping"))["pong"] is True
    status = await call(agent, "status")
    assert status["store"] == "demo-001" and status["state"]["doors"] == {"back": "locked"}


async def test_reload_refused_reports_the_problems(running):
    agent, _, _ = running
    good = agent.config_path.read_text()
    agent.config_path.write_text(good.replace("unlock_seconds: 1", "unlock_seconds: never"))
    err = await refused(agent, "reload")
    assert err.code == "failed" and any("unlock_seconds" in p for p in err.detail["problems"])
    agent.config_path.write_text(good)
    assert await call(agent, "reload") == {"reloaded": True}
    await eventually(lambda: agent.store is not None)


async def test_enter_decides_a_remote_pass_as_at_the_door(running):
    """The hub's entry page sends the customer's pass with `enter`: the door's rules
    apply (lockdown here), and the pass is single use like a scanned one."""
    agent, _, pins = running
    keys = make_keys(agent.cfg.storage.dir.parent)
    await call(agent, "lockdown", door="back", on=True)
    shut = await call(agent, "enter", door="back", **{"pass": keys.mint(scope="entry", sub="v1")})
    assert shut == {"door": "back", "granted": False, "reason": "lockdown"}
    assert pins.pin(RELAY).state == 0
    await call(agent, "lockdown", door="back", on=False)
    token = keys.mint(scope="entry", sub="v2")
    assert (await call(agent, "enter", door="back", **{"pass": token}))["granted"] is True
    await eventually(lambda: pins.pin(RELAY).state == 1)
    assert (await call(agent, "enter", door="back", **{"pass": token}))["reason"] == "replayed"


async def test_a_pickup_done_here_survives_a_late_update_from_the_hub(running):
    agent, _, _ = running
    order = {"id": "mt-77", "platform": "meituan", "pickup_code": "777777", "items": []}
    await call(agent, "orders.upsert", orders=[order])
    assert await scan_reason(agent, "777777") == "granted"
    # the hub has not heard of the pickup yet and sends the order as pending again
    await call(agent, "orders.upsert", orders=[{**order, "note": "加急"}])
    assert await scan_reason(agent, "777777") == "already_picked_up"
