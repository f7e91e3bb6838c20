"""An attack on a door's entry page pages the owner on DingTalk (trigger `entry_attack`):
once, when the door pauses, however long the attack goes on; and once more when the door
has been quiet for a window after its pause. Time is the test's clock, never a sleep."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from typing import Any

from cloud.alerts import entry_attack
from cloud.alerts.worker import AlertCenter
from cloud.api.appkeys import CONFIG
from cloud.db.engine import Database
from cloud.limits.web import DOOR_PAUSED, LIMITER
from tests.cloud import conftest as hub_db
from tests.cloud.alerts.alert_fixtures import Clock
from tests.security.entry_site import Browser, EntrySite
from tests.support.dingtalk import FakeDingTalk, serve_in_thread
from tests.support.hub import start_hub
from tests.support.sim import wait_until

# Every test here runs on SQLite and on PostgreSQL (tests/cloud/conftest.py).
db, db_url, shared_pg_url = hub_db.db, hub_db.db_url, hub_db.shared_pg_url

DOOR_LIMIT = {"max_wrong": 3, "window_seconds": 300, "max_pause_seconds": 1200}


async def attack(site: EntrySite, tries: int, first: int) -> None:
    """Wrong answers from new addresses, a new cookie each: only the door's count fills."""
    for n in range(first, first + tries):
        attacker = site.browser(source=f"127.0.4.{n}")
        asked = await attacker.ask()
        if not asked.paused:
            await attacker.answer(asked, "999")
        await attacker.close()


async def sent(center: AlertCenter, ding: FakeDingTalk, clock: Clock) -> list[str]:
    before = len(ding.messages)
    for _ in range(50):
        wait = await center.sender.run_once()
        if wait is None:
            break
        clock.advance(seconds=wait)
    else:
        raise AssertionError(f"the alerts were never sent: {ding.refused}")
    return [m.title for m in ding.messages[before:]]


async def test_an_attack_pages_once_and_the_quiet_after_it_resolves(
    tmp_path: Path, db: Database
) -> None:
    clock = Clock()
    # The robot signs with the real time, which is what DingTalk checks.
    async with FakeDingTalk() as ding:
        alerts = {"robots": [{"id": "owner", "url": ding.webhook(), "secret": ding.secret}]}
        async with EntrySite.start(tmp_path, db, alerts=alerts, door_limit=DOOR_LIMIT) as site:
            site.app[LIMITER].clock = clock.timestamp
            center = AlertCenter(site.app[CONFIG], db, clock=clock)
            await center.sender.ensure_robots()
            site.app[DOOR_PAUSED].append(
                functools.partial(entry_attack.door_paused, center.triggers)
            )
            try:
                await attack(site, 2, first=1)
                assert await sent(center, ding, clock) == []  # two wrong answers: normal
                await attack(site, 3, first=10)
                assert await sent(center, ding, clock) == ["🚨 进门页面疑似被攻击：演示店 · front"]
                text = ding.messages[-1].text
                assert "答错 3 次" in text and "演示店（demo-001）" in text
                assert "最长 20 分钟" in text and "近 30 天在本店验证通过的手机" in text

                # The attacker is back the moment the pause ends: still the same incident.
                clock.advance(seconds=300)
                await attack(site, 4, first=20)
                await center.check()
                assert await sent(center, ding, clock) == []
                # The second pause is twice as long (600 s); then a quiet window (300 s).
                clock.advance(seconds=600 + 299)
                await center.check()
                assert await sent(center, ding, clock) == []
                clock.advance(seconds=2)
                await center.check()
                assert await sent(center, ding, clock) == ["✅ 进门页面恢复：演示店 · front"]
                # A new attack later is a new incident.
                clock.advance(seconds=3600)
                await attack(site, 3, first=40)
                assert await sent(center, ding, clock) == ["🚨 进门页面疑似被攻击：演示店 · front"]
            finally:
                for client in center._own_clients:
                    await client.close()


def test_the_real_hub_pages_the_owner_when_a_door_is_attacked(tmp_path: Path) -> None:
    def lower_the_door_limit(raw: dict[str, Any]) -> None:
        raw["stores"][0]["entry"]["door_limit"] = {"max_wrong": 3}

    with serve_in_thread(FakeDingTalk(secret="SECdemo-robot-secret")) as ding:
        env = {"SHOPGATE_DINGTALK_URL": ding.webhook(), "SHOPGATE_DINGTALK_SECRET": ding.secret}
        hub = start_hub(tmp_path / "run", env=env, edit=lower_the_door_limit)
        try:

            async def go() -> list[int]:
                statuses = []
                for n in range(5):
                    phone = Browser(hub.url, f"127.0.5.{n + 1}", None)
                    try:
                        asked = await phone.ask()
                        result = await phone.answer(asked, "999") if not asked.paused else asked
                        statuses.append(result.status)
                    finally:
                        await phone.close()
                return statuses

            statuses = asyncio.run(go())
            assert statuses == [200, 200, 429, 429, 429]  # the third filled the door's count
            wait_until(lambda: ding.messages or None, 10, "the DingTalk message")
            [message] = ding.messages
            assert message.title == "🚨 进门页面疑似被攻击：演示店 Demo store · front"
            assert "演示店 Demo store（demo-001）" in message.text
            log = hub.log()
        finally:
            hub.stop()
    assert "999" not in log.replace(str(hub.port), "")  # the answers tried are not logged
