"""A right answer on the entry page opens the door at once, end to end: mosquitto, the
simulator, the agent and the hub as separate processes; a phone's requests (with its
cookie) over HTTP; what happened read from the simulated lock board and the agent's
journal. The remote entry used the pass shown on the page: it is single use, so the
same QR scanned at the door afterwards is a replay; a store in lockdown keeps the door
shut for a right answer too."""

from __future__ import annotations

import http.cookiejar
import re
import urllib.parse
import urllib.request
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import pytest

from tests.cloud.web.pass_images import decode_png, rasterize_svg
from tests.e2e.test_door import decide, reason, unlocks
from tests.support.agent import AgentHandle, make_keys, start_agent
from tests.support.broker import start_broker
from tests.support.hub import HubHandle, start_hub
from tests.support.sim import SimHandle, start_sim, wait_until

DEMO_ANSWERS = {"本店的门牌号是多少？": "8", "店门口的招牌是什么颜色？": "绿色"}  # hub.yaml


class Phone:
    """A browser as far as the page cares: cookies kept, forms posted."""

    def __init__(self) -> None:
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def open(self, url: str, form: dict[str, str] | None = None) -> str:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        with self.opener.open(url, data=data, timeout=15) as resp:
            return resp.read().decode("utf-8")

    def enter(self, url: str) -> str:
        page = self.open(url)
        question = unescape(re.search(r'id="question">(.*?)</p>', page)[1])  # type: ignore[index]
        token = re.search(r'name="t" value="([^"]+)"', page)[1]  # type: ignore[index]
        return self.open(url, {"t": token, "answer": DEMO_ANSWERS[question]})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[SimHandle, AgentHandle, HubHandle]]:
    make_keys(tmp_path)
    broker = start_broker(tmp_path)
    env = {"SHOPGATE_MQTT_URL": broker.url}
    try:
        with (
            start_sim(tmp_path) as sim,
            start_hub(tmp_path, env=env) as hub,
            start_agent(tmp_path, env={**env, **hub.agent_env}) as agent,
        ):
            yield sim, agent, hub
    finally:
        broker.stop()


def test_a_right_answer_opens_the_door_and_the_pass_is_then_used(
    store: tuple[SimHandle, AgentHandle, HubHandle],
) -> None:
    sim, agent, hub = store
    phone = Phone()
    url = f"{hub.url}/s/{hub.store}/front"

    # Until the hub has heard the agent's retained status it offers the pass alone.
    def door_opened() -> str | None:
        page = phone.enter(url)
        return page if "门已打开" in page else None

    page = wait_until(door_opened, 15, "the hub to open the door for a right answer")
    wait_until(lambda: unlocks(sim) == 1, 3, "the lock board to see the open frame")
    granted = [e for e in agent.journal.events() if e["type"] == "access.granted"]
    assert [(e["data"]["scope"], e["data"]["door"]) for e in granted] == [("entry", "front")]
    assert granted[0]["data"]["sub"].startswith("visitor-")

    # The same page's QR, scanned at the door: it was used by the remote entry.
    svg = re.search(r"(<svg.*?</svg>)", page, re.S)[1]  # type: ignore[index]
    token = decode_png(rasterize_svg(svg))
    assert reason(decide(agent, sim, token)) == "replayed"
    assert unlocks(sim) == 1
