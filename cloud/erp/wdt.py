"""旺店通 ERP (企业版 openapi2): signed form posts to `<base>/<name>.php`.

Every call carries sid, appkey, timestamp (seconds) and sign, where

    sign = md5(";".join("%02d-%s:%04d-%s" % (len(k), k, len(v), v)
                        for k, v in sorted(params) if k != "sign") + appsecret)

with lengths counted in characters of the text (the official PHP client uses
`iconv_strlen($v, 'UTF-8')`), and the digest in lower-case hex. Lists go as compact JSON
text with Chinese left as is (PHP's JSON_UNESCAPED_UNICODE), signed as sent. An answer
with `code` other than 0 is a refusal; its `message` is kept. See docs/erp.md for which
fields come from the published documentation and which are this client's choices.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aiohttp

from cloud.config import WdtCredentials
from cloud.erp.base import (
    ErpClient,
    ErpLine,
    ErpRefused,
    ExpenseEntry,
    Product,
    RefundOrder,
    SalesOrder,
    StockLevel,
    StockScope,
    fen,
    yuan,
)

DEFAULT_URL = "https://api.wangdian.cn/openapi2"
PLATFORM_ID_OWN = 127  # 自有平台 (the hub's own shop), as sales_refund_push asks
STOCK_QUERY_BATCH = 200  # spec_no_list upper limit
STOCK_UPLOAD_BATCH = 500  # stock_sync_by_pd: at most 500 lines per call
PAGE_SIZE = 100
_BEIJING = dt.timezone(dt.timedelta(hours=8))  # no daylight saving in China
# Not in openapi2's published list: the "other expense" document is pushed as a platform
# bill line (旗舰版 finance.RawPayment.push fields). See docs/erp.md.
EXPENSE_ENDPOINT = "raw_payment_push.php"
DUPLICATE_OUTER_NO = "21000006"  # stock_sync_by_pd: 外部单号重复


def sign_text(params: Mapping[str, str], secret: str) -> str:
    parts = [
        "%02d-%s:%04d-%s" % (len(k), k, len(v), v)  # noqa: UP031 (the ERP's own format)
        for k, v in sorted(params.items())
        if k != "sign"
    ]
    return ";".join(parts) + secret


def sign(params: Mapping[str, str], secret: str) -> str:
    return hashlib.md5(sign_text(params, secret).encode("utf-8")).hexdigest()


def verify(params: Mapping[str, str], secret: str) -> bool:
    given = params.get("sign", "")
    return bool(given) and given == sign(params, secret)


def compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return compact_json(value) if isinstance(value, list | dict) else str(value)


def beijing_time(rfc3339: str) -> str:
    """ "2025-01-02T03:04:05.000006Z" -> "2025-01-02 11:04:05" (the ERP's clock)."""
    when = dt.datetime.fromisoformat(rfc3339.replace("Z", "+00:00"))
    return when.astimezone(_BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def share_discounts(lines: Sequence[ErpLine], total: int) -> tuple[list[int], int]:
    """Split the gap between the goods and what was paid over the lines (fen), the last
    line taking the remainder, as the ERP asks; a payment above the goods is postage."""
    goods = sum(line.price * line.qty for line in lines)
    gap = goods - total
    if gap <= 0 or goods == 0:
        return [0] * len(lines), max(0, -gap)
    shares = [gap * line.price * line.qty // goods for line in lines]
    shares[-1] += gap - sum(shares)
    return shares, 0


class WdtClient(ErpClient):
    name = "wdt"

    def __init__(
        self,
        creds: WdtCredentials,
        session: aiohttp.ClientSession | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(creds.url or DEFAULT_URL, session)
        self._sid = creds.sid or creds.app_id
        self._appkey = creds.app_id
        self._secret = creds.secret
        self._clock = clock

    async def call(self, endpoint: str, business: Mapping[str, Any]) -> dict[str, Any]:
        params = {
            k: v
            if isinstance(v, str)
            else compact_json(v)
            if isinstance(v, list | dict)
            else str(v)
            for k, v in business.items()
        }
        params.update(sid=self._sid, appkey=self._appkey, timestamp=str(int(self._clock())))
        params["sign"] = sign(params, self._secret)
        body = await self.post_form(f"{self.base_url}/{endpoint}", params)
        code = body.get("code")
        if str(code) != "0":
            raise ErpRefused(str(body.get("message") or "refused without a message"), str(code))
        return body

    async def push_sales_order(self, order: SalesOrder) -> None:
        shares, postage = share_discounts(order.lines, order.total)
        when = beijing_time(order.at)
        trade = {
            "tid": order.order_id,
            "trade_status": 30,  # 已付款待发货: the ERP books the goods out of the warehouse
            "pay_status": 2,
            "delivery_term": 1,
            "trade_time": when,
            "pay_time": when,
            "buyer_nick": order.buyer or order.order_id,
            "receiver_name": order.buyer or order.shop,
            "receiver_address": order.address,
            "receiver_mobile": order.mobile,
            "post_amount": yuan(postage),
            "cod_amount": "0",
            "ext_cod_fee": "0",
            "other_amount": "0",
            "paid": yuan(order.total),
            "buyer_message": order.note,
            "seller_memo": f"shopgate {order.channel}",
            "order_list": [
                {
                    "oid": f"{order.order_id}:{i + 1}",
                    "num": line.qty,
                    "price": yuan(line.price),
                    "status": 30,
                    "refund_status": 0,
                    "goods_id": line.barcode,
                    "spec_id": line.barcode,
                    "goods_no": line.barcode,
                    "spec_no": line.barcode,
                    "goods_name": line.name,
                    "spec_name": "",
                    "adjust_amount": "0",
                    "discount": "0",
                    "share_discount": yuan(share),
                }
                for i, (line, share) in enumerate(zip(order.lines, shares, strict=True))
            ],
        }
        await self.call(
            "trade_push.php", {"shop_no": order.shop, "switch": 1, "trade_list": [trade]}
        )

    async def push_refund_order(self, refund: RefundOrder) -> None:
        item = {
            "platform_id": PLATFORM_ID_OWN,
            "shop_no": refund.shop,
            "tid": refund.order_id,
            "refund_no": refund.refund_id,
            "type": 4,  # 退款不退货: the goods left with the courier
            "status": 5,  # 退款成功
            "refund_fee": yuan(refund.amount),
            "buyer_nick": refund.buyer or refund.order_id,
            "refund_time": beijing_time(refund.at),
            "reason": refund.reason,
            "order_list": [
                {"oid": f"{refund.order_id}:{i + 1}", "num": line.qty}
                for i, line in enumerate(refund.lines)
            ],
        }
        await self.call("sales_refund_push.php", {"api_refund_list": [item]})

    async def push_expenses(self, entries: Sequence[ExpenseEntry]) -> None:
        if not entries:
            return
        rows = [
            {
                "shop_no": e.shop,
                "order_no": e.order_id,
                "pay_order_no": e.entry_id,
                "create_time": beijing_time(e.at),
                "type": 0,  # 其他
                "in_amount": yuan(-e.amount) if e.amount < 0 else "0.00",
                "out_amount": yuan(e.amount) if e.amount > 0 else "0.00",
                "remark": f"{e.kind} {e.note}".strip(),
            }
            for e in entries
        ]
        await self.call(EXPENSE_ENDPOINT, {"payment_list": rows})

    async def push_products(self, shop: str, products: Sequence[Product]) -> None:
        goods = [
            {
                "goods_no": p.barcode,
                "goods_type": 1,
                "goods_name": p.name,
                "spec_list": [
                    {
                        "spec_no": p.barcode,
                        "barcode": p.barcode,
                        "spec_name": "",
                        "retail_price": yuan(p.price),
                        **({} if p.cost is None else {"custom_price1": yuan(p.cost)}),
                    }
                ],
            }
            for p in products
        ]
        await self.call("goods_push.php", {"goods_list": goods})

    async def query_stock(self, scope: StockScope) -> list[StockLevel]:
        out: list[StockLevel] = []
        barcodes = list(scope.barcodes)
        for start in range(0, len(barcodes), STOCK_QUERY_BATCH):
            batch = barcodes[start : start + STOCK_QUERY_BATCH]
            page = 0
            while True:
                business: dict[str, Any] = {
                    "spec_no_list": batch,
                    "page_no": page,
                    "page_size": PAGE_SIZE,
                }
                if scope.warehouse:
                    business["warehouse_no"] = scope.warehouse
                body = await self.call("stock_query.php", business)
                stocks = body.get("stocks") or []
                for row in stocks:
                    code = str(row.get("spec_no") or row.get("barcode") or "")
                    if code:
                        qty = fen(row.get("stock_num", 0)) // 100
                        out.append(StockLevel(code, qty, str(row.get("modified") or "")))
                if len(stocks) < PAGE_SIZE:
                    break
                page += 1
        return out

    async def upload_stock(self, scope: StockScope, levels: Sequence[StockLevel], ref: str) -> None:
        for start in range(0, len(levels), STOCK_UPLOAD_BATCH):
            batch = levels[start : start + STOCK_UPLOAD_BATCH]
            business: dict[str, Any] = {
                "api_outer_no": ref if start == 0 else f"{ref}-{start // STOCK_UPLOAD_BATCH}",
                "mode": 1,
                "is_post_error": 0,
                "goods_list": [{"spec_no": s.barcode, "stock_num": s.qty} for s in batch],
            }
            if scope.warehouse:
                business["warehouse_no"] = scope.warehouse
            try:
                await self.call("stock_sync_by_pd.php", business)
            except ErpRefused as e:
                # Sent before, its answer lost: the ERP has this stock-take already.
                if e.code != DUPLICATE_OUTER_NO:
                    raise
