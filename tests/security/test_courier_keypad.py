"""`<day number>*<last 4 digits>` at the door's keypad, offline (CONTRACTS section 8): the
courier's order opens as its pickup code would, with the pick list in `access.granted`,
and wrong tails count against the door's code limit like wrong codes, counted before
any await, so a burst cannot escape it."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from agent.rules.decide import order_tail
from agent.rules.scan import MalformedScan, OrderTailScan, PickupCodeScan, classify
from tests.security.test_rate_limits import (
    CONTACT,
    LIMIT,
    ORDER,
    RELAY,
    gpio_store,
    journal,
    running_agent,
    seed,
    settle,
)

KEYPAD = {"id": "keypad-back", "kind": "keypad", "port": "keypad-back"}
# ORDER: meituan 27011, day 12 -> "12*7011"


def with_keypad(cfg: dict[str, Any]) -> None:
    cfg["devices"].append(KEYPAD)


async def typed(agent: Any, text: str) -> str:
    decision = await agent.store.access.on_answer("back", text)
    assert decision is not None, text
    return str(decision.reason)


async def test_the_courier_types_day_and_tail_and_the_door_opens_with_the_pick_list(
    tmp_path: Any,
) -> None:
    async with running_agent(gpio_store(tmp_path, with_keypad)) as agent:
        await seed(agent, ORDER)
        assert await typed(agent, "12*1234") == "unknown_order"
        assert await typed(agent, "13*7011") == "unknown_order"
        assert agent.store.devices["gpio"].pin_factory.pin(RELAY).state == 0
        assert await typed(agent, "12*7011#") == "granted"
        await settle(agent)
        [granted] = journal(agent).events("access.granted")
        assert granted["data"]["orders"] == [ORDER["id"]]
        [item] = granted["data"]["items"]
        assert (item["name"], item["qty"], item["shelf"]) == ("可口可乐 500ml", 2, "A3")
        assert journal(agent).events("pickup.completed")[0]["data"]["order"] == ORDER["id"]
        # picked up: the same again opens nothing
        assert await typed(agent, "12*7011") == "already_picked_up"


async def test_a_burst_of_wrong_tails_is_paused_with_the_codes(tmp_path: Any) -> None:
    async with running_agent(gpio_store(tmp_path, with_keypad)) as agent:
        await seed(agent, ORDER)
        agent.store.devices["gpio"].pin_factory.pin(CONTACT).drive_high()
        guesses = [f"12*{n:04d}" for n in range(40) if f"{n:04d}" != "7011"] + ["12*7011"]
        got = await asyncio.gather(*(typed(agent, g) for g in guesses))
        await settle(agent)
        looked_up = [r for r in got if r != "rate_limited"]
        assert len(looked_up) <= LIMIT and got[-1] == "rate_limited"
        assert agent.store.devices["gpio"].pin_factory.pin(RELAY).state == 0
        assert journal(agent).events("access.granted") == []
        assert journal(agent).events("access.locked_out")


def test_a_keypad_answer_with_nothing_waiting_is_not_taken_for_a_code(tmp_path: Any) -> None:
    assert isinstance(classify("8", code_length=6), MalformedScan)


@given(day=st.integers(1, 99999), tail=st.from_regex(r"\A[0-9]{4}\Z"), hash_=st.booleans())
def test_day_and_tail_lines_parse(day: int, tail: str, hash_: bool) -> None:
    line = f"{day}*{tail}{'#' if hash_ else ''}"
    assert classify(line, code_length=6) == OrderTailScan(day, tail)


@given(st.text(max_size=12))
def test_other_lines_are_never_read_as_a_day_and_tail(text: str) -> None:
    scan = classify(text, code_length=6)
    if isinstance(scan, OrderTailScan):
        day, _, rest = text.strip().partition("*")
        assert day.isdigit() and rest.rstrip("#").isdigit() and len(rest.rstrip("#")) == 4


def test_codes_stay_codes() -> None:
    assert classify("483920", code_length=6) == PickupCodeScan("483920")
    assert classify("0*1234", code_length=6) == MalformedScan("order number of the day 0")


@given(st.text(alphabet="0123456789-ABab ", max_size=30))
def test_the_tail_is_the_last_four_digits(number: str) -> None:
    digits = "".join(c for c in number if c.isdigit())
    assert order_tail(number) == digits[-4:]
