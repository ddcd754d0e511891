"""What the scale protocol decoders produce (weights, command replies and scale errors) and the
byte handling they share: parity bits, stray bytes before a frame, lines.

Pure, shared by every protocol module (no I/O here or there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["DataParity", "Event", "Lines", "Reply", "ScaleError", "Weight", "seven_bit", "skip_to"]


@dataclass(frozen=True, slots=True)
class Weight:
    """One weight as the scale reported it.

    `value` is None when the scale sent no number (overload, underload, zero/tare error).
    `error` names why the weight is not usable ("overload", "underload", "out_of_range", ...).
    `net` and `tare` are None where the protocol does not say.
    """

    value: float | None
    unit: str
    stable: bool
    net: bool | None = None
    tare: float | None = None
    error: str | None = None
    raw: bytes = b""


@dataclass(frozen=True, slots=True)
class Reply:
    """The scale's answer to a zero or tare command (MT-SICS `Z A`, `T S 100.00 g`, `Z I`...)."""

    command: str  # "Z" or "T"
    ok: bool
    status: str  # the protocol's status token, e.g. "A", "S", "I", "+", "-"
    message: str
    value: float | None = None
    unit: str | None = None
    raw: bytes = b""


@dataclass(frozen=True, slots=True)
class ScaleError:
    """A well-formed error report from the scale (MT-SICS `ES`/`ET`/`EL`/`S I`, SMA `?`/`!`)."""

    code: str  # "syntax", "transmission", "logical", "not_executable", "unrecognized", ...
    message: str
    raw: bytes = b""


Event = Weight | Reply | ScaleError

DataParity = Literal["none", "strip", "even", "odd"]

# A port opened 8N1 while the scale sends 7E1/7O1 sees the parity bit in bit 7 of every byte.
# "strip" drops it; "even"/"odd" check it first and turn a failing byte into 0xFF, which no
# protocol accepts, so the frame holding it is dropped instead of being misread.
_TABLES: dict[str, bytes] = {
    "strip": bytes(b & 0x7F for b in range(256)),
    "even": bytes((b & 0x7F) if b.bit_count() % 2 == 0 else 0xFF for b in range(256)),
    "odd": bytes((b & 0x7F) if b.bit_count() % 2 == 1 else 0xFF for b in range(256)),
}


def seven_bit(data: bytes, mode: DataParity) -> bytes:
    """Bytes with the parity bit in bit 7 handled as `mode` says ("none": unchanged)."""
    if mode == "none":
        return data
    return data.translate(_TABLES[mode])


def skip_to(buffer: bytearray, start: int) -> bool:
    """Drop the bytes before the first `start` byte (all of them when there is none).

    True when any were dropped: one run of stray bytes, which the decoders count as one drop.
    """
    index = buffer.find(start)
    if index < 0:
        index = len(buffer)
    if index == 0:
        return False
    del buffer[:index]
    return True


class Lines:
    """Cuts a byte stream into lines; keeps a partial line between calls.

    Lines end at LF (a CR before it is dropped), or with `cr_ends_line` at CR, LF or CR LF; blank
    lines are skipped. A line longer than `max_line` comes out as None, and so, once, does a run
    of more than `max_line` bytes without a line end: that run is noise, thrown away up to the
    next line end.
    """

    def __init__(self, *, max_line: int, cr_ends_line: bool = False) -> None:
        self.max_line = max_line
        self.cr_ends_line = cr_ends_line
        self._buffer = bytearray()
        self._discarding = False  # inside an over-long line: skip to its end

    def _line_end(self) -> int:
        buffer = self._buffer
        if not self.cr_ends_line:
            return buffer.find(b"\n")
        ends = [i for i in (buffer.find(b"\r"), buffer.find(b"\n")) if i >= 0]
        return min(ends) if ends else -1

    def feed(self, data: bytes) -> list[bytes | None]:
        buffer = self._buffer
        buffer += data
        lines: list[bytes | None] = []
        while True:
            end = self._line_end()
            if end < 0:
                if len(buffer) > self.max_line:
                    if not self._discarding:
                        lines.append(None)
                    self._discarding = True
                    buffer.clear()
                break
            line = bytes(buffer[:end]).rstrip(b"\r")
            del buffer[: end + 1]
            if self._discarding:
                self._discarding = False
                continue
            if not line.strip():
                continue
            lines.append(line if len(line) <= self.max_line else None)
        return lines
