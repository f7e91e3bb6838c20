"""entry_attack: a door's entry page paused for everyone, because so many wrong answers
came in at that door, from however many visitors and addresses, that somebody is
guessing the answer (cloud/web/entry.py; the counts are cloud/limits/entry_rules.py).

Opened by the page the moment the door's count fills (its DOOR_PAUSED hook: one answer
per window fills it, and the incident opens once), resolved by the periodic check once
the door has been quiet for one of its windows after the pause: an attacker coming back
at once keeps it open rather than paging again.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING

from cloud.alerts.messages import Alert, local_time
from cloud.limits.counters import Limiter, State
from cloud.limits.entry_rules import door_counters
from cloud.limits.settings import DoorLimit

if TYPE_CHECKING:
    from cloud.alerts.triggers import Triggers

KIND = "entry_attack"
PREFIX = f"{KIND}:"


def incident_key(store: str, door: str) -> str:
    return f"{PREFIX}{store}:{door}"


async def door_paused(
    triggers: Triggers, store: str, door: str, until: float, wrong: int, window_s: float
) -> None:
    """The DOOR_PAUSED hook (cloud/limits/web.py): page the owner."""
    if not triggers.alerts.on(KIND):
        return
    limit = _door_limit(triggers, store)
    minutes = max(1, math.ceil(window_s / 60))
    lines = [
        f"门 **{door}** 的进门页面 {minutes} 分钟内答错 {wrong} 次，疑似有人在猜进门答案，"
        f"线上验证已暂停到 {local_time(dt.datetime.fromtimestamp(until, dt.UTC))}。",
        "",
        f"- 门店：{triggers.label(store)}",
    ]
    if limit is not None and limit.regulars_days:
        lines.append(f"- 近 {limit.regulars_days} 天在本店验证通过的手机不受暂停影响")
    lines.append("- 持有进门码、取货码的顾客和骑手照常进门")
    if limit is not None:
        longest = max(1, limit.max_pause_seconds // 60)
        lines.append(f"- 如继续答错，暂停会逐步延长（最长 {longest} 分钟）")
    lines.append("- 如答案可能已泄露，请更换进门问题")
    title = f"🚨 进门页面疑似被攻击：{triggers.short(store)} · {door}"
    await triggers._open(Alert(incident_key(store, door), KIND, store, title, "\n".join(lines)))


async def resolve_quiet(triggers: Triggers) -> None:
    """Resolve the open incidents of doors quiet for a window since their pause."""
    keys = await triggers.book.open_keys(PREFIX)
    if not keys:
        return
    now_ms = int(triggers.book.clock().timestamp() * 1000)
    limiter = Limiter(triggers.db)
    for key in keys:
        store, _, door = key[len(PREFIX) :].partition(":")
        limit = _door_limit(triggers, store)
        if limit is not None:
            counters = door_counters(store, door, limit, regular=False)
            states = [await limiter.state(c) for c in counters]
            pairs = zip(states, counters, strict=True)
            if any(_still_attacked(s, c.rule.limit, c.rule.window_s, now_ms) for s, c in pairs):
                continue
        await triggers._resolve(
            key,
            f"✅ 进门页面恢复：{triggers.short(store)} · {door}",
            f"门 **{door}** 的进门页面已恢复线上验证，暂停后已平静一段时间。\n\n"
            f"- 门店：{triggers.label(store)}",
        )


def _still_attacked(state: State | None, limit: int, base_window_s: float, now_ms: int) -> bool:
    """Paused now, or its last pause ended less than a base window ago."""
    if state is None or state.full_at_ms is None:
        return False
    if state.hits >= limit and state.resets_at_ms > now_ms:
        return True
    window_start = state.resets_at_ms - state.window_ms
    # The pause ended with the window it filled: this one, or (filled before) an earlier one.
    ended = state.resets_at_ms if state.full_at_ms >= window_start else window_start
    return now_ms < ended + base_window_s * 1000


def _door_limit(triggers: Triggers, store: str) -> DoorLimit | None:
    for s in triggers.cfg.stores:
        if s.id == store and s.entry is not None:
            return s.entry.door_limit
    return None
