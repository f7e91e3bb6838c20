"""The provider's payment notification: HMAC-SHA256 over timestamp and body. Pure.

A real provider (WeChat Pay v3, Alipay) signs its notify call in its own way; its
adapter verifies that and then calls the same `Payments.confirm`. This is the hub's own
provider-neutral form, which a payment gateway in front of the hub (or the demo) speaks:

    POST /api/v1/payments/{payment}/notify
    X-Shopgate-Timestamp: 1735689600                  (Unix seconds)
    X-Shopgate-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
    {"payment": "pay_...", "amount": 12.5, "status": "SUCCESS",
     "transaction_id": "4200001234...", "method": "wechat"}
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from cloud import consttime

TIMESTAMP_HEADER = "X-Shopgate-Timestamp"
SIGNATURE_HEADER = "X-Shopgate-Signature"


class NotifyError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Notification:
    payment: str
    amount: Any
    status: str
    transaction_id: str
    method: str


def signature(secret: str, timestamp: str, body: bytes) -> str:
    # surrogatepass: a header read from bytes that are not UTF-8 still gets a signature
    # (which then does not match) instead of an exception.
    stamp = timestamp.encode("utf-8", "surrogatepass")
    mac = hmac.new(secret.encode(), stamp + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str, timestamp: str | None, sig: str | None, body: bytes, *, now: float, skew: int
) -> Notification:
    """The notification, if signed with `secret` within `skew` seconds of `now`."""
    if not secret:
        raise NotifyError("not_configured", "payments.notify_secret is not set on this hub")
    if not timestamp or not sig:
        raise NotifyError("unsigned", f"{TIMESTAMP_HEADER} and {SIGNATURE_HEADER} are required")
    if not consttime.equal(sig.strip(), signature(secret, timestamp, body)):
        raise NotifyError("bad_signature", "the signature does not match")
    # ASCII digits only: int() would also take "1_735_689_600" or other scripts' digits.
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 20):
        raise NotifyError("bad_timestamp", "the timestamp is not Unix seconds")
    when = int(timestamp)
    if abs(now - when) > skew:
        raise NotifyError("stale", f"the timestamp is more than {skew} s from the hub's clock")
    try:
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError("not an object")
        return Notification(
            payment=str(data["payment"]),
            amount=data["amount"],
            status=str(data["status"]),
            transaction_id=str(data.get("transaction_id") or ""),
            method=str(data.get("method") or "unknown")[:32],
        )
    except (ValueError, KeyError) as e:
        raise NotifyError("bad_body", f"the body is not a notification: {e}") from None
