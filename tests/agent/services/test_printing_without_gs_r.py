"""A printer model without GS r (it never says "printed"): with `confirm: received` each
job prints once; left at the default, the agent says what is wrong and stops sending a
job again after UNCONFIRMED_LIMIT tries instead of printing it until the paper runs out.
The simulator's network printer with `answers_gs_r: false`, the in-process agent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.services.printing import UNCONFIRMED_LIMIT
from tests.agent.services.test_printing import Store, printing_config, started
from tests.support.inproc_agent import start_sim_with
from tests.support.pty_devices import eventually
from tests.support.sim import SimHandle


def without_gs_r(raw: dict[str, Any]) -> None:
    entry = next(d for d in raw["devices"] if d["id"] == "printer-1")
    entry["answers_gs_r"] = False


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimHandle]:
    with start_sim_with(tmp_path, without_gs_r) as handle:
        yield handle


async def start_store(tmp_path: Path, sim: SimHandle, **printer: Any) -> Store:
    config = printing_config(
        tmp_path, sim, printer={"status_poll_seconds": 0.2} | printer, retry_seconds=0.2
    )
    return await started(config, sim)


async def test_confirm_received_prints_each_job_once(tmp_path: Path, sim: SimHandle) -> None:
    store = await start_store(tmp_path, sim, confirm="received")
    try:
        for text in ("第一张", "第二张"):
            await store.command("print", text=text)
        done = await store.done(2)
        jobs = await store.jobs()
    finally:
        await store.stop()
    assert [d["attempts"] for d in done] == [1, 1]
    assert all("confirmed" not in d for d in done)
    assert [j["text"].splitlines()[0] for j in jobs] == ["第一张", "第二张"]
    assert store.data("printer.error") == []


async def test_left_at_printed_it_says_why_and_stops_resending(
    tmp_path: Path, sim: SimHandle
) -> None:
    store = await start_store(tmp_path, sim, print_timeout_seconds=0.4)
    try:
        result = await store.command("print", text="没有确认")
        (done,) = await store.done(1, within=10)
        await eventually(lambda: len(store.view.print_jobs()) == 1, within=3)
        jobs = await store.jobs()
        errors = store.data("printer.error")
        online = store.printer_state()["online"]
    finally:
        await store.stop()
    assert done == {
        "printer": "printer-1",
        "job": result["job"],
        "kind": "text",
        "ref": None,
        "attempts": UNCONFIRMED_LIMIT,
        "confirmed": False,
    }
    assert len(jobs) == UNCONFIRMED_LIMIT  # printed each time it was sent, and no more
    assert errors == [{"printer": "printer-1", "error": "unconfirmed", "job": result["job"]}]
    assert online  # it answers: not reported offline
    assert [j["status"] for j in store.view.print_jobs()] == ["done"]
