"""Run the real hub (`shopgate-hub run`) as a subprocess and talk to it over HTTP.

    with start_hub(tmp_path) as hub:
        status, body = hub.post_events([make_event(1)])
        assert body == {"accepted": 1, "duplicates": 0}
        agent = start_agent(tmp_path, env=hub.agent_env)   # the agent posts to this hub

The hub runs the repository's hub.yaml with SHOPGATE_RUN=run_dir (its SQLite database is
run_dir/hub/hub.db, its key run_dir/keys/hub-signing.pem, made here when missing: the
same place tests.support.agent.make_keys puts it). It listens on port 0 unless told a
port, and the handle reads the real one from its log. Restart on the same port (what an
agent expects) with `start_hub(run_dir, port=old.port, token=old.token)`.
"""

from __future__ import annotations

import gzip as gzip_module
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cloud.signing import PRIVATE_KEY_NAME, write_keypair
from tests.support.process import ProcessHandle
from tests.support.sim import wait_until

REPO = Path(__file__).resolve().parents[2]
DEMO_HUB_CONFIG = REPO / "hub.yaml"
STORE = "demo-001"
START_TIMEOUT_S = 15.0
_LISTENING = re.compile(r"listening on (http://\S+?:(\d+))\b")


def make_event(seq: int, *, store: str = STORE, type_: str = "door.opened", **data: Any) -> dict:
    """An event envelope as an agent sends it (CONTRACTS section 4); the id is derived
    from store and seq, so the same call twice gives the same event."""
    return {
        "id": f"{store}-{seq:012d}",
        "store": store,
        "seq": seq,
        "ts": "2025-01-31T08:00:00.000Z",
        "type": type_,
        "data": data or {"door": "front"},
    }


def make_events(first_seq: int, count: int, **kw: Any) -> list[dict]:
    return [make_event(seq, **kw) for seq in range(first_seq, first_seq + count)]


@dataclass
class HubHandle(ProcessHandle):
    name = "hub"

    url: str
    port: int
    proc: subprocess.Popen[bytes]
    run_dir: Path
    config: Path
    db_url: str | None  # None: the default SQLite file, db_path
    db_path: Path
    token: str
    log_path: Path
    store: str = STORE

    @property
    def agent_env(self) -> dict[str, str]:
        """Environment for start_agent(...) so that the demo agent posts to this hub."""
        return {"SHOPGATE_HUB_URL": self.url, "SHOPGATE_STORE_TOKEN": self.token}

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = "",
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
        timeout: float = 10.0,
    ) -> tuple[int, Any]:
        """(status, parsed JSON body). `token` "" means the store's own, None none at all;
        `data` sends those bytes as they are instead of `body` as JSON."""
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token or self.token}"
        payload = data if data is not None else None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path, data=payload, method=method, headers=all_headers
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, raw.decode(errors="replace")

    def post_events(
        self,
        events: Iterable[dict],
        *,
        store: str | None = None,
        token: str | None = "",
        gzip: bool = False,
    ) -> tuple[int, Any]:
        data = json.dumps({"events": list(events)}).encode()
        headers = {}
        if gzip:
            data = gzip_module.compress(data)
            headers["Content-Encoding"] = "gzip"
        path = f"/api/v1/stores/{store or self.store}/events"
        return self.request("POST", path, token=token, headers=headers, data=data)

    def get_events(
        self,
        after_seq: int | None = None,
        limit: int | None = None,
        *,
        store: str | None = None,
        token: str | None = "",
    ) -> tuple[int, Any]:
        query = "&".join(
            f"{k}={v}" for k, v in (("after_seq", after_seq), ("limit", limit)) if v is not None
        )
        path = f"/api/v1/stores/{store or self.store}/events" + (f"?{query}" if query else "")
        return self.request("GET", path, token=token)

    def all_events(self, *, store: str | None = None, token: str | None = "") -> list[dict]:
        """Every stored event of the store, in seq order, paging as a client would."""
        out: list[dict] = []
        after = 0
        while True:
            status, body = self.get_events(after, 1000, store=store, token=token)
            assert status == 200, body
            if not body["events"]:
                return out
            out.extend(body["events"])
            after = body["events"][-1]["seq"]


