"""Impinj R2000-module "CMD" serial protocol (the Indy R2000 readers' host protocol), sans-I/O.

Frame: ``A0 | Len | Addr | Cmd | Data | Check`` where ``Len`` counts the bytes after it (Addr to
Check) and ``Check`` is the two's complement of the sum of every byte before it (A0 included).

Inventory answers (commands 0x89 real-time, 0x8B session/target, 0x8A fast antenna switch) are a
stream of tag reports followed by an end-of-round report, or a one-byte error code:

- tag report: ``FreqAnt | PC(2) | EPC(from PC) | RSSI [| Phase(2)]`` (phase only when 0x8B asked
  for it); the antenna is the low two bits of FreqAnt (0-based on the wire, 1-based here) plus 4
  when the RSSI byte's top bit is set (8-port readers), the frequency channel the upper six bits;
  RSSI dBm = (raw & 0x7F) - 129.
- end of round (0x89/0x8B): ``AntID | ReadRate(2) | TotalRead(4)``;
  end of round (0x8A): ``TotalRead(3) | CommandDuration(4)``.
- error: ``ErrorCode`` (0x89/0x8B), ``AntID | ErrorCode`` (0x8A: antenna missing).

No serial, no clock, no threads: bytes in, events out.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.rfid.framing import EventDecoder, FrameSplitter

__all__ = [
    "CMD_FAST_SWITCH_INVENTORY",
    "CMD_GET_FIRMWARE_VERSION",
    "CMD_GET_OUTPUT_POWER",
    "CMD_REAL_TIME_INVENTORY",
    "CMD_SESSION_INVENTORY",
    "CMD_SET_OUTPUT_POWER",
    "CMD_SET_WORK_ANTENNA",
    "ERRORS",
    "HEAD",
    "SUCCESS",
    "Decoder",
    "ErrorReply",
    "Event",
    "Frame",
    "FrameDecoder",
    "Reply",
    "RoundEnd",
    "TagRead",
    "checksum",
    "encode",
    "fast_switch_inventory",
    "get_firmware_version",
    "get_output_power",
    "parse",
    "real_time_inventory",
    "rssi_from_raw",
    "rssi_to_raw",
    "session_inventory",
    "set_output_power",
    "set_work_antenna",
    "tag_report",
]

HEAD = 0xA0
BROADCAST = 0xFF

CMD_SET_WORK_ANTENNA = 0x74
CMD_GET_FIRMWARE_VERSION = 0x72
CMD_SET_OUTPUT_POWER = 0x76
CMD_GET_OUTPUT_POWER = 0x77
CMD_REAL_TIME_INVENTORY = 0x89
CMD_FAST_SWITCH_INVENTORY = 0x8A
CMD_SESSION_INVENTORY = 0x8B
INVENTORY_COMMANDS = frozenset({CMD_REAL_TIME_INVENTORY, CMD_FAST_SWITCH_INVENTORY, CMD_SESSION_INVENTORY})

SUCCESS = 0x10
ERRORS_ANTENNA_MISSING = 0x22
ERRORS: dict[int, str] = {
    0x10: "command succeeded",
    0x11: "command failed",
    0x20: "MCU reset error",
    0x21: "carrier wave could not be turned on",
    0x22: "antenna missing",
    0x23: "flash write error",
    0x24: "flash read error",
    0x25: "output power could not be set",
    0x31: "tag inventory error",
    0x32: "tag read error",
    0x33: "tag write error",
    0x34: "tag lock error",
    0x35: "tag kill error",
    0x36: "no tag",
    0x37: "inventory ok but access failed",
    0x38: "tag buffer empty",
    0x41: "invalid parameter",
    0x42: "word count too long",
    0x43: "memory bank out of range",
    0x46: "EPC match length too long",
    0x4A: "antenna id out of range",
    0x4B: "output power out of range",
    0x4C: "frequency region out of range",
    0x4E: "baud rate out of range",
    0xEE: "command not supported",
}

_MIN_LEN = 3  # Addr, Cmd, Check
RSSI_OFFSET = 129


def checksum(data: bytes | bytearray | memoryview) -> int:
    """Two's complement of the byte sum (what the reader expects as the last byte)."""
    return -sum(data) & 0xFF


