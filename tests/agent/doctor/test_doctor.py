"""`shopgate-agent doctor` (CONTRACTS section 9) as an installer runs it: the real command
against the simulator's devices, a real broker and a real hub; exit 0 only when every
check passes, and each failure names its fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.agent import ISOLATED, make_keys, start_agent, write_config
from tests.support.broker import start_broker
from tests.support.hub import start_hub
from tests.support.sim import start_sim, wait_until

DOCTOR = [str(Path(sys.executable).with_name("shopgate-agent")), "doctor"]


def doctor(config: Path, env: dict[str, str], *extra: str) -> tuple[int, dict[str, Any]]:
    out = subprocess.run(
        [*DOCTOR, "--config", str(config), "--json", *extra],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )
    assert out.stdout, out.stderr
    return out.returncode, json.loads(out.stdout)


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    checks = report["checks"]
    for c in checks:
        assert set(c) == {"name", "ok", "detail", "fix"}, c
    return {c["name"]: c for c in checks}


def test_a_store_set_up_right_passes_every_check(tmp_path: Path) -> None:
    make_keys(tmp_path)
    broker = start_broker(tmp_path)
    env = {"SHOPGATE_RUN": str(tmp_path), "SHOPGATE_MQTT_URL": broker.url}
    try:
        with start_sim(tmp_path), start_hub(tmp_path, env={"SHOPGATE_MQTT_URL": broker.url}) as hub:
            env |= hub.agent_env
            code, report = doctor(write_config(tmp_path), env)
            checks = by_name(report)
            assert code == 0, [c for c in report["checks"] if not c["ok"]]
            for device in ("lockbus-1", "vending-1", "scanner-front", "printer-1"):
                assert checks[f"device {device}"]["ok"], checks[f"device {device}"]
            assert "token is accepted" in checks["hub"]["detail"]
            assert checks["journal"]["ok"] and checks["config"]["ok"]
    finally:
        broker.stop()


def test_an_unplugged_device_a_wrong_token_and_no_broker_each_fail_with_a_fix(
    tmp_path: Path,
) -> None:
    make_keys(tmp_path)
    with start_sim(tmp_path) as sim, start_hub(tmp_path) as hub:
        (sim.dir / "scanner-front").unlink()  # the scanner's USB cable pulled
        env = {
            **ISOLATED,
            "SHOPGATE_RUN": str(tmp_path),
            "SHOPGATE_HUB_URL": hub.url,
            "SHOPGATE_STORE_TOKEN": "not-the-store-token",
        }
        code, report = doctor(write_config(tmp_path), env)
    checks = by_name(report)
    assert code == 1
    assert not checks["port scanner-front"]["ok"]
    assert "udev" in checks["port scanner-front"]["fix"]
    assert not checks["device scanner-front"]["ok"]
    assert checks["device lockbus-1"]["ok"]  # the rest still answers
    assert not checks["hub"]["ok"] and "token" in checks["hub"]["fix"]
    assert not checks["broker"]["ok"]
    assert "not-the-store-token" not in json.dumps(report)


def test_a_broken_config_fails_with_its_line_and_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "config.yaml"
    bad.write_text("store:\n  id: demo-001\n  colour: blue\n")
    code, report = doctor(bad, {})
    checks = by_name(report)
    assert code == 1
    assert not checks["config"]["ok"]
    assert "config.yaml:3" in checks["config"]["detail"]
    assert "check-config" in checks["config"]["fix"]


def test_a_missing_config_points_at_enrollment(tmp_path: Path) -> None:
    code, report = doctor(tmp_path / "nowhere.yaml", {})
    assert code == 1
    assert "enroll" in by_name(report)["config"]["fix"]


def test_a_damaged_journal_is_found(tmp_path: Path) -> None:
    make_keys(tmp_path)
    storage = tmp_path / "agent"
    storage.mkdir()
    (storage / "journal.db").write_bytes(b"SQLite format 3\x00" + os.urandom(8192))
    code, report = doctor(write_config(tmp_path), {**ISOLATED, "SHOPGATE_RUN": str(tmp_path)})
    checks = by_name(report)
    assert code == 1
    assert not checks["journal"]["ok"], checks["journal"]
    assert "keep a copy" in checks["journal"]["fix"] or "copy" in checks["journal"]["fix"]
    assert checks["keys"]["ok"]


def test_a_key_that_is_not_a_key_is_named(tmp_path: Path) -> None:
    make_keys(tmp_path)
    (tmp_path / "keys" / "hub-signing.pub.pem").write_text("not a key\n")
    code, report = doctor(write_config(tmp_path), {**ISOLATED, "SHOPGATE_RUN": str(tmp_path)})
    by_name(report)  # every check has name, ok, detail, fix
    assert code == 1
    bad = [c for c in report["checks"] if not c["ok"]]
    assert any("hub-signing.pub.pem" in c["detail"] for c in bad), bad


def test_with_the_agent_running_the_doctor_reads_its_health_and_leaves_its_ports(
    tmp_path: Path,
) -> None:
    keys = make_keys(tmp_path)
    broker = start_broker(tmp_path)
    env = {"SHOPGATE_RUN": str(tmp_path), "SHOPGATE_MQTT_URL": broker.url}
    try:
        with start_sim(tmp_path) as sim, start_agent(tmp_path, env=env) as agent:
            health = tmp_path / "agent" / "health.json"
            # rewritten every few seconds: wait for one written once the agent logged in
            wait_until(
                lambda: health.exists() and json.loads(health.read_text())["mqtt"]["connected"],
                20,
                "health.json with the agent logged in",
            )
            code, report = doctor(
                write_config(tmp_path), {**env, "SHOPGATE_HUB_URL": "http://127.0.0.1:9"}
            )
            checks = by_name(report)
            assert checks["device lockbus-1"]["ok"], checks["device lockbus-1"]
            assert "running agent" in checks["device lockbus-1"]["detail"]
            assert "the agent is logged in" in checks["broker"]["detail"]
            assert not checks["hub"]["ok"] and code == 1
            # the agent kept its ports and its broker session: a pass still opens the door
            sim.post("/scanners/scanner-front/scan", {"code": keys.mint(scope="entry", sub="d")})
            agent.wait_event("access.granted")
    finally:
        broker.stop()
