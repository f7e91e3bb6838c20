"""Rate limits on guessing at the door, under bursts, concurrency and restarts.

The attacks, each run against the real agent (its scanner driver, its journal on disk,
its lock driver) and, for the burst, the real simulator with the agent as a separate
process:

- one QR whose content holds CRs: a few hundred pickup-code lines in one read, with a
  real code hidden among them;
- wrong codes decided in concurrent tasks, in any order and interleaving;
- a restart between wrong codes (the pause must survive it);
- wrong answers to a door's entry question with one pass.

A "looked-up" code is one the agent compared with its orders (granted, unknown_order,
cancelled, already_picked_up): that is a guess. A refused one (`rate_limited`) is not.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.app import Agent
from agent.clock import Clock
from agent.config import load_config
from agent.journal.view import JournalView
from runtime.systemd import Notifier
from tests.support.agent import Keys, make_keys, seed_orders, start_agent
from tests.support.sim import SimHandle, start_sim, wait_until

REAL = "483920"
ORDER = {
    "id": "mt-1001",
    "platform": "meituan",
    "platform_order_id": "27011",
    "day_seq": 12,
    "pickup_code": REAL,
    "status": "pending",
    "items": [{"barcode": "6901028075022", "name": "可口可乐 500ml", "qty": 2, "shelf": "A3"}],
}
LOOKED_UP = {"granted", "unknown_order", "cancelled", "already_picked_up"}
LIMIT = 5  # access.pickup_code_attempts, default


def wrong_codes(n: int, start: int = 100000) -> list[str]:
    return [str(start + i) for i in range(n) if str(start + i) != REAL]


def reasons(events: list[dict[str, Any]]) -> list[str]:
    return [
        "granted" if e["type"] == "access.granted" else e["data"]["reason"]
        for e in events
        if e["type"] in ("access.granted", "access.denied")
    ]


# --- a burst in one raw scan, end to end ---------------------------------------------


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def sim(run_dir: Path) -> Iterator[SimHandle]:
    make_keys(run_dir)
    with start_sim(run_dir) as handle:
        yield handle


def test_300_code_lines_in_one_raw_scan_do_not_open_the_door(sim: SimHandle, run_dir: Path):
    """The simulator's scanner sends one QR whose content is 300 codes separated by CRs,
    the real one at line 151; the agent is a separate process reading the pty."""
    seed_orders(run_dir, [ORDER])
    lines = [*wrong_codes(150), REAL, *wrong_codes(149, start=700000)]
    assert len(lines) == 300
    with start_agent(run_dir) as agent:
        seq = agent.journal.last_seq()
        sim.post("/scanners/scanner-front/scan", {"code": "\r".join(lines), "raw": True})

        def all_decided() -> list[str] | None:
            got = reasons(agent.journal.events(after_seq=seq))
            return got if len(got) >= len(lines) else None

        got = wait_until(all_decided, 30, "300 decisions")
        assert "granted" not in got
        assert sum(r in LOOKED_UP for r in got) <= LIMIT
        assert got.count("rate_limited") >= len(lines) - LIMIT
        assert agent.journal.order_status(ORDER["id"]) == "pending"
        # No grant is journaled, and the lock only moves after one: the board saw no OPEN.
        assert sim.get("/lockbus/lockbus-1")["boards"]["1"]["1"]["unlock_count"] == 0
        assert agent.journal.events("access.locked_out", seq), "the pause is journaled"
        assert agent.journal.events("access.burst", seq), "the burst is journaled"


# --- an in-process agent with a GPIO door (gpiozero MockFactory) ----------------------

RELAY, CONTACT = 17, 27


class FakeTime:
    """Wall and monotonic time that the test moves (the agent's Clock reads both)."""

    def __init__(self) -> None:
        self.wall = time.time()
        self.mono = 1000.0

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


def gpio_store(tmp: Path, edit: Any = None) -> Path:
    make_keys(tmp)
    cfg: dict[str, Any] = {
        "store": {"id": "demo-001", "timezone": "Asia/Shanghai"},
        "storage": {"dir": "agent"},
        "access": {"keys": [{"kid": "demo", "pem_file": "keys/hub-signing.pub.pem"}]},
        "hub": {"url": "http://127.0.0.1:9"},
        "mqtt": {"url": "mqtt://127.0.0.1:9", "enabled": False},
        "devices": [
            {"id": "gpio", "kind": "gpio", "pin_factory": "mock"},
            {"id": "scanner-back", "kind": "scanner", "port": "scanner-back"},
        ],
        "doors": [
            {
                "id": "back",
                "lock": {"type": "gpio", "device": "gpio", "pin": RELAY},
                "contact": {"type": "gpio", "device": "gpio", "pin": CONTACT},
                "scanner": "scanner-back",
                "unlock_seconds": 1,
            }
        ],
    }
    if edit is not None:
        edit(cfg)
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True))
    return path


