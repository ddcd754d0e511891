"""Configurable ASCII scales: one line per weight, described by a regular expression: sans-I/O.

Technicians add an indicator model without code by writing a pattern with named groups:

- `weight` (required): the number, sign and blanks allowed (`+0001.50`, `-  12.5`, `  12.5`);
- `sign`: a separate sign field (`-` makes the weight negative);
- `unit`: the unit as sent (mapped through `units`, e.g. `L` → `lb`); otherwise the configured unit;
- `stable` / `unstable`: markers; a weight is stable when `stable` took part in the match (or,
  without a `stable` group, when `unstable` did not); without either group every weight is stable;
- `net` / `gross`: markers for net and gross weights;
- `overload` / `underload`: markers that make the reading bad;
- `tare`: a tare value.

The pattern must match the whole line (lines end at CR, LF or CR LF). A line that does not match,
or whose weight is not a number, is dropped and counted: it never becomes a weight.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from drivers.scale.frames import DataParity, Lines, Weight, seven_bit

__all__ = ["PRESETS", "Decoder", "Profile", "ProfileError"]

MAX_LINE = 160
_NUMBER = re.compile(r"([+-]?)\s*(\d+\.?\d*|\.\d+)")
_GROUPS = ("weight", "sign", "unit", "stable", "unstable", "net", "gross", "overload", "underload", "tare")

# Known indicator formats: name → (pattern, unit map).
PRESETS: dict[str, tuple[str, dict[str, str]]] = {
    # CAS (CI-series, DB-II...): `ST,GS,+0001.50kg`; US: unstable, OL: overload; GS/NT gross/net.
    "cas": (
        r"(?:(?P<stable>ST)|(?P<unstable>US)|(?P<overload>OL)),(?:(?P<gross>GS)|(?P<net>NT)),"
        r"(?P<weight>[+-]?[ 0-9.]*)\s*(?P<unit>[A-Za-z]{1,3})",
        {},
    ),
    # Rice Lake / Condec stream: `<STX><sign><weight 7><L|K|G|T><G|N><' '|M|O>`.
    "rice-lake": (
        r"\x02?(?P<sign>[ +-])(?P<weight>[ 0-9.]{7})(?P<unit>[LKGT])(?:(?P<gross>G)|(?P<net>N))"
        r"(?:(?P<stable> )|(?P<unstable>M)|(?P<overload>O))\s*",
        {"L": "lb", "K": "kg", "G": "g", "T": "t"},
    ),
}


class ProfileError(ValueError):
    """The pattern cannot describe a weight line (the message says why, for the config error)."""


class Profile:
    """A compiled pattern with its unit defaults."""

    def __init__(self, pattern: str, *, unit: str | None = None, units: Mapping[str, str] | None = None) -> None:
        try:
            self.regex = re.compile(pattern)
        except re.error as err:
            raise ProfileError(f"pattern is not a valid regular expression: {err}") from err
        names = set(self.regex.groupindex)
        if "weight" not in names:
            raise ProfileError("pattern needs a named group (?P<weight>...) for the number")
        unknown = names - set(_GROUPS)
        if unknown:
            raise ProfileError(
                f"pattern has unknown group name(s) {', '.join(sorted(unknown))}; use {', '.join(_GROUPS)}"
            )
        if "unit" not in names and not unit:
            raise ProfileError("pattern has no (?P<unit>...) group: set `unit:` (e.g. kg)")
        self.names = names
        self.unit = unit or ""
        self.units = dict(units or {})

    @classmethod
    def preset(cls, name: str, *, unit: str | None = None, units: Mapping[str, str] | None = None) -> Profile:
        pattern, preset_units = PRESETS[name]
        return cls(pattern, unit=unit, units={**preset_units, **(units or {})})

    def parse(self, line: bytes) -> Weight | None:
        try:
            text = line.decode("ascii")
        except UnicodeDecodeError:
            return None
        match = self.regex.fullmatch(text)
        if match is None:
            return None
        groups = match.groupdict()
        error = "overload" if groups.get("overload") is not None else None
        if groups.get("underload") is not None:
            error = "underload"
        value = _number(groups["weight"] or "")
        if value is None and error is None:
            return None
        if value is not None and (groups.get("sign") or "").strip() == "-":
            value = -value
        unit_text = (groups.get("unit") or "").strip()
        unit = self.units.get(unit_text, unit_text) or self.unit
        stable = groups["stable"] is not None if "stable" in self.names else groups.get("unstable") is None
        net: bool | None = None
        if groups.get("net") is not None:
            net = True
        elif groups.get("gross") is not None:
            net = False
        tare = _number(groups["tare"] or "") if "tare" in self.names else None
        return Weight(None if error else value, unit, stable, net, tare, error, line)


def _number(text: str) -> float | None:
    match = _NUMBER.fullmatch(text.strip())
    if match is None:
        return None
    value = float(match.group(2))
    if not math.isfinite(value):
        return None
    return -value if match.group(1) == "-" else value


class Decoder:
    """Feed it whatever the port returned; lines end at CR, LF or CR LF."""

    def __init__(self, profile: Profile, *, data_parity: DataParity = "none") -> None:
        self.profile = profile
        self.data_parity: DataParity = data_parity
        self.dropped = 0
        self._lines = Lines(max_line=MAX_LINE, cr_ends_line=True)

    def feed(self, data: bytes) -> list[Weight]:
        events: list[Weight] = []
        for line in self._lines.feed(seven_bit(data, self.data_parity)):
            weight = None if line is None else self.profile.parse(line)
            if weight is None:
                self.dropped += 1
            else:
                events.append(weight)
        return events
