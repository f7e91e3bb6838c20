"""The `alerts:` section of hub.yaml: DingTalk robots, which triggers are on, thresholds.

Kept apart from cloud/config.py (which holds it as `HubConfig.alerts`) so the alert code
owns its own schema; nothing here imports the rest of the hub.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

Trigger = Literal[
    "low_stock",
    "store_offline",
    "door_held_open",
    "device",
    "push_failed",
    "pickup_overdue",
    "door_guessing",
    "entry_attack",
]
TRIGGERS: tuple[Trigger, ...] = (
    "low_stock",
    "store_offline",
    "door_held_open",
    "device",
    "push_failed",
    "pickup_overdue",
    "door_guessing",
    "entry_attack",
)
DINGTALK_SEND_URL = "https://oapi.dingtalk.com/robot/send"
_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"

Text = Annotated[str, BeforeValidator(lambda v: "" if v is None else v)]

Loc = tuple[str | int, ...]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RobotConfig(_Strict):
    """One DingTalk custom robot (自定义机器人) of a group chat."""

    id: str = Field(pattern=_ID_PATTERN, description="A name for the robot, used in logs.")
    url: Text = Field(
        "",
        description="The robot's webhook, https://oapi.dingtalk.com/robot/send?access_token=...; "
        "empty (and no access_token): the robot is off. Never logged.",
    )
    access_token: Text = Field(
        "", description="Instead of url: the webhook's access_token alone. Never logged."
    )
    secret: Text = Field(
        "",
        description="The robot's 加签 secret (SEC...), which signs every message; empty: "
        "unsigned (the robot's security setting is then keywords or an IP list). Never logged.",
    )
    stores: list[str] = Field(
        default_factory=list,
        description="Stores whose alerts it gets; with merchants empty too: every store's.",
    )
    merchants: list[str] = Field(
        default_factory=list, description="Merchants whose stores' alerts it gets."
    )
    triggers: list[Trigger] = Field(
        default_factory=list, description="Only these triggers; empty: every trigger that is on."
    )

    @field_validator("url")
    @classmethod
    def _webhook(cls, v: str) -> str:
        v = v.strip()
        if v and urlsplit(v).scheme not in ("http", "https"):
            raise ValueError("must be the robot's https:// webhook URL (or empty: robot off)")
        return v

    @property
    def enabled(self) -> bool:
        return bool(self.url or self.access_token)

    @property
    def webhook(self) -> str:
        if self.url:
            return self.url
        return f"{DINGTALK_SEND_URL}?access_token={self.access_token}"

    def serves_trigger(self, trigger: str) -> bool:
        return not self.triggers or trigger in self.triggers


class AlertsConfig(_Strict):
    """Owner notifications through DingTalk custom robots (docs/alerts.md)."""

    robots: list[RobotConfig] = Field(
        default_factory=list, description="The DingTalk robots alerts go to."
    )
    triggers: list[Trigger] = Field(
        default_factory=lambda: list(TRIGGERS),
        description="Which triggers are on: low_stock, store_offline, door_held_open, "
        "device, push_failed, pickup_overdue, door_guessing, entry_attack (default: all).",
    )
    store_offline_minutes: int = Field(
        10, ge=1, le=1440, description="A store offline this long pages the owner."
    )
    pickup_minutes: int = Field(
        30,
        ge=1,
        le=10080,
        description="A platform order not picked up this long after it came in pages the owner.",
    )
    push_failed_attempts: int = Field(
        3,
        ge=1,
        le=1000,
        description="A platform or ERP push failing this many times in a row pages the owner.",
    )
    per_minute: int = Field(
        20,
        ge=1,
        le=20,
        description="Messages per robot per minute (DingTalk allows 20); "
        "alerts beyond are merged into one digest message.",
    )
    check_seconds: int = Field(
        30, ge=1, le=3600, description="How often the time-based triggers are checked."
    )

    def on(self, trigger: str) -> bool:
        return trigger in self.triggers


def alert_problems(
    alerts: AlertsConfig, store_ids: Sequence[str], merchant_ids: Sequence[str]
) -> list[tuple[Loc, str]]:
    """Robots naming unknown stores or merchants, duplicate ids, a token given twice."""
    out: list[tuple[Loc, str]] = []
    seen: set[str] = set()
    for i, robot in enumerate(alerts.robots):
        where: Loc = ("alerts", "robots", i)
        if robot.id in seen:
            out.append(((*where, "id"), f"duplicate robot id {robot.id!r}"))
        seen.add(robot.id)
        if robot.url and robot.access_token:
            out.append(((*where, "access_token"), "give url or access_token, not both"))
        elif robot.url and "access_token" not in parse_qs(urlsplit(robot.url).query):
            out.append(((*where, "url"), "the webhook URL has no access_token=... in it"))
        for j, store in enumerate(robot.stores):
            if store not in store_ids:
                known = ", ".join(store_ids) or "none configured"
                out.append(((*where, "stores", j), f"no store {store!r} ({known})"))
        for j, merchant in enumerate(robot.merchants):
            if merchant not in merchant_ids:
                known = ", ".join(merchant_ids) or "none configured"
                out.append(((*where, "merchants", j), f"no merchant {merchant!r} ({known})"))
    return out
