"""A stand-in for Meituan, so the demo runs offline: it pushes a signed order to the hub
exactly as Meituan does (form fields, `sig` over the webhook URL), and answers the hub's
calls back (confirm order, picking done, `retail/sku/stock`) while noting them and
checking their `sig`, so the story can show that Meituan heard about the pickup and
which quantity each SKU now shows."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cloud.platforms.meituan import sign

SECRET = "demo-secret"  # hub.yaml's default SHOPGATE_MEITUAN_SECRET


class StandInMeituan:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.badly_signed: list[str] = []
        self.stock: dict[str, int] = {}  # SKU -> the quantity the hub last pushed
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = urllib.parse.urlsplit(self.path).path
                params = dict(urllib.parse.parse_qsl(raw.decode(), keep_blank_values=True))
                url = f"http://127.0.0.1:{outer._server.server_address[1]}{path}"
                if params.get("sig") != sign(url, params, SECRET):
                    outer.badly_signed.append(path)
                if path.endswith("/retail/sku/stock"):
                    for food in json.loads(params.get("food_data", "[]")):
                        for sku in food["skus"]:
                            outer.stock[str(sku["sku_id"])] = int(sku["stock"])
                outer.calls.append(path)
                body = b'{"data": "ok"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/api/v1"

    def close(self) -> None:
        self._server.shutdown()

    def push_order(
        self, hub_url: str, order_id: str, items: list[dict[str, Any]], *, day_seq: int
    ) -> Any:
        detail = [
            {
                "app_food_code": i["sku"],
                "sku_id": i["sku"],
                "upc": i["barcode"],
                "food_name": i["name"],
                "quantity": i["qty"],
                "price": i["price"],
                "unit": "份",
            }
            for i in items
        ]
        total = sum(i["price"] * i["qty"] for i in items)
        params = {
            "order_id": order_id,
            "wm_order_id_view": f"2700{order_id}",
            "app_poi_code": "demo-001",
            "day_seq": str(day_seq),
            "status": "2",
            "detail": urllib.parse.quote(json.dumps(detail, ensure_ascii=False)),
            "caution": "少冰",
            "total": f"{total:.2f}",
            "shipping_fee": "0.00",
            "poi_receive_detail": json.dumps({"foodShareFeeChargeByPoi": 100}),
            "ctime": str(int(time.time())),
            "app_id": "demo",
            "timestamp": str(int(time.time())),
        }
        webhook = f"{hub_url}/api/v1/platforms/meituan/push"
        params["sig"] = sign(webhook, params, SECRET)
        req = urllib.request.Request(
            webhook,
            data=urllib.parse.urlencode(params).encode(),
            method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())
