"""`shopgate-hub run` as a real process: start, serve, restart, stop, and what it logs."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.signing import write_keypair
from tests.support.hub import (
    DEMO_HUB_CONFIG,
    HubHandle,
    hub_command,
    make_event,
    make_events,
    start_hub,
)
from tests.support.postgres import postgres_database
from tests.support.sim import wait_until


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubHandle]:
    with start_hub(tmp_path) as handle:
        yield handle


def test_the_demo_hub_takes_events_and_lists_them(hub: HubHandle) -> None:
    assert hub.post_events(make_events(1, 5)) == (200, {"accepted": 5, "duplicates": 0})
    assert hub.post_events(make_events(3, 5)) == (200, {"accepted": 2, "duplicates": 3})
    assert [e["seq"] for e in hub.all_events()] == [1, 2, 3, 4, 5, 6, 7]
    # the events are in the SQLite file named in hub.yaml
    with sqlite3.connect(f"file:{hub.db_path}?mode=ro", uri=True) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (7,)


def test_a_gzip_batch_over_real_http(hub: HubHandle) -> None:
    assert hub.post_events(make_events(1, 300), gzip=True) == (
        200,
        {"accepted": 300, "duplicates": 0},
    )


def test_wrong_tokens_are_refused(hub: HubHandle) -> None:
    assert hub.post_events([make_event(1)], token=None)[0] == 401
    assert hub.post_events([make_event(1)], token="tok-guess")[0] == 401
    assert hub.get_events(token="tok-guess")[0] == 401
    assert hub.get_events()[1] == {"events": []}


def test_health(hub: HubHandle) -> None:
    status, body = hub.request("GET", "/healthz", token=None)
    assert status == 200 and body["ok"] is True and body["db"] == "sqlite"


def test_a_restarted_hub_keeps_its_events_and_port(tmp_path: Path) -> None:
    with start_hub(tmp_path) as first:
        assert first.post_events(make_events(1, 10))[0] == 200
        port, token = first.port, first.token
    with start_hub(tmp_path, port=port, token=token) as second:
        assert second.port == port
        assert [e["seq"] for e in second.all_events()] == list(range(1, 11))
        assert second.post_events(make_events(1, 12)) == (200, {"accepted": 2, "duplicates": 10})


def test_a_new_token_in_the_config_replaces_the_old_one(tmp_path: Path) -> None:
    with start_hub(tmp_path) as first:
        old = first.token
    with start_hub(tmp_path, port=first.port) as second:
        assert second.token != old
        assert second.get_events(token=old)[0] == 401
        assert second.get_events()[0] == 200


def test_sigterm_stops_it_cleanly_and_quickly(hub: HubHandle) -> None:
    assert hub.post_events([make_event(1)])[0] == 200
    started = time.monotonic()
    assert hub.stop(signal.SIGTERM, timeout=5.0) == 0
    assert time.monotonic() - started < 5.0
    assert "stopped" in hub.log()
    assert "Traceback" not in hub.log()


def test_sigterm_during_a_stream_of_posts_loses_nothing_answered(tmp_path: Path) -> None:
    hub = start_hub(tmp_path)
    answered: list[int] = []
    refused = threading.Event()

    def post_until_refused() -> None:
        seq = 1
        while True:
            try:
                status, _ = hub.post_events(make_events(seq, 200))
            except OSError:  # connection refused or reset: the hub is going
                break
            if status != 200:
                break
            answered.extend(range(seq, seq + 200))
            seq += 200
        refused.set()

    poster = threading.Thread(target=post_until_refused)
    poster.start()
    try:
        wait_until(lambda: len(answered) >= 1000, 10, "some batches answered")
        hub.proc.send_signal(signal.SIGTERM)
        assert hub.proc.wait(5) == 0
        assert refused.wait(5)
    finally:
        hub.stop()
        poster.join(10)
    with sqlite3.connect(f"file:{hub.db_path}?mode=ro", uri=True) as conn:
        stored = {row[0] for row in conn.execute("SELECT seq FROM events")}
    assert set(answered) <= stored


def test_tokens_never_appear_in_the_log(tmp_path: Path) -> None:
    other_token = "tok-other-store-SECRET-0123456789"
    merchant_token = "tok-merchant-SECRET-0123456789"
    guessed = "tok-guessed-SECRET-0123456789"

    def edit(raw: dict) -> None:
        raw["stores"].append({"id": "demo-002", "token": other_token})
        raw["merchants"] = [{"id": "acme", "token": merchant_token, "stores": ["demo-001"]}]

    with start_hub(tmp_path, edit=edit, log_format="json", args=["--log-level", "DEBUG"]) as hub:
        hub.post_events(make_events(1, 3))
        hub.post_events([{"bad": hub.token}])  # a body holding a token, refused
        hub.post_events([make_event(1)], token=other_token)  # 403
        hub.post_events([make_event(1)], token=merchant_token)  # 403
        hub.get_events(token=guessed)  # 401
        hub.get_events(token=merchant_token)
        hub.request("GET", f"/api/v1/stores/demo-001/events?token={guessed}")
        hub.request(
            "POST", "/api/v1/stores/demo-001/events", headers={"Authorization": guessed}, data=b"{}"
        )
    log = hub.log()
    assert "batch refused" in log and "forbidden" in log and "unknown token" in log
    for secret in (hub.token, other_token, merchant_token, guessed, "SECRET"):
        assert secret not in log
    for line in log.splitlines():
        json.loads(line)  # --log-format json: one object per line


def test_the_hub_runs_on_postgresql(tmp_path: Path) -> None:
    with postgres_database() as url:
        with start_hub(tmp_path, db_url=url) as hub:
            assert hub.request("GET", "/healthz", token=None)[1]["db"] == "postgresql"
            assert hub.post_events(make_events(1, 20)) == (200, {"accepted": 20, "duplicates": 0})
            port, token = hub.port, hub.token
        with start_hub(tmp_path, db_url=url, port=port, token=token) as hub:
            assert len(hub.all_events()) == 20
        assert not hub.db_path.exists()  # nothing went to SQLite


def run_hub_briefly(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*hub_command(), *args],
        capture_output=True,
        text=True,
        timeout=20,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_a_bad_db_url_exits_2_with_one_line(tmp_path: Path) -> None:
    write_keypair(tmp_path / "keys", "demo")
    env = {"SHOPGATE_RUN": str(tmp_path)}
    r = run_hub_briefly("run", "--config", str(DEMO_HUB_CONFIG), "--db", "mysql://x@y/z", env=env)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "unsupported database" in r.stderr


def test_a_bad_config_exits_2_naming_the_line(tmp_path: Path) -> None:
    config = tmp_path / "hub.yaml"
    config.write_text("http:\n  listen: nowhere\n")
    r = run_hub_briefly("run", "--config", str(config))
    assert r.returncode == 2
    assert f"{config}:2: http.listen: 'nowhere' is not HOST:PORT" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_busy_port_exits_1_saying_so(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        hub = start_hub(tmp_path, port=port, wait_ready=False)
        assert hub.proc.wait(15) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in hub.log()
    assert "Traceback" not in hub.log()


def test_an_unreachable_database_exits_1_saying_so(tmp_path: Path) -> None:
    hub = start_hub(tmp_path, db_url="postgresql://postgres@127.0.0.1:1/nothing", wait_ready=False)
    assert hub.proc.wait(15) == 1
    log = hub.log()
    assert "cannot open the database postgresql+asyncpg://postgres@127.0.0.1:1/nothing" in log
    assert "Traceback" not in log
