"""Printing by the in-process agent on the simulator's network printer (real TCP, the
simulator as a real process): pick slips on order arrival, the print command, paper out,
unplugging, restarts. What was printed is read back from the simulated printer; what the
agent recorded, from its real journal."""

from __future__ import annotations

import asyncio
import io
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from PIL import Image

from agent.journal import PutProduct
from agent.model.commands import BAD_ARGS, CommandError
from tests.support.inproc_agent import InprocAgent, seed_journal, write_agent_config
from tests.support.pty_devices import eventually
from tests.support.sim import SimHandle

P = "/printers/printer-1"
COLA, CHIPS = "6901028075022", "6920202888883"


def printing_config(
    tmp: Path,
    sim: SimHandle,
    *,
    connection: dict[str, Any] | None = None,
    printer: dict[str, Any] | None = None,
    **printing: Any,
) -> Path:
    """The agent's config with printer-1: the simulator's network printer unless another
    `connection` is given; `printer` adds to its device entry, `printing` to printing:."""

    def edit(cfg: dict[str, Any]) -> None:
        cfg["store"] |= {"name": "演示店", "timezone": "Asia/Shanghai"}
        del cfg["doors"][0]["contact"]
        link = {"type": "network", "address_file": str(sim.link("printer-1"))}
        device = {
            "id": "printer-1",
            "kind": "printer",
            "connection": connection or link,
            "paper_chars": 32,
            "status_poll_seconds": 0.3,
            "timeout_seconds": 2,
        }
        cfg["devices"].append(device | (printer or {}))
        cfg["printing"] = {
            "pick_slips": "printer-1",
            "receipts": "printer-1",
            "labels": "printer-1",
            "retry_seconds": 0.3,
        } | printing

    return write_agent_config(tmp, sim, edit)


class Store(InprocAgent):
    async def jobs(self) -> list[dict[str, Any]]:
        return await self.sim_get(P + "/jobs")

    def printer_state(self) -> dict[str, Any]:
        return self.agent.state()["printing"]["printers"]["printer-1"]

    async def done(self, count: int, within: float = 5.0) -> list[dict[str, Any]]:
        await eventually(lambda: len(self.data("print.done")) >= count, within=within)
        return self.data("print.done")


async def started(config: Path, sim: SimHandle) -> Store:
    return await Store.start(
        config, sim, ready=lambda a: a.store.devices["printer-1"].online, within=5
    )


@pytest.fixture
async def store(tmp_path: Path, sim: SimHandle) -> AsyncIterator[Store]:
    catalog = [PutProduct({"barcode": CHIPS, "name": "乐事薯片", "shelf": "B-07"})]
    await seed_journal(tmp_path, ops=catalog)
    s = await started(printing_config(tmp_path, sim), sim)
    try:
        yield s
    finally:
        await s.stop()


def order(oid: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": oid,
        "platform": "meituan",
        "platform_order_id": f"MT{oid}",
        "day_seq": 12,
        "pickup_code": "123456",
        "status": "pending",
        "items": [
            {"barcode": COLA, "name": "可口可乐 500ml", "qty": 2, "shelf": "A-01"},
            {"barcode": CHIPS, "name": "乐事薯片", "qty": 1},  # shelf from the catalogue
        ],
        "note": "不要吸管",
    } | extra


def read_png(sim: SimHandle, path: str) -> Any:
    with urllib.request.urlopen(sim.control_url + path, timeout=5) as resp:
        return zxingcpp.read_barcodes(Image.open(io.BytesIO(resp.read())))