def encode(cmd: int, data: bytes = b"", *, address: int = 1) -> bytes:
    """One frame, host to reader or reader to host (the layout is the same)."""
    if len(data) > 252:
        raise ValueError("an R2000 frame carries at most 252 data bytes")
    body = bytes((HEAD, len(data) + 3, address & 0xFF, cmd & 0xFF)) + data
    return body + bytes((checksum(body),))


# -- host commands ---------------------------------------------------------------------------


def real_time_inventory(repeat: int = 1, *, address: int = 1) -> bytes:
    """0x89: inventory `repeat` rounds on the work antenna, reporting every read at once."""
    return encode(CMD_REAL_TIME_INVENTORY, bytes((_byte(repeat, "repeat"),)), address=address)


def session_inventory(session: int, target: int, repeat: int = 1, *, address: int = 1) -> bytes:
    """0x8B: like 0x89 with an explicit Gen2 session (0-3) and target (0 = A, 1 = B)."""
    if session not in (0, 1, 2, 3) or target not in (0, 1):
        raise ValueError("session must be 0-3 and target 0 (A) or 1 (B)")
    return encode(CMD_SESSION_INVENTORY, bytes((session, target, _byte(repeat, "repeat"))), address=address)


def fast_switch_inventory(
    antennas: list[int], *, stay: int = 1, interval_ms: int = 0, repeat: int = 1, address: int = 1
) -> bytes:
    """0x8A: cycle through antennas (1-4) in one command, `stay` rounds on each."""
    slots = [0xFF, 0xFF, 0xFF, 0xFF]  # 0xFF (or > 3) skips the slot
    for i, antenna in enumerate(antennas[:4]):
        if not 1 <= antenna <= 4:
            raise ValueError("R2000 antennas are 1-4")
        slots[i] = antenna - 1
    data = bytearray()
    for antenna in slots:
        data += bytes((antenna, _byte(stay, "stay") if antenna != 0xFF else 0))
    data += bytes((_byte(interval_ms, "interval_ms"), _byte(repeat, "repeat")))
    return encode(CMD_FAST_SWITCH_INVENTORY, bytes(data), address=address)


def set_work_antenna(antenna: int, *, address: int = 1) -> bytes:
    """0x74: select the antenna (1-4) used by 0x89/0x8B."""
    if not 1 <= antenna <= 4:
        raise ValueError("R2000 antennas are 1-4")
    return encode(CMD_SET_WORK_ANTENNA, bytes((antenna - 1,)), address=address)


def set_output_power(dbm: int, *, address: int = 1) -> bytes:
    """0x76: RF output power in whole dBm (0-33), all antennas."""
    if not 0 <= dbm <= 33:
        raise ValueError("R2000 output power is 0-33 dBm")
    return encode(CMD_SET_OUTPUT_POWER, bytes((dbm,)), address=address)


def get_output_power(*, address: int = 1) -> bytes:
    return encode(CMD_GET_OUTPUT_POWER, address=address)


def get_firmware_version(*, address: int = 1) -> bytes:
    """0x72: answered with major, minor; a cheap "are you there" for the handshake."""
    return encode(CMD_GET_FIRMWARE_VERSION, address=address)


def rssi_from_raw(raw: int) -> int:
    return (raw & 0x7F) - RSSI_OFFSET


def rssi_to_raw(dbm: int, antenna: int = 1) -> int:
    return max(0, min(0x7F, dbm + RSSI_OFFSET)) | (0x80 if antenna > 4 else 0)


