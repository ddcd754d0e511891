"""The `scale` device entry: protocol, mode, line settings, what to report."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from drivers.scale.ascii_profile import PRESETS, Profile, ProfileError
from drivers.scale.events import ReportMode
from drivers.scale.frames import DataParity
from drivers.serial_link import SerialLineConfig
from edge_agent import CommandSpec, DeviceConfig
from edge_agent.units import Duration

__all__ = ["Protocol", "ScaleConfig"]

Protocol = Literal["mt-sics", "toledo", "sma", "ascii"]
_POLL_COMMANDS: dict[str, tuple[str, ...]] = {"mt-sics": ("SI", "S"), "sma": ("W", "H")}


class ScaleConfig(DeviceConfig, SerialLineConfig):
    """A weighing scale on a serial port (RS-232, or USB serial)."""

    driver: Literal["scale"]
    protocol: Protocol = Field(description="mt-sics | toledo (continuous output) | sma | ascii (takes `pattern:`)")
    mode: Literal["poll", "listen"] | None = Field(
        None,
        description="poll: send a weight request every poll_interval; listen: read a continuous stream "
        "(default: listen for toledo, poll otherwise)",
    )
    poll_interval: Duration = Field(0.2, gt=0, description="time between weight requests in poll mode")
    poll_command: str | None = Field(
        None,
        description="weight request in poll mode: SI (default) or S for mt-sics, W (default) or H for sma; "
        'for ascii the exact text to send, e.g. "P\\r\\n"',
    )
    report: ReportMode = Field(
        "every", description="every weight | stable: only stable weights | events: one reading per item weighed"
    )
    min_weight: float | None = Field(
        None, description="events: an item counts when it is stable at or above this weight (scale unit)"
    )
    zero_band: float = Field(0.0, description="events: at or below this weight the scale counts as empty")
    settle_time: Duration = Field(0.0, description="events: how long the weight must stay stable before it counts")
    tolerance: float = Field(0.0, ge=0, description="events: how far a settling weight may move and stay 'the same'")
    pattern: str | None = Field(
        None, description="ascii: regular expression with named groups weight, unit, stable, unstable, net, ..."
    )
    preset: Literal["cas", "rice-lake"] | None = Field(None, description="ascii: a known format instead of pattern")
    unit: str | None = Field(None, description="ascii: the unit when the pattern has no `unit` group")
    units: dict[str, str] = Field(default_factory=dict, description="ascii: unit as sent → unit reported, {L: lb}")
    checksum: bool = Field(False, description="toledo: frames end with a checksum byte after CR")
    data_parity: DataParity = Field(
        "none",
        description="when the port is opened with 8 data bits but the scale sends 7E1/7O1: even/odd checks "
        "the parity bit in bit 7, strip ignores it",
    )
    reply_timeout: Duration = Field(1.0, gt=0, description="poll: how long to wait for each reply")
    silence_timeout: Duration = Field(
        5.0, gt=0, description="reopen the port when no valid weight arrived for this long"
    )
    command_timeout: Duration = Field(5.0, gt=0, description="zero/tare: how long to wait for the scale's answer")

    @property
    def effective_mode(self) -> Literal["poll", "listen"]:
        if self.mode is not None:
            return self.mode
        return "listen" if self.protocol == "toledo" else "poll"

    @property
    def request(self) -> str:
        """The poll request as configured or the protocol's default."""
        if self.poll_command is not None:
            return self.poll_command
        return {"mt-sics": "SI", "sma": "W"}.get(self.protocol, "")

    def profile(self) -> Profile:
        """The ascii profile (pattern or preset); raises ProfileError when it is unusable."""
        if self.preset is not None:
            return Profile.preset(self.preset, unit=self.unit, units=self.units)
        return Profile(self.pattern or "", unit=self.unit, units=self.units)

    def claims(self) -> dict[str, str | None]:
        return {f"serial:{self.port}": None}

    def check_command(self, spec: CommandSpec) -> str | None:
        if spec.action not in ("zero", "tare"):
            return "a scale has two actions: zero and tare (`action: tare`)"
        if self.protocol == "mt-sics" or (self.protocol == "sma" and self.effective_mode == "poll"):
            return None
        return f"protocol {self.protocol} in {self.effective_mode} mode cannot receive commands"

    @model_validator(mode="after")
    def _consistent(self) -> ScaleConfig:
        problems: list[str] = []
        protocol, mode = self.protocol, self.effective_mode
        if protocol == "ascii":
            if (self.pattern is None) == (self.preset is None):
                problems.append(f"protocol ascii needs either `pattern:` or `preset:` ({' | '.join(PRESETS)})")
            else:
                try:
                    self.profile()
                except ProfileError as err:
                    problems.append(str(err))
            if mode == "poll" and not self.poll_command:
                problems.append('protocol ascii in poll mode needs `poll_command:` (the exact request, e.g. "P\\r\\n")')
        else:
            for key in ("pattern", "preset", "unit"):
                if getattr(self, key) is not None:
                    problems.append(f"`{key}:` only applies to protocol ascii")
            if self.units:
                problems.append("`units:` only applies to protocol ascii")
        if protocol == "toledo" and mode == "poll":
            problems.append("protocol toledo is a continuous output: use mode: listen")
        if self.checksum and protocol != "toledo":
            problems.append("`checksum:` only applies to protocol toledo")
        if protocol in _POLL_COMMANDS and self.poll_command is not None:
            allowed = _POLL_COMMANDS[protocol]
            if self.poll_command not in allowed:
                problems.append(f"poll_command for {protocol} must be one of {', '.join(allowed)}")
        if self.data_parity != "none" and self.bytesize != 8:
            problems.append("data_parity applies to ports opened with bytesize 8 (with 7 bits the port removes parity)")
        if self.report == "events":
            if self.min_weight is None:
                problems.append("report: events needs `min_weight:` (the lightest item that counts, in the scale unit)")
            elif self.min_weight <= self.zero_band:
                problems.append("min_weight must be above zero_band")
        if problems:
            raise ValueError("; ".join(problems))
        return self
