"""ThingMagic / JADAK Mercury embedded-module serial protocol (M6e, M7e, Nano), sans-I/O.

Host → module: ``FF | Len | Opcode | Data(Len) | CRC(2)``;
module → host: ``FF | Len | Opcode | Status(2) | Data(Len) | CRC(2)``.
The CRC covers Len to the last data byte. It is ThingMagic's own: the CCITT polynomial 0x1021
from 0xFFFF with the message bits shifted *into* the register (no augmentation), which is not
CRC-16/CCITT-FALSE: get-version is ``FF 00 03 1D 0C``.

Tag reads: "read tag ID multiple" (0x22) searches for `timeout` ms and answers with the number of
tags found; "get tag buffer" (0x29) returns them with the metadata asked for (read count, RSSI,
antenna, frequency, timestamp, ...); "clear tag buffer" (0x2A) empties the module's buffer.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.rfid.crc import CCITT_TABLE
from drivers.rfid.framing import FrameSplitter

__all__ = [
    "FAULTS",
    "META_ALL",
    "META_ANTENNA",
    "META_FREQUENCY",
    "META_PHASE",
    "META_PROTOCOL",
    "META_READ_COUNT",
    "META_RSSI",
    "META_TIMESTAMP",
    "OP_CLEAR_TAG_BUFFER",
    "OP_GET_TAG_BUFFER",
    "OP_GET_VERSION",
    "OP_READ_TAG_MULTIPLE",
    "OP_SET_ANTENNA",
    "OP_SET_PROTOCOL",
    "OP_SET_READ_POWER",
    "OP_SET_REGION",
    "STATUS_NO_TAGS",
    "STATUS_OK",
    "Decoder",
    "Frame",
    "FrameDecoder",
    "TagBuffer",
    "TagCount",
    "TagRead",
    "Version",
    "clear_tag_buffer",
    "crc16",
    "encode",
    "encode_response",
    "get_tag_buffer",
    "get_version",
    "parse_tag_buffer",
    "parse_tag_count",
    "parse_version",
    "read_tag_multiple",
    "set_antennas",
    "set_protocol_gen2",
    "set_read_power",
    "set_region",
    "tag_buffer_data",
]

HEAD = 0xFF

OP_GET_VERSION = 0x03
OP_READ_TAG_MULTIPLE = 0x22
OP_GET_TAG_BUFFER = 0x29
OP_CLEAR_TAG_BUFFER = 0x2A
OP_SET_ANTENNA = 0x91
OP_SET_READ_POWER = 0x92
OP_SET_PROTOCOL = 0x93
OP_SET_REGION = 0x97

STATUS_OK = 0x0000
STATUS_NO_TAGS = 0x0400

META_READ_COUNT = 0x0001
META_RSSI = 0x0002
META_ANTENNA = 0x0004
META_FREQUENCY = 0x0008
META_TIMESTAMP = 0x0010
META_PHASE = 0x0020
META_PROTOCOL = 0x0040
META_ALL = META_READ_COUNT | META_RSSI | META_ANTENNA | META_FREQUENCY | META_TIMESTAMP
_META_KNOWN = META_ALL | META_PHASE | META_PROTOCOL

GEN2 = 0x05

FAULTS: dict[int, str] = {
    0x0100: "message has the wrong number of data bytes",
    0x0101: "invalid opcode",
    0x0102: "unimplemented opcode",
    0x0103: "power too high",
    0x0104: "invalid frequency",
    0x0105: "invalid parameter value",
    0x0106: "power too low",
    0x0109: "unimplemented feature",
    0x010A: "invalid baud rate",
    0x010B: "invalid region",
    0x0400: "no tags found",
    0x0401: "no tag protocol defined",
    0x0402: "invalid tag protocol",
    0x0504: "temperature too high",
    0x0505: "high return loss (antenna disconnected?)",
}


def crc16(data: bytes | bytearray | memoryview) -> int:
    """ThingMagic's CRC over Len..Data (see the module docstring)."""
    crc = 0xFFFF
    table = CCITT_TABLE
    for byte in data:
        crc = (((crc << 8) | byte) & 0xFFFF) ^ table[crc >> 8]
    return crc


