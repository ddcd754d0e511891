"""Mettler Toledo MT-SICS (Standard Interface Command Set), level 0/1: sans-I/O.

Commands end with CR LF; replies are lines `<command> <status> [<value> <unit>]` parsed by
whitespace (indicators pad the value differently), e.g. `S S     100.00 g` (stable), `S D 129.07 g`
(dynamic), `S +` (overload), `S -` (underload), `S I` (not executable now), `Z A` (zeroed),
`T S 100.00 g` (tare stored), `ES`/`ET`/`EL` (syntax, transmission, logical error).
"""

from __future__ import annotations

import math
import re
from typing import Literal

from drivers.scale.frames import DataParity, Event, Lines, Reply, ScaleError, Weight, seven_bit

__all__ = ["MAX_LINE", "Decoder", "command", "parse_line"]

MAX_LINE = 96  # longer than any reply we parse; a longer run without CR LF is noise
_VALUE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)")
_UNIT = re.compile(r"[A-Za-z%][A-Za-z0-9%/]{0,5}")

Command = Literal["S", "SI", "SIR", "Z", "T", "@"]

_ERRORS = {
    "ES": ("syntax", "syntax error: the scale did not recognise the command"),
    "ET": ("transmission", "transmission error: the scale received a garbled command"),
    "EL": ("logical", "logical error: the command cannot be carried out"),
}
_ZERO = {
    "A": "zero set",
    "I": "zero not executed (scale busy or not stable)",
    "+": "upper limit of the zero range exceeded",
    "-": "lower limit of the zero range exceeded",
}
_TARE = {
    "S": "tare stored",
    "I": "tare not executed (scale busy or not stable)",
    "+": "upper limit of the taring range exceeded",
    "-": "lower limit of the taring range exceeded",
}


def command(name: Command) -> bytes:
    """The bytes to send for an MT-SICS command."""
    return name.encode("ascii") + b"\r\n"


def _number(tokens: list[str]) -> tuple[float, str] | None:
    """`value unit` or `- value unit` (a detached sign) → (value, unit); None when malformed."""
    if len(tokens) == 3 and tokens[0] in ("-", "+"):
        tokens = [tokens[0] + tokens[1], tokens[2]]
    if len(tokens) != 2 or not _VALUE.fullmatch(tokens[0]) or not _UNIT.fullmatch(tokens[1]):
        return None
    value = float(tokens[0])
    if not math.isfinite(value):
        return None
    return value, tokens[1]


def parse_line(line: bytes) -> Event | Literal["ignored"] | None:
    """One reply line without its CR LF. None: malformed; "ignored": valid but not ours."""
    if not line or any(b < 0x20 or b > 0x7E for b in line):
        return None
    tokens = line.decode("ascii").split()
    if not tokens:
        return None
    head, rest = tokens[0], tokens[1:]
    if head in _ERRORS and not rest:
        code, message = _ERRORS[head]
        return ScaleError(code, message, line)
    if head == "S" and rest:
        status = rest[0]
        if status in ("S", "D"):
            parsed = _number(rest[1:])
            if parsed is None:
                return None
            return Weight(parsed[0], parsed[1], status == "S", raw=line)
        if len(rest) == 1 and status == "+":
            return Weight(None, "", False, error="overload", raw=line)
        if len(rest) == 1 and status == "-":
            return Weight(None, "", False, error="underload", raw=line)
        if len(rest) == 1 and status == "I":
            return ScaleError("not_executable", "weight command not executable now (scale busy)", line)
        return None
    if head == "Z" and len(rest) == 1 and rest[0] in _ZERO:
        return Reply("Z", rest[0] == "A", rest[0], _ZERO[rest[0]], raw=line)
    if head == "T" and rest and rest[0] in _TARE:
        status = rest[0]
        if status == "S":
            parsed = _number(rest[1:])
            if parsed is None:
                return None
            return Reply("T", True, "S", _TARE["S"], parsed[0], parsed[1], raw=line)
        if len(rest) == 1:
            return Reply("T", False, status, _TARE[status], raw=line)
        return None
    if re.fullmatch(r"[A-Z][A-Z0-9]{0,4}", head) and head not in ("S", "Z", "T", *_ERRORS):
        return "ignored"  # another MT-SICS reply (I4, SIX1, @ reset answer ...): well-formed, not a weight
    return None


class Decoder:
    """Feed it whatever the port returned; it keeps partial lines between calls.

    `dropped` counts malformed lines (never returned as weights), `ignored` well-formed replies
    of commands this driver does not use.
    """

    def __init__(self, *, data_parity: DataParity = "none") -> None:
        self.data_parity: DataParity = data_parity
        self.dropped = 0
        self.ignored = 0
        self._lines = Lines(max_line=MAX_LINE)

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        for line in self._lines.feed(seven_bit(data, self.data_parity)):
            event = None if line is None else parse_line(line)
            if event is None:
                self.dropped += 1
            elif event == "ignored":
                self.ignored += 1
            else:
                events.append(event)
        return events
