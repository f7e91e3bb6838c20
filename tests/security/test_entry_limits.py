"""Attacks on the customer entry page's guess limits, over real sockets.

The answer to a door's question is short (a house number, a colour), so what keeps it
from being guessed is how many guesses the page checks: per visitor (a cookie, which an
attacker drops), per address (an IPv4 address, an IPv6 /64, the client behind a trusted
proxy) and per door (everyone together). Each test attacks one way around a count.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from cloud.db.engine import Database
from tests.cloud import conftest as hub_db
from tests.security.entry_site import ANSWER, EntrySite

# Every test here runs on SQLite and on PostgreSQL (tests/cloud/conftest.py).
db, db_url, shared_pg_url = hub_db.db, hub_db.db_url, hub_db.shared_pg_url

PROXY = {"trusted_proxies": ["127.0.0.1"]}


async def test_a_burst_of_50_wrong_answers_from_one_visitor_checks_only_5(
    tmp_path: Path, db: Database
) -> None:
    async with EntrySite.start(tmp_path, db) as site:
        guest = site.browser()
        asked = await guest.ask()
        results = await asyncio.gather(*(guest.answer(asked, f"错{n}") for n in range(50)))
        assert await site.checked() == 5
        # Four told "wrong, try again"; the fifth wrong one and the 45 never checked: paused.
        assert sum(r.paused for r in results) == 46
        assert sum("答案不正确" in r.text for r in results) == 4
        assert not any(r.granted for r in results)
        # Paused now, right answer or not.
        assert (await guest.answer(asked, ANSWER)).paused


async def test_a_burst_with_the_right_answer_in_it_gets_no_more_checks(
    tmp_path: Path, db: Database
) -> None:
    async with EntrySite.start(tmp_path, db) as site:
        guest = site.browser()
        asked = await guest.ask()
        guesses = [f"{n}0" for n in range(40)] + [ANSWER]
        results = await asyncio.gather(*(guest.answer(asked, g) for g in guesses))
        # However the burst was ordered, at most 5 wrong answers were checked, and the
        # right one got through only if it came before the pause.
        assert sum(o == "wrong_answer" for o in await site.outcomes()) <= 5
        assert await site.checked() <= 6
        assert sum(r.granted for r in results) <= 1


async def test_dropping_the_cookie_is_caught_per_address(tmp_path: Path, db: Database) -> None:
    async with EntrySite.start(tmp_path, db) as site:
        attacker = site.browser(source="127.0.0.9")
        results = []
        for n in range(25):
            attacker.forget()
            asked = await attacker.ask()
            if asked.paused:
                results.append(asked)
                continue
            results.append(await attacker.answer(asked, f"{n}错"))
        assert await site.checked() == 20
        assert all(r.paused for r in results[20:])
        # Another address (another phone, off the store's Wi-Fi) is not paused.
        customer = site.browser(source="127.0.0.10")
        assert (await customer.answer(await customer.ask())).granted


async def test_dropping_the_cookie_and_changing_address_is_caught_at_the_door(
    tmp_path: Path, db: Database
) -> None:
    """40 addresses, 3 guesses each, a new cookie every time: no per-visitor or
    per-address count fills, the door's does."""
    async with EntrySite.start(tmp_path, db) as site:
        early = site.browser(source="127.0.2.2")
        asked_early = await early.ask()  # a question page opened before the pause
        refused = 0
        for n in range(40):
            attacker = site.browser(source=f"127.0.1.{n + 2}")
            for _ in range(3):
                attacker.forget()
                asked = await attacker.ask()
                if asked.paused:
                    refused += 1
                    continue
                result = await attacker.answer(asked, "999")
                refused += result.paused
            await attacker.close()
        assert await site.checked() == 30  # entry.door_limit.max_wrong
        assert refused == 120 - 30 + 1  # the 30th wrong answer is answered with the pause
        # A stranger now finds the door's page paused for everyone, and is told why.
        stranger = site.browser(source="127.0.2.1")
        paused = await stranger.ask()
        assert paused.paused and "Retry-After" in paused.headers
        assert "暂停" in paused.text
        # An answer to a question asked before the pause is not checked either.
        assert (await early.answer(asked_early)).paused
        assert (await site.outcomes())[-1] == "door_paused"
        # Another door of the store is not paused.
        other = await stranger.get("/s/demo-001/back")
        assert other.status == 200


