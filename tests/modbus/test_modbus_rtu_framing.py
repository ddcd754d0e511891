"""The device-side RTU decoder: real frames, partial feeds, garbage, resynchronisation (fuzzed)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from drivers.modbus.rtu import RtuRequest, RtuRequestDecoder, crc16, exception_frame, frame

# Frames as they travel on a line (Modbus over serial line spec and common captures).
READ_10_HOLDING = bytes.fromhex("01 03 00 00 00 0A C5 CD")  # unit 1, read holding 0-9
READ_COILS = bytes.fromhex("11 01 00 13 00 25 0E 84")  # spec example: unit 17, coils 20-56
WRITE_REGS = bytes.fromhex("01 10 00 01 00 02 04 00 0A 01 02 92 30")  # unit 1, write 2 regs at 1


def test_crc_of_known_frames() -> None:
    assert crc16(READ_10_HOLDING[:-2]).to_bytes(2, "little") == READ_10_HOLDING[-2:]
    assert crc16(READ_COILS[:-2]).to_bytes(2, "little") == READ_COILS[-2:]
    assert frame(1, 3, bytes.fromhex("00 00 00 0A")) == READ_10_HOLDING
    assert exception_frame(1, 3, 2) == bytes.fromhex("01 83 02 C0 F1")


def test_real_frames_decode() -> None:
    decoder = RtuRequestDecoder()
    requests = decoder.feed(READ_10_HOLDING + READ_COILS + WRITE_REGS)
    assert requests == [
        RtuRequest(1, 3, 0, 10),
        RtuRequest(17, 1, 19, 37),
        RtuRequest(1, 16, 1, 2, bytes.fromhex("00 0A 01 02")),
    ]
    assert decoder.dropped == 0 and decoder.pending == 0


def test_partial_frames_are_kept_between_feeds() -> None:
    decoder = RtuRequestDecoder()
    stream = READ_10_HOLDING + WRITE_REGS
    out = []
    for k in range(len(stream)):
        out += decoder.feed(stream[k : k + 1])
    assert [r.function for r in out] == [3, 16]


def test_garbage_and_bad_crc_are_dropped_and_counted() -> None:
    decoder = RtuRequestDecoder()
    corrupted = bytearray(READ_10_HOLDING)
    corrupted[3] ^= 0x40
    out = decoder.feed(b"\xff\x00\x99" + bytes(corrupted) + READ_COILS)
    assert out == [RtuRequest(17, 1, 19, 37)]
    assert decoder.dropped == 3 + len(corrupted)


def test_idle_line_drops_a_truncated_frame() -> None:
    decoder = RtuRequestDecoder()
    assert decoder.feed(WRITE_REGS[:9]) == []
    decoder.idle()
    assert decoder.dropped == 9
    assert decoder.feed(READ_10_HOLDING) == [RtuRequest(1, 3, 0, 10)]


@given(st.binary(max_size=300), st.lists(st.integers(1, 40), max_size=20))
def test_garbage_never_raises(data: bytes, cuts: list[int]) -> None:
    decoder = RtuRequestDecoder()
    pos = 0
    for n in [*cuts, len(data)]:
        for request in decoder.feed(data[pos : pos + n]):
            assert request.function in (1, 2, 3, 4, 5, 6, 15, 16)
        pos += n
    decoder.idle()
    assert decoder.pending == 0


@given(st.binary(max_size=64), st.binary(max_size=64))
def test_a_frame_after_garbage_is_found_after_an_idle_gap(before: bytes, after: bytes) -> None:
    decoder = RtuRequestDecoder()
    decoder.feed(before)
    decoder.idle()  # the 3.5-character silence that precedes every frame
    found = decoder.feed(READ_10_HOLDING)
    assert RtuRequest(1, 3, 0, 10) in found
    decoder.feed(after)
