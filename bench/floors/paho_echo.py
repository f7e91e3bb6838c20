"""The peer of a command round trip: bare paho, no signature, no journal. One client
publishes a request at QoS 1, a second (in its own thread, as the agent is its own
process) echoes it back at QoS 1, and the first times publish -> echo received: the same
two broker hops a signed command and its reply take."""

from __future__ import annotations

import socket
import statistics
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt


def _client(host: str, port: int, name: str) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv5)
    c.connect(host, port)
    c.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return c


def round_trips(host: str, port: int, n: int = 1000, warmup: int = 50) -> dict[str, Any]:
    echo = _client(host, port, "floor-echo")
    asker = _client(host, port, "floor-ask")
    subscribed = threading.Event()
    arrived = threading.Event()
    echo.on_message = lambda c, u, m: c.publish("floor/pong", m.payload, qos=1)
    echo.on_subscribe = lambda *a: subscribed.set()
    asker.on_message = lambda c, u, m: arrived.set()
    echo.subscribe("floor/ping", qos=1)
    asker.subscribe("floor/pong", qos=1)
    echo.loop_start()
    asker.loop_start()
    samples: list[float] = []
    try:
        subscribed.wait(5)
        time.sleep(0.2)  # both subscriptions in place
        for i in range(n + warmup):
            arrived.clear()
            t0 = time.perf_counter()
            asker.publish("floor/ping", b"x" * 200, qos=1)
            if not arrived.wait(5):
                raise RuntimeError(f"no echo for message {i}")
            if i >= warmup:
                samples.append((time.perf_counter() - t0) * 1000)
    finally:
        for c in (echo, asker):
            c.loop_stop()
            c.disconnect()
    samples.sort()
    return {
        "p50_ms": statistics.median(samples),
        "p99_ms": samples[min(len(samples) - 1, int(len(samples) * 0.99))],
        "round_trips": len(samples),
    }
