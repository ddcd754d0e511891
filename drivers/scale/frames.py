"""What the scale protocol decoders produce (weights, command replies and scale errors) and the
byte handling they share: parity bits, stray bytes before a frame.

Pure, shared by every protocol module (no I/O here or there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["DataParity", "Event", "Reply", "ScaleError", "Weight", "seven_bit", "skip_to"]


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