def hub_command() -> list[str]:
    return [str(Path(sys.executable).with_name("shopgate-hub"))]


def production_env() -> dict[str, str]:
    """Environment giving the demo hub.yaml a production hub's own secrets: with it the
    demo config may serve other machines (a trusted reverse proxy, a public address);
    edit the signing kid too (`own_kid`)."""
    env = {
        "SHOPGATE_MERCHANT_TOKEN": f"merchant-{secrets.token_hex(16)}",
        "SHOPGATE_PAY_DEMO": "false",
        "SHOPGATE_PAY_NOTIFY_SECRET": secrets.token_hex(16),
    }
    for name in ("MEITUAN", "ELEME", "JDDJ", "DOUYIN", "WDT", "JST"):
        env[f"SHOPGATE_{name}_SECRET"] = secrets.token_hex(16)
    return env


def own_kid(raw: dict[str, Any]) -> None:
    """A hub.yaml edit: the hub's own signing key id rather than the demo's."""
    raw["signing"]["kid"] = "a1b2c3d4"


def write_hub_config(run_dir: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    """The demo hub.yaml, edited, written as run_dir/hub.yaml (${VAR}s kept as they are)."""
    raw = yaml.safe_load(DEMO_HUB_CONFIG.read_text(encoding="utf-8"))
    edit(raw)
    path = run_dir / "hub.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def start_hub(
    run_dir: Path,
    *,
    token: str | None = None,
    port: int = 0,
    db_url: str | None = None,
    config: Path | None = None,
    edit: Callable[[dict[str, Any]], None] | None = None,
    env: dict[str, str] | None = None,
    args: Iterable[str] = (),
    log_format: str = "text",
    wait_ready: bool = True,
) -> HubHandle:
    """Start the hub; `token` (default: a new random one) is demo-001's, `edit` changes
    the demo hub.yaml (add stores, merchants...), `db_url` is passed as --db."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if not (run_dir / "keys" / PRIVATE_KEY_NAME).exists():
        write_keypair(run_dir / "keys", "demo")
    token = token or f"tok-{secrets.token_urlsafe(24)}"
    if config is None:
        config = write_hub_config(run_dir, edit) if edit else DEMO_HUB_CONFIG
    log_path = run_dir / f"hub-{len(list(run_dir.glob('hub-*.log')))}.log"
    cmd = [*hub_command(), "run", "--config", str(config), "--log-format", log_format, *args]
    if db_url:
        cmd += ["--db", db_url]
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={
                **os.environ,
                # no broker unless the test gives one: never the machine's own on 1883
                "SHOPGATE_MQTT_URL": "mqtt://127.0.0.1:9",
                "SHOPGATE_RUN": str(run_dir),
                "SHOPGATE_HUB_LISTEN": f"127.0.0.1:{port}",
                "SHOPGATE_STORE_TOKEN": token,
                **(env or {}),
            },
        )
    handle = HubHandle(
        url="",
        port=port,
        proc=proc,
        run_dir=run_dir,
        config=config,
        db_url=db_url,
        db_path=run_dir / "hub" / "hub.db",
        token=token,
        log_path=log_path,
    )
    if wait_ready:
        try:
            _wait_ready(handle)
        except BaseException:
            handle.stop(signal.SIGKILL)
            raise
    return handle


def _wait_ready(handle: HubHandle) -> None:
    def listening() -> re.Match[str] | None:
        if handle.proc.poll() is not None:
            raise RuntimeError(f"hub exited with {handle.proc.returncode}:\n{handle.log()[-3000:]}")
        return _LISTENING.search(handle.log())

    try:
        m = wait_until(listening, START_TIMEOUT_S, "the hub to listen")
    except TimeoutError as e:
        raise TimeoutError(f"{e}\n--- hub log ---\n{handle.log()[-3000:]}") from None
    handle.url, handle.port = m[1], int(m[2])
    status, body = handle.request("GET", "/healthz", token=None)
    if status != 200:
        raise RuntimeError(f"hub not healthy: {status} {body}\n{handle.log()[-3000:]}")
