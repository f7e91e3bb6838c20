"""The vending machine (VMC) seen by an upper computer on the real pty at 57600 baud,
speaking the shared codec: polls, reports, retransmissions, faults, answer timing."""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable, Iterator

import pytest
import serial

from agent.devices.protocols import vmc
from tests.support.sim import SimHandle, wait_until

MACHINE = "/vending/vending-1"


class Host:
    """A minimal upper computer: answers polls with ACK (or a queued command) and
    acknowledges reports, so tests can watch what the VMC does."""

    def __init__(self, port: serial.Serial) -> None:
        self.port = port
        self.deframer = vmc.Deframer()
        self.pack = random.randint(1, 255)
        self.seen: list[vmc.Message] = []
        self.inbox: deque[vmc.Message] = deque()

    def read(self, timeout: float = 2.0) -> vmc.Message:
        deadline = time.monotonic() + timeout
        while not self.inbox:
            if time.monotonic() > deadline:
                raise TimeoutError("no frame from the VMC")
            data = self.port.read(self.port.in_waiting or 1)
            for item in self.deframer.feed(data):
                if isinstance(item, vmc.Frame):
                    self.inbox.append(vmc.from_frame(item))
        msg = self.inbox.popleft()
        self.seen.append(msg)
        return msg

    def serve(
        self,
        until: Callable[[vmc.Message], bool],
        *,
        command: vmc.Message | None = None,
        ack_reports: bool = True,
        timeout: float = 5.0,
    ) -> vmc.Message:
        """Answer the VMC until a frame matches `until` (returned, already answered);
        `command` goes out in answer to the first POLL."""
        deadline = time.monotonic() + timeout
        while True:
            msg = self.read(max(0.1, deadline - time.monotonic()))
            if isinstance(msg, vmc.Poll):
                if command is not None:
                    self.port.write(vmc.encode(command))
                    command = None
                else:
                    self.port.write(vmc.encode(vmc.Ack()))
            elif isinstance(msg, vmc.SelectionStatus | vmc.DispenseStatus) and ack_reports:
                self.port.write(vmc.encode(vmc.Ack()))
            if until(msg):
                return msg
            if time.monotonic() > deadline:
                raise TimeoutError(f"VMC never sent what we waited for; saw {self.seen[-10:]}")

    def next_pack(self) -> int:
        self.pack = vmc.next_pack(self.pack)
        return self.pack

    def send(self, make: Callable[[int], vmc.Message]) -> vmc.Message:
        """Send a command after the next POLL and wait for the VMC's ACK."""
        cmd = make(self.next_pack())
        self.serve(lambda m: isinstance(m, vmc.Poll), command=cmd)
        self.serve(lambda m: isinstance(m, vmc.Ack))
        return cmd


def dispense(slot: int, *states: vmc.DispenseState) -> Callable[[vmc.Message], bool]:
    return lambda m: isinstance(m, vmc.DispenseStatus) and m.slot == slot and m.state in states


def selection(slot: int) -> Callable[[vmc.Message], bool]:
    return lambda m: isinstance(m, vmc.SelectionStatus) and m.slot == slot


FINAL = tuple(s for s in vmc.DispenseState if s.final)


@pytest.fixture
def host(sim: SimHandle) -> Iterator[Host]:
    with serial.Serial(str(sim.link("vending-1")), 57600, timeout=0.05) as port:
        port.reset_input_buffer()  # polls queued while nobody listened
        yield Host(port)


def slot_state(sim: SimHandle, slot: int) -> dict:
    return sim.get(MACHINE)["slots"][str(slot)]


def test_get_lists_the_demo_slots(sim: SimHandle) -> None:
    state = sim.get(MACHINE)
    assert set(state["slots"]) == {str(n) for n in range(1, 11)}
    assert state["slots"]["1"]["barcode"] == "6901028075022"
    assert state["slots"]["1"]["price"] == 3.5
    assert state["slots"]["10"]["stock"] == 0 and state["slots"]["10"]["state"] == "empty"
    assert {"polls", "answered", "late", "missed", "duplicates"} <= set(state["wire"])


def test_the_vmc_polls_every_200_ms(host: Host) -> None:
    host.serve(lambda m: isinstance(m, vmc.Poll))
    started = time.monotonic()
    polls = 0
    while time.monotonic() - started < 1.2:
        msg = host.serve(lambda m: True)
        polls += isinstance(msg, vmc.Poll)
    assert 4 <= polls <= 7


def test_a_buy_dispenses_reports_success_and_takes_one_from_stock(
    sim: SimHandle, host: Host
) -> None:
    before = slot_state(sim, 3)
    host.send(lambda p: vmc.Buy(p, 3))
    host.serve(dispense(3, vmc.DispenseState.DISPENSING))
    done = host.serve(dispense(3, *FINAL))
    assert done.state is vmc.DispenseState.SUCCESS
    after = slot_state(sim, 3)
    assert after["stock"] == before["stock"] - 1
    assert after["vends"] == before["vends"] + 1
    assert sim.get(MACHINE)["vends"][-1]["result"] == "success"


def test_a_report_not_acknowledged_comes_again_with_the_same_packet_number(
    sim: SimHandle, host: Host
) -> None:
    wire = sim.get(MACHINE)["wire"]
    host.send(lambda p: vmc.CheckSelection(p, 4))
    first = host.serve(selection(4), ack_reports=False)
    again = host.serve(selection(4), ack_reports=True)
    assert again == first
    after = sim.get(MACHINE)["wire"]
    assert after["retransmissions"] > wire["retransmissions"]
    assert after["missed"] > wire["missed"]


