"""Zero-touch enrollment (CONTRACTS section 9) as an installer does it: the hub makes a
code, a bare install redeems it with `shopgate-agent enroll`, and the agent started on
what was written comes online at the hub and opens its door for a pass."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from tests.support.agent import DEMO_CONFIG, make_keys, start_agent
from tests.support.broker import start_broker
from tests.support.hub import HubHandle, start_hub
from tests.support.sim import start_sim, wait_until

BIN = Path(sys.executable).parent


def run(*cmd: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / cmd[0]), *cmd[1:]],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def store_config(run_dir: Path) -> Path:
    """The store's devices as the owner set them at the hub: the demo's, on the simulator."""
    raw = yaml.safe_load(DEMO_CONFIG.read_text())
    for key in ("storage", "hub", "mqtt"):
        del raw[key]
    del raw["access"]["keys"]
    path = run_dir / "demo-001-agent.yaml"
    text = yaml.safe_dump(raw, allow_unicode=True).replace("${SHOPGATE_RUN:-.run}", str(run_dir))
    path.write_text(text)
    return path


def make_code(hub: HubHandle, *extra: str) -> str:
    out = run(
        "shopgate-hub",
        "enroll-code",
        "--store",
        "demo-001",
        "--config",
        str(hub.config),
        *extra,
        env={"SHOPGATE_RUN": str(hub.run_dir)},
    )
    assert out.returncode == 0, out.stderr
    code = out.stdout.strip()
    assert len(code.replace("-", "")) == 12 and "works once" in out.stderr
    return code


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_bare_install_enrolls_with_a_code_comes_online_and_opens_its_door(
    tmp_path: Path,
) -> None:
    keys = make_keys(tmp_path)
    broker = start_broker(tmp_path)
    template = store_config(tmp_path)

    def edit(raw: dict[str, Any]) -> None:
        raw["stores"][0]["agent_config"] = str(template)

    etc = tmp_path / "etc"
    try:
        with start_hub(tmp_path, edit=edit, env={"SHOPGATE_MQTT_URL": broker.url}) as hub:
            code = make_code(hub, "--qr", str(tmp_path / "code.png"))
            assert (tmp_path / "code.png").read_bytes()[:4] == b"\x89PNG"
            out = run(
                "shopgate-agent",
                "enroll",
                code,
                "--hub",
                hub.url,
                "--config-dir",
                str(etc),
                "--state-dir",
                str(tmp_path / "agent"),
            )
            assert out.returncode == 0, out.stderr
            assert "enrolled as store demo-001" in out.stdout
            config = yaml.safe_load((etc / "config.yaml").read_text())
            assert config["hub"] == {"url": hub.url, "token": hub.token}
            assert config["mqtt"]["url"] == broker.url
            assert mode(etc / "config.yaml") == 0o640 and mode(etc / "agent-key.pem") == 0o600
            assert "PRIVATE KEY" in (etc / "agent-key.pem").read_text()
            # The hub keeps the agent's public key.
            con = sqlite3.connect(hub.db_path)
            [(fingerprint,)] = con.execute(
                "SELECT fingerprint FROM agent_keys WHERE store_id = 'demo-001'"
            ).fetchall()
            con.close()
            assert len(fingerprint) == 64

            # The code works once: a second Pi gets a clear refusal and nothing written.
            again = run(
                "shopgate-agent",
                "enroll",
                code,
                "--hub",
                hub.url,
                "--config-dir",
                str(tmp_path / "etc2"),
            )
            assert again.returncode == 2 and "used_code" in again.stderr
            assert not (tmp_path / "etc2" / "config.yaml").exists()

            started = time.time()
            with start_sim(tmp_path) as sim, start_agent(tmp_path, etc / "config.yaml") as agent:

                def online() -> bool:
                    con = sqlite3.connect(hub.db_path)
                    try:
                        rows = con.execute(
                            "SELECT online FROM store_status_log WHERE store_id = 'demo-001' "
                            "ORDER BY id DESC LIMIT 1"
                        ).fetchall()
                    finally:
                        con.close()
                    return bool(rows and rows[0][0])

                wait_until(online, 20, "the enrolled store online at the hub")
                assert time.time() - started < 20
                sim.post(
                    "/scanners/scanner-front/scan", {"code": keys.mint(scope="entry", sub="e")}
                )
                agent.wait_event("access.granted")
    finally:
        broker.stop()


def test_wrong_expired_and_mistyped_codes_are_refused_and_write_nothing(tmp_path: Path) -> None:
    make_keys(tmp_path)
    with start_hub(tmp_path) as hub:
        expiring = make_code(hub, "--ttl-hours", "0.0003")  # about one second
        time.sleep(1.5)
        cases = {
            expiring: "expired_code",
            "0000-0000-0000": "unknown_code",
            "12345": "12 digits",
        }
        for i, (code, why) in enumerate(cases.items()):
            where = tmp_path / f"etc{i}"
            out = run(
                "shopgate-agent", "enroll", code, "--hub", hub.url, "--config-dir", str(where)
            )
            assert out.returncode == 2, out
            assert why in out.stderr, out.stderr
            assert not where.exists() or not any(where.iterdir())
        plain = run("shopgate-agent", "enroll", "0000-0000-0000", "--hub", "http://hub.example.com")
        assert plain.returncode == 2 and "https" in plain.stderr
        unknown_store = run(
            "shopgate-hub",
            "enroll-code",
            "--store",
            "nope",
            "--config",
            str(hub.config),
            env={"SHOPGATE_RUN": str(tmp_path)},
        )
        assert unknown_store.returncode == 2 and "demo-001" in unknown_store.stderr


def test_guessing_codes_is_paused_per_address(tmp_path: Path) -> None:
    make_keys(tmp_path)
    with start_hub(tmp_path) as hub:
        good = make_code(hub)
        statuses = []
        for n in range(11):
            status, body = hub.request(
                "POST",
                "/api/v1/enroll",
                {"code": f"{n:012d}", "public_key": _pem()},
                token=None,
            )
            statuses.append(status)
        assert statuses[:10] == [403] * 10 and statuses[10] == 429
        # Paused: even the right code waits (the guesser cannot tell a right one).
        status, body = hub.request(
            "POST", "/api/v1/enroll", {"code": good, "public_key": _pem()}, token=None
        )
        assert status == 429 and body["error"]["code"] == "paused"


def _pem() -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key = Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


def test_two_pis_racing_with_one_code_only_one_enrolls(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    make_keys(tmp_path)
    with start_hub(tmp_path) as hub:
        code = make_code(hub)

        def attempt(_: int) -> int:
            status, _body = hub.request(
                "POST", "/api/v1/enroll", {"code": code, "public_key": _pem()}, token=None
            )
            return status

        with ThreadPoolExecutor(8) as pool:
            statuses = sorted(pool.map(attempt, range(8)))
    assert statuses == [200] + [410] * 7