async def test_a_new_order_prints_one_pick_slip_with_its_shelves(store: Store) -> None:
    await store.upsert(order("o1"))
    await store.upsert(order("o1", note="不要吸管, 谢谢"))  # the same order again: no new slip
    (done,) = await store.done(1)
    await asyncio.sleep(0.5)
    (job,) = await store.jobs()
    assert job["cut"] is True
    text = job["text"]
    for expected in ("美团外卖", "#12", "订单号: MTo1", "货架号", "A-01", "B-07", "可口可乐 500ml"):
        assert expected in text, expected
    assert "备注: 不要吸管" in text and "取货码 123456" in text
    big = next(line for line in job["lines"] if line["text"] == "#12")
    assert (big["width"], big["height"], big["align"]) == (3, 3, "center")
    # Shelves in walking order; each item's line carries its shelf and quantity.
    lines = text.splitlines()
    a01 = next(i for i, line in enumerate(lines) if line.startswith("A-01"))
    b07 = next(i for i, line in enumerate(lines) if line.startswith("B-07"))
    assert a01 < b07 and lines[a01].rstrip().endswith("x2") and lines[b07].rstrip().endswith("x1")
    assert job["qr"] == ["123456"]
    (qr,) = await asyncio.to_thread(read_png, store.sim, P + "/jobs/0/qr/0")
    assert qr.text == "123456"
    assert done == {
        "printer": "printer-1",
        "job": done["job"],
        "kind": "pick_slip",
        "ref": "o1",
    } | {"attempts": 1}
    assert [j["status"] for j in store.view.print_jobs()] == ["done"]
    assert store.printer_state()["queued"] == 0 and store.printer_state()["online"]


async def test_orders_that_are_not_pending_print_nothing(store: Store) -> None:
    await store.upsert(order("o2", status="cancelled", pickup_code="222222"))  # and settled
    assert await store.jobs() == [] and store.view.print_jobs() == []


async def test_print_command_text_receipt_and_label(store: Store) -> None:
    r1 = await store.command("print", printer="printer-1", text="补货提醒: 可乐 ¥3.50\n第二行")
    r2 = await store.command(
        "print",
        receipt={
            "sale": "S-1",
            "channel": "checkout",
            "items": [{"barcode": COLA, "name": "可口可乐", "qty": 2, "price": 3.5}],
            "total": 7.0,
            "payment": {"id": "pay-1", "method": "wechat"},
            "order": None,
        },
    )
    r3 = await store.command("print", label={"barcode": COLA, "name": "可口可乐", "price": 3.5})
    assert {r1["printer"], r2["printer"], r3["printer"]} == {"printer-1"}
    done = await store.done(3)
    assert [d["job"] for d in done] == [r1["job"], r2["job"], r3["job"]]
    text, sale, label = await store.jobs()
    assert "补货提醒: 可乐 ￥3.50\n第二行" in text["text"]
    assert "可口可乐" in sale["text"] and "￥7.00" in sale["text"] and "微信支付" in sale["text"]
    assert "2 x ￥3.50" in sale["text"]
    assert "￥3.50" in label["text"] and label["barcodes"][0]["data"] == COLA
    (bar,) = await asyncio.to_thread(read_png, store.sim, P + "/jobs/2/barcodes/0")
    assert (bar.format, bar.text) == (zxingcpp.BarcodeFormat.EAN13, COLA)


async def test_print_command_refuses_what_it_cannot_print(store: Store) -> None:
    for args, message in [
        ({}, "exactly one"),
        ({"text": "a", "label": {}}, "exactly one"),
        ({"printer": "printer-9", "text": "a"}, "no printer 'printer-9'"),
        ({"order": "nope"}, "no order 'nope'"),
        ({"label": {"barcode": "6901028075023", "name": "x", "price": 1}}, "check digit"),
        ({"label": {"barcode": COLA, "name": "x"}}, "price"),
        ({"receipt": {"items": []}}, "needs items"),
        ({"text": "  "}, "empty"),
    ]:
        with pytest.raises(CommandError) as err:
            await store.command("print", **args)
        assert err.value.code == BAD_ARGS and message in err.value.message, args
    assert store.view.print_jobs() == []


async def test_print_order_reprints_on_request(store: Store) -> None:
    await store.upsert(order("o3"))
    await store.done(1)
    again = await store.command("print", order="o3")
    done = await store.done(2)
    assert done[1]["job"] == again["job"] and done[1]["kind"] == "pick_slip"
    assert len(await store.jobs()) == 2