def encode(opcode: int, data: bytes = b"") -> bytes:
    """A host command frame."""
    if len(data) > 0xFF:
        raise ValueError("a Mercury message carries at most 255 data bytes")
    body = bytes((len(data), opcode)) + data
    return bytes((HEAD,)) + body + crc16(body).to_bytes(2, "big")


def encode_response(opcode: int, data: bytes = b"", *, status: int = STATUS_OK) -> bytes:
    """A module response frame (for the simulator and the tests)."""
    if len(data) > 0xFF:
        raise ValueError("a Mercury message carries at most 255 data bytes")
    body = bytes((len(data), opcode)) + status.to_bytes(2, "big") + data
    return bytes((HEAD,)) + body + crc16(body).to_bytes(2, "big")


# -- host commands ---------------------------------------------------------------------------


def get_version() -> bytes:
    return encode(OP_GET_VERSION)


def set_protocol_gen2() -> bytes:
    return encode(OP_SET_PROTOCOL, GEN2.to_bytes(2, "big"))


def set_region(code: int) -> bytes:
    """0x97: regulatory region (module manual codes, e.g. 0x01 NA, 0x08 EU3)."""
    return encode(OP_SET_REGION, bytes((code & 0xFF,)))


def set_read_power(dbm: float) -> bytes:
    """0x92: read transmit power, in centi-dBm on the wire."""
    if not 0 <= dbm <= 31.5:
        raise ValueError("Mercury read power is 0-31.5 dBm")
    return encode(OP_SET_READ_POWER, round(dbm * 100).to_bytes(2, "big"))


def set_antennas(antennas: list[int]) -> bytes:
    """0x91 option 2: the antenna search list, monostatic (each port transmits and receives)."""
    if not antennas or any(not 1 <= a <= 4 for a in antennas):
        raise ValueError("Mercury antennas are 1-4")
    return encode(OP_SET_ANTENNA, b"\x02" + b"".join(bytes((a, a)) for a in antennas))


def read_tag_multiple(timeout_ms: int, *, search_flags: int = 0x0000, option: int = 0x00) -> bytes:
    """0x22: search for tags during `timeout_ms`; the reads stay in the module's tag buffer."""
    if not 1 <= timeout_ms <= 0xFFFF:
        raise ValueError("timeout is 1-65535 ms")
    return encode(
        OP_READ_TAG_MULTIPLE, bytes((option,)) + search_flags.to_bytes(2, "big") + timeout_ms.to_bytes(2, "big")
    )


def get_tag_buffer(metadata: int = META_ALL) -> bytes:
    """0x29: the next tags of the buffer with the metadata named by `metadata` flags."""
    return encode(OP_GET_TAG_BUFFER, metadata.to_bytes(2, "big") + b"\x00")


def clear_tag_buffer() -> bytes:
    return encode(OP_CLEAR_TAG_BUFFER)


# -- frames and payloads ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Frame:
    opcode: int
    status: int
    data: bytes

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK

    @property
    def fault(self) -> str:
        return FAULTS.get(self.status, f"fault 0x{self.status:04X}")


@dataclass(frozen=True, slots=True)
class TagRead:
    epc: bytes
    pc: int
    crc: int
    read_count: int = 1
    rssi: int | None = None  # dBm
    antenna: int | None = None
    frequency_khz: int | None = None
    timestamp_ms: int | None = None  # since the read command started
    phase: int | None = None


@dataclass(frozen=True, slots=True)
class TagCount:
    count: int


@dataclass(frozen=True, slots=True)
class TagBuffer:
    metadata: int
    tags: list[TagRead]


@dataclass(frozen=True, slots=True)
class Version:
    bootloader: bytes
    hardware: bytes
    firmware_date: bytes
    firmware: bytes

    def describe(self) -> str:
        fw = self.firmware
        return f"hardware {self.hardware.hex('.')}, firmware {fw.hex('.')} ({self.firmware_date.hex()})"


