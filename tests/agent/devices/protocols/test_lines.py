"""Property tests for scanner/keypad line framing."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from agent.devices.protocols.lines import Line, LineFramer, LineTooLong

text_lines = (
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=40)
    .map(str.strip)
    .filter(bool)
)
terminators = st.sampled_from([b"\r", b"\n", b"\r\n"])


def feed_in_chunks(framer: LineFramer, stream: bytes, cuts: list[int]) -> list:
    out = []
    pos = 0
    cut = iter(cuts * (len(stream) + 1))
    while pos < len(stream):
        n = next(cut)
        out += framer.feed(stream[pos : pos + n])
        pos += n
    return out


@given(
    st.lists(st.tuples(text_lines, terminators, st.sampled_from([b"", b"\r\n", b"  \n"]))),
    st.lists(st.integers(1, 9), min_size=1, max_size=10),
)
def test_lines_come_out_as_typed_whatever_the_endings_and_chunking(
    items: list[tuple[str, bytes, bytes]], cuts: list[int]
) -> None:
    stream = b"".join(t.encode() + end + blank for t, end, blank in items)
    out = feed_in_chunks(LineFramer(), stream, cuts)
    assert out == [Line(t) for t, _, _ in items]


@given(st.binary(max_size=200), st.lists(st.integers(1, 50), min_size=1, max_size=5))
def test_arbitrary_bytes_never_raise_and_never_yield_empty_lines(
    data: bytes, cuts: list[int]
) -> None:
    for item in feed_in_chunks(LineFramer(max_len=32), data, cuts):
        if isinstance(item, Line):
            assert item.text and item.text == item.text.strip()
            assert "\r" not in item.text and "\n" not in item.text
            assert len(item.text.encode(errors="replace")) <= 32 * 3


@given(st.integers(9, 100), st.lists(st.integers(1, 30), min_size=1, max_size=5))
def test_an_overlong_line_is_dropped_whole_and_the_next_one_read(
    length: int, cuts: list[int]
) -> None:
    stream = b"a" * length + b"\r\nnext\n"
    out = feed_in_chunks(LineFramer(max_len=8), stream, cuts)
    assert out == [LineTooLong(length), Line("next")]


def test_bad_utf8_is_replaced_and_flagged() -> None:
    assert LineFramer().feed(b"ab\xffc\n") == [Line("ab\ufffdc", had_bad_bytes=True)]
