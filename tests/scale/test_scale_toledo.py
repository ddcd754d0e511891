"""Toledo continuous output: frames built from the status-word tables, checksum, 7E1 parity, fuzzing."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.scale.frames import Weight
from drivers.scale.toledo import Decoder, encode, parse_frame

ISSUE_FRAME = bytes.fromhex("02 2C 30 20 31 32 33 34 35 36 30 30 30 30 30 30 0D")


def with_chk(body: bytes) -> bytes:
    return body + bytes([-sum(body) & 0x7F])


def even_parity(data: bytes) -> bytes:
    return bytes(b | 0x80 if b.bit_count() % 2 else b for b in data)


def test_frame_from_the_issue_is_1234_56_kg_gross_stable() -> None:
    weight = parse_frame(ISSUE_FRAME)
    assert weight == Weight(1234.56, "kg", True, False, 0.0, raw=ISSUE_FRAME)
    assert encode(123456) == ISSUE_FRAME


def test_hand_written_frames() -> None:
    # SWB '+' = 0x2B: net, negative, motion, lb; tare 5.00
    moving = parse_frame(bytes.fromhex("02 2C 2B 20 30 30 31 32 35 30 30 30 30 35 30 30 0D"))
    assert moving is not None
    assert (moving.value, moving.unit, moving.stable, moving.net, moving.tare) == (-12.5, "lb", False, True, 5.0)
    # SWB '4' = 0x34: over/under range
    bad = parse_frame(bytes.fromhex("02 2C 34 20 39 39 39 39 39 39 30 30 30 30 30 30 0D"))
    assert bad is not None and bad.error == "out_of_range" and bad.value is None
    # SWA '*' = 0x2A: no decimal point; SWC '!' = 0x21: grams
    grams = parse_frame(bytes.fromhex("02 2A 30 21 30 30 30 35 30 30 30 30 30 30 30 30 0D"))
    assert grams is not None and (grams.value, grams.unit) == (500.0, "g")
    # SWA '(' = 0x28: XX00 (x100); leading zeros sent as blanks
    hundreds = parse_frame(b"\x02(0    123000000\r")
    assert hundreds is not None and hundreds.value == 12300.0


DECIMALS = {0: 100, 1: 10, 2: 1, 3: 0.1, 4: 0.01, 5: 0.001, 6: 0.0001, 7: 0.00001}
UNITS = {0: None, 1: "g", 2: "t", 3: "oz", 4: "ozt", 5: "dwt", 6: "ton", 7: "custom"}


@pytest.mark.parametrize("dp", range(8))
def test_every_status_combination(dp: int) -> None:
    for net, negative, over, motion, kg, unit_code in itertools.product(
        (0, 1), (0, 1), (0, 1), (0, 1), (0, 1), range(8)
    ):
        swa = 0x20 | 0x08 | dp  # bit 5 always 1, increment x1
        swb = 0x20 | net | negative << 1 | over << 2 | motion << 3 | kg << 4
        swc = 0x20 | unit_code
        frame = bytes([0x02, swa, swb, swc]) + b"004321" + b"000100" + b"\r"
        weight = parse_frame(frame)
        assert weight is not None, frame
        assert weight.unit == (UNITS[unit_code] or ("kg" if kg else "lb"))
        assert weight.net is bool(net) and weight.stable is not motion
        assert weight.tare == pytest.approx(100 * DECIMALS[dp])
        if over:
            assert weight.error == "out_of_range" and weight.value is None
        else:
            assert weight.error is None
            assert weight.value == pytest.approx((-1 if negative else 1) * 4321 * DECIMALS[dp])


def test_fixed_bits_and_digits_are_checked() -> None:
    assert parse_frame(ISSUE_FRAME.replace(b",", b"\x0c", 1)) is None  # SWA bit 5 clear
    assert parse_frame(ISSUE_FRAME.replace(b",", b"l", 1)) is None  # SWA bit 6 set
    assert parse_frame(ISSUE_FRAME[:2] + b"\x10" + ISSUE_FRAME[3:]) is None  # SWB bit 5 clear
    assert parse_frame(ISSUE_FRAME.replace(b"123456", b"12A456")) is None
    assert parse_frame(ISSUE_FRAME.replace(b"123456", b"12 456")) is None  # blank inside the number
    assert parse_frame(ISSUE_FRAME.replace(b"000000", b"      ")) is None
    assert parse_frame(ISSUE_FRAME[:-1] + b"\n") is None


def test_checksum() -> None:
    frame = with_chk(ISSUE_FRAME)
    assert sum(frame) & 0x7F == 0
    assert encode(123456, with_checksum=True) == frame
    decoder = Decoder(with_checksum=True)
    assert [w.value for w in decoder.feed(frame * 3)] == [1234.56] * 3
    corrupted = frame[:6] + b"9" + frame[7:]
    assert decoder.feed(corrupted) == [] and decoder.dropped == 1
    assert parse_frame(frame[:-1] + bytes([(frame[-1] + 1) & 0x7F]), with_checksum=True) is None


def test_7e1_parity_bits_stripped_and_checked() -> None:
    line = even_parity(with_chk(ISSUE_FRAME))
    assert any(b & 0x80 for b in line)
    assert Decoder(with_checksum=True).feed(line) == []  # 8-bit bytes fail the frame checks
    assert [w.value for w in Decoder(with_checksum=True, data_parity="even").feed(line)] == [1234.56]
    assert [w.value for w in Decoder(with_checksum=True, data_parity="strip").feed(line)] == [1234.56]
    flipped = bytearray(line)
    flipped[5] ^= 0x80  # a parity error in a weight digit
    decoder = Decoder(with_checksum=True, data_parity="even")
    assert decoder.feed(bytes(flipped)) == [] and decoder.dropped >= 1
    assert Decoder(with_checksum=True, data_parity="odd").feed(line) == []


def test_partial_frames_and_resync() -> None:
    decoder = Decoder()
    assert decoder.feed(b"\x13\x00junk" + ISSUE_FRAME[:9]) == []
    assert [w.value for w in decoder.feed(ISSUE_FRAME[9:])] == [1234.56]
    # a torn frame (STX ... cut) followed by a whole one: the whole one is still found
    events = decoder.feed(ISSUE_FRAME[:8] + ISSUE_FRAME + encode(1, decimals=3))
    assert [w.value for w in events] == [1234.56, 0.001]
    assert decoder.dropped >= 2


def test_checksum_mode_against_stream_without_checksum_yields_nothing() -> None:
    decoder = Decoder(with_checksum=True)
    weights = decoder.feed(ISSUE_FRAME * 5)
    # without a checksum byte the next STX is taken as the checksum, which fails
    assert weights == []


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.booleans(), st.sampled_from(["none", "strip", "even"]))
def test_fuzz_never_raises_and_weights_pass_every_check(data: bytes, chk: bool, parity: str) -> None:
    decoder = Decoder(with_checksum=chk, data_parity=parity)  # type: ignore[arg-type]
    for i in range(0, len(data), 7):
        for weight in decoder.feed(data[i : i + 7]):
            assert parse_frame(weight.raw, with_checksum=chk) == weight


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=1).filter(lambda b: True), st.integers(0, 17))
def test_fuzz_single_byte_corruption_with_checksum_never_yields_a_weight(byte: bytes, position: int) -> None:
    frame = bytearray(with_chk(ISSUE_FRAME))
    if frame[position] == byte[0]:
        return
    frame[position] = byte[0]
    assert parse_frame(bytes(frame), with_checksum=True) is None


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.binary(max_size=20).map(lambda b: b.replace(b"\x02", b"")), st.integers(0, 999_999)),
        max_size=8,
    )
)
def test_fuzz_valid_frames_survive_garbage_without_stx(items: list[tuple[bytes, int]]) -> None:
    stream = b"".join(garbage + encode(value, with_checksum=True) for garbage, value in items)
    weights = Decoder(with_checksum=True).feed(stream)
    assert [round(w.value * 100) for w in weights if w.value is not None] == [v for _, v in items]
