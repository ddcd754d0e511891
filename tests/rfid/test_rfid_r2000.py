"""Impinj R2000 CMD protocol: the issue's captured frame byte for byte, commands, resync, fuzzing."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from drivers.rfid import r2000

# From the issue: antenna 1, EPC E200301666130121155074EF, -60 dBm.
TAG_REPORT = bytes.fromhex("A0 13 01 89 04 30 00 E2 00 30 16 66 13 01 21 15 50 74 EF 45 BF")


def test_captured_tag_report() -> None:
    decoder = r2000.Decoder()
    (event,) = decoder.feed(TAG_REPORT)
    assert isinstance(event, r2000.TagRead)
    assert event.epc.hex().upper() == "E200301666130121155074EF"
    assert event.antenna == 1
    assert event.rssi == -60
    assert event.pc == 0x3000
    assert event.channel == 1
    assert event.phase is None
    assert decoder.dropped == 0


def test_checksum_is_twos_complement_of_the_sum() -> None:
    assert r2000.checksum(TAG_REPORT[:-1]) == 0xBF
    assert (sum(TAG_REPORT) & 0xFF) == 0


def test_tag_report_builder_reproduces_the_capture() -> None:
    epc = bytes.fromhex("E200301666130121155074EF")
    assert r2000.tag_report(epc, antenna=1, rssi=-60, channel=1) == TAG_REPORT


def test_host_commands() -> None:
    assert r2000.real_time_inventory(1) == bytes.fromhex("A0 04 01 89 01 D1")
    assert r2000.real_time_inventory(0xFF, address=0xFF) == bytes.fromhex("A0 04 FF 89 FF D5")
    assert r2000.get_firmware_version() == bytes.fromhex("A0 03 01 72 EA")
    assert r2000.set_work_antenna(1) == bytes.fromhex("A0 04 01 74 00 E7")
    assert r2000.set_output_power(30) == bytes.fromhex("A0 04 01 76 1E C7")
    frame = r2000.session_inventory(1, 0, 5)
    assert frame[:4] == bytes.fromhex("A0 06 01 8B") and frame[4:7] == b"\x01\x00\x05"
    fast = r2000.fast_switch_inventory([1, 3], stay=2, repeat=1)
    assert fast[4:14] == bytes([0, 2, 2, 2, 0xFF, 0, 0xFF, 0, 0, 1])
    for built in (frame, fast):
        assert sum(built) & 0xFF == 0


def test_round_end_error_and_reply() -> None:
    end_89 = r2000.encode(0x89, bytes([0x00, 0x00, 0x64, 0x00, 0x00, 0x01, 0x2C]))
    end_8a = r2000.encode(0x8A, (300).to_bytes(3, "big") + (150).to_bytes(4, "big"))
    missing = r2000.encode(0x8A, bytes([0x02, 0x22]))
    no_tag = r2000.encode(0x89, b"\x36")
    power_ok = r2000.encode(0x76, b"\x10")
    events = r2000.Decoder().feed(end_89 + end_8a + missing + no_tag + power_ok)
    assert events == [
        r2000.RoundEnd(0x89, 1, 100, 300),
        r2000.RoundEnd(0x8A, None, None, 300, 150),
        r2000.ErrorReply(0x8A, 0x22, 3),
        r2000.ErrorReply(0x89, 0x36),
        r2000.Reply(0x76, b"\x10"),
    ]
    assert events[2].message == "antenna missing"  # type: ignore[union-attr]
    assert events[4].ok  # type: ignore[union-attr]


def test_eight_port_antenna_and_phase() -> None:
    epc = bytes.fromhex("E200301666130121155074EF")
    frame = r2000.tag_report(epc, antenna=6, rssi=-70)
    (event,) = r2000.Decoder().feed(frame)
    assert isinstance(event, r2000.TagRead) and event.antenna == 6 and event.rssi == -70
    with_phase = r2000.encode(0x8B, b"\x04\x30\x00" + epc + b"\x45\x01\x02")
    (event,) = r2000.Decoder().feed(with_phase)
    assert isinstance(event, r2000.TagRead) and event.phase == 0x0102 and event.rssi == -60


def test_partial_frames_are_kept_between_feeds() -> None:
    decoder = r2000.Decoder()
    stream = TAG_REPORT * 3
    events = []
    for i in range(len(stream)):
        events += decoder.feed(stream[i : i + 1])
    assert len(events) == 3 and decoder.dropped == 0


def test_garbage_is_counted_and_skipped() -> None:
    decoder = r2000.Decoder()
    corrupt = bytearray(TAG_REPORT)
    corrupt[10] ^= 0xFF
    events = decoder.feed(b"\x00\x13\xa0\x01" + bytes(corrupt) + TAG_REPORT + b"\xa0\x02" + TAG_REPORT)
    assert [type(e) for e in events] == [r2000.TagRead, r2000.TagRead]
    assert decoder.dropped >= 2
    assert decoder.frames.skipped > 0


def test_inventory_frame_whose_data_does_not_fit_is_malformed() -> None:
    decoder = r2000.Decoder()
    assert decoder.feed(r2000.encode(0x89, b"\x04\x30\x00\x01\x02")) == []  # EPC shorter than PC says
    assert decoder.malformed == 1 and decoder.dropped == 1


@given(st.lists(st.binary(max_size=64), max_size=30))
def test_fuzz_never_raises_and_chunking_does_not_matter(chunks: list[bytes]) -> None:
    whole = r2000.Decoder().feed(b"".join(chunks))
    decoder = r2000.Decoder()
    pieces = []
    for chunk in chunks:
        pieces += decoder.feed(chunk)
    assert pieces == whole


@given(
    st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\xa0", b"")), min_size=1, max_size=8),
    st.lists(st.binary(min_size=2, max_size=31).map(lambda b: b[: len(b) // 2 * 2]), min_size=1, max_size=8),
)
def test_fuzz_frames_between_garbage_are_all_recovered(garbage: list[bytes], epcs: list[bytes]) -> None:
    frames = [r2000.tag_report(epc, rssi=-50) for epc in epcs]
    stream = b"".join(g + f for g, f in zip(garbage * len(frames), frames, strict=False))
    events = r2000.Decoder().feed(stream)
    assert [e.epc for e in events if isinstance(e, r2000.TagRead)] == epcs
