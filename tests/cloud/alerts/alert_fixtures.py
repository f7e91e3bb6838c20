"""Shared by the alert tests: a hub config with one DingTalk robot on a fake, a clock the
test moves, and the alert center on a fresh database (SQLite or PostgreSQL)."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from cloud.alerts.worker import AlertCenter
from cloud.config import HubConfig
from cloud.db.engine import Database
from tests.cloud.orders.order_fixtures import STORE, fresh_database
from tests.cloud.orders.order_fixtures import hub_config as order_hub_config
from tests.support.dingtalk import FakeDingTalk

__all__ = ["STORE", "Clock", "alert_center", "alert_config"]


class Clock:
    """A clock that moves only when the test says so; starts at the real now (the hub's
    own writes, such as store status rows, are stamped with the real time)."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)

    def timestamp(self) -> float:
        return self.now.timestamp()


def alert_config(tmp_path: Path, ding: FakeDingTalk | None, **alerts: Any) -> HubConfig:
    cfg = order_hub_config(tmp_path)
    robots = []
    if ding is not None:
        robots = [{"id": "owner", "url": ding.webhook(), "secret": ding.secret}]
    section = {"robots": robots, **alerts}
    return HubConfig.model_validate(cfg.model_dump() | {"alerts": section})


@contextlib.asynccontextmanager
async def alert_center(
    db_url: str, cfg: HubConfig, clock: Clock, **options: Any
) -> AsyncIterator[tuple[AlertCenter, Database]]:
    """The alert center on a fresh database, its sender not running on its own: tests
    call `center.sender.run_once()` and `center.check()` when they want them."""
    async with fresh_database(db_url, cfg) as db:
        center = AlertCenter(cfg, db, clock=clock, **options)
        await center.sender.ensure_robots()
        try:
            yield center, db
        finally:
            for client in center._own_clients:
                await client.close()
