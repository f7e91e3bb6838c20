"""Printing on a serial printer (RS232 / USB CDC): the same driver through python-escpos's
Serial connection, on the simulator's printer put on a real pseudo-terminal. What a
serial line changes: reads time out instead of closing, and an unplugged USB adapter
comes back as a new tty, which the driver finds again through the symlink."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent.services.test_printing import P, Store, order, printing_config, read_png, started
from tests.support.inproc_agent import start_sim_with
from tests.support.pty_devices import eventually
from tests.support.sim import SimHandle


def serial_printer(raw: dict[str, Any]) -> None:
    entry = next(d for d in raw["devices"] if d["id"] == "printer-1")
    entry["transport"] = "serial"


@pytest.fixture
def serial_sim(tmp_path: Path) -> Iterator[SimHandle]:
    with start_sim_with(tmp_path, serial_printer) as handle:
        yield handle


@pytest.fixture
async def store(tmp_path: Path, serial_sim: SimHandle) -> AsyncIterator[Store]:
    line = {"type": "serial", "port": str(serial_sim.link("printer-1")), "baudrate": 19200}
    config = printing_config(tmp_path, serial_sim, connection=line, printer={"timeout_seconds": 1})
    s = await started(config, serial_sim)
    try:
        yield s
    finally:
        await s.stop()


async def test_a_pick_slip_prints_over_the_serial_line_with_a_scannable_code(
    store: Store,
) -> None:
    assert store.sim.devices["printer-1"]["path"].startswith("/dev/pts/")
    await store.upsert(order("s1"))
    (done,) = await store.done(1)
    assert done["attempts"] == 1
    (job,) = await store.jobs()
    assert job["cut"] and "#12" in job["text"] and "取货码 123456" in job["text"]
    (code,) = await asyncio.to_thread(read_png, store.sim, P + "/jobs/0/qr/0")
    assert code.text == "123456"


async def test_paper_out_on_a_serial_printer_holds_the_job_until_the_paper_is_back(
    store: Store,
) -> None:
    await store.sim_post(P + "/paper", {"out": True})
    await eventually(lambda: store.data("printer.error"), within=3)
    assert store.data("printer.error")[0]["error"] == "paper_out"
    result = await store.command("print", text="串口缺纸")
    await asyncio.sleep(0.8)
    assert await store.jobs() == []
    await store.sim_post(P + "/paper", {"out": False})
    (done,) = await store.done(1)
    assert done["job"] == result["job"]
    (job,) = await store.jobs()
    assert job["text"].startswith("串口缺纸")


async def test_an_unplugged_serial_printer_is_found_again_and_prints_the_job_once(
    store: Store,
) -> None:
    await store.sim_post(P + "/speed", {"line_ms": 100})
    await store.upsert(order("s2"), settle=False)
    await eventually(lambda: store.sim.get(P)["printing"], within=3)
    await asyncio.sleep(0.3)
    await store.sim_post("/devices/printer-1/unplug", {"seconds": 1})
    await eventually(lambda: not store.printer_state()["online"], within=5)
    (done,) = await store.done(1, within=15)
    assert done["attempts"] == 2
    complete = [j for j in await store.jobs() if j["cut"]]
    assert len(complete) == 1 and "#12" in complete[0]["text"]
    assert [j["status"] for j in store.view.print_jobs()] == ["done"]
