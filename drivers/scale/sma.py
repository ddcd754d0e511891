"""SMA scale protocol (Scale Manufacturers Association SCP-0499), level 1: sans-I/O.

Requests are `<LF>x<CR>`: `W` weight, `Z` zero, `T` tare, `R` repeat weight continuously.
Standard reply: `<LF><s><r><n><m><f><weight: 10><unit: 3><CR>` where
- s: ' ' ok, 'Z' centre of zero, 'O' over capacity, 'U' under capacity, 'E' zero error,
  'I' initial zero error, 'T' tare error (for E/I/T the weight field holds dashes);
- r: range '1'..'9'; n: 'G' gross, 'N' net, 'g'/'n' high resolution, 'T' tare weight;
- m: 'M' in motion, ' ' stable; f: reserved.
`<LF>?<CR>`: unrecognised command; `<LF>!<CR>`: communication (parity/framing) error.
"""

from __future__ import annotations

import re
from typing import Literal

from drivers.scale.frames import DataParity, Event, Reply, ScaleError, Weight, seven_bit, skip_to

__all__ = ["Decoder", "command", "parse_reply"]

LF, CR = 0x0A, 0x0D
_MAX = 40  # longest reply content we accept (about/info replies are up to ~30 characters)
_NUMBER = re.compile(r"[+-]?\s*(?:\d+\.?\d*|\.\d+)")
_UNIT = re.compile(r"[A-Za-z%]{1,3}")
_ERRORS = {
    "O": "overload",
    "U": "underload",
    "E": "zero_error",
    "I": "initial_zero_error",
    "T": "tare_error",
}


def command(name: Literal["W", "Z", "T", "R", "H"]) -> bytes:
    return b"\n" + name.encode("ascii") + b"\r"


def parse_reply(content: bytes) -> Event | Literal["ignored"] | None:
    """What sits between LF and CR. None: malformed; "ignored": a valid reply that is no weight."""
    if any(b < 0x20 or b > 0x7E for b in content):
        return None
    if content == b"?":
        return ScaleError("unrecognized", "the scale does not support this command (?)", content)
    if content == b"!":
        return ScaleError("transmission", "the scale saw a parity or framing error (!)", content)
    if re.fullmatch(rb"[A-Z]{3}:.{0,25}", content):
        return "ignored"  # about / information replies
    if len(content) != 18:
        return None
    text = content.decode("ascii")
    status, range_, gross_net, motion = text[0], text[1], text[2], text[3]
    field, unit = text[5:15], text[15:18].strip()
    if status not in " ZOUEIT" or not range_.isdigit() or range_ == "0" or gross_net not in "GNgnT":
        return None
    if motion not in " M" or not _UNIT.fullmatch(unit):
        return None
    stable = motion == " "
    net = gross_net in "Nn"
    error = _ERRORS.get(status)
    value: float | None
    stripped = field.strip()
    if _NUMBER.fullmatch(stripped):
        value = float(stripped.replace(" ", ""))
    elif status in "EIT" and stripped and set(stripped) <= set("-"):
        value = None
    else:
        return None
    if gross_net == "T":
        if error is not None:
            return Reply("T", False, status, f"tare error ({error})", raw=content)
        return Reply("T", True, "T", "tare weight", value, unit, raw=content)
    return Weight(value, unit, stable, net, error=error, raw=content)


class Decoder:
    """Feed it whatever the port returned; frames run from LF to CR.

    `dropped` counts malformed frames and stray bytes, `ignored` valid non-weight replies.
    """

    def __init__(self, *, data_parity: DataParity = "none") -> None:
        self.data_parity: DataParity = data_parity
        self.dropped = 0
        self.ignored = 0
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Event]:
        buffer = self._buffer
        buffer += seven_bit(data, self.data_parity)
        events: list[Event] = []
        while buffer:
            if skip_to(buffer, LF):
                self.dropped += 1  # a run of bytes outside any frame
            end = buffer.find(CR, 1, _MAX + 2)
            following = buffer.find(LF, 1, _MAX + 2)
            if 0 < following < end or (end < 0 and following > 0):
                self.dropped += 1  # a frame cut short by the next one
                del buffer[:following]
                continue
            if end < 0:
                if len(buffer) > _MAX + 1:
                    self.dropped += 1
                    del buffer[:1]
                    continue
                break
            event = parse_reply(bytes(buffer[1:end]))
            del buffer[: end + 1]
            if event is None:
                self.dropped += 1
            elif event == "ignored":
                self.ignored += 1
            else:
                events.append(event)
        return events
