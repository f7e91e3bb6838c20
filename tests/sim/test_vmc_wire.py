"""Property tests for the simulated VMC's own packets (shopgate_sim/vmc_wire.py), and for
its agreement with the agent's codec: the golden frames pin what the bytes mean, these show
the two independent codecs never drift apart."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from shopgate_sim import vmc_wire as wire

from agent.devices.protocols import vmc

packs = st.integers(1, 255)
selections = st.integers(0, wire.MAX_SELECTION)
# What the agent sends the VMC.
host_messages: st.SearchStrategy[vmc.Message] = st.one_of(
    st.just(vmc.Ack()),
    st.builds(vmc.CheckSelection, packs, selections),
    st.builds(vmc.Buy, packs, selections),
    st.builds(vmc.SetPrice, packs, selections, st.integers(0, 0xFFFFFFFF)),
    st.builds(vmc.SetInventory, packs, selections, st.integers(0, wire.MAX_INVENTORY)),
    st.builds(
        vmc.Unknown,
        st.sampled_from([0x05, 0x06, 0x16, 0x25, 0x27, 0x31, 0x51, 0x53]),
        packs,
        st.binary(max_size=12),
    ),
)
# Noise with no FA in it, so it cannot start a packet of its own.
noise = st.binary(max_size=20).map(lambda b: b.replace(b"\xfa", b"\x00"))

HOST_CMD = {
    vmc.CheckSelection: wire.CHECK_SELECTION,
    vmc.Buy: wire.BUY,
    vmc.SetPrice: wire.SET_PRICE,
    vmc.SetInventory: wire.SET_INVENTORY,
}


def expected(msg: vmc.Message) -> wire.HostCommand | None:
    match msg:
        case vmc.Ack():
            return None
        case vmc.CheckSelection(pack, slot) | vmc.Buy(pack, slot):
            return wire.HostCommand(HOST_CMD[type(msg)], pack, slot)
        case vmc.SetPrice(pack, slot, price):
            return wire.HostCommand(wire.SET_PRICE, pack, slot, price)
        case vmc.SetInventory(pack, slot, qty):
            return wire.HostCommand(wire.SET_INVENTORY, pack, slot, qty)
        case vmc.Unknown(cmd, pack, _):
            return wire.HostCommand(cmd, pack)
    raise AssertionError(msg)


def read_all(reader: wire.PacketReader, stream: bytes, cuts: list[int]) -> list:
    out: list[wire.Packet | wire.Noise] = []
    bounds = sorted({min(c, len(stream)) for c in cuts})
    for a, b in zip([0, *bounds], [*bounds, len(stream)], strict=True):
        out += reader.feed(stream[a:b])
    return out


@given(host_messages)
def test_the_vmc_reads_every_command_the_agent_sends(msg: vmc.Message) -> None:
    (packet,) = wire.PacketReader().feed(vmc.encode(msg))
    assert isinstance(packet, wire.Packet)
    if isinstance(msg, vmc.Ack):
        assert packet == wire.Packet(wire.ACK)
    else:
        assert wire.read_host_command(packet) == expected(msg)


@given(packs, st.sampled_from(wire.Selection), selections)
def test_the_agent_reads_every_selection_status_the_vmc_sends(
    pack: int, status: wire.Selection, selection: int
) -> None:
    msg = vmc.decode(wire.selection_status(pack, status, selection))
    assert isinstance(msg, vmc.SelectionStatus)
    assert (msg.pack, int(msg.state), msg.slot) == (pack, int(status), selection)


@given(packs, st.sampled_from(wire.Dispensing), selections)
def test_the_agent_reads_every_dispensing_status_the_vmc_sends(
    pack: int, status: wire.Dispensing, selection: int
) -> None:
    msg = vmc.decode(wire.dispensing_status(pack, status, selection))
    assert isinstance(msg, vmc.DispenseStatus)
    assert (msg.pack, int(msg.state), msg.slot) == (pack, int(status), selection)


# Packets with no FA past their start: corrupting one cannot create a false start inside.
plain = host_messages.filter(lambda m: b"\xfa" not in vmc.encode(m)[2:])


@given(plain, st.data())
def test_any_corrupted_byte_is_never_read_as_a_packet(
    msg: vmc.Message, data: st.DataObject
) -> None:
    """Any one byte changed changes the XOR. (A changed length byte moves the check byte
    instead: like any 8-bit check, that passes 1 time in 256, as on the real line.)"""
    frame = bytearray(vmc.encode(msg))
    at = data.draw(st.sampled_from([i for i in range(len(frame)) if i != 3]))
    frame[at] ^= data.draw(st.integers(1, 255).filter(lambda x: frame[at] ^ x != 0xFA))
    out = wire.PacketReader().feed(bytes(frame))
    assert not [x for x in out if isinstance(x, wire.Packet)]


@given(
    st.lists(st.tuples(noise, host_messages), max_size=8),
    noise,
    st.lists(st.integers(0, 200), max_size=10),
)
def test_a_stream_cut_anywhere_among_noise_gives_every_packet_once(
    items: list[tuple[bytes, vmc.Message]], tail: bytes, cuts: list[int]
) -> None:
    stream = b"".join(junk + vmc.encode(msg) for junk, msg in items) + tail
    out = read_all(wire.PacketReader(), stream, cuts)
    packets = [x for x in out if isinstance(x, wire.Packet)]
    assert [wire.packet(p.cmd, p.text) for p in packets] == [vmc.encode(m) for _, m in items]
    skipped = b"".join(x.data for x in out if isinstance(x, wire.Noise))
    assert skipped == b"".join(junk for junk, _ in items) + tail


@given(plain, host_messages, st.data())
def test_a_corrupted_packet_costs_only_itself(
    bad: vmc.Message, good: vmc.Message, data: st.DataObject
) -> None:
    frame = bytearray(vmc.encode(bad))
    at = data.draw(st.integers(4, len(frame) - 1))  # body or check byte: the header stands
    frame[at] ^= data.draw(st.integers(1, 255).filter(lambda x: frame[at] ^ x != 0xFA))
    out = wire.PacketReader().feed(bytes(frame) + vmc.encode(good))
    assert [x for x in out if isinstance(x, wire.Packet)] == [
        wire.PacketReader().feed(vmc.encode(good))[0]
    ]
    assert isinstance(out[0], wire.Noise)


@given(st.binary(max_size=300), st.integers(0, 300))
def test_arbitrary_bytes_never_break_the_reader_and_polls_after_them_get_through(
    junk: bytes, cut: int
) -> None:
    reader = wire.PacketReader()
    reader.feed(junk[:cut])
    reader.feed(junk[cut:])
    # A header the junk left half-read holds back at most one packet's worth (4 + 32 + 1).
    acks = reader.feed(wire.packet(wire.ACK) * 10)
    assert wire.Packet(wire.ACK) in acks
