"""Modbus RTU framing for the device side (the simulator's slave): pure, bytes in, requests out.

The driver side uses pymodbus' client framer; this independent implementation answers it on the
other end of a serial line in tests and demos, so RTU is not only pymodbus talking to itself.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RtuRequest", "RtuRequestDecoder", "crc16", "exception_frame", "frame"]

READ_FUNCTIONS = frozenset({1, 2, 3, 4})
WRITE_SINGLE = frozenset({5, 6})
WRITE_MULTIPLE = frozenset({15, 16})
MAX_FRAME = 256


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    """Modbus CRC-16 (poly 0xA001, init 0xFFFF); sent low byte first."""
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ _TABLE[(crc ^ byte) & 0xFF]
    return crc


def frame(unit: int, function: int, body: bytes) -> bytes:
    """An RTU frame: unit, function, body, CRC (low byte first)."""
    head = bytes((unit, function)) + body
    return head + crc16(head).to_bytes(2, "little")


def exception_frame(unit: int, function: int, code: int) -> bytes:
    return frame(unit, function | 0x80, bytes((code,)))


@dataclass(frozen=True, slots=True)
class RtuRequest:
    unit: int
    function: int
    address: int
    count: int  # quantity to read or write (1 for single writes)
    data: bytes = b""  # the value (single writes) or packed values (multiple writes)


class RtuRequestDecoder:
    """Feed whatever the line delivered; get complete, CRC-checked requests.

    Partial frames are kept between calls. After garbage or a CRC error the decoder drops one byte
    and looks again (resynchronises); `dropped` counts the bytes given up. `idle()` is the RTU
    end-of-frame silence (3.5 characters): a partial frame left at that point is dropped.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.dropped = 0

    def feed(self, data: bytes) -> list[RtuRequest]:
        self._buffer += data
        out: list[RtuRequest] = []
        buf = self._buffer
        while len(buf) >= 2:
            function = buf[1]
            if function in READ_FUNCTIONS or function in WRITE_SINGLE:
                size = 8
            elif function in WRITE_MULTIPLE:
                if len(buf) < 7:
                    break
                size = 9 + buf[6]
            else:
                self._drop(1)
                continue
            if len(buf) < size:
                break
            request = self._parse(bytes(buf[:size]))
            if request is None:
                self._drop(1)
                continue
            del buf[:size]
            out.append(request)
        return out

    def idle(self) -> None:
        """The line went quiet: whatever is buffered cannot become a frame any more."""
        if self._buffer:
            self._drop(len(self._buffer))

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def _drop(self, n: int) -> None:
        del self._buffer[:n]
        self.dropped += n

    @staticmethod
    def _parse(raw: bytes) -> RtuRequest | None:
        if crc16(raw[:-2]) != int.from_bytes(raw[-2:], "little"):
            return None
        unit, function = raw[0], raw[1]
        address = int.from_bytes(raw[2:4], "big")
        if function in READ_FUNCTIONS:
            count = int.from_bytes(raw[4:6], "big")
            limit = 2000 if function in (1, 2) else 125
            if not 1 <= count <= limit:
                return None
            return RtuRequest(unit, function, address, count)
        if function in WRITE_SINGLE:
            return RtuRequest(unit, function, address, 1, raw[4:6])
        count = int.from_bytes(raw[4:6], "big")
        byte_count = raw[6]
        expected = (count + 7) // 8 if function == 15 else 2 * count
        if count < 1 or byte_count != expected:
            return None
        return RtuRequest(unit, function, address, count, raw[7:-2])
