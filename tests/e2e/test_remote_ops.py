"""An operator with nothing but mosquitto_pub/mosquitto_sub and a command signed by
`shopgate-hub sign-command` unlocks the door and closes the store; the agent, the
broker and the simulator are separate processes."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.test_door import decide, reason, unlocks
from tests.support.agent import Keys, start_agent
from tests.support.broker import BrokerHandle, start_broker
from tests.support.sim import SimHandle, wait_until

HUB = str(Path(sys.executable).with_name("shopgate-hub"))


def sign(run_dir: Path, cmd: str, args: dict, store: str = "demo-001") -> str:
    out = subprocess.run(
        [
            HUB,
            "sign-command",
            "--key",
            str(run_dir / "keys" / "hub-signing.pem"),
            "--store",
            store,
            "--cmd",
            cmd,
            "--args",
            json.dumps(args),
            "--ttl",
            "60",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def publish_and_read_reply(broker: BrokerHandle, token: str, store: str = "demo-001") -> dict:
    sub = subprocess.Popen(
        [
            "mosquitto_sub",
            "-h",
            broker.host,
            "-p",
            str(broker.port),
            "-t",
            f"shopgate/{store}/reply",
            "-C",
            "1",
            "-W",
            "10",
            "-q",
            "1",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    # mosquitto_sub must be subscribed before the command goes out (replies aren't retained)
    time.sleep(0.3)
    subprocess.run(
        [
            "mosquitto_pub",
            "-h",
            broker.host,
            "-p",
            str(broker.port),
            "-t",
            f"shopgate/{store}/cmd",
            "-q",
            "1",
            "-m",
            token,
        ],
        check=True,
    )
    out, _ = sub.communicate(timeout=15)
    return json.loads(out)


def retained(broker: BrokerHandle, topic: str) -> dict:
    out = subprocess.run(
        [
            "mosquitto_sub",
            "-h",
            broker.host,
            "-p",
            str(broker.port),
            "-t",
            topic,
            "-C",
            "1",
            "-W",
            "5",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def test_signed_unlock_and_business_through_mosquitto_pub(
    sim: SimHandle, keys: Keys, run_dir: Path
):
    broker = start_broker(run_dir)
    try:
        with start_agent(run_dir, env={"SHOPGATE_MQTT_URL": broker.url}) as agent:
            wait_until(
                lambda: retained(broker, "shopgate/demo-001/status").get("online"),
                10,
                "status online",
            )
            state = retained(broker, "shopgate/demo-001/state")
            assert state["doors"] == {"front": "locked"} and state["business"] == "open"

            token = sign(run_dir, "unlock", {"door": "front", "seconds": 3})
            reply = publish_and_read_reply(broker, token)
            assert reply["ok"] is True and reply["result"]["door"] == "front"
            assert reply["id"] == json.loads(
                base64.urlsafe_b64decode(token.split(".")[1] + "==")
            ).get("jti")
            wait_until(lambda: unlocks(sim) == 1, 3, "the lock board to see the open frame")

            again = publish_and_read_reply(broker, token)  # the same command replayed
            assert again["ok"] is False and again["error"]["code"] == "replayed"
            assert unlocks(sim) == 1

            other = publish_and_read_reply(
                broker, sign(run_dir, "unlock", {"door": "front"}, store="demo-002")
            )
            assert other["ok"] is False and other["error"]["code"] == "wrong_store"

            reply = publish_and_read_reply(broker, sign(run_dir, "business", {"status": "closed"}))
            assert reply["ok"] is True
            wait_until(
                lambda: retained(broker, "shopgate/demo-001/state")["business"] == "closed",
                5,
                "state",
            )
            assert reason(decide(agent, sim, keys.mint(scope="entry", sub="jo"))) == "closed"
        # a clean stop marks the store offline
        assert retained(broker, "shopgate/demo-001/status")["online"] is False
    finally:
        broker.stop()