def test_a_retransmitted_buy_is_acknowledged_but_vends_once(sim: SimHandle, host: Host) -> None:
    before = slot_state(sim, 5)
    dup_before = sim.get(MACHINE)["wire"]["duplicates"]
    buy = host.send(lambda p: vmc.Buy(p, 5))
    # As if the VMC's ACK was lost: the same packet again after the next POLL.
    host.serve(lambda m: isinstance(m, vmc.Poll), command=buy)
    host.serve(lambda m: isinstance(m, vmc.Ack))
    host.serve(dispense(5, *FINAL))
    assert sim.get(MACHINE)["wire"]["duplicates"] == dup_before + 1
    time.sleep(1.0)  # a second vend would have finished by now
    assert slot_state(sim, 5)["vends"] == before["vends"] + 1


@pytest.mark.parametrize(
    ("slot", "fault", "state"),
    [
        (6, "jam", vmc.DispenseState.JAMMED),
        (7, "motor", vmc.DispenseState.MOTOR_NOT_STOPPED),
        (8, "no_motor", vmc.DispenseState.NO_MOTOR),
    ],
)
def test_an_injected_fault_fails_the_next_vend_as_the_board_reports_it(
    sim: SimHandle, host: Host, slot: int, fault: str, state: vmc.DispenseState
) -> None:
    before = slot_state(sim, slot)
    sim.post(f"{MACHINE}/fault", {"slot": slot, "fault": fault})
    host.send(lambda p: vmc.Buy(p, slot))
    done = host.serve(dispense(slot, *FINAL))
    assert done.state is state
    assert slot_state(sim, slot)["stock"] == before["stock"]  # nothing came out
    if fault != "no_motor":
        host.send(lambda p: vmc.CheckSelection(p, slot))
        status = host.serve(selection(slot))
        assert status.state is vmc.SlotState.FAULT
    # The fault was for one vend: the next one works.
    host.send(lambda p: vmc.Buy(p, slot))
    assert host.serve(dispense(slot, *FINAL)).state is vmc.DispenseState.SUCCESS


def test_an_empty_slot_answers_a_buy_with_selection_status_empty(
    sim: SimHandle, host: Host
) -> None:
    sim.post(f"{MACHINE}/fault", {"slot": 9, "fault": "empty"})
    host.send(lambda p: vmc.Buy(p, 9))
    status = host.serve(selection(9))
    assert status.state is vmc.SlotState.EMPTY
    assert slot_state(sim, 9)["stock"] == 0
    assert sim.get(MACHINE)["vends"][-1]["result"] == "empty"
    host.send(lambda p: vmc.SetInventory(p, 9, 4))  # restocked
    assert slot_state(sim, 9)["stock"] == 4


def test_price_setting_changes_the_slot_price(sim: SimHandle, host: Host) -> None:
    host.send(lambda p: vmc.SetPrice(p, 2, 420))
    wait_until(lambda: slot_state(sim, 2)["price"] == 4.2, 2, "new price")


def test_a_slot_that_does_not_exist_reports_no_motor(host: Host) -> None:
    host.send(lambda p: vmc.Buy(p, 99))
    assert host.serve(dispense(99, *FINAL)).state is vmc.DispenseState.NO_MOTOR


def test_late_and_missing_answers_are_counted(sim: SimHandle, host: Host) -> None:
    before = sim.get(MACHINE)["wire"]
    host.serve(lambda m: isinstance(m, vmc.Poll))  # answered at once
    host.read()  # the next poll: answered too late
    time.sleep(0.15)  # past the 100 ms the VMC allows, before its next poll (200 ms)
    host.port.write(vmc.encode(vmc.Ack()))
    host.read()  # and the one after: never answered
    time.sleep(0.25)
    after = sim.get(MACHINE)["wire"]
    assert after["late"] >= before["late"] + 1
    assert after["missed"] >= before["missed"] + 1
    assert after["max_answer_ms"] > 100  # recorded as late as it was, past the allowance


def test_malformed_bytes_are_skipped_and_the_next_command_works(sim: SimHandle, host: Host) -> None:
    before = sim.get(MACHINE)["wire"]["malformed"]
    host.port.write(bytes.fromhex("fa fb 03 03 01 00 01 00 ff 00"))  # bad XOR, then noise
    host.send(lambda p: vmc.CheckSelection(p, 1))
    assert host.serve(selection(1)).state is vmc.SlotState.OK
    assert sim.get(MACHINE)["wire"]["malformed"] > before


def test_muted_the_vmc_stops_polling(sim: SimHandle, host: Host) -> None:
    sim.post(f"{MACHINE}/mute", {"on": True})
    try:
        time.sleep(0.3)
        host.port.reset_input_buffer()
        with pytest.raises(TimeoutError):
            host.read(timeout=0.6)
    finally:
        sim.post(f"{MACHINE}/mute", {"on": False})
    host.serve(lambda m: isinstance(m, vmc.Poll))


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        (f"{MACHINE}/fault", {"slot": 1, "fault": "fire"}, 400),
        (f"{MACHINE}/fault", {"slot": "1", "fault": "jam"}, 400),
        (f"{MACHINE}/fault", {"slot": 42, "fault": "jam"}, 404),
        ("/vending/nope/fault", {"slot": 1, "fault": "jam"}, 404),
    ],
)
def test_bad_control_requests_are_refused_with_a_reason(
    sim: SimHandle, path: str, body: dict, status: int
) -> None:
    code, reply = sim.request("POST", path, body)
    assert code == status
    assert reply["error"]
