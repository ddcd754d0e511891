"""Mettler Toledo standard continuous output: sans-I/O.

Frame: `STX SWA SWB SWC wwwwww tttttt CR [CHK]` (17 bytes, 18 with the checksum).

- SWA bits 0-2: decimal point (000 XX00, 001 XXX0, 010 XXXXXX, 011 XXXXX.X ... 111 X.XXXXX);
  bits 3-4: display increment; bit 5 always 1; bit 6 always 0.
- SWB bit 0 net, bit 1 negative, bit 2 out of range (over/under capacity), bit 3 motion,
  bit 4 kg (0: lb), bit 5 always 1.
- SWC bits 0-2 unit (000 lb/kg as SWB says, 001 g, 010 t, 011 oz, 100 ozt, 101 dwt, 110 long
  tons, 111 custom), bit 5 always 1.
- wwwwww / tttttt: weight and tare digits without sign or decimal point (leading zeros may be
  sent as spaces).
- CHK: two's complement of the 7-bit sum of the bytes from STX to CR, so the 7-bit sum of the
  whole frame is zero.

7E1 lines read as 8 bits carry the parity in bit 7: see `frames.seven_bit`.
"""

from __future__ import annotations

from drivers.scale.frames import DataParity, Weight, seven_bit, skip_to

__all__ = ["FRAME_LENGTH", "Decoder", "checksum", "encode", "parse_frame"]

STX, CR = 0x02, 0x0D
FRAME_LENGTH = 17
_UNITS = {1: "g", 2: "t", 3: "oz", 4: "ozt", 5: "dwt", 6: "ton", 7: "custom"}


def checksum(body: bytes) -> int:
    """The checksum byte of `STX ... CR`: two's complement of the 7-bit sum."""
    return -sum(body) & 0x7F


def _digits(field: bytes) -> int | None:
    """Six digit characters, leading blanks allowed; None otherwise."""
    text = field.lstrip(b" ")
    if not text or not text.isdigit() or not all(0x30 <= b <= 0x39 for b in text):
        return None
    return int(text)


def _scaled(raw: int, code: int) -> float:
    exponent = 2 - code  # code 0: x100, 1: x10, 2: x1, 3: /10 ... 7: /100000
    if exponent >= 0:
        return float(raw * 10**exponent)
    return round(raw / float(10**-exponent), -exponent)


def parse_frame(frame: bytes, *, with_checksum: bool = False) -> Weight | None:
    """A complete frame (already 7-bit) → Weight, or None when any check fails."""
    size = FRAME_LENGTH + (1 if with_checksum else 0)
    if len(frame) != size or frame[0] != STX or frame[FRAME_LENGTH - 1] != CR:
        return None
    if any(b > 0x7F for b in frame):
        return None
    swa, swb, swc = frame[1], frame[2], frame[3]
    if swa & 0x60 != 0x20 or not swb & 0x20 or not swc & 0x20:
        return None
    weight, tare = _digits(frame[4:10]), _digits(frame[10:16])
    if weight is None or tare is None:
        return None
    if with_checksum and sum(frame) & 0x7F != 0:
        return None
    code = swa & 0x07
    unit = _UNITS.get(swc & 0x07) or ("kg" if swb & 0x10 else "lb")
    net = bool(swb & 0x01)
    stable = not swb & 0x08
    tare_value = _scaled(tare, code)
    if swb & 0x04:
        return Weight(None, unit, stable, net, tare_value, error="out_of_range", raw=frame)
    value = _scaled(weight, code)
    if swb & 0x02:
        value = -value
    return Weight(value, unit, stable, net, tare_value, raw=frame)


def encode(
    weight: int,
    tare: int = 0,
    *,
    decimals: int = 2,
    net: bool = False,
    negative: bool = False,
    motion: bool = False,
    out_of_range: bool = False,
    unit: str = "kg",
    with_checksum: bool = False,
) -> bytes:
    """A frame as a scale sends it (for the simulator and tests): weight/tare in display digits."""
    if not 0 <= weight <= 999_999 or not 0 <= tare <= 999_999 or not -2 <= decimals <= 5:
        raise ValueError("weight and tare take six digits; decimals -2..5")
    swa = 0x20 | 0x08 | (decimals + 2)
    swb = 0x20 | (0x01 if net else 0) | (0x02 if negative else 0) | (0x04 if out_of_range else 0)
    swb |= (0x08 if motion else 0) | (0x10 if unit == "kg" else 0)
    codes = {v: k for k, v in _UNITS.items()}
    swc = 0x20 | (0 if unit in ("kg", "lb") else codes[unit])
    body = bytes([STX, swa, swb, swc]) + f"{weight:06d}{tare:06d}".encode() + bytes([CR])
    return body + bytes([checksum(body)]) if with_checksum else body


class Decoder:
    """Feed it whatever the port returned; keeps partial frames, resynchronises on STX.

    `dropped` counts frames that failed a check and runs of bytes outside any frame.
    """

    def __init__(self, *, with_checksum: bool = False, data_parity: DataParity = "none") -> None:
        self.with_checksum = with_checksum
        self.data_parity: DataParity = data_parity
        self.dropped = 0
        self._buffer = bytearray()
        self._size = FRAME_LENGTH + (1 if with_checksum else 0)

    def feed(self, data: bytes) -> list[Weight]:
        buffer = self._buffer
        buffer += seven_bit(data, self.data_parity)
        events: list[Weight] = []
        while buffer:
            if skip_to(buffer, STX):
                self.dropped += 1  # a run of bytes outside any frame
            if len(buffer) < self._size:
                break
            weight = parse_frame(bytes(buffer[: self._size]), with_checksum=self.with_checksum)
            if weight is None:
                self.dropped += 1
                following = buffer.find(STX, 1)  # resynchronise on the next STX
                del buffer[: following if following > 0 else len(buffer)]
                continue
            events.append(weight)
            del buffer[: self._size]
        return events
