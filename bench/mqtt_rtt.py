"""Remote-command round trip through a real broker. Prints JSON.

A mosquitto is started the way the tests start it (loopback, `set_tcp_nodelay true`);
the agent side, RemoteOps with a real journal (fsync per command) and the real
signature check, runs in a child process; this process publishes pre-signed `ping`
commands one at a time with paho and times each from publish to the reply's arrival.

Target: p99 <= 10 ms over >= 1,000 commands.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.support.broker starts mosquitto as the tests do

from bench.floors import paho_echo  # noqa: E402
from bench.floors.figure import beside  # noqa: E402

STORE = "bench-001"
TARGET_P99_MS = 10.0


def agent_side(run_dir: Path, url: str) -> None:
    """The child process: RemoteOps with a real journal until SIGTERM."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    from agent.clock import Clock
    from agent.config.schema import AgentConfig
    from agent.journal import Journal
    from agent.mqtt import RemoteOps
    from agent.rules.passes import PassVerifier

    async def main() -> None:
        cfg = AgentConfig.model_validate(
            {
                "store": {"id": STORE},
                "storage": {"dir": str(run_dir / "agent")},
                "access": {
                    "keys": [
                        {"kid": "bench", "pem_file": str(run_dir / "keys" / "hub-signing.pub.pem")}
                    ]
                },
                "hub": {"url": "http://127.0.0.1:9"},
                "mqtt": {"url": url, "command_queue": 64},
                "devices": [{"kind": "lockbus", "id": "bus", "port": "/dev/null", "boards": [1]}],
                "doors": [
                    {
                        "id": "front",
                        "lock": {"type": "lockboard", "device": "bus", "board": 1, "channel": 1},
                    }
                ],
            }
        )
        key = load_pem_public_key((run_dir / "keys" / "hub-signing.pub.pem").read_bytes())
        clock = Clock()
        journal = await Journal.open(run_dir / "agent" / "journal.db", STORE, clock)
        ops = RemoteOps(
            cfg,
            journal=journal,
            verifier=PassVerifier({"bench": key}, skew_seconds=60),  # type: ignore[dict-item]
            clock=clock,
            state=lambda: {"doors": {"front": {"locked": True}}},
        )
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await ops.start()
        await stop.wait()
        await ops.stop()
        await journal.close()

    asyncio.run(main())


def measure(n: int, warmup: int) -> dict[str, object]:
    import paho.mqtt.client as mqtt

    from cloud.signing import load_private_key, sign_command, write_keypair
    from tests.support.broker import start_broker

    run_dir = Path(tempfile.mkdtemp(prefix="shopgate-mqtt-rtt-"))
    write_keypair(run_dir / "keys", "bench")
    key, kid = load_private_key(run_dir / "keys" / "hub-signing.pem")
    broker = start_broker(run_dir)
    child = subprocess.Popen(
        [sys.executable, __file__, "--agent", str(run_dir), broker.url], stderr=subprocess.PIPE
    )
    root = f"shopgate/{STORE}"
    got: dict[str, float] = {}
    arrived = threading.Event()
    online = threading.Event()

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        if msg.topic.endswith("/status"):
            if json.loads(msg.payload).get("online"):
                online.set()
            return
        got[json.loads(msg.payload)["id"]] = time.perf_counter()
        arrived.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = on_message
    client.connect(broker.host, broker.port)
    client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # measuring side too
    client.subscribe([(f"{root}/reply", 1), (f"{root}/status", 1)])
    client.loop_start()
    try:
        if not online.wait(15):
            raise RuntimeError("the agent did not come online")
        tokens = [
            (jti, sign_command(key, kid, store=STORE, cmd="ping", ttl=3600, jti=jti))
            for jti in (uuid.uuid4().hex for _ in range(n + warmup))
        ]
        rtts: list[float] = []
        for i, (jti, token) in enumerate(tokens):
            arrived.clear()
            t0 = time.perf_counter()
            client.publish(f"{root}/cmd", token, qos=1)
            while jti not in got:
                if not arrived.wait(5):
                    raise RuntimeError(f"no reply to command {i}")
                arrived.clear()
            if i >= warmup:
                rtts.append((got[jti] - t0) * 1000)
        floor = paho_echo.round_trips(broker.host, broker.port, n=n, warmup=warmup)
    finally:
        client.loop_stop()
        client.disconnect()
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
        broker.stop()
    rtts.sort()
    p99 = rtts[min(len(rtts) - 1, int(len(rtts) * 0.99))]
    return {
        "bench": "mqtt_rtt",
        "what": "signed ping: publish -> agent verifies, journals, replies -> reply received",
        "commands": len(rtts),
        "p50_ms": round(statistics.median(rtts), 3),
        "p99_ms": round(p99, 3),
        "max_ms": round(rtts[-1], 3),
        "mean_ms": round(statistics.fmean(rtts), 3),
        "target_p99_ms": TARGET_P99_MS,
        "ok": p99 <= TARGET_P99_MS,
        "cpus": os.cpu_count(),
        "figures": [
            beside(
                "signed command round trip p50",
                statistics.median(rtts),
                "ms",
                "bare paho QoS 1 echo through the same broker p50",
                floor["p50_ms"],
                better="lower",
            ),
            beside(
                "signed command round trip p99",
                p99,
                "ms",
                "bare paho QoS 1 echo through the same broker p99",
                floor["p99_ms"],
                better="lower",
            ),
        ],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1000, help="commands timed (default 1000)")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--smoke", action="store_true", help="tiny run: the JSON's shape only")
    parser.add_argument("--agent", nargs=2, metavar=("RUN_DIR", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.smoke:
        args.n, args.warmup = 30, 5
    if args.agent:
        agent_side(Path(args.agent[0]), args.agent[1])
        return 0
    result = measure(args.n, args.warmup)
    print(json.dumps(result))
    return 0 if result["ok"] or args.smoke else 1


if __name__ == "__main__":
    sys.exit(main())