async def test_paper_out_reports_and_prints_once_the_paper_is_back(store: Store) -> None:
    await store.sim_post(P + "/paper", {"out": True})
    await eventually(lambda: store.printer_state()["paper_out"], within=3)
    await eventually(lambda: store.data("printer.error"), within=3)
    errors = store.data("printer.error")
    assert errors == [{"printer": "printer-1", "error": "paper_out", "job": None}]
    result = await store.command("print", text="缺纸后打印")
    await asyncio.sleep(1.0)  # several retries while the paper is out
    assert await store.jobs() == []
    assert store.printer_state()["queued"] == 1
    await store.sim_post(P + "/paper", {"out": False})
    (done,) = await store.done(1)
    assert done["job"] == result["job"]
    await asyncio.sleep(0.5)
    (job,) = await store.jobs()
    assert "缺纸后打印" in job["text"]
    assert store.data("printer.error") == errors  # one report for the whole episode
    assert not store.printer_state()["paper_out"] and store.printer_state()["error"] is None


async def test_paper_running_out_mid_job_finishes_from_the_printers_buffer(store: Store) -> None:
    await store.sim_post(P + "/speed", {"line_ms": 100})
    result = await store.command("print", text="\n".join(f"第{i}行" for i in range(15)))
    await eventually(lambda: store.sim.get(P)["printing"], within=3)
    await store.sim_post(P + "/paper", {"out": True})
    await eventually(lambda: store.data("printer.error"), within=3)
    assert store.data("printer.error") == [
        {"printer": "printer-1", "error": "paper_out", "job": result["job"]}
    ]
    await store.sim_post(P + "/paper", {"out": False})
    (done,) = await store.done(1, within=8)
    assert done["attempts"] == 1  # not sent again: the printer still had it
    (job,) = await store.jobs()
    assert job["cut"] and "第14行" in job["text"]


async def test_cover_open_is_reported_too(store: Store) -> None:
    await store.sim_post(P + "/cover", {"open": True})
    await eventually(lambda: store.data("printer.error"), within=3)
    assert store.data("printer.error")[0]["error"] == "cover_open"
    assert store.printer_state()["cover_open"]
    await store.sim_post(P + "/cover", {"open": False})
    await eventually(lambda: not store.printer_state()["cover_open"], within=3)


async def test_unplugged_mid_job_prints_that_job_once_after_it_is_back(store: Store) -> None:
    await store.sim_post(P + "/speed", {"line_ms": 100})
    await store.upsert(order("o4"), settle=False)
    await eventually(lambda: store.sim.get(P)["printing"], within=3)
    await asyncio.sleep(0.3)
    await store.sim_post("/devices/printer-1/unplug", {"seconds": 1})
    (done,) = await store.done(1, within=15)
    assert done["attempts"] == 2
    jobs = await store.jobs()
    complete = [j for j in jobs if j["cut"]]
    assert len(complete) == 1 and "#12" in complete[0]["text"]
    assert all(j["interrupted"] for j in jobs if not j["cut"])  # the half slip from the cut
    errors = store.data("printer.error")
    assert {"printer": "printer-1", "error": "offline", "job": errors[0]["job"]} in errors
    assert [j["status"] for j in store.view.print_jobs()] == ["done"]


async def test_a_queued_job_survives_a_restart_and_prints_once(tmp_path: Path, sim: SimHandle):
    config = printing_config(tmp_path, sim)
    await asyncio.to_thread(sim.post, P + "/paper", {"out": True})
    store = await started(config, sim)
    try:
        result = await store.command("print", text="重启之后")
        await asyncio.sleep(0.3)  # a retry while the paper is out
    finally:
        await store.stop()
    view = store.view
    assert [j["status"] for j in view.print_jobs()] == ["queued"]
    await asyncio.to_thread(sim.post, P + "/paper", {"out": False})
    store = await started(config, sim)
    try:
        await eventually(lambda: view.events("print.done"), within=5)
        await asyncio.sleep(0.5)
    finally:
        await store.stop()
    assert [e["data"]["job"] for e in view.events("print.done")] == [result["job"]]
    jobs = await store.jobs()
    assert [j["text"].splitlines()[0] for j in jobs] == ["重启之后"]


async def test_an_order_that_arrived_before_a_restart_is_not_slipped_again(
    tmp_path: Path, sim: SimHandle
) -> None:
    config = printing_config(tmp_path, sim)
    store = await started(config, sim)
    try:
        await store.upsert(order("o5"))
        await eventually(lambda: store.view.print_jobs())
    finally:
        await store.stop()
    store = await started(config, sim)
    try:
        await store.upsert(order("o5", note="改了备注"))  # settled: a slip would be queued now
    finally:
        await store.stop()
    assert len(store.view.print_jobs()) == 1
