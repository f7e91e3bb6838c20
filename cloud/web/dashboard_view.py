"""Rendering the owner dashboard: Jinja2 templates (autoescaped) with its CSS inlined.

As on the entry pages (pages.py renders both), the CSS is inlined and its hash put in the
Content-Security-Policy, which then allows no script at all, no other style and no
outside resource; the dashboard needs none (its chart is inline SVG).
"""

from __future__ import annotations

import datetime as dt

from cloud.web.dashboard_data import CHINA, money
from cloud.web.pages import Pages

TEMPLATES = (
    "dashboard_login.html",
    "dashboard_stores.html",
    "dashboard_store.html",
    "dashboard_message.html",
)
CSS_FILE = "dashboard.css"


def local_time(text: str | None, fmt: str = "%m-%d %H:%M") -> str:
    """A stored UTC time as China time ("01-02 11:04"); "—" when absent."""
    if not text:
        return "—"
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    return when.astimezone(CHINA).strftime(fmt)


REASONS = {
    "granted": "通过",
    "malformed": "无法识别",
    "bad_signature": "签名无效",
    "unknown_key": "未知密钥",
    "expired": "已过期",
    "not_yet_valid": "未生效",
    "wrong_store": "非本店",
    "wrong_door": "非此门",
    "wrong_scope": "权限不符",
    "replayed": "重复使用",
    "closed": "非营业时间",
    "lockdown": "封锁中",
    "blocked": "已拉黑",
    "full": "人数已满",
    "unknown_order": "无此订单",
    "already_picked_up": "已取货",
    "cancelled": "订单已取消",
    "wrong_answer": "答案错误",
    "rate_limited": "取件码暂停",  # too many wrong pickup codes at that door
}


def reason(code: str) -> str:
    """An access decision's reason code (CONTRACTS 2) in Chinese."""
    return REASONS.get(code, code or "拒绝")


def age(minutes: int) -> str:
    if minutes < 60:
        return f"{minutes} 分钟"
    hours, rest = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} 小时 {rest} 分钟"
    return f"{hours // 24} 天 {hours % 24} 小时"


class DashboardView(Pages):
    def __init__(self) -> None:
        super().__init__(
            TEMPLATES,
            CSS_FILE,
            filters={"money": money, "local_time": local_time, "age": age, "reason": reason},
        )
