"""runtime.systemd against a real AF_UNIX datagram socket standing in for systemd."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.systemd import Notifier, run_watchdog, watchdog_interval


class FakeSystemd:
    """The receiving end of NOTIFY_SOCKET, as PID 1 holds it."""

    def __init__(self, bind_to: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(bind_to)
        self.sock.settimeout(2)

    def receive(self) -> list[str]:
        return self.sock.recv(4096).decode().split("\n")

    def pending(self) -> list[list[str]]:
        got = []
        self.sock.setblocking(False)
        try:
            while True:
                got.append(self.sock.recv(4096).decode().split("\n"))
        except BlockingIOError:
            pass
        finally:
            self.sock.settimeout(2)
        return got


@pytest.fixture
def fs_systemd(tmp_path: Path) -> Iterator[tuple[FakeSystemd, str]]:
    path = str(tmp_path / "n.sock")
    if len(path) >= 100:  # sun_path is 108 bytes; pytest's tmp paths can be long
        path = f"/tmp/sg-{uuid.uuid4().hex[:8]}.sock"
    server = FakeSystemd(path)
    yield server, path
    server.sock.close()
    Path(path).unlink(missing_ok=True)


@pytest.fixture
def abstract_systemd() -> Iterator[tuple[FakeSystemd, str]]:
    name = f"shopgate-test-{uuid.uuid4().hex}"
    server = FakeSystemd("\0" + name)
    yield server, "@" + name
    server.sock.close()


def test_ready_status_stopping_on_a_filesystem_socket(fs_systemd) -> None:
    server, path = fs_systemd
    n = Notifier(path)
    assert n.enabled
    assert n.ready("serving 2 doors")
    assert server.receive() == ["READY=1", "STATUS=serving 2 doors"]
    assert n.status("lock bus\nlockbus-1 offline")
    assert server.receive() == ["STATUS=lock bus lockbus-1 offline"]
    assert n.watchdog()
    assert server.receive() == ["WATCHDOG=1"]
    assert n.stopping()
    assert server.receive() == ["STOPPING=1"]
    n.close()


def test_reloading_carries_the_monotonic_clock(fs_systemd) -> None:
    server, path = fs_systemd
    n = Notifier(path)
    n.reloading()
    reloading, stamp = server.receive()
    assert reloading == "RELOADING=1"
    assert stamp.startswith("MONOTONIC_USEC=") and int(stamp.split("=")[1]) > 0


def test_abstract_socket_from_the_environment(abstract_systemd, monkeypatch) -> None:
    server, address = abstract_systemd
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    for n in (Notifier(), Notifier.from_env()):
        assert n.ready()
        assert server.receive() == ["READY=1"]


def test_no_op_without_notify_socket(monkeypatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert not Notifier.from_env().enabled
    n = Notifier()
    assert not n.enabled
    assert n.ready("x") is False
    assert n.watchdog() is False


def test_a_vanished_socket_is_logged_not_raised(tmp_path: Path, caplog) -> None:
    n = Notifier(str(tmp_path / "gone.sock"))
    assert n.ready() is False
    assert n.watchdog() is False
    assert sum("notify failed" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "me"}, None),
    ],
)
def test_watchdog_interval(env: dict[str, str], expected: float | None) -> None:
    assert watchdog_interval(env) == expected


def test_watchdog_interval_reads_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert watchdog_interval() == 1.0


async def test_watchdog_pings_only_while_healthy(fs_systemd) -> None:
    server, path = fs_systemd
    state = {"healthy": True}
    task = asyncio.create_task(run_watchdog(Notifier(path), lambda: state["healthy"], 0.01))
    try:
        await asyncio.to_thread(server.receive)  # pinging
        state["healthy"] = False
        await asyncio.sleep(0.05)
        server.pending()  # drop pings sent before the flag was seen
        await asyncio.sleep(0.1)
        assert server.pending() == []  # ~10 intervals, no ping: systemd would restart us
        state["healthy"] = True
        assert await asyncio.to_thread(server.receive) == ["WATCHDOG=1"]
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_raising_health_check_counts_as_unhealthy(fs_systemd) -> None:
    server, path = fs_systemd

    def broken() -> bool:
        raise RuntimeError("db gone")

    task = asyncio.create_task(run_watchdog(Notifier(path), broken, 0.01))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert server.pending() == []


async def test_watchdog_returns_when_not_configured(monkeypatch, fs_systemd) -> None:
    _, path = fs_systemd
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    await asyncio.wait_for(run_watchdog(Notifier(path), lambda: True), 1)
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    await asyncio.wait_for(run_watchdog(Notifier(), lambda: True, 0.01), 1)
