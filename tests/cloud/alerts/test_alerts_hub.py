"""The real hub (`shopgate-hub run` with the demo hub.yaml): an agent's `door.held_open`
posted to its events API becomes one signed DingTalk markdown message naming the store
and the door; the door closing sends the all-clear."""

from __future__ import annotations

from pathlib import Path

from tests.support.dingtalk import FakeDingTalk, serve_in_thread
from tests.support.hub import make_event, start_hub
from tests.support.sim import wait_until


def test_door_held_open_reaches_the_owners_dingtalk_group(tmp_path: Path) -> None:
    with serve_in_thread(FakeDingTalk(secret="SECdemo-robot-secret")) as ding:
        env = {"SHOPGATE_DINGTALK_URL": ding.webhook(), "SHOPGATE_DINGTALK_SECRET": ding.secret}
        hub = start_hub(tmp_path / "run", env=env)
        try:
            held = make_event(1, type_="door.held_open", door="front", seconds=60)
            status, body = hub.post_events([held])
            assert (status, body) == (200, {"accepted": 1, "duplicates": 0})
            wait_until(lambda: ding.messages or None, 10, "the DingTalk message")
            message = ding.messages[0]
            assert message.body["msgtype"] == "markdown"
            assert "front" in message.title and "演示店" in message.title
            assert "演示店 Demo store（demo-001）" in message.text and "**front**" in message.text
            # the agent sends it again (at least once): still one message
            assert hub.post_events([held])[1] == {"accepted": 0, "duplicates": 1}
            closed = make_event(2, type_="door.closed", door="front", open_seconds=80)
            assert hub.post_events([closed])[0] == 200
            wait_until(lambda: len(ding.messages) == 2 or None, 10, "the all-clear")
            assert ding.messages[1].title.startswith("✅ 门已关")
            assert ding.refused == []
            log = hub.log()
        finally:
            hub.stop()
    assert ding.secret not in log and ding.token not in log
