"""The demo's own broker and hub, on free loopback ports (nothing else on this machine
is touched: a system Mosquitto on 1883 or a service on 8080 may already be there)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"demo: {what} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"demo: {what} did not start listening on port {port}")


def start_broker(run: Path, log: Any) -> tuple[subprocess.Popen[bytes], int]:
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    base = run / "broker"
    base.mkdir(parents=True, exist_ok=True)
    lines = [
        f"listener {port} 127.0.0.1",
        "allow_anonymous true",
        "set_tcp_nodelay true",  # 0.7 ms round trips instead of 88 ms (Nagle + delayed ACK)
        "persistence false",
    ]
    if os.geteuid() == 0:
        lines.append("user root")
    conf = base / "mosquitto.conf"
    conf.write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen(
        [exe, "-c", str(conf)], stdout=log, stderr=log, stdin=subprocess.DEVNULL
    )
    wait_port(port, proc, "mosquitto")
    return proc, port


def start_hub(
    bin_dir: Path, config: Path, env: dict[str, str], log: Any
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**env, "SHOPGATE_HUB_LISTEN": f"127.0.0.1:{port}"}
    proc = subprocess.Popen(
        [str(bin_dir / "shopgate-hub"), "run", "--config", str(config)],
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    wait_port(port, proc, "the hub")
    return proc, f"http://127.0.0.1:{port}"


def hub_events(url: str, store: str, token: str) -> list[dict[str, Any]]:
    req = urllib.request.Request(
        f"{url}/api/v1/stores/{store}/events?after_seq=0&limit=1000",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())["events"]


def hub_orders(url: str, store: str, token: str) -> dict[str, dict[str, Any]]:
    req = urllib.request.Request(
        f"{url}/api/v1/stores/{store}/orders?status=pending",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return {o["id"]: o for o in json.loads(resp.read())["orders"]}


def answer_entry_question(url: str, answers: dict[str, str]) -> str:
    """What a phone does on the entry page: load it (keeping its cookie), answer the
    question shown (picked by a word in it), submit; returns the resulting page."""
    import html
    import http.cookiejar
    import re

    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    with opener.open(url, timeout=10) as resp:
        page = resp.read().decode()
    token = html.unescape(re.search(r'name="t" value="([^"]*)"', page)[1])
    question = html.unescape(re.search(r'class="question"[^>]*>([^<]*)<', page)[1])
    answer = next((a for word, a in answers.items() if word in question), "")
    data = urllib.parse.urlencode({"t": token, "answer": answer}).encode()
    with opener.open(urllib.request.Request(url, data=data, method="POST"), timeout=20) as resp:
        return resp.read().decode()