@contextlib.asynccontextmanager
async def running_agent(config: Path, clock: Clock | None = None) -> AsyncIterator[Agent]:
    agent = Agent(config, load_config(config), Notifier(None))
    if clock is not None:
        agent.clock = clock
    await agent.start()
    agent.store.devices["gpio"].pin_factory.pin(CONTACT).drive_high()  # door shut
    try:
        yield agent
    finally:
        await agent.stop()


async def settle(agent: Agent) -> None:
    for _ in range(3):
        while agent._inflight:
            await asyncio.gather(*list(agent._inflight), return_exceptions=True)
        await asyncio.sleep(0.02)


def journal(agent: Agent) -> JournalView:
    return JournalView(agent.cfg.storage.dir / "journal.db")


async def seed(agent: Agent, *orders: dict[str, Any]) -> None:
    await agent.store.orders.upsert(list(orders))


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    wrong=st.integers(min_value=LIMIT, max_value=40),
    real_at=st.integers(min_value=LIMIT, max_value=40),
    yields=st.lists(st.integers(min_value=0, max_value=3), min_size=41, max_size=41),
)
def test_any_interleaving_of_concurrent_codes_looks_up_at_most_the_limit(
    wrong: int, real_at: int, yields: list[int]
) -> None:
    """Each line is decided in its own task (as the app does for every scanned line);
    the tasks start in bursts separated by a random number of loop turns, so commits of
    earlier decisions land in between. Never more than LIMIT codes are looked up, and the
    real code, placed after the first LIMIT, never opens the door."""
    codes = wrong_codes(wrong)
    codes.insert(min(real_at, len(codes)), REAL)

    async def attack(tmp: Path) -> list[str]:
        async with running_agent(gpio_store(tmp)) as agent:
            await seed(agent, ORDER)
            access = agent.store.access
            tasks = []
            for code, turns in zip(codes, yields, strict=False):
                for _ in range(turns):
                    await asyncio.sleep(0)
                tasks.append(asyncio.create_task(access.on_scan("back", code)))
            decisions = await asyncio.gather(*tasks)
            await settle(agent)
            assert agent.store.orders.by_id[ORDER["id"]]["status"] == "pending"
            assert agent.store.devices["gpio"].pin_factory.pin(RELAY).state == 0
            return [str(d.reason) for d in decisions]

    with tempfile.TemporaryDirectory() as tmp:
        got = asyncio.run(attack(Path(tmp)))
    assert sum(r in LOOKED_UP for r in got) <= LIMIT, got
    assert "granted" not in got


async def test_the_pause_survives_a_restart_and_ends_on_time(tmp_path: Path) -> None:
    t = FakeTime()
    config = gpio_store(tmp_path)
    async with running_agent(config, Clock(wall=lambda: t.wall, mono=lambda: t.mono)) as agent:
        await seed(agent, ORDER)
        for code in wrong_codes(LIMIT):
            await agent.store.access.on_scan("back", code)
        assert str((await agent.store.access.on_scan("back", REAL)).reason) == "rate_limited"
    t.advance(10)
    async with running_agent(config, Clock(wall=lambda: t.wall, mono=lambda: t.mono)) as agent:
        # Restarted within the pause: the real code is still not looked up.
        assert str((await agent.store.access.on_scan("back", REAL)).reason) == "rate_limited"
        t.advance(60)
        assert (await agent.store.access.on_scan("back", REAL)).granted
        await settle(agent)


# --- the entry question on the keypad -----------------------------------------------


def with_question(answer: str, attempts: int | None = None) -> Any:
    from storerules.answers import hash_answer

    def edit(cfg: dict[str, Any]) -> None:
        cfg["devices"].append({"id": "keypad-back", "kind": "keypad", "port": "keypad-back"})
        question: dict[str, Any] = {
            "keypad": "keypad-back",
            "answers": [hash_answer(answer)],
            "timeout_seconds": 30,
        }
        if attempts is not None:
            question["attempts"] = attempts
        cfg["doors"][0]["entry_question"] = question

    return edit


async def answer_with(agent: Agent, pass_: str, text: str) -> str:
    """Scan the pass, type the answer; the decision's reason (`replayed` if the pass
    is no longer taken at all)."""
    first = await agent.store.access.on_scan("back", pass_)
    if not first.needs_answer:
        return str(first.reason)
    decision = await agent.store.access.on_answer("back", text)
    assert decision is not None
    return str(decision.reason)


