"""ThingMagic Mercury protocol: its own CRC (get-version FF 00 03 1D 0C), tag buffer, fuzzing."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from drivers.rfid import m100, thingmagic


def test_get_version_frame_and_crc() -> None:
    assert thingmagic.get_version() == bytes.fromhex("FF 00 03 1D 0C")
    assert thingmagic.crc16(b"\x00\x03") == 0x1D0C


def bit_by_bit(data: bytes) -> int:
    """The CRC as the module computes it: message bits shifted into the register, MSB first."""
    crc = 0xFFFF
    for byte in data:
        for shift in range(7, -1, -1):
            top = crc & 0x8000
            crc = ((crc << 1) | ((byte >> shift) & 1)) & 0xFFFF
            if top:
                crc ^= 0x1021
    return crc


@given(st.binary(max_size=64))
def test_table_crc_equals_the_bitwise_definition(data: bytes) -> None:
    assert thingmagic.crc16(data) == bit_by_bit(data)


def test_crc_is_not_ccitt_false() -> None:
    def ccitt_false(data: bytes) -> int:
        crc = 0xFFFF
        for byte in data:
            crc ^= byte << 8
            for _ in range(8):
                crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
        return crc

    assert ccitt_false(b"\x00\x03") != 0x1D0C


def test_commands_decode_as_host_frames() -> None:
    frames = (
        thingmagic.read_tag_multiple(250)
        + thingmagic.get_tag_buffer()
        + thingmagic.set_read_power(27.5)
        + thingmagic.set_antennas([1, 2])
    )
    decoded = thingmagic.FrameDecoder(responses=False).feed(frames)
    assert [(f.opcode, f.data) for f in decoded] == [
        (0x22, bytes.fromhex("00 0000 00FA")),
        (0x29, bytes.fromhex("001F 00")),
        (0x92, (2750).to_bytes(2, "big")),
        (0x91, bytes.fromhex("02 0101 0202")),
    ]


def test_responses_with_status() -> None:
    version = bytes.fromhex("12 03 00 00 18 00 00 01 20 25 01 15 01 0B 00 21 00 00 00 10")
    stream = thingmagic.encode_response(0x03, version) + thingmagic.encode_response(0x22, status=0x0400)
    first, second = thingmagic.FrameDecoder().feed(stream)
    assert first.ok and first.opcode == 0x03
    parsed = thingmagic.parse_version(first.data)
    assert parsed is not None and parsed.firmware == bytes.fromhex("01 0B 00 21")
    assert not second.ok and second.fault == "no tags found"


def test_tag_buffer_round_trip_with_metadata() -> None:
    epc = bytes.fromhex("3074257BF7194E4000001A85")
    crc = m100.gen2_crc(b"\x30\x00" + epc)
    tags = [
        thingmagic.TagRead(epc, 0x3000, crc, 7, -48, 2, 915250, 120),
        thingmagic.TagRead(bytes.fromhex("E2003016"), 0x1000, 0xBEEF, 1, -71, 1, 902750, 3),
    ]
    data = thingmagic.tag_buffer_data(tags)
    buffer = thingmagic.parse_tag_buffer(data)
    assert buffer is not None and buffer.tags == tags
    assert thingmagic.parse_tag_buffer(data[:-1]) is None
    assert thingmagic.parse_tag_buffer(data + b"\x00") is None


def test_tag_count_forms() -> None:
    assert thingmagic.parse_tag_count(b"\x05") == thingmagic.TagCount(5)
    assert thingmagic.parse_tag_count(b"\x00\x00\x00\x07") == thingmagic.TagCount(7)
    assert thingmagic.parse_tag_count(b"\x00\x00\x00\x00\x00\x01\x00") == thingmagic.TagCount(256)
    assert thingmagic.parse_tag_count(b"\x00\x00") is None


def test_resynchronises_after_garbage() -> None:
    good = thingmagic.encode_response(0x2A)
    corrupt = bytearray(good)
    corrupt[2] ^= 0x40
    decoder = thingmagic.FrameDecoder()
    frames = decoder.feed(b"\x01\x02" + bytes(corrupt) + good + good[:3])
    assert len(frames) == 1 and decoder.dropped >= 1
    assert len(decoder.feed(good[3:])) == 1


@given(st.lists(st.binary(max_size=64), max_size=30))
def test_fuzz_frames_never_raise_and_chunking_does_not_matter(chunks: list[bytes]) -> None:
    whole = thingmagic.FrameDecoder().feed(b"".join(chunks))
    decoder = thingmagic.FrameDecoder()
    pieces = []
    for chunk in chunks:
        pieces += decoder.feed(chunk)
    assert pieces == whole


@given(st.binary(max_size=300))
def test_fuzz_payload_parsers_never_raise(data: bytes) -> None:
    thingmagic.parse_tag_buffer(data)
    thingmagic.parse_tag_count(data)
    thingmagic.parse_version(data)