class FrameDecoder(FrameSplitter[Frame]):
    """Module → host (with status) or host → module frames; resynchronises on the next FF."""

    head = HEAD
    header_size = 2  # FF, Len

    def __init__(self, *, responses: bool = True) -> None:
        super().__init__()
        self._status = 2 if responses else 0
        self._extra = 5 + self._status  # FF, Len, Opcode, [Status], CRC(2)

    def _frame_end(self, buf: bytearray, pos: int) -> int:
        return pos + self._extra + buf[pos + 1]

    def _frame(self, buf: bytearray, pos: int, stop: int) -> Frame | None:
        crc = (buf[stop - 2] << 8) | buf[stop - 1]
        if crc16(memoryview(buf)[pos + 1 : stop - 2]) != crc:
            return None
        status = (buf[pos + 3] << 8) | buf[pos + 4] if self._status else STATUS_OK
        return Frame(buf[pos + 2], status, bytes(buf[pos + 3 + self._status : stop - 2]))


Decoder = FrameDecoder


def parse_version(data: bytes) -> Version | None:
    if len(data) < 16:
        return None
    return Version(data[0:4], data[4:8], data[8:12], data[12:16])


def parse_tag_count(data: bytes) -> TagCount | None:
    """The answer to 0x22: a tag count (1 byte), or option+flags then a 1- or 4-byte count."""
    if len(data) == 1:
        return TagCount(data[0])
    if len(data) in (4, 7):
        return TagCount(int.from_bytes(data[3:], "big"))
    return None


def parse_tag_buffer(data: bytes) -> TagBuffer | None:
    """The answer to 0x29; None when the payload does not add up (counted by the caller)."""
    if len(data) < 4:
        return None
    metadata = (data[0] << 8) | data[1]
    if metadata & ~_META_KNOWN:
        return None
    count = data[3]
    pos = 4
    tags: list[TagRead] = []
    n = len(data)
    for _ in range(count):
        read_count, rssi, antenna, frequency, timestamp, phase = 1, None, None, None, None, None
        try:
            if metadata & META_READ_COUNT:
                read_count = data[pos]
                pos += 1
            if metadata & META_RSSI:
                rssi = data[pos] - 256 if data[pos] & 0x80 else data[pos]
                pos += 1
            if metadata & META_ANTENNA:
                antenna = data[pos] >> 4
                pos += 1
            if metadata & META_FREQUENCY:
                frequency = int.from_bytes(data[pos : pos + 3], "big")
                pos += 3
            if metadata & META_TIMESTAMP:
                timestamp = int.from_bytes(data[pos : pos + 4], "big")
                pos += 4
            if metadata & META_PHASE:
                phase = int.from_bytes(data[pos : pos + 2], "big")
                pos += 2
            if metadata & META_PROTOCOL:
                pos += 1
            bits = (data[pos] << 8) | data[pos + 1]
            pos += 2
        except IndexError:
            return None
        size = bits // 8  # PC + EPC + CRC
        if bits % 8 or size < 4 or pos + size > n:
            return None
        pc = (data[pos] << 8) | data[pos + 1]
        epc = bytes(data[pos + 2 : pos + size - 2])
        crc = (data[pos + size - 2] << 8) | data[pos + size - 1]
        pos += size
        tags.append(TagRead(epc, pc, crc, read_count, rssi, antenna, frequency, timestamp, phase))
    if pos != n:
        return None
    return TagBuffer(metadata, tags)


def tag_buffer_data(tags: list[TagRead], metadata: int = META_ALL) -> bytes:
    """The data of a 0x29 answer (for the simulator and the tests)."""
    out = bytearray(metadata.to_bytes(2, "big") + b"\x00" + bytes((len(tags),)))
    for t in tags:
        if metadata & META_READ_COUNT:
            out.append(t.read_count & 0xFF)
        if metadata & META_RSSI:
            out.append((t.rssi or 0) & 0xFF)
        if metadata & META_ANTENNA:
            out.append(((t.antenna or 1) << 4) | (t.antenna or 1))
        if metadata & META_FREQUENCY:
            out += (t.frequency_khz or 0).to_bytes(3, "big")
        if metadata & META_TIMESTAMP:
            out += (t.timestamp_ms or 0).to_bytes(4, "big")
        if metadata & META_PHASE:
            out += (t.phase or 0).to_bytes(2, "big")
        if metadata & META_PROTOCOL:
            out.append(GEN2)
        out += ((len(t.epc) + 4) * 8).to_bytes(2, "big") + t.pc.to_bytes(2, "big") + t.epc + t.crc.to_bytes(2, "big")
    return bytes(out)