async def test_a_regular_still_gets_in_while_the_door_is_paused(
    tmp_path: Path, db: Database
) -> None:
    async with EntrySite.start(tmp_path, db, door_limit={"max_wrong": 3}) as site:
        regular = site.browser(source="127.0.3.1")
        assert (await regular.answer(await regular.ask())).granted  # came in yesterday
        for n in range(3):
            attacker = site.browser(source=f"127.0.3.{n + 10}")
            await attacker.answer(await attacker.ask(), "999")
        assert await site.checked() == 1 + 3
        stranger = site.browser(source="127.0.3.50")
        assert (await stranger.ask()).paused
        # The regular's browser answered right before: the door's pause is not theirs
        # (their own and their address's counts still hold).
        asked = await regular.ask()
        assert asked.status == 200
        assert (await regular.answer(asked)).granted


async def test_x_forwarded_for_from_an_untrusted_client_is_ignored(
    tmp_path: Path, db: Database
) -> None:
    limits = {"trusted_proxies": ["10.0.0.0/8"]}
    async with EntrySite.start(tmp_path, db, limits=limits, max_wrong_per_ip=8) as site:
        attacker = site.browser(source="127.0.0.5")
        for n in range(12):
            attacker.forget()
            spoofed = {"X-Forwarded-For": f"203.0.113.{n}, 10.0.0.1"}
            asked = await attacker.ask(headers=spoofed)
            if not asked.paused:
                await attacker.answer(asked, f"{n}错", headers=spoofed)
        assert await site.checked() == 8


async def test_behind_a_trusted_proxy_each_client_has_its_own_count(
    tmp_path: Path, db: Database
) -> None:
    async with EntrySite.start(tmp_path, db, limits=PROXY, max_wrong_per_ip=8) as site:
        attacker = site.browser(forwarded_for="198.51.100.7")
        for n in range(12):
            attacker.forget()
            # What the attacker sends is kept by the proxy, to the left of what it adds.
            sent = {"X-Forwarded-For": f"192.0.2.{n}, 198.51.100.7"}
            asked = await attacker.ask(headers=sent)
            if not asked.paused:
                await attacker.answer(asked, f"{n}错", headers=sent)
        assert await site.checked() == 8
        attacker.forget()
        assert (await attacker.ask()).paused
        # Everyone else comes through the same proxy, and is not paused with them.
        customer = site.browser(forwarded_for="203.0.113.9")
        assert (await customer.answer(await customer.ask())).granted


async def test_rotating_ipv6_addresses_within_a_64_is_one_address(
    tmp_path: Path, db: Database
) -> None:
    rng = random.Random(64)
    async with EntrySite.start(tmp_path, db, limits=PROXY, max_wrong_per_ip=8) as site:
        attacker = site.browser()
        for n in range(12):
            attacker.forget()
            host = ":".join(f"{rng.getrandbits(16):x}" for _ in range(4))
            sent = {"X-Forwarded-For": f"2001:db8:5:6:{host}"}
            asked = await attacker.ask(headers=sent)
            if not asked.paused:
                await attacker.answer(asked, f"{n}错", headers=sent)
        assert await site.checked() == 8
        neighbour = site.browser(forwarded_for="2001:db8:5:7::1")  # the next /64
        assert (await neighbour.answer(await neighbour.ask())).granted


async def test_the_counts_survive_a_restart(tmp_path: Path, db: Database) -> None:
    async with EntrySite.start(tmp_path, db) as site:
        guest = site.browser()
        asked = await guest.ask()
        for n in range(5):
            await guest.answer(asked, f"{n}错")
        cookies = list(guest.session.cookie_jar)
    async with EntrySite.start(tmp_path, db) as restarted:
        guest = restarted.browser()
        guest.session.cookie_jar.update_cookies({c.key: c.value for c in cookies})
        assert (await guest.ask()).paused