async def test_one_pass_cannot_guess_the_entry_question(tmp_path: Path) -> None:
    """Answers 1..8 with the same pass: today the eighth opens. The pass must be burned
    after `attempts` (default 3) wrong answers."""
    keys = make_keys(tmp_path)
    pass_ = keys.mint(scope="entry", sub="mallory", door=None)
    async with running_agent(gpio_store(tmp_path, with_question("8"))) as agent:
        got = [await answer_with(agent, pass_, str(n)) for n in range(1, 9)]
        await settle(agent)
        assert got == ["wrong_answer"] * 3 + ["replayed"] * 5
        assert agent.store.devices["gpio"].pin_factory.pin(RELAY).state == 0
        burned = journal(agent).events("access.locked_out")
        assert burned and burned[-1]["data"]["kind"] == "entry_answer"


async def test_wrong_answers_are_counted_across_a_restart(tmp_path: Path) -> None:
    keys: Keys = make_keys(tmp_path)
    pass_ = keys.mint(scope="entry", sub="mallory", door=None)
    config = gpio_store(tmp_path, with_question("8", attempts=3))
    async with running_agent(config) as agent:
        assert await answer_with(agent, pass_, "1") == "wrong_answer"
        assert await answer_with(agent, pass_, "2") == "wrong_answer"
    async with running_agent(config) as agent:
        assert await answer_with(agent, pass_, "3") == "wrong_answer"
        assert await answer_with(agent, pass_, "8") == "replayed"


async def test_pauses_double_and_a_good_code_ends_the_streak(tmp_path: Path) -> None:
    t = FakeTime()
    clock = Clock(wall=lambda: t.wall, mono=lambda: t.mono)
    other = {**ORDER, "id": "mt-1002", "pickup_code": "135790"}

    async def code(agent: Agent, c: str) -> str:
        t.advance(2)  # a person's pace: no burst
        return str((await agent.store.access.on_scan("back", c)).reason)

    async with running_agent(gpio_store(tmp_path), clock) as agent:
        await seed(agent, ORDER, other)
        wrong = iter(wrong_codes(100))
        assert [await code(agent, next(wrong)) for _ in range(4)] == ["unknown_order"] * 4
        assert await code(agent, REAL) == "granted"  # the courier got it right: forgotten
        assert [await code(agent, next(wrong)) for _ in range(5)] == ["unknown_order"] * 5
        assert await code(agent, other["pickup_code"]) == "rate_limited"  # not looked up
        t.advance(60)
        assert await code(agent, next(wrong)) == "unknown_order"  # one more: 2 min
        t.advance(100)
        assert await code(agent, other["pickup_code"]) == "rate_limited"
        await settle(agent)
        paused = [e["data"] for e in journal(agent).events("access.locked_out")]
        assert [(p["kind"], p["pause"], p["pause_seconds"], p["wrong"]) for p in paused] == [
            ("pickup_code", 1, 60, 5),
            ("pickup_code", 2, 120, 6),
        ]
        denied = journal(agent).events("access.denied")
        assert "paused for" in denied[-1]["data"]["detail"]
        t.advance(30)
        assert await code(agent, other["pickup_code"]) == "granted"
        await settle(agent)
        assert not journal(agent).events("access.burst")


async def test_a_burst_is_journaled_once_and_a_person_never_makes_one(tmp_path: Path) -> None:
    t = FakeTime()
    clock = Clock(wall=lambda: t.wall, mono=lambda: t.mono)
    keys = make_keys(tmp_path)
    async with running_agent(gpio_store(tmp_path), clock) as agent:
        access = agent.store.access
        for i in range(10):  # ten people, one after another
            t.advance(1.5)
            await access.on_scan("back", keys.mint(scope="entry", sub=f"p{i}", door=None))
        await settle(agent)
        assert not journal(agent).events("access.burst")
        t.advance(2)
        lines = ["hello", *wrong_codes(20), "6901028075022"]
        await asyncio.gather(*(access.on_scan("back", line) for line in lines))
        t.advance(0.5)
        await access.on_scan("back", "more of the same burst")
        t.advance(1.0)
        await asyncio.gather(*(access.on_scan("back", line) for line in ["x"] * 6))
        await settle(agent)
        bursts = [e["data"] for e in journal(agent).events("access.burst")]
        assert bursts == [
            {"door": "back", "lines": 6, "seconds": 0.0},
            {"door": "back", "lines": 6, "seconds": 0.0},
        ]
