"""The keyboard-wedge decoder: key events as a HID scanner sends them -> the scanned text."""

from __future__ import annotations

import string

import pytest
from evdev import ecodes
from hypothesis import given
from hypothesis import strategies as st

from agent.devices.protocols.keyboard_wedge import (
    EV_KEY,
    FR,
    KEY_DOWN,
    KEY_ENTER,
    KEY_LEFTSHIFT,
    KEY_REPEAT,
    KEY_UP,
    LAYOUTS,
    US,
    WedgeDecoder,
    WedgeItem,
    WedgeLine,
    WedgeLineTooLong,
    encode,
)

PRINTABLE = string.ascii_letters + string.digits + string.punctuation + " "
EV_SYN, EV_MSC = 0, 4


def decode(events: list[tuple[int, int, int]], decoder: WedgeDecoder) -> list[WedgeItem]:
    out: list[WedgeItem] = []
    for ev in events:
        out += decoder.feed(*ev)
    return out


def as_device_sends(events: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """With the MSC_SCAN and SYN_REPORT a real keyboard interleaves (ignored, not unknown)."""
    out: list[tuple[int, int, int]] = []
    for ev in events:
        out += [(EV_MSC, 4, 0x70004), ev, (EV_SYN, 0, 0)]
    return out


barcodes = st.text(alphabet=PRINTABLE, min_size=1, max_size=64).filter(lambda s: s.strip())


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@given(text=barcodes)
def test_any_ascii_barcode_decodes_back_exactly(layout: str, text: str) -> None:
    decoder = WedgeDecoder(LAYOUTS[layout])
    assert decode(as_device_sends(encode(text, LAYOUTS[layout])), decoder) == [WedgeLine(text)]
    assert decoder.unknown_total == 0


@given(scans=st.lists(barcodes, min_size=1, max_size=5))
def test_consecutive_scans_are_separate_lines(scans: list[str]) -> None:
    events = [ev for s in scans for ev in encode(s, US)]
    assert decode(events, WedgeDecoder(US)) == [WedgeLine(s) for s in scans]


def test_the_layout_is_data_the_same_keys_mean_other_text_on_azerty() -> None:
    typed_on_us = encode("6901234567892", US)
    assert decode(typed_on_us, WedgeDecoder(US)) == [WedgeLine("6901234567892")]
    # A scanner left on US layout, read as AZERTY: the digit row types & é " ' ( ...
    assert decode(typed_on_us, WedgeDecoder(FR)) == [WedgeLine("-çà&é\"'(-è_çé")]
    assert decode(encode("a@q", FR), WedgeDecoder(US)) == [WedgeLine("q0a")]


def test_key_codes_are_the_kernels() -> None:
    assert KEY_ENTER == ecodes.KEY_ENTER and KEY_LEFTSHIFT == ecodes.KEY_LEFTSHIFT
    for ch, name in (("a", "KEY_A"), ("1", "KEY_1"), ("/", "KEY_SLASH"), ("`", "KEY_GRAVE")):
        assert US.keys[ecodes.ecodes[name]][0] == ch
    assert FR.keys[ecodes.KEY_Q][0] == "a" and FR.keys[ecodes.KEY_102ND][0] == "<"
    assert US.keys[ecodes.KEY_KP7][0] == "7" and US.keys[ecodes.KEY_SPACE][0] == " "


def test_keypad_enter_ends_a_line_and_right_shift_shifts() -> None:
    events = [
        (EV_KEY, ecodes.KEY_RIGHTSHIFT, KEY_DOWN),
        (EV_KEY, ecodes.KEY_A, KEY_DOWN),
        (EV_KEY, ecodes.KEY_A, KEY_UP),
        (EV_KEY, ecodes.KEY_RIGHTSHIFT, KEY_UP),
        (EV_KEY, ecodes.KEY_KP1, KEY_DOWN),
        (EV_KEY, ecodes.KEY_KP1, KEY_UP),
        (EV_KEY, ecodes.KEY_KPENTER, KEY_DOWN),
        (EV_KEY, ecodes.KEY_KPENTER, KEY_UP),
    ]
    assert decode(events, WedgeDecoder(US)) == [WedgeLine("A1")]


def test_caps_lock_shifts_letters_only() -> None:
    caps = [(EV_KEY, ecodes.KEY_CAPSLOCK, KEY_DOWN), (EV_KEY, ecodes.KEY_CAPSLOCK, KEY_UP)]
    events = caps + encode("ab1", US)
    assert decode(events, WedgeDecoder(US)) == [WedgeLine("AB1")]


def test_unknown_keys_are_counted_with_their_line_not_guessed() -> None:
    decoder = WedgeDecoder(US)
    events = [
        *encode("12", US)[:-2],
        (EV_KEY, ecodes.KEY_TAB, KEY_DOWN),
        (EV_KEY, ecodes.KEY_TAB, KEY_UP),
        (EV_KEY, ecodes.KEY_F5, KEY_DOWN),
        (EV_KEY, ecodes.KEY_F5, KEY_UP),
        (EV_KEY, 0x2FF, KEY_DOWN),  # a code no keyboard has
        (EV_KEY, KEY_ENTER, KEY_DOWN),
        (EV_KEY, KEY_ENTER, KEY_UP),
    ]
    assert decode(events, decoder) == [WedgeLine("12", unknown_keys=3)]
    assert decoder.unknown_total == 3
    # The next scan starts clean.
    assert decode(encode("3", US), decoder) == [WedgeLine("3")]


def test_a_scan_of_only_unknown_keys_is_still_reported() -> None:
    events = [(EV_KEY, ecodes.KEY_F1, KEY_DOWN), (EV_KEY, KEY_ENTER, KEY_DOWN)]
    assert decode(events, WedgeDecoder(US)) == [WedgeLine("", unknown_keys=1)]


def test_repeat_types_again_as_the_console_does_but_enter_repeat_does_not() -> None:
    events = [
        (EV_KEY, ecodes.KEY_1, KEY_DOWN),
        (EV_KEY, ecodes.KEY_1, KEY_REPEAT),
        (EV_KEY, ecodes.KEY_1, KEY_UP),
        (EV_KEY, KEY_ENTER, KEY_DOWN),
        (EV_KEY, KEY_ENTER, KEY_REPEAT),
        (EV_KEY, KEY_ENTER, KEY_UP),
    ]
    assert decode(events, WedgeDecoder(US)) == [WedgeLine("11")]


def test_a_bare_enter_is_no_scan() -> None:
    assert (
        decode([(EV_KEY, KEY_ENTER, KEY_DOWN), (EV_KEY, KEY_ENTER, KEY_UP)], WedgeDecoder(US)) == []
    )


def test_an_overlong_line_is_dropped_whole_and_the_next_one_reads() -> None:
    decoder = WedgeDecoder(US, max_len=10)
    assert decode(encode("x" * 25, US) + encode("ok", US), decoder) == [
        WedgeLineTooLong(25),
        WedgeLine("ok"),
    ]


def test_reset_forgets_a_partial_line_and_held_shift() -> None:
    decoder = WedgeDecoder(US)
    decode([*encode("abc", US)[:-2], (EV_KEY, KEY_LEFTSHIFT, KEY_DOWN)], decoder)
    decoder.reset()
    assert decode(encode("d", US), decoder) == [WedgeLine("d")]


def test_a_character_the_layout_cannot_type_is_refused_by_the_encoder() -> None:
    with pytest.raises(ValueError, match="cannot type"):
        encode("é", US)
