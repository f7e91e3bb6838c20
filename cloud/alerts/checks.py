"""The time-based triggers, checked every `alerts.check_seconds` (and at `check()`):

- store_offline: the store's last status message says offline, for N minutes (with no
  status logged yet, the broker's retained one, counted from when this hub saw it).
- pickup_overdue: a platform order still pending N minutes after it came in.
- push_failed: platform calls, platform stock pushes or ERP documents failing
  `push_failed_attempts` times in a row, per store and platform/ERP (resolved once they
  go through); a call or document given up on for good is told once. Each feature
  reports its own failing work (cloud/orders|stock|erp/health.py).
- entry_attack: resolving only (the entry page opens it): cloud/alerts/entry_attack.py.

Each is a reconciliation: the incidents open for it are made to match what is wrong
now, so a second hub checking the same database pages nothing more.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from cloud.alerts import entry_attack
from cloud.alerts.messages import Alert, local_time
from cloud.db.tables import store_status_log
from cloud.db.times import utc_text
from cloud.erp import health as erp_health
from cloud.orders import health as order_health
from cloud.stock import health as stock_health

if TYPE_CHECKING:
    from cloud.alerts.triggers import Triggers

log = logging.getLogger("cloud.alerts")

PLATFORM_NAMES = {"meituan": "美团", "eleme": "饿了么", "jddj": "京东到家", "douyin": "抖音"}
ERP_NAMES = {"wdt": "旺店通", "jst": "聚水潭"}
PICKUP_LOOKBACK = dt.timedelta(days=7)  # older pending orders are left to the dashboard
GAVE_UP_LOOKBACK = dt.timedelta(days=1)
SCAN_LIMIT = 2000


def _parse(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


class TimedChecks:
    def __init__(self, triggers: Triggers) -> None:
        self.t = triggers
        self._offline_seen: dict[str, dt.datetime] = {}

    async def check(self) -> None:
        """The time-based triggers, once."""
        checks = (
            ("store_offline", self._check_offline),
            ("pickup_overdue", self._check_pickups),
            ("push_failed", self._check_pushes),
            (entry_attack.KIND, lambda: entry_attack.resolve_quiet(self.t)),
        )
        for trigger, check in checks:
            if not self.t.alerts.on(trigger):
                continue
            try:
                await check()
            except Exception:
                log.exception("alerts: the %s check failed", trigger)

    async def _check_offline(self) -> None:
        now = self.t.book.clock()
        limit = dt.timedelta(minutes=self.t.alerts.store_offline_minutes)
        current: dict[str, Alert] = {}
        back: dict[str, tuple[str, str]] = {}
        async with self.t.db.read() as conn:
            for store in self.t._names:
                row = (
                    await conn.execute(
                        select(store_status_log.c.online, store_status_log.c.at)
                        .where(store_status_log.c.store_id == store)
                        .order_by(store_status_log.c.id.desc())
                        .limit(1)
                    )
                ).first()
                since = self._offline_since(store, row, now)
                if since is None:
                    back[store] = self._back_online(store, row, now)
                    continue
                if now - since >= limit:
                    minutes = int((now - since).total_seconds() // 60)
                    text = (
                        f"门店 **{self.t.label(store)}** 已离线 {minutes} 分钟"
                        f"（{local_time(since)} 起）。门禁、订单下发和事件上报可能受影响，"
                        "请检查门店网络和网关电源。"
                    )
                    title = f"📴 门店离线：{self.t.short(store)}"
                    key = f"store_offline:{store}"
                    current[key] = Alert(key, "store_offline", store, title, text)

        async def resolution(keys: Sequence[str]) -> Mapping[str, tuple[str, str]]:
            return {k: back[k.split(":", 1)[1]] for k in keys if k.split(":", 1)[1] in back}

        await self._reconcile("store_offline:", current, resolution)

    def _offline_since(self, store: str, row: Any, now: dt.datetime) -> dt.datetime | None:
        if row is not None:
            self._offline_seen.pop(store, None)
            return None if row.online else _parse(row.at)
        # No status logged yet: the broker's retained status, from when this hub saw it.
        online = self.t._presence(store) if self.t._presence is not None else None
        if online is False:
            return self._offline_seen.setdefault(store, now)
        self._offline_seen.pop(store, None)
        return None

    def _back_online(self, store: str, row: Any, now: dt.datetime) -> tuple[str, str]:
        when = f"（{local_time(row.at)}）" if row is not None else ""
        return (
            f"✅ 门店已恢复在线：{self.t.short(store)}",
            f"门店 **{self.t.label(store)}** 已重新连上{when}。",
        )

    async def _check_pickups(self) -> None:
        now = self.t.book.clock()
        waiting = await order_health.waiting_since(
            self.t.db,
            before=utc_text(now - dt.timedelta(minutes=self.t.alerts.pickup_minutes)),
            after=utc_text(now - PICKUP_LOOKBACK),
            limit=SCAN_LIMIT,
        )
        current: dict[str, Alert] = {}
        for r in waiting:
            minutes = int((now - _parse(r.created_at)).total_seconds() // 60)
            platform = PLATFORM_NAMES.get(r.platform, r.platform)
            items = "、".join(
                f"{i.get('name') or i.get('barcode') or '?'}×{i.get('qty', 1)}" for i in r.items[:5]
            )
            text = (
                f"{platform} #{r.day_seq} 订单下单已 **{minutes} 分钟**，仍未取货。\n\n"
                f"- 门店：{self.t.label(r.store)}\n- 订单：{r.id}\n- 商品：{items or '—'}\n"
                f"- 下单时间：{local_time(r.created_at)}"
            )
            title = f"⏰ 订单超时未取：{self.t.short(r.store)} · {platform} #{r.day_seq}"
            key = f"pickup_overdue:{r.id}"
            current[key] = Alert(key, "pickup_overdue", r.store, title, text)

        async def resolution(keys: Sequence[str]) -> Mapping[str, tuple[str, str]]:
            ids = {k.split(":", 1)[1]: k for k in keys}
            out = {}
            for oid, (store, status, day_seq) in (
                await order_health.statuses(self.t.db, ids)
            ).items():
                done = {"picked_up": "已取货", "cancelled": "已取消"}.get(status, "已处理")
                title = f"✅ 订单{done}：{self.t.short(store)} · #{day_seq}"
                out[ids[oid]] = (title, f"订单 {oid} {done}。")
            return out

        await self._reconcile("pickup_overdue:", current, resolution)

    async def _check_pushes(self) -> None:
        now = self.t.book.clock()
        at_least = self.t.alerts.push_failed_attempts
        since = utc_text(now - GAVE_UP_LOOKBACK)
        failing: dict[tuple[str, str, str], list[tuple[int, str]]] = {}
        gave_up: list[Alert] = []
        db = self.t.db
        # Each feature reports its own failing work; none of their tables is read here.
        troubles = [
            *await order_health.failing_calls(db, at_least=at_least, since=since, limit=SCAN_LIMIT),
            *await stock_health.failing_pushes(db, at_least=at_least, limit=SCAN_LIMIT),
            *await erp_health.failing_docs(db, at_least=at_least, since=since, limit=SCAN_LIMIT),
        ]
        for t in troubles:
            if not t.gave_up:
                failing.setdefault((t.system, t.store, t.target), []).append((t.attempts, t.error))
            else:
                what = "platform_call" if t.system == "platform" else "erp_doc"
                gave_up.append(
                    self._gave_up(
                        what, t.ident or 0, t.store, t.target, t.kind, t.attempts, t.error
                    )
                )
        current: dict[str, Alert] = {}
        for (what, store, target), fails in failing.items():
            name = {**PLATFORM_NAMES, **ERP_NAMES}.get(target, target)
            topic = {"platform": "平台调用", "stock": "库存同步", "erp": "ERP 同步"}[what]
            attempts, error = max(fails)
            text = (
                f"{name} {topic}有 **{len(fails)}** 项连续失败"
                f"（最多 {attempts} 次），正在重试。\n\n"
                f"- 门店：{self.t.label(store)}\n- 最近错误：{error[:300] or '—'}"
            )
            key = f"push:{what}:{store}:{target}"
            title = f"🔁 {topic}失败：{self.t.short(store)} · {name}"
            current[key] = Alert(key, "push_failed", store, title, text)

        async def resolution(keys: Sequence[str]) -> Mapping[str, tuple[str, str]]:
            out = {}
            for key in keys:
                store, target = key.split(":", 3)[2:]
                name = {**PLATFORM_NAMES, **ERP_NAMES}.get(target, target)
                out[key] = (
                    f"✅ 同步已恢复：{self.t.short(store)} · {name}",
                    f"{name} 的失败项已全部发送成功。",
                )
            return out

        await self._reconcile("push:", current, resolution)
        for alert in gave_up:
            await self.t._note(alert)

    def _gave_up(
        self,
        what: str,
        ident: int,
        store: str,
        target: str,
        kind: str,
        attempts: int,
        error: str | None,
    ) -> Alert:
        name = {**PLATFORM_NAMES, **ERP_NAMES}.get(target, target)
        text = (
            f"{name} 的 {kind} 在 {attempts} 次尝试后已放弃，需要人工处理。\n\n"
            f"- 门店：{self.t.label(store)}\n- 错误：{(error or '—')[:300]}"
        )
        title = f"❌ 同步已放弃：{self.t.short(store)} · {name}"
        return Alert(f"gave_up:{what}:{ident}", "push_failed", store, title, text)

    async def _reconcile(
        self,
        prefix: str,
        current: Mapping[str, Alert],
        resolution: Callable[[Sequence[str]], Awaitable[Mapping[str, tuple[str, str]]]],
    ) -> None:
        opened, resolved = await self.t.book.reconcile(prefix, current, resolution)
        if opened or resolved:
            self.t._queued()
