"""MagicRF M100 protocol: the issue's captured notice (tag CRC 3A76), commands, resync, fuzzing."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from drivers.rfid import m100

# From the issue: -55 dBm, EPC 30751FEB705C5904E3D50D70, tag CRC 3A76.
NOTICE = bytes.fromhex("BB 02 22 00 11 C9 34 00 30 75 1F EB 70 5C 59 04 E3 D5 0D 70 3A 76 EF 7E")
NO_TAG = bytes.fromhex("BB 01 FF 00 01 15 16 7E")


def test_captured_notice() -> None:
    decoder = m100.Decoder()
    (event,) = decoder.feed(NOTICE)
    assert isinstance(event, m100.TagRead)
    assert event.epc.hex().upper() == "30751FEB705C5904E3D50D70"
    assert event.rssi == -55
    assert event.pc == 0x3400
    assert event.crc == 0x3A76
    assert decoder.dropped == 0


def test_tag_crc_is_the_gen2_crc_over_pc_and_epc() -> None:
    assert m100.gen2_crc(NOTICE[6:20]) == 0x3A76
    assert m100.checksum(NOTICE[1:-2]) == 0xEF


@given(st.binary(max_size=64))
def test_table_gen2_crc_equals_the_bitwise_definition(data: bytes) -> None:
    crc = 0xFFFF
    for byte in data:
        for bit in range(7, -1, -1):
            feedback = ((crc >> 15) ^ (byte >> bit)) & 1
            crc = ((crc << 1) & 0xFFFF) ^ (0x1021 if feedback else 0)
    assert m100.gen2_crc(data) == crc ^ 0xFFFF


def test_notice_builder_reproduces_the_capture() -> None:
    epc = bytes.fromhex("30751FEB705C5904E3D50D70")
    assert m100.tag_notice(epc, rssi=-55, pc=0x3400) == NOTICE


def test_commands_as_in_the_module_manual() -> None:
    assert m100.single_poll() == bytes.fromhex("BB 00 22 00 00 22 7E")
    assert m100.multi_poll(10000) == bytes.fromhex("BB 00 27 00 03 22 27 10 83 7E")
    assert m100.stop() == bytes.fromhex("BB 00 28 00 00 28 7E")
    assert m100.set_power(20) == bytes.fromhex("BB 00 B6 00 02 07 D0 8F 7E")


def test_no_tag_error_and_stop_reply() -> None:
    events = m100.Decoder().feed(NO_TAG + bytes.fromhex("BB 01 28 00 01 00 2A 7E"))
    assert events == [m100.ErrorReply(0x15), m100.Reply(0x28, b"\x00")]
    assert events[0].message == "no tag"  # type: ignore[union-attr]
    assert events[1].ok  # type: ignore[union-attr]


def test_wrong_tag_crc_is_dropped() -> None:
    bad = bytearray(NOTICE)
    bad[20] ^= 0x01  # the tag CRC, with the frame checksum fixed up: only the tag CRC is wrong
    bad[-2] = m100.checksum(bad[1:-2])
    decoder = m100.Decoder()
    assert decoder.feed(bytes(bad)) == []
    assert decoder.malformed == 1


def test_garbage_and_partial_frames() -> None:
    decoder = m100.Decoder()
    stream = b"\x7e\xbb\x02" + NOTICE[:7] + b"\x00" + NOTICE + NOTICE[:10]
    events = decoder.feed(stream)
    assert len(events) == 1 and decoder.dropped >= 1
    events = decoder.feed(NOTICE[10:])
    assert len(events) == 1


@given(st.lists(st.binary(max_size=64), max_size=30))
def test_fuzz_never_raises_and_chunking_does_not_matter(chunks: list[bytes]) -> None:
    whole = m100.Decoder().feed(b"".join(chunks))
    decoder = m100.Decoder()
    pieces = []
    for chunk in chunks:
        pieces += decoder.feed(chunk)
    assert pieces == whole


@given(
    st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\xbb", b"")), min_size=1, max_size=8),
    st.lists(st.binary(min_size=2, max_size=31).map(lambda b: b[: len(b) // 2 * 2]), min_size=1, max_size=8),
    st.integers(-90, -20),
)
def test_fuzz_notices_between_garbage_are_all_recovered(garbage: list[bytes], epcs: list[bytes], rssi: int) -> None:
    frames = [m100.tag_notice(epc, rssi=rssi) for epc in epcs]
    stream = b"".join(g + f for g, f in zip(garbage * len(frames), frames, strict=False))
    events = m100.Decoder().feed(stream)
    assert [(e.epc, e.rssi) for e in events if isinstance(e, m100.TagRead)] == [(epc, rssi) for epc in epcs]
