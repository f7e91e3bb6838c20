"""What pages the owner, and what says it is over.

Event-driven (the event-ingest hook, the stock ledger's listener):
- door_held_open: `door.held_open` opens `door_held_open:S:DOOR`, `door.closed` resolves it.
- device: `device.offline` opens `device:S:DEV` (`device.online` resolves it);
  `printer.error` opens `printer:S:PRINTER` (`print.done` or the printer back online
  resolves it); each `vend.failed` and `locker.failed` is told once.
- low_stock: a ledger entry leaving an item at or below its catalog threshold opens
  `low_stock:S:BARCODE`; one above it resolves it.
- push_failed, as reported by the code that pushes (notify_push_failed in worker.py).
- door_guessing: each `access.locked_out` (a door pausing its pickup codes after a
  streak of wrong ones, a pass used up by wrong answers to the entry question) and each
  `access.burst` (lines at a door faster than anyone scans) is told once.
- device, too: each `access.uncertain` (a lock that got OPEN and never answered).
The time-based triggers are in cloud/alerts/checks.py (`check()`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from cloud.alerts.checks import ERP_NAMES, PLATFORM_NAMES, TimedChecks
from cloud.alerts.incidents import Incidents
from cloud.alerts.messages import Alert, local_time
from cloud.config import HubConfig
from cloud.db.engine import Database
from cloud.envelope import Envelope
from cloud.stock.catalog import Catalog

log = logging.getLogger("cloud.alerts")

PRINTER_ERRORS = {"paper_out": "缺纸", "cover_open": "纸仓盖打开", "offline": "离线"}
VEND_FAULTS = {
    "jammed": "卡货",
    "motor": "电机故障",
    "empty": "货道无货",
    "no_motor": "无电机",
    "timeout": "超时",
}

Presence = Callable[[str], "bool | None"]


class Triggers:
    def __init__(
        self,
        cfg: HubConfig,
        book: Incidents,
        db: Database,
        *,
        queued: Callable[[], None] = lambda: None,
        presence: Presence | None = None,
    ) -> None:
        self.cfg = cfg
        self.alerts = cfg.alerts
        self.book = book
        self.db = db
        self._queued = queued
        self._presence = presence
        self._names = {s.id: s.name or s.id for s in cfg.stores}
        self._timed = TimedChecks(self)

    def label(self, store: str) -> str:
        name = self._names.get(store, store)
        return name if name == store else f"{name}（{store}）"

    def short(self, store: str) -> str:
        return self._names.get(store, store)

    async def _open(self, alert: Alert) -> None:
        if await self.book.open(alert):
            self._queued()

    async def _note(self, alert: Alert) -> None:
        if await self.book.note(alert):
            self._queued()

    async def _resolve(self, key: str, title: str, text: str) -> None:
        if await self.book.resolve(key, title, text):
            self._queued()

    # --- events --------------------------------------------------------------------------

    async def on_events(self, store: str, events: list[Envelope]) -> None:
        """The event-ingest hook (cloud/api/events.py EVENT_HOOKS)."""
        for event in sorted(events, key=lambda e: e.seq):
            handler = self._handlers.get(event.type)
            if handler is None:
                continue
            data = json.loads(event.json).get("data") or {}
            try:
                await handler(self, store, event, data)
            except Exception:
                log.exception("alerts: event %s of %s not handled", event.type, store)

    async def _door_held_open(self, store: str, event: Envelope, data: dict[str, Any]) -> None:
        if not self.alerts.on("door_held_open"):
            return
        door = str(data.get("door", "?"))
        seconds = data.get("seconds")
        held = f"超过 {seconds} 秒" if isinstance(seconds, int | float) else "过久"
        text = (
            f"**{self.short(store)}** 的门 **{door}** 已打开{held}未关，请查看。\n\n"
            f"- 门店：{self.label(store)}\n- 门：{door}\n- 时间：{local_time(event.ts)}"
        )
        title = f"🚪 门未关：{self.short(store)} · {door}"
        await self._open(
            Alert(f"door_held_open:{store}:{door}", "door_held_open", store, title, text)
        )

    async def _door_closed(self, store: str, event: Envelope, data: dict[str, Any]) -> None:
        door = str(data.get("door", "?"))
        seconds = data.get("open_seconds")
        for_how_long = f"，共打开 {seconds:.0f} 秒" if isinstance(seconds, int | float) else ""
        await self._resolve(
            f"door_held_open:{store}:{door}",
            f"✅ 门已关：{self.short(store)} · {door}",
            f"门 **{door}** 已关上{for_how_long}。\n\n- 门店：{self.label(store)}\n"
            f"- 时间：{local_time(event.ts)}",
        )

    async def _device_offline(self, store: str, event: Envelope, data: dict[str, Any]) -> None:
        if not self.alerts.on("device"):
            return
        device = str(data.get("device", "?"))
        reason = str(data.get("reason") or "")
        text = (
            f"设备 **{device}** 离线" + (f"：{reason}" if reason else "") + "。\n\n"
            f"- 门店：{self.label(store)}\n- 时间：{local_time(event.ts)}"
        )
        title = f"⚠️ 设备离线：{self.short(store)} · {device}"
        await self._open(Alert(f"device:{store}:{device}", "device", store, title, text))

    async def _device_online(self, store: str, event: Envelope, data: dict[str, Any]) -> None:
        device = str(data.get("device", "?"))
        text = (
            f"设备 **{device}** 已恢复在线。\n\n"
            f"- 门店：{self.label(store)}\n- 时间：{local_time(event.ts)}"
        )
        title = f"✅ 设备恢复：{self.short(store)} · {device}"
        await self._resolve(f"device:{store}:{device}", title, text)
        await self._resolve(f"printer:{store}:{device}", title, text)

    async def _printer_error(self, store: str, event: Envelope, data: dict[str, Any]) -> None:
        if not self.alerts.on("device"):
            return
        printer = str(data.get("printer", "?"))
        error = str(data.get("error", "?"))
        text = (
            f"打印机 **{printer}** 故障：{PRINTER_ERRORS.get(error, error)}。\n\n"
            f"- 门店：{self.label(store)}\n- 时间：{local_time(event.ts)}"
        )
        title = f"🖨️ 打印机故障：{self.short(store)} · {printer}"
        await self._open(Alert(f"printer:{store}:{printer}", "device", store, title, text))

    async def _print_done(self, store: str, event: Envelope, data: dict[str, Any]) -> None:
        printer = str(data.get("printer", "?"))
        await self._resolve(
            f"printer:{store}:{printer}",
            f"✅ 打印机恢复：{self.short(store)} · {printer}",
            f"打印机 **{printer}** 已恢复打印。\n\n- 门店：{self.label(store)}",
        )

    async def _vend_failed(self, store: str, event: Envelope, data: dict[str, Any]) -> None:
        if not self.alerts.on("device"):
            return
        machine = str(data.get("machine", "?"))
        fault = str(data.get("fault", "?"))
        lines = [
            f"售货机 **{machine}** 第 {data.get('slot', '?')} 货道出货失败："
            f"{VEND_FAULTS.get(fault, fault)}。",
            "",
            f"- 门店：{self.label(store)}",
            f"- 商品：{data.get('barcode') or '?'}",
        ]
        refund = data.get("refund")
        if isinstance(refund, dict) and isinstance(refund.get("amount"), int | float):
            lines.append(f"- 退款：¥{refund['amount']:.2f}")
        if data.get("order"):
            lines.append(f"- 订单：{data['order']}")
        lines.append(f"- 时间：{local_time(event.ts)}")
        title = f"⚠️ 出货失败：{self.short(store)} · {machine}"
        key = f"vend_failed:{store}:{event.id}"
        await self._note(Alert(key, "device", store, title, "\n".join(lines)))

    async def _locker_failed(self, store: str, event: Envelope, data: dict[str, Any]) -> None:
        if not self.alerts.on("device"):
            return
        locker = str(data.get("locker", "?"))
        lines = [
            f"取货柜 **{locker}** 第 {data.get('slot', '?')} 格开门失败"
            + (f"：{data['reason']}" if data.get("reason") else "")
            + "。",
            "",
            f"- 门店：{self.label(store)}",
        ]
        if data.get("order"):
            lines.append(f"- 订单：{data['order']}")
        lines.append(f"- 时间：{local_time(event.ts)}")
        title = f"⚠️ 开柜失败：{self.short(store)} · {locker}"
        key = f"locker_failed:{store}:{event.id}"
        await self._note(Alert(key, "device", store, title, "\n".join(lines)))

    async def _locked_out(self, store: str, event: Envelope, data: dict[str, Any]) -> None:
        if not self.alerts.on("door_guessing"):
            return
        door = str(data.get("door", "?"))
        lines: list[str]
        if data.get("kind") == "entry_answer":
            title = f"🔐 入店问题连续答错：{self.short(store)} · {door}"
            lines = [
                f"门 **{door}** 的入店问题用同一张入店二维码连续答错 {data.get('wrong', '?')} 次，"
                "该二维码已作废。可能有人在猜答案。",
                "",
                f"- 门店：{self.label(store)}",
                f"- 二维码用户：{data.get('sub') or '?'}",
            ]
        else:
            title = f"🔐 取件码连续输错：{self.short(store)} · {door}"
            seconds = data.get("pause_seconds")
            pause = f"{seconds / 60:g} 分钟" if isinstance(seconds, int | float) else "一段时间"
            lines = [
                f"门 **{door}** 的取件码已连续输错 {data.get('wrong', '?')} 次，暂停输入取件码 "
                f"{pause}（第 {data.get('pause', '?')} 次暂停，再错一次暂停加倍）。"
                "可能有人在猜取件码，请查看门口监控；骑手仍可用取件二维码进门。",
                "",
                f"- 门店：{self.label(store)}",
            ]
            if isinstance(data.get("until"), str):
                lines.append(f"- 暂停至：{local_time(data['until'])}")
        lines.append(f"- 时间：{local_time(event.ts)}")
        await self._note(
            Alert(
                f"door_guessing:{store}:{event.id}", "door_guessing", store, title, "\n".join(lines)
            )
        )

    async def _burst(self, store: str, event: Envelope, data: dict[str, Any]) -> None:
        if not self.alerts.on("door_guessing"):
            return
        door = str(data.get("door", "?"))
        text = (
            f"门 **{door}** 的扫码器在 {data.get('seconds', '?')} 秒内送来 "
            f"{data.get('lines', '?')} 行：快于任何人扫码，可能是含换行的伪造二维码或扫码器故障。"
            "每一行仍计入取件码错误次数。\n\n"
            f"- 门店：{self.label(store)}\n- 时间：{local_time(event.ts)}"
        )
        title = f"⚠️ 异常扫码：{self.short(store)} · {door}"
        await self._note(
            Alert(f"door_guessing:{store}:{event.id}", "door_guessing", store, title, text)
        )

    async def _uncertain(self, store: str, event: Envelope, data: dict[str, Any]) -> None:
        if not self.alerts.on("device"):
            return
        door = str(data.get("door", "?"))
        lines = [
            f"门 **{door}** 的锁控板收到开门指令后没有应答：门可能已开，也可能未开。",
            "",
            f"- 门店：{self.label(store)}",
        ]
        if data.get("sub"):
            lines.append(f"- 用户：{data['sub']}")
        if data.get("orders_pending"):
            orders = "、".join(str(o) for o in data["orders_pending"])
            lines.append(f"- 订单（仍为待取货，骑手可再次取件）：{orders}")
        if data.get("pass_used"):
            lines.append("- 该二维码已按已使用处理；如门未开，请远程开门或让顾客重新获取")
        lines.append(f"- 时间：{local_time(event.ts)}")
        title = f"⚠️ 开门无应答：{self.short(store)} · {door}"
        key = f"access_uncertain:{store}:{event.id}"
        await self._note(Alert(key, "device", store, title, "\n".join(lines)))

    _handlers: Mapping[
        str, Callable[[Triggers, str, Envelope, dict[str, Any]], Awaitable[None]]
    ] = {
        "door.held_open": _door_held_open,
        "door.closed": _door_closed,
        "device.offline": _device_offline,
        "device.online": _device_online,
        "printer.error": _printer_error,
        "print.done": _print_done,
        "vend.failed": _vend_failed,
        "locker.failed": _locker_failed,
        "access.locked_out": _locked_out,
        "access.burst": _burst,
        "access.uncertain": _uncertain,
    }

    # --- stock ---------------------------------------------------------------------------

    async def on_stock_change(self, store: str, barcode: str, qty_after: int, entry: Any) -> None:
        """The stock ledger's listener (cloud/stock/ledger.py StockLedger.on_change)."""
        if not self.alerts.on("low_stock"):
            return
        key = f"low_stock:{store}:{barcode}"
        # The catalog answers for its products; its table is its own.
        product = await Catalog(self.db).get(store, barcode)
        threshold = product.low_stock if product is not None else None
        name = (product.name if product is not None else "") or barcode
        if threshold is not None and qty_after <= threshold:
            text = (
                f"**{name}**（{barcode}）库存 **{qty_after}**，已到预警线 {threshold}，请补货。\n\n"
                f"- 门店：{self.label(store)}"
                + (f"\n- 货架：{product.shelf}" if product is not None and product.shelf else "")
            )
            title = f"📦 库存不足：{self.short(store)} · {name}"
            await self._open(Alert(key, "low_stock", store, title, text))
        elif await self.book.is_open(key):
            shown = f"（预警线 {threshold}）" if threshold is not None else ""
            await self._resolve(
                key,
                f"✅ 已补货：{self.short(store)} · {name}",
                f"**{name}**（{barcode}）库存已到 **{qty_after}**{shown}。\n\n"
                f"- 门店：{self.label(store)}",
            )

    # --- periodic ------------------------------------------------------------------------

    async def check(self) -> None:
        """The time-based triggers, once (cloud/alerts/checks.py)."""
        await self._timed.check()

    # --- pushes reported by their owners -------------------------------------------------

    async def push_failed(
        self, system: str, store: str, error: str, *, attempts: int, what: str = ""
    ) -> None:
        if not self.alerts.on("push_failed") or attempts < self.alerts.push_failed_attempts:
            return
        name = {**PLATFORM_NAMES, **ERP_NAMES}.get(system, system)
        text = (
            f"{name} {what or '推送'}已连续失败 {attempts} 次，正在重试。\n\n"
            f"- 门店：{self.label(store) if store else '全部'}\n- 错误：{error[:300]}"
        )
        title = f"🔁 推送失败：{self.short(store) if store else 'hub'} · {name}"
        key = f"reported:{store}:{system}"
        await self._open(Alert(key, "push_failed", store, title, text))

    async def push_ok(self, system: str, store: str) -> None:
        name = {**PLATFORM_NAMES, **ERP_NAMES}.get(system, system)
        await self._resolve(
            f"reported:{store}:{system}",
            f"✅ 推送已恢复：{self.short(store) if store else 'hub'} · {name}",
            f"{name} 推送已成功。",
        )
