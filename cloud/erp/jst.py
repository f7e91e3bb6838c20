"""聚水潭 ERP (open platform, openapi.jushuitan.com): signed form posts to `<base><path>`.

Every call carries app_key, access_token, timestamp (seconds), charset (utf-8), version
(2), the business content as JSON text in `biz`, and

    sign = md5(app_secret + "".join(k + v for k, v in sorted(params) if k != "sign"))

in lower-case hex. An answer with `code` other than 0 is a refusal; its `msg` is kept.
聚水潭 has no document for a platform's fees, so expenses are refused as unsupported (the
outbox shows them so, and does not retry them). See docs/erp.md for the field sources.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aiohttp

from cloud.config import Credentials
from cloud.erp.base import (
    ErpClient,
    ErpRefused,
    ErpUnsupported,
    ExpenseEntry,
    Product,
    RefundOrder,
    SalesOrder,
    StockLevel,
    StockScope,
    yuan,
)

DEFAULT_URL = "https://openapi.jushuitan.com"
QUERY_BATCH = 100  # sku_ids per inventory query
PAGE_SIZE = 100
_BEIJING = dt.timezone(dt.timedelta(hours=8))


def sign_text(params: Mapping[str, str], secret: str) -> str:
    return secret + "".join(k + v for k, v in sorted(params.items()) if k != "sign")


def sign(params: Mapping[str, str], secret: str) -> str:
    return hashlib.md5(sign_text(params, secret).encode("utf-8")).hexdigest()


def verify(params: Mapping[str, str], secret: str) -> bool:
    given = params.get("sign", "")
    return bool(given) and given == sign(params, secret)


def _time(rfc3339: str) -> str:
    when = dt.datetime.fromisoformat(rfc3339.replace("Z", "+00:00"))
    return when.astimezone(_BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _shop_id(shop: str) -> int | str:
    # 聚水潭 shop ids are numbers; a configured name is passed through (and refused there).
    return int(shop) if shop.isdigit() else shop


class JstClient(ErpClient):
    name = "jst"

    def __init__(
        self,
        creds: Credentials,
        session: aiohttp.ClientSession | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(creds.url or DEFAULT_URL, session)
        self._app_key = creds.app_id
        self._secret = creds.secret
        self._token = creds.token
        self._clock = clock

    async def call(self, path: str, biz: Any) -> dict[str, Any]:
        params = {
            "app_key": self._app_key,
            "access_token": self._token,
            "timestamp": str(int(self._clock())),
            "charset": "utf-8",
            "version": "2",
            "biz": json.dumps(biz, ensure_ascii=False, separators=(",", ":")),
        }
        params["sign"] = sign(params, self._secret)
        body = await self.post_form(self.base_url + path, params)
        if str(body.get("code")) != "0":
            raise ErpRefused(
                str(body.get("msg") or "refused without a message"), str(body.get("code"))
            )
        return body

    async def push_sales_order(self, order: SalesOrder) -> None:
        when = _time(order.at)
        goods = sum(line.price * line.qty for line in order.lines)
        items = [
            {
                "sku_id": line.barcode,
                "shop_sku_id": line.barcode,
                "amount": yuan(line.price * line.qty),
                "base_price": yuan(line.price),
                "qty": line.qty,
                "name": line.name,
                "outer_oi_id": f"{order.order_id}:{i + 1}",
            }
            for i, line in enumerate(order.lines)
        ]
        biz = [
            {
                "shop_id": _shop_id(order.shop),
                "so_id": order.order_id,
                "order_date": when,
                "shop_status": "WAIT_SELLER_SEND_GOODS",
                "shop_buyer_id": order.buyer or order.order_id,
                "receiver_address": order.address,
                "receiver_name": order.buyer or order.shop,
                "receiver_phone": order.mobile,
                "pay_amount": yuan(order.total),
                "freight": yuan(max(0, order.total - goods)),
                "buyer_message": order.note,
                "remark": f"shopgate {order.channel}",
                "items": items,
                "pay": {
                    "outer_pay_id": order.order_id,
                    "pay_date": when,
                    "payment": order.channel,
                    "seller_account": order.shop,
                    "buyer_account": order.buyer or order.order_id,
                    "amount": yuan(order.total),
                },
            }
        ]
        await self.call("/open/jushuitan/orders/upload", biz)

    async def push_refund_order(self, refund: RefundOrder) -> None:
        biz = [
            {
                "shop_id": _shop_id(refund.shop),
                "outer_as_id": refund.refund_id,
                "so_id": refund.order_id,
                "type": "仅退款",
                "shop_status": "SUCCESS",
                "good_status": "BUYER_RECEIVED",
                "question_type": "其他",
                "total_amount": yuan(refund.amount),
                "refund": yuan(refund.amount),
                "payment": "0",
                "remark": refund.reason,
                "items": [
                    {
                        "sku_id": line.barcode,
                        "qty": line.qty,
                        "amount": yuan(line.price * line.qty),
                        "type": "其它",
                        "outer_oi_id": f"{refund.order_id}:{i + 1}",
                    }
                    for i, line in enumerate(refund.lines)
                ],
            }
        ]
        await self.call("/open/aftersale/upload", biz)

    async def push_expenses(self, entries: Sequence[ExpenseEntry]) -> None:
        raise ErpUnsupported("聚水潭 has no API for a platform's fees; book them by hand")

    async def push_products(self, shop: str, products: Sequence[Product]) -> None:
        items = [
            {
                "sku_id": p.barcode,
                "i_id": p.barcode,
                "name": p.name,
                "sku_code": p.barcode,
                "s_price": yuan(p.price),
                **({} if p.cost is None else {"c_price": yuan(p.cost)}),
            }
            for p in products
        ]
        await self.call("/open/jushuitan/itemsku/upload", {"items": items})

    async def query_stock(self, scope: StockScope) -> list[StockLevel]:
        out: list[StockLevel] = []
        barcodes = list(scope.barcodes)
        for start in range(0, len(barcodes), QUERY_BATCH):
            page = 1
            while True:
                biz: dict[str, Any] = {
                    "sku_ids": ",".join(barcodes[start : start + QUERY_BATCH]),
                    "page_index": page,
                    "page_size": PAGE_SIZE,
                }
                if scope.warehouse:
                    biz["wms_co_id"] = _shop_id(scope.warehouse)
                data = (await self.call("/open/inventory/query", biz)).get("data") or {}
                for row in data.get("inventorys") or []:
                    code = str(row.get("sku_id") or "")
                    if code:
                        out.append(
                            StockLevel(
                                code, int(row.get("qty") or 0), str(row.get("modified") or "")
                            )
                        )
                if not data.get("has_next"):
                    break
                page += 1
        return out

    async def upload_stock(self, scope: StockScope, levels: Sequence[StockLevel], ref: str) -> None:
        biz: dict[str, Any] = {
            "type": "check",  # a stock-take: the quantities replace the ERP's
            "is_confirm": True,
            "so_id": ref,
            "warehouse": 1,  # 主仓
            "remark": "shopgate",
            "items": [{"sku_id": s.barcode, "qty": s.qty} for s in levels],
        }
        if scope.warehouse:
            biz["wms_co_id"] = _shop_id(scope.warehouse)
        await self.call("/open/jushuitan/inventoryv2/upload", biz)
