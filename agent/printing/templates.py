"""The store's printouts as ESC/POS jobs: pick slip, customer receipt, barcode label, text.

Pure functions: data in, the job's bytes out (ending in its cut). Widths are in
half-width columns (`paper_chars` of the printer); a Chinese character takes two.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from agent.devices.protocols.escpos import EscPosError, Receipt, columns, ean13, pad, yuan

PLATFORM_NAMES = {
    "meituan": "美团外卖",
    "eleme": "饿了么",
    "jddj": "京东到家",
    "douyin": "抖音",
    "local": "门店订单",
}


def local_time(when: float | str, timezone: str) -> str:
    """'2026-05-01 12:34' in the store's time zone, from epoch seconds or RFC 3339."""
    if isinstance(when, str):
        moment = dt.datetime.fromisoformat(when.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
    else:
        moment = dt.datetime.fromtimestamp(when, dt.UTC)
    return moment.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")


def _rule(width: int) -> str:
    return "-" * width


def _row(left: str, right: str, width: int) -> str:
    """`left` and `right` on one line, `right` flush with the right edge."""
    room = max(width - columns(right) - 1, 1)
    return pad(left, room) + " " + right


def shelf_of(item: Mapping[str, Any], catalog: Mapping[str, Mapping[str, Any]]) -> str:
    """The item's shelf (货架号): from the order, else the catalogue by barcode."""
    shelf = item.get("shelf")
    if not shelf:
        shelf = catalog.get(str(item.get("barcode", "")), {}).get("shelf")
    return str(shelf) if shelf else "-"


def pick_slip(
    order: Mapping[str, Any],
    *,
    catalog: Mapping[str, Mapping[str, Any]],
    store_name: str,
    timezone: str,
    now: float,
    width: int,
    qr_module: int = 6,
) -> bytes:
    """订单小票: what a clerk (or courier) picks, by shelf, with the pickup code's QR."""
    platform = str(order.get("platform", "local"))
    job = Receipt()
    job.line(PLATFORM_NAMES.get(platform, platform), where="center", width=2, height=2, strong=True)
    if order.get("day_seq") is not None:
        job.line(f"#{order['day_seq']}", where="center", width=3, height=3, strong=True)
    if store_name:
        job.line(store_name, where="center")
    job.line(f"订单号: {order.get('platform_order_id') or order['id']}")
    when = order.get("created_at")
    if isinstance(when, str):
        job.line(f"下单时间: {local_time(when, timezone)}")
    job.line(f"打印时间: {local_time(now, timezone)}")
    job.line(_rule(width))
    shelf_w = max(6, min(10, width // 5))
    qty_w = 5
    name_w = width - shelf_w - qty_w - 2
    job.line(
        pad("货架号", shelf_w) + " " + pad("商品", name_w) + " " + pad("数量", qty_w, right=True)
    )
    items = [dict(i) for i in order.get("items", [])]
    # Walking the shelves in order is quicker than walking the list in order.
    items.sort(key=lambda i: shelf_of(i, catalog))
    total = 0
    for item in items:
        qty = int(item.get("qty", 1))
        total += qty
        name = str(item.get("name") or item.get("barcode") or "?")
        job.line(
            pad(shelf_of(item, catalog), shelf_w)
            + " "
            + pad(name, name_w)
            + " "
            + pad(f"x{qty}", qty_w, right=True),
            strong=True,
        )
    job.line(_rule(width))
    job.line(f"共 {len(items)} 种 {total} 件")
    note = str(order.get("note") or "").strip()
    if note:
        job.line(f"备注: {note}", strong=True)
    code = order.get("pickup_code")
    if code:
        job.line(f"取货码 {code}", where="center", width=2, height=2, strong=True)
        job.qr(str(code), module=qr_module)
    return job.cut()


def receipt(
    sale: Mapping[str, Any],
    *,
    store_name: str,
    timezone: str,
    now: float,
    width: int,
) -> bytes:
    """A customer receipt: items, prices in yuan, total, payment (a sale.completed's data
    or the same shape)."""
    items = sale.get("items")
    if not isinstance(items, Sequence) or not items:
        raise EscPosError("a receipt needs items: [{name, qty, price}, ...]")
    job = Receipt()
    job.line(store_name or "购物小票", where="center", width=2, height=2, strong=True)
    job.line("购物小票", where="center")
    if sale.get("sale"):
        job.line(f"单号: {sale['sale']}")
    job.line(f"时间: {local_time(now, timezone)}")
    job.line(_rule(width))
    computed = 0.0
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise EscPosError(f"receipt item {i} must be an object")
        try:
            qty = int(item.get("qty", 1))
            price = float(item["price"])
        except (KeyError, TypeError, ValueError) as exc:
            raise EscPosError(f"receipt item {i} needs a numeric price and qty") from exc
        name = str(item.get("name") or item.get("barcode") or "?")
        amount = round(qty * price, 2)
        computed += amount
        job.line(name)
        job.line(_row(f"  {qty} x {yuan(price)}", yuan(amount), width))
    job.line(_rule(width))
    total = float(sale["total"]) if sale.get("total") is not None else round(computed, 2)
    job.line(_row("合计", yuan(total), width // 2), width=2, height=2, strong=True)
    payment = sale.get("payment")
    if isinstance(payment, Mapping):
        method = {"wechat": "微信支付", "alipay": "支付宝", "cash": "现金"}.get(
            str(payment.get("method")), str(payment.get("method") or "")
        )
        job.line(_row("支付方式", method, width))
        if payment.get("id"):
            job.line(f"支付单号: {payment['id']}")
    job.line("")
    job.line("谢谢惠顾, 欢迎再来!", where="center")
    return job.cut()


def label(barcode: str, name: str, price: float, *, width: int) -> bytes:
    """A shelf/product label: name, price, and the EAN-13 with its digits below."""
    digits = ean13(barcode)
    job = Receipt()
    job.line(name, where="center", strong=True)
    job.line(yuan(price), where="center", width=2, height=2, strong=True)
    job.ean13(digits, height=80, module=2 if width < 40 else 3)
    return job.cut()


def text(body: str) -> bytes:
    """Plain text as given, line by line."""
    job = Receipt()
    for line in body.splitlines() or [""]:
        job.line(line)
    return job.cut()
