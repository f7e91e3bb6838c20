"""The entry page in a real browser on a phone-sized screen: the real hub (a subprocess),
Debian's chromium driven by Playwright. The QR code is read back from the browser's own
pixels, as a door scanner would read it from the phone's screen.

Needs /usr/bin/chromium (`apt-get install chromium`) and the `playwright` Python package;
no browser is downloaded (`playwright install` is never run).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from storerules.answers import hash_answer
from tests.cloud.web.pass_images import decode_png, verify_entry_pass
from tests.support.browser import PHONE, SCREENSHOTS, require_chromium
from tests.support.hub import HubHandle, start_hub

ANSWERS = {"这家店的门牌号是多少？": "8", "店门口的招牌是什么颜色？": "绿色"}

require_chromium()


def with_questions(cfg: dict[str, Any]) -> None:
    questions = [{"question": q, "answers": [hash_answer(a)]} for q, a in ANSWERS.items()]
    cfg["stores"][0]["entry"] = {"doors": ["front"], "questions": questions}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubHandle]:
    with start_hub(tmp_path_factory.mktemp("hub"), edit=with_questions) as handle:
        yield handle


def open_entry_page(phone: Any, hub: HubHandle) -> str:
    response = phone.goto(f"{hub.url}/s/{hub.store}/front")
    assert response.status == 200
    question = phone.locator("#question").inner_text()
    assert question in ANSWERS
    return question


def test_a_right_answer_shows_a_pass_the_door_scanner_accepts(phone: Any, hub: HubHandle) -> None:
    question = open_entry_page(phone, hub)
    assert "演示店" in phone.locator(".store").inner_text()
    # Laid out for the phone: nothing wider than the screen, a thumb-sized button, the
    # inlined stylesheet applied (the page's Content-Security-Policy lets only it in).
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    button = phone.locator("button[type=submit]")
    assert button.bounding_box()["height"] >= 44
    assert button.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(26, 127, 75)"
    phone.screenshot(path=str(SCREENSHOTS / "shopgate-entry-question.png"), full_page=True)

    phone.locator("#answer").fill(ANSWERS[question])
    button.tap()
    phone.wait_for_selector("#pass-qr svg")
    assert phone.locator("h1").inner_text() == "验证通过"
    # No broker in this test: the agent is not online, so the pass is for the scanner.
    assert phone.locator("#status").inner_text() == "请在门口扫描二维码"
    qr = phone.locator("#pass-qr")
    box = qr.bounding_box()
    assert box["width"] >= 250 and box["x"] + box["width"] <= PHONE["width"]
    phone.screenshot(path=str(SCREENSHOTS / "shopgate-entry-pass.png"), full_page=True)

    token = decode_png(qr.screenshot())
    public_key = load_pem_public_key((hub.run_dir / "keys" / "hub-signing.pub.pem").read_bytes())
    claims = verify_entry_pass(token, public_key, store=hub.store)  # type: ignore[arg-type]
    assert (claims.scope, claims.door) == ("entry", "front")
    assert phone.problems == []


def test_a_wrong_answer_is_told_in_chinese(phone: Any, hub: HubHandle) -> None:
    question = open_entry_page(phone, hub)
    phone.locator("#answer").fill("不对" if ANSWERS[question] != "不对" else "错")
    phone.locator("button[type=submit]").tap()
    error = phone.locator(".error")
    error.wait_for()
    assert "答案不正确，请再试一次" in error.inner_text()
    assert phone.locator("#question").inner_text() == question
    assert phone.locator("#pass-qr").count() == 0
    assert phone.problems == []
