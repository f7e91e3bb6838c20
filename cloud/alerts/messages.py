"""What the owner reads: alerts as DingTalk markdown, alone or merged into a digest.

Pure functions (text in, text out). Times are shown in China Standard Time (UTC+8, no
daylight saving), where the stores are. Every message ends with the word `shopgate`, so
a robot whose security setting is a keyword (自定义关键词) can use that one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

CST = dt.timezone(dt.timedelta(hours=8), "CST")
FOOTER = "\n\n—— shopgate"
MAX_ALERT_CHARS = 1500  # one alert's body; a digest holds many
DIGEST_BUDGET_BYTES = 18000  # DingTalk refuses messages over 20,000 bytes


@dataclass(frozen=True, slots=True)
class Alert:
    """One thing to tell the owner. `key` names the incident it belongs to."""

    key: str
    kind: str  # the trigger (low_stock, store_offline, ...): robots filter on it
    store: str  # "" for the hub as a whole
    title: str  # short: the message title and the digest line
    text: str  # markdown body, without heading

    def clipped(self) -> Alert:
        if len(self.text) <= MAX_ALERT_CHARS:
            return self
        text = self.text[: MAX_ALERT_CHARS - 1] + "…"
        return Alert(self.key, self.kind, self.store, self.title[:200], text)


@dataclass(frozen=True, slots=True)
class Queued:
    """An alert waiting in a robot's queue."""

    id: int
    title: str
    text: str
    created_at: str


def local_time(when: dt.datetime | str) -> str:
    if isinstance(when, str):
        when = dt.datetime.fromisoformat(when.replace("Z", "+00:00"))
    return when.astimezone(CST).strftime("%m-%d %H:%M:%S")


def single(alert: Queued) -> tuple[str, str]:
    """(title, markdown) of a message carrying one alert."""
    return alert.title, f"### {alert.title}\n\n{alert.text}{FOOTER}"


def digest(alerts: Sequence[Queued], *, more: int = 0) -> tuple[str, str]:
    """(title, markdown) of one message carrying several alerts, oldest first. `more`
    counts those still waiting for the next message (said so, not dropped)."""
    title = f"{len(alerts)} 条提醒（合并发送）"
    lines = [f"### {title}", "", "消息过多，已合并为一条："]
    for a in alerts:
        lines += ["", "---", "", f"#### {a.title}", "", a.text, "", f"> {local_time(a.created_at)}"]
    if more:
        lines += ["", f"**另有 {more} 条提醒将在下一条消息中发送。**"]
    return title, "\n".join(lines) + FOOTER


def fit_digest(alerts: Sequence[Queued], budget: int = DIGEST_BUDGET_BYTES) -> int:
    """How many of `alerts` (oldest first) fit in one digest message."""
    used = 400  # heading, footer, the "more" line
    for n, a in enumerate(alerts):
        used += len(f"\n---\n#### {a.title}\n{a.text}\n> 00-00 00:00:00\n".encode()) + 8
        if used > budget:
            return max(1, n)
    return len(alerts)
