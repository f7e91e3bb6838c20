"""Self-checkout: a scanner builds a cart, the hub takes payment, the sale is journaled.

One `SelfCheckout` service runs every configured checkout point (it owns the one
`checkout.paid` command and routes it by checkout id). At a point:

1. Its scanner's lines (serial `scanner` or USB `hid_scanner`) are taken from the doors.
   A product barcode (EAN-8/13, UPC-A with a valid check digit) in the catalog adds one
   to the cart; an unknown one is shown and not added. The `pay_barcode` or the page's
   付款 asks for payment; the `clear_barcode` or 清空 empties the cart.
2. Paying: the hub is asked (HTTP, store token) for a payment of the cart's total; its
   QR URL is shown on the page and, with a printer, printed on a slip. The cart is then
   frozen: what is paid is exactly what was asked. Offline (no MQTT session or the hub
   unreachable) the customer is told so politely and the cart stays.
3. The hub, once the customer paid, sends the signed `checkout.paid` {checkout, payment,
   cart, amount}. If it names this point's waiting payment, `sale.completed` and one
   `stock.changed` (reason sale) per line are journaled in ONE transaction, with the
   payment id remembered in the same transaction, so a repeat is refused as
   `already_paid` and nothing is recorded twice; then the receipt is printed through the
   `print` command (a printer failure leaves the sale standing and the page says so).
   A `checkout.paid` for a cart that is not waiting (unknown, expired, cancelled) is
   refused (`unknown_cart`, `expired`): the hub keeps it for a refund.

Carts live in memory: a restart or a config reload empties them (a payment waiting then
is refused when it arrives, and the hub flags it for a refund).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from agent.config.schema import CheckoutConfig
from agent.devices.base import DeviceEvent, DeviceOffline, DeviceOnline, ScanRead
from agent.journal import JournalError, PutSetting
from agent.model.commands import BAD_ARGS, FAILED, Caller, CommandError, Handler, arg
from agent.model.ids import new_ulid
from agent.services.base import StoreContext, StoreService
from agent.services.cart import Cart, find_product, product_barcode, to_fen, yuan
from agent.services.checkout_hub import HubPaymentError, HubPayments
from agent.services.checkout_page import page_app
from agent.services.stock import StockMove

log = logging.getLogger(__name__)

OFFLINE = "网络暂不可用，暂时无法自助付款，请稍后再试或联系店员"
# The hub refuses a payment after the checkout's payment timeout; a confirmation made in
# its last second still needs time to reach the store.
DELIVERY_GRACE_S = 30.0
TICK_S = 1.0
REMEMBER_PAID = 200  # payment ids per checkout kept to refuse repeats
SETTING = "checkout/{}/paid"  # journal setting: the last paid payment ids


@dataclass(slots=True)
class Waiting:
    """A payment asked of the hub for a frozen cart."""

    payment: str
    qr_url: str
    cart: Cart
    amount_fen: int
    deadline: float  # monotonic


class CheckoutPoint:
    def __init__(self, cfg: CheckoutConfig, ctx: StoreContext, hub: HubPayments) -> None:
        self.cfg = cfg
        self.id = cfg.id
        self._ctx = ctx
        self._hub = hub
        self.cart = self._new_cart()
        self.waiting: Waiting | None = None
        self.paid: deque[str] = deque(maxlen=REMEMBER_PAID)
        self._expired: deque[str] = deque(maxlen=REMEMBER_PAID)
        self._completing: set[str] = set()
        self._paying = False
        self._touched = time.monotonic()
        self.message, self.level = "", "info"
        self.receipt = ""
        self.scanner_online = ctx.devices.get(cfg.scanner) is not None and bool(
            ctx.devices[cfg.scanner].online
        )
        self._runner: web.AppRunner | None = None

    def _new_cart(self) -> Cart:
        return Cart(f"{self.id}-{new_ulid(int(self._ctx.clock.now() * 1000))}")

    def _say(self, message: str, level: str = "info") -> None:
        self.message, self.level = message, level
        self._ctx.state_changed()

    # --- life ----------------------------------------------------------------------

    async def start(self, settings: Mapping[str, Any]) -> None:
        self.paid.extend(settings.get(SETTING.format(self.id), []))
        if self.cfg.listen is None:
            return
        host, _, port = self.cfg.listen.rpartition(":")
        self._runner = web.AppRunner(page_app(self.snapshot, self.pay, self.clear), access_log=None)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, host.strip("[]"), int(port)).start()
        except OSError as e:
            # The checkout still works with its printer; the agent must not fail for it.
            log.error("checkout %s: cannot serve its page on %s: %s", self.id, self.cfg.listen, e)
            await self._runner.cleanup()
            self._runner = None
            return
        log.info("checkout %s: page on http://%s", self.id, self.cfg.listen)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    def tick(self, now: float) -> None:
        waiting = self.waiting
        if waiting is not None and now > waiting.deadline:
            self.waiting = None
            self._expired.append(waiting.payment)
            self._touched = now
            self._say("付款超时，购物车已保留，可重新付款", "warn")
        elif (
            waiting is None
            and self.cart.lines
            and now - self._touched > (self.cfg.cart_timeout_seconds)
        ):
            self.cart = self._new_cart()
            self._say("购物车长时间未操作，已清空", "warn")

    # --- the customer --------------------------------------------------------------

    async def on_scan(self, line: str) -> None:
        self._touched = time.monotonic()
        text = line.strip()
        if text == self.cfg.pay_barcode:
            await self.pay()
            return
        if text == self.cfg.clear_barcode:
            await self.clear()
            return
        if self.waiting is not None:
            self._say("正在等待付款：请先扫码付款，或清空购物车后重新扫描", "warn")
            return
        barcode = product_barcode(text)
        if barcode is None:
            # Length only: a pass scanned here by mistake is never logged.
            log.info("checkout %s: a %d-character scan is no product barcode", self.id, len(text))
            self._say("无法识别的条码，请扫描商品包装上的条码", "error")
            return
        product = find_product(self._ctx.catalog, barcode)
        price = to_fen(product.get("price")) if product is not None else None
        if product is None or price is None:
            log.info("checkout %s: barcode %s is not for sale here", self.id, barcode)
            self._say(f"未找到该商品（条码 {barcode}），未加入购物车，请联系店员", "error")
            return
        name = str(product.get("name") or barcode)
        line_ = self.cart.add(barcode, name, price)
        self._say(f"已加入：{name} ¥{yuan(price):.2f}（×{line_.qty}）")

    async def pay(self) -> None:
        self._touched = time.monotonic()
        if self.waiting is not None:
            self._say("请用手机扫描二维码付款")
            return
        if not self.cart.lines:
            self._say("购物车是空的，请先扫描商品", "warn")
            return
        if self._paying:
            return
        if not self._ctx.hub_online():
            log.warning("checkout %s: payment refused while the hub is offline", self.id)
            self._say(OFFLINE, "error")
            return
        cart, amount = self.cart, self.cart.total_fen
        self._paying = True
        try:
            payment, qr_url = await self._hub.create(
                checkout=self.id,
                cart=cart.id,
                amount=yuan(amount),
                items=cart.items(),
                ttl_s=self.cfg.payment_timeout_seconds,
            )
        except HubPaymentError as e:
            log.warning("checkout %s: the hub took no payment: %s", self.id, e)
            self._say(OFFLINE if e.unavailable else "暂时无法付款，请联系店员", "error")
            return
        finally:
            self._paying = False
        if self.cart is not cart:
            return  # cleared while the hub answered: that payment just expires
        deadline = time.monotonic() + self.cfg.payment_timeout_seconds + DELIVERY_GRACE_S
        self.waiting = Waiting(str(payment["id"]), qr_url, cart, amount, deadline)
        self._say(f"请用手机扫码付款 ¥{yuan(amount):.2f}")
        if self.cfg.printer and self.cfg.listen is None:
            # No screen: the slip carries the total and the pay address. The printing
            # templates have no QR for a receipt yet, so the address is printed as text.
            self._ctx.spawn(self._print({"text": self._slip(cart, qr_url)}, "slip"), inflight=True)

    def _slip(self, cart: Cart, qr_url: str) -> str:
        lines = [f"自助收银 {self.id}  请扫码付款"]
        lines += [f"{i['name']} x{i['qty']}  ¥{i['price'] * i['qty']:.2f}" for i in cart.items()]
        lines += [
            f"合计 ¥{yuan(cart.total_fen):.2f}",
            "请用手机打开以下地址付款：",
            qr_url,
            f"{self.cfg.payment_timeout_seconds // 60} 分钟内有效",
        ]
        return "\n".join(lines)

    async def clear(self) -> None:
        self._touched = time.monotonic()
        waiting = self.waiting
        if waiting is not None:
            try:
                await self._hub.cancel(waiting.payment)
            except HubPaymentError as e:
                if e.code == "already_paid":
                    self._say("已付款，正在完成，请稍候", "warn")
                    return
                # Unreachable: the payment expires at the hub on its own.
                log.warning("checkout %s: could not cancel %s: %s", self.id, waiting.payment, e)
            if self.waiting is waiting:
                self.waiting = None
        self.cart = self._new_cart()
        self.receipt = ""
        self._say("购物车已清空")

    # --- the hub -------------------------------------------------------------------

    async def on_paid(
        self, payment: str, cart: str, amount: float | None, method: str
    ) -> dict[str, Any]:
        if payment in self.paid or payment in self._completing:
            raise CommandError("already_paid", f"payment {payment} is already recorded")
        waiting = self.waiting
        if waiting is None or waiting.payment != payment or waiting.cart.id != cart:
            if payment in self._expired:
                raise CommandError("expired", f"checkout {self.id} gave up on payment {payment}")
            raise CommandError(
                "unknown_cart", f"checkout {self.id} is not waiting for payment {payment}"
            )
        if amount is not None and round(amount * 100) != waiting.amount_fen:
            raise CommandError(
                "amount_mismatch",
                f"paid {amount:.2f}, the cart is {yuan(waiting.amount_fen):.2f}",
            )
        self._completing.add(payment)
        try:
            sale = await self._record(waiting, method)
        finally:
            self._completing.discard(payment)
        self.waiting = None
        self.cart = self._new_cart()
        self.receipt = "小票打印中…" if self.cfg.printer else ""
        self._say(f"支付成功 ¥{yuan(waiting.amount_fen):.2f}，谢谢惠顾！")
        if self.cfg.printer:
            self._ctx.spawn(self._print({"receipt": sale}, "receipt"), inflight=True)
        return {
            "checkout": self.id,
            "payment": payment,
            "sale": sale["sale"],
            "total": sale["total"],
        }

    async def _record(self, waiting: Waiting, method: str) -> dict[str, Any]:
        items = waiting.cart.items()
        sale = {
            "sale": waiting.cart.id,
            "channel": "checkout",
            "checkout": self.id,
            "items": items,
            "total": yuan(waiting.amount_fen),
            "payment": {"id": waiting.payment, "method": method},
            "order": None,
        }
        moves = [
            StockMove(i["barcode"], -i["qty"], "sale", waiting.cart.id, {"checkout": self.id})
            for i in items
        ]
        paid = [*self.paid, waiting.payment][-REMEMBER_PAID:]
        try:
            await self._ctx.stock.move(
                moves,
                with_events=[("sale.completed", sale)],
                ops=[PutSetting(SETTING.format(self.id), paid)],
            )
        except JournalError as e:
            log.error("checkout %s: could not record sale %s: %s", self.id, sale["sale"], e)
            raise CommandError(FAILED, f"the store could not record the sale: {e}") from e
        self.paid.append(waiting.payment)
        log.info(
            "checkout %s: sale %s paid (%s), %d items",
            self.id,
            sale["sale"],
            waiting.payment,
            len(items),
        )
        return sale

    async def _print(self, what: dict[str, Any], kind: str) -> None:
        try:
            await self._ctx.command(
                "print", {"printer": self.cfg.printer, **what}, f"checkout:{self.id}"
            )
        except CommandError as e:
            log.warning("checkout %s: %s not printed: %s %s", self.id, kind, e.code, e.message)
            if kind == "receipt":
                self.receipt = "小票打印失败，交易已完成；如需小票请联系店员"
            else:
                self._say("付款单打印失败，请在屏幕上扫码付款", "warn")
            self._ctx.state_changed()
            return
        if kind == "receipt":
            self.receipt = ""
            self._ctx.state_changed()

    # --- what is shown ---------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        shown = self.waiting.cart if self.waiting is not None else self.cart
        payment = None
        if self.waiting is not None:
            payment = {
                "id": self.waiting.payment,
                "qr_url": self.waiting.qr_url,
                "amount": yuan(self.waiting.amount_fen),
            }
        return {
            "checkout": self.id,
            "cart": shown.id,
            "items": shown.items(),
            "count": shown.count,
            "total": yuan(shown.total_fen),
            "payment": payment,
            "message": self.message,
            "message_level": self.level,
            "receipt": self.receipt,
            "scanner_online": self.scanner_online,
        }


class SelfCheckout(StoreService):
    name = "checkout"

    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx
        cfg = ctx.cfg
        self._hub = HubPayments(ctx.hub)
        self.points = {c.id: CheckoutPoint(c, ctx, self._hub) for c in cfg.checkout}
        self._by_scanner = {p.cfg.scanner: p for p in self.points.values()}
        self._ticker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        settings = (await self._ctx.journal.load_state()).settings
        for point in self.points.values():
            await point.start(settings)
        self._ticker = asyncio.create_task(self._tick(), name="checkout timers")

    async def stop(self) -> None:
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        for point in self.points.values():
            await point.stop()
        await self._hub.close()

    def commands(self) -> Mapping[str, Handler]:
        return {"checkout.paid": self._paid}

    def on_device_event(self, ev: DeviceEvent) -> bool:
        match ev:
            case ScanRead(device, line) if device in self._by_scanner:
                self._ctx.spawn(self._by_scanner[device].on_scan(line), inflight=True)
                return True
            case DeviceOnline(device) | DeviceOffline(device) if device in self._by_scanner:
                self._by_scanner[device].scanner_online = isinstance(ev, DeviceOnline)
                self._ctx.state_changed()
        return False

    def state(self) -> dict[str, Any]:
        return {
            cid: {
                "items": p.cart.count if p.waiting is None else p.waiting.cart.count,
                "total": yuan(p.cart.total_fen if p.waiting is None else p.waiting.amount_fen),
                "paying": p.waiting is not None,
            }
            for cid, p in self.points.items()
        }

    async def _paid(self, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
        checkout = arg(args, "checkout", str)
        point = self.points.get(checkout)
        if point is None:
            raise CommandError(BAD_ARGS, f"this store has no checkout {checkout!r}")
        amount = arg(args, "amount", (int, float), required=False)
        method = arg(args, "method", str, required=False) or "unknown"
        return await point.on_paid(
            arg(args, "payment", str), arg(args, "cart", str), amount, method
        )

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            now = time.monotonic()
            for point in self.points.values():
                point.tick(now)


def build(ctx: StoreContext) -> list[StoreService]:
    return [SelfCheckout(ctx)] if ctx.cfg.checkout else []
