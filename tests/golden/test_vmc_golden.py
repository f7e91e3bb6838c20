"""The VMC's golden frames (tests/golden/vmc_frames.py, with their sources) against both
codecs: the agent's (agent/devices/protocols/vmc.py) and the simulator's own
(firmware-sim/shopgate_sim/vmc_wire.py). Each side is checked in the direction it speaks:
what it sends must be these bytes, what it reads must mean what the document says."""

from __future__ import annotations

import pytest
from shopgate_sim import vmc_wire as wire

from agent.devices.protocols import vmc
from tests.golden.vmc_frames import FRAMES, Frame

SLOT_STATE = {
    "normal": vmc.SlotState.OK,
    "out_of_stock": vmc.SlotState.EMPTY,
    "not_exist": vmc.SlotState.ABSENT,
    "paused": vmc.SlotState.FAULT,
}
SIM_SELECTION = {
    "normal": wire.Selection.NORMAL,
    "out_of_stock": wire.Selection.OUT_OF_STOCK,
    "not_exist": wire.Selection.NOT_EXIST,
    "paused": wire.Selection.PAUSED,
}
DISPENSE_STATE = {
    "dispensing": vmc.DispenseState.DISPENSING,
    "success": vmc.DispenseState.SUCCESS,
    "jammed": vmc.DispenseState.JAMMED,
    "motor_not_stopped": vmc.DispenseState.MOTOR_NOT_STOPPED,
    "no_motor": vmc.DispenseState.NO_MOTOR,
}
SIM_DISPENSING = {
    "dispensing": wire.Dispensing.DISPENSING,
    "success": wire.Dispensing.SUCCESS,
    "jammed": wire.Dispensing.JAMMED,
    "motor_not_stopped": wire.Dispensing.MOTOR_NOT_STOPPED,
    "no_motor": wire.Dispensing.NO_MOTOR,
}
SIM_CMD = {
    "check": wire.CHECK_SELECTION,
    "buy": wire.BUY,
    "set_price": wire.SET_PRICE,
    "set_inventory": wire.SET_INVENTORY,
}


def agent_message(f: Frame) -> vmc.Message:
    pack, slot = f.pack or 0, f.slot or 0
    match f.msg:
        case "poll":
            return vmc.Poll()
        case "ack":
            return vmc.Ack()
        case "check":
            return vmc.CheckSelection(pack, slot)
        case "buy":
            return vmc.Buy(pack, slot)
        case "selection":
            return vmc.SelectionStatus(pack, SLOT_STATE[f.status or ""], slot)
        case "dispense":
            return vmc.DispenseStatus(pack, DISPENSE_STATE[f.status or ""], slot)
        case "set_price":
            return vmc.SetPrice(pack, slot, f.value or 0)
        case "set_inventory":
            return vmc.SetInventory(pack, slot, f.value or 0)
    return vmc.Unknown(f.cmd or 0, pack, bytes.fromhex(f.data))


ids = [f.name for f in FRAMES]


@pytest.mark.parametrize("f", FRAMES, ids=ids)
def test_the_agent_codec_writes_and_reads_each_frame_as_documented(f: Frame) -> None:
    frame = bytes.fromhex(f.hex)
    assert vmc.decode(frame) == agent_message(f)
    assert vmc.encode(agent_message(f)) == frame
    out = vmc.Deframer().feed(b"\x00\x13" + frame)  # behind line noise
    assert [vmc.from_frame(x) for x in out if isinstance(x, vmc.Frame)] == [agent_message(f)]


@pytest.mark.parametrize("f", FRAMES, ids=ids)
def test_the_simulated_vmc_frames_each_packet_as_documented(f: Frame) -> None:
    frame = bytes.fromhex(f.hex)
    out = wire.PacketReader().feed(b"\x00\x13" + frame)
    packets = [x for x in out if isinstance(x, wire.Packet)]
    assert len(packets) == 1 and isinstance(out[0], wire.Noise)
    assert packets[0].text == frame[4:-1]
    assert packets[0].pack == (f.pack or 0)


@pytest.mark.parametrize("f", [f for f in FRAMES if f.sender != "host"], ids=lambda f: f.name)
def test_the_simulated_vmc_sends_each_of_its_frames_byte_for_byte(f: Frame) -> None:
    frame = bytes.fromhex(f.hex)
    match f.msg:
        case "poll":
            assert wire.packet(wire.POLL) == frame
        case "ack":
            assert wire.packet(wire.ACK) == frame
        case "selection":
            sent = wire.selection_status(f.pack or 0, SIM_SELECTION[f.status or ""], f.slot or 0)
            assert sent == frame
        case "dispense":
            sent = wire.dispensing_status(f.pack or 0, SIM_DISPENSING[f.status or ""], f.slot or 0)
            assert sent == frame
        case "other":
            assert wire.packet(f.cmd or 0, bytes([f.pack or 0]) + bytes.fromhex(f.data)) == frame


@pytest.mark.parametrize("f", [f for f in FRAMES if f.sender == "host"], ids=lambda f: f.name)
def test_the_simulated_vmc_reads_each_host_command_as_documented(f: Frame) -> None:
    (packet,) = wire.PacketReader().feed(bytes.fromhex(f.hex))
    assert isinstance(packet, wire.Packet)
    cmd = wire.read_host_command(packet)
    if f.msg == "other":
        assert cmd == wire.HostCommand(f.cmd or 0, f.pack or 0)
    else:
        assert cmd == wire.HostCommand(SIM_CMD[f.msg], f.pack or 0, f.slot, f.value)


def test_a_check_selection_with_the_documents_length_4_is_read_too() -> None:
    """4.3.1's table gives Length 4 for a check (its fields add up to 3): the simulated
    VMC reads both, so an upper computer that pads the packet still gets an answer."""
    # 01^01=00 ^04=04 ^01=05 ^00=05 ^0D=08 ^00=08
    frame = bytes.fromhex("FA FB 01 04 01 00 0D 00 08")
    (packet,) = wire.PacketReader().feed(frame)
    assert isinstance(packet, wire.Packet)
    assert wire.read_host_command(packet) == wire.HostCommand(wire.CHECK_SELECTION, 1, 13)


def test_every_vector_checks_out_by_hand() -> None:
    """Each vector's length byte and XOR agree with its bytes, checked without either codec."""
    for f in FRAMES:
        frame = bytes.fromhex(f.hex)
        assert frame[:2] == b"\xfa\xfb" and frame[3] == len(frame) - 5, f.name
        check = 0
        for b in frame[:-1]:
            check ^= b
        assert frame[-1] == check, f.name