def tag_report(
    epc: bytes,
    *,
    antenna: int = 1,
    rssi: int = -60,
    channel: int = 0,
    pc: int | None = None,
    cmd: int = CMD_REAL_TIME_INVENTORY,
    address: int = 1,
) -> bytes:
    """A tag report frame as the reader sends it (used by the simulator and the tests)."""
    if len(epc) % 2:
        raise ValueError("an EPC is a whole number of 16-bit words")
    if pc is None:
        pc = (len(epc) // 2) << 11
    freq_ant = ((channel & 0x3F) << 2) | ((antenna - 1) & 0x03)
    data = bytes((freq_ant,)) + pc.to_bytes(2, "big") + epc + bytes((rssi_to_raw(rssi, antenna),))
    return encode(cmd, data, address=address)


def _byte(value: int, name: str) -> int:
    if not 0 <= value <= 0xFF:
        raise ValueError(f"{name} must be 0-255")
    return value


# -- frames and events -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Frame:
    address: int
    cmd: int
    data: bytes


@dataclass(frozen=True, slots=True)
class TagRead:
    epc: bytes
    pc: int
    antenna: int  # 1-based
    rssi: int  # dBm
    channel: int  # frequency channel index
    phase: int | None = None


@dataclass(frozen=True, slots=True)
class RoundEnd:
    cmd: int
    antenna: int | None  # 1-based; None for 0x8A (all antennas)
    read_rate: int | None  # reads per second in the round (0x89/0x8B)
    total_reads: int
    duration_ms: int | None = None  # 0x8A


@dataclass(frozen=True, slots=True)
class ErrorReply:
    cmd: int
    code: int
    antenna: int | None = None

    @property
    def message(self) -> str:
        return ERRORS.get(self.code, f"error 0x{self.code:02X}")


@dataclass(frozen=True, slots=True)
class Reply:
    """Any other answer (firmware version, output power, a set command's status byte)."""

    cmd: int
    data: bytes

    @property
    def ok(self) -> bool:
        return self.data == bytes((SUCCESS,))


Event = TagRead | RoundEnd | ErrorReply | Reply


class FrameDecoder(FrameSplitter[Frame]):
    """Splits a byte stream into checked frames; keeps partial frames, resynchronises on garbage.

    `dropped` counts frames whose checksum or length was wrong; `skipped` counts bytes thrown away
    while looking for the next A0.
    """

    head = HEAD
    header_size = 2  # A0, Len

    def _frame_end(self, buf: bytearray, pos: int) -> int:
        length = buf[pos + 1]
        return pos + 2 + length if length >= _MIN_LEN else -1

    def _frame(self, buf: bytearray, pos: int, stop: int) -> Frame | None:
        if checksum(memoryview(buf)[pos : stop - 1]) != buf[stop - 1]:
            return None
        return Frame(buf[pos + 2], buf[pos + 3], bytes(buf[pos + 4 : stop - 1]))


def parse(frame: Frame) -> Event | None:
    """A reader frame as an event; None when its data does not fit the command (counted as dropped)."""
    cmd, data = frame.cmd, frame.data
    if cmd in INVENTORY_COMMANDS:
        n = len(data)
        if cmd == CMD_FAST_SWITCH_INVENTORY:
            if n == 7:
                return RoundEnd(
                    cmd,
                    None,
                    None,
                    int.from_bytes(data[0:3], "big"),
                    int.from_bytes(data[3:7], "big"),
                )
            if n == 2:
                return ErrorReply(cmd, data[1], (data[0] & 0x03) + 1)
        elif n == 7:
            return RoundEnd(
                cmd, (data[0] & 0x03) + 1, int.from_bytes(data[1:3], "big"), int.from_bytes(data[3:7], "big")
            )
        if n == 1:
            return ErrorReply(cmd, data[0])
        if n < 4:
            return None
        pc = (data[1] << 8) | data[2]
        epc_len = (pc >> 11) * 2
        if n not in (4 + epc_len, 6 + epc_len):
            return None
        raw_rssi = data[3 + epc_len]
        antenna = (data[0] & 0x03) + 1 + (4 if raw_rssi & 0x80 else 0)
        phase = (data[4 + epc_len] << 8) | data[5 + epc_len] if n == 6 + epc_len else None
        return TagRead(bytes(data[3 : 3 + epc_len]), pc, antenna, rssi_from_raw(raw_rssi), data[0] >> 2, phase)
    return Reply(cmd, data)


class Decoder(EventDecoder[Frame, Event]):
    """Reader → host: feed what the port returned, get events. Never raises on garbage.

    `dropped` counts frames thrown away: bad checksum/length, or data that does not fit the command.
    """

    def __init__(self) -> None:
        super().__init__(FrameDecoder(), parse)
