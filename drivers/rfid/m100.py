"""MagicRF M100 / QM100 module protocol (JRD-4035, YRM100 and similar), sans-I/O.

Frame: ``BB | Type | Cmd | PL(2, big endian) | Params | Check | 7E``; Type is 0x00 for a command,
0x01 for a response, 0x02 for a notice (tag reads); Check is the low byte of the sum of Type to
the last parameter byte.

A tag notice (Cmd 0x22, from single poll 0x22 or multi-poll 0x27) carries
``RSSI(signed dBm) | PC(2) | EPC(from PC) | CRC(2)``, the CRC being the tag's own EPC Gen2 CRC-16
over PC+EPC: a read whose CRC does not match was corrupted between tag and host, and is dropped.
Errors come back as ``Cmd 0xFF`` responses with one error code (0x15: no tag in the field).
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.rfid.crc import CCITT_TABLE
from drivers.rfid.framing import EventDecoder, FrameSplitter

__all__ = [
    "CMD_ERROR",
    "CMD_GET_INFO",
    "CMD_GET_POWER",
    "CMD_MULTI_POLL",
    "CMD_SET_POWER",
    "CMD_SINGLE_POLL",
    "CMD_STOP",
    "ERRORS",
    "TYPE_COMMAND",
    "TYPE_NOTICE",
    "TYPE_RESPONSE",
    "Decoder",
    "ErrorReply",
    "Event",
    "Frame",
    "FrameDecoder",
    "Reply",
    "TagRead",
    "checksum",
    "encode",
    "gen2_crc",
    "get_info",
    "get_power",
    "multi_poll",
    "parse",
    "set_power",
    "single_poll",
    "stop",
    "tag_notice",
]

HEAD = 0xBB
END = 0x7E
TYPE_COMMAND = 0x00
TYPE_RESPONSE = 0x01
TYPE_NOTICE = 0x02

CMD_GET_INFO = 0x03
CMD_SINGLE_POLL = 0x22
CMD_MULTI_POLL = 0x27
CMD_STOP = 0x28
CMD_SET_POWER = 0xB6
CMD_GET_POWER = 0xB7
CMD_ERROR = 0xFF

ERRORS: dict[int, str] = {
    0x09: "tag read failed",
    0x10: "tag write failed",
    0x12: "tag kill failed",
    0x13: "tag lock failed",
    0x15: "no tag",
    0x16: "tag access failed (password)",
    0x17: "invalid command",
    0x20: "frequency hopping failed",
    0xA0: "tag returned an error",
}

_MAX_PARAMS = 512  # longer announced lengths are garbage, not a frame to wait for


def checksum(body: bytes | bytearray | memoryview) -> int:
    """Low byte of the sum of Type..Params."""
    return sum(body) & 0xFF


def gen2_crc(data: bytes | bytearray | memoryview) -> int:
    """EPC Gen2 CRC-16 (poly 0x1021, preset 0xFFFF, ones' complement) as the tag backscatters it."""
    crc = 0xFFFF
    table = CCITT_TABLE
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ table[(crc >> 8) ^ byte]
    return crc ^ 0xFFFF


def encode(cmd: int, params: bytes = b"", *, frame_type: int = TYPE_COMMAND) -> bytes:
    if len(params) > 0xFFFF:
        raise ValueError("parameters too long")
    body = bytes((frame_type, cmd)) + len(params).to_bytes(2, "big") + params
    return bytes((HEAD,)) + body + bytes((checksum(body), END))


# -- host commands ---------------------------------------------------------------------------


def single_poll() -> bytes:
    """0x22: one inventory round; answered by tag notices or a "no tag" error."""
    return encode(CMD_SINGLE_POLL)


def multi_poll(count: int = 0xFFFF) -> bytes:
    """0x27: `count` inventory rounds (at most 65535), reporting tags as notices, until 0x28."""
    if not 1 <= count <= 0xFFFF:
        raise ValueError("multi-poll count is 1-65535")
    return encode(CMD_MULTI_POLL, b"\x22" + count.to_bytes(2, "big"))


def stop() -> bytes:
    """0x28: stop a multi-poll; answered by a response with status 0x00."""
    return encode(CMD_STOP)


def set_power(dbm: float) -> bytes:
    """0xB6: transmit power in 0.01 dBm steps."""
    if not 0 <= dbm <= 30:
        raise ValueError("M100 power is 0-30 dBm")
    return encode(CMD_SET_POWER, round(dbm * 100).to_bytes(2, "big"))


def get_power() -> bytes:
    return encode(CMD_GET_POWER)


def get_info(what: int = 0x00) -> bytes:
    """0x03: module information (0 hardware version, 1 software version, 2 manufacturer)."""
    return encode(CMD_GET_INFO, bytes((what,)))


def tag_notice(epc: bytes, *, rssi: int = -55, pc: int | None = None, crc: int | None = None) -> bytes:
    """A tag notice as the module sends it (for the simulator and the tests)."""
    if len(epc) % 2:
        raise ValueError("an EPC is a whole number of 16-bit words")
    if pc is None:
        pc = (len(epc) // 2) << 11
    pc_epc = pc.to_bytes(2, "big") + epc
    if crc is None:
        crc = gen2_crc(pc_epc)
    return encode(CMD_SINGLE_POLL, bytes((rssi & 0xFF,)) + pc_epc + crc.to_bytes(2, "big"), frame_type=TYPE_NOTICE)


# -- frames and events -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Frame:
    frame_type: int
    cmd: int
    params: bytes


@dataclass(frozen=True, slots=True)
class TagRead:
    epc: bytes
    pc: int
    rssi: int  # dBm
    crc: int
    antenna: int = 1  # M100 modules have one antenna port


@dataclass(frozen=True, slots=True)
class ErrorReply:
    code: int

    @property
    def message(self) -> str:
        return ERRORS.get(self.code, f"error 0x{self.code:02X}")


@dataclass(frozen=True, slots=True)
class Reply:
    cmd: int
    params: bytes

    @property
    def ok(self) -> bool:
        return self.params == b"\x00"


Event = TagRead | ErrorReply | Reply


class FrameDecoder(FrameSplitter[Frame]):
    """Splits a byte stream into checked frames; resynchronises on the next BB after garbage."""

    head = HEAD
    header_size = 5  # BB, Type, Cmd, PL(2)

    def _frame_end(self, buf: bytearray, pos: int) -> int:
        length = (buf[pos + 3] << 8) | buf[pos + 4]
        if length > _MAX_PARAMS or buf[pos + 1] > TYPE_NOTICE:
            return -1
        return pos + 7 + length

    def _frame(self, buf: bytearray, pos: int, stop: int) -> Frame | None:
        if buf[stop - 1] != END or checksum(memoryview(buf)[pos + 1 : stop - 2]) != buf[stop - 2]:
            return None
        return Frame(buf[pos + 1], buf[pos + 2], bytes(buf[pos + 5 : stop - 2]))


def parse(frame: Frame) -> Event | None:
    """A module frame as an event; None when it does not fit (a tag whose CRC is wrong, say)."""
    if frame.frame_type == TYPE_NOTICE and frame.cmd == CMD_SINGLE_POLL:
        p = frame.params
        if len(p) < 5:
            return None
        pc = (p[1] << 8) | p[2]
        epc_len = (pc >> 11) * 2
        if len(p) != 5 + epc_len:
            return None
        crc = (p[-2] << 8) | p[-1]
        if gen2_crc(p[1:-2]) != crc:
            return None
        rssi = p[0] - 256 if p[0] & 0x80 else p[0]
        return TagRead(bytes(p[3 : 3 + epc_len]), pc, rssi, crc)
    if frame.frame_type == TYPE_RESPONSE and frame.cmd == CMD_ERROR:
        return ErrorReply(frame.params[0]) if len(frame.params) >= 1 else None
    if frame.frame_type == TYPE_COMMAND:
        return None  # our own command echoed back: not from a module
    return Reply(frame.cmd, frame.params)


class Decoder(EventDecoder[Frame, Event]):
    """Module → host: feed what the port returned, get events. Never raises on garbage."""

    def __init__(self) -> None:
        super().__init__(FrameDecoder(), parse)
