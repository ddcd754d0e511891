"""The `rfid` device entry: which reader protocol on which port, and how tag reads are reported."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from drivers.serial_link import SerialLineConfig
from edge_agent import CommandSpec, DeviceConfig
from edge_agent.units import Duration

__all__ = ["MAX_ANTENNAS", "POWER_RANGE", "RfidConfig"]

Protocol = Literal["r2000", "m100", "thingmagic"]

MAX_ANTENNAS: dict[str, int] = {"r2000": 4, "m100": 1, "thingmagic": 4}
POWER_RANGE: dict[str, tuple[float, float]] = {"r2000": (0, 33), "m100": (0, 30), "thingmagic": (0, 31.5)}


class RfidConfig(DeviceConfig, SerialLineConfig):
    """A serial UHF RFID reader module (see drivers/rfid/README.md)."""

    driver: Literal["rfid"] = "rfid"
    protocol: Protocol = Field(
        description="reader protocol: r2000 (Impinj R2000 CMD), m100 (MagicRF M100/QM100), "
        "thingmagic (JADAK Mercury M6e/M7e)"
    )
    baudrate: int = Field(115200, gt=0, le=4_000_000, description="serial speed; these modules ship at 115200")
    report: Literal["presence", "every_read"] = Field(
        "presence",
        description="presence: one reading when a tag arrives, optional updates, one when it departs; "
        "every_read: one reading per tag read",
    )
    absent_after: Duration = Field(2.0, gt=0, description="a tag not read for this long has departed (e.g. 2s)")
    update_every: Duration | None = Field(
        None, gt=0, description="presence mode: a 'present' reading per tag this often while it stays (e.g. 10s)"
    )
    per_antenna: bool = Field(False, description="presence mode: track each tag per antenna (portal direction)")
    antennas: list[int] = Field(
        default_factory=lambda: [1], min_length=1, description="antenna ports to inventory, 1-based (e.g. [1, 2])"
    )
    power_dbm: float | None = Field(
        None, description="transmit power in dBm (r2000: whole dBm 0-33, m100: 0-30, thingmagic: 0-31.5)"
    )
    min_rssi: float | None = Field(None, le=0, description="ignore reads weaker than this, in dBm (e.g. -70)")
    inventory: bool = Field(True, description="start inventory when the reader connects (else on command)")
    address: int = Field(1, ge=0, le=255, description="r2000: reader address (255 broadcast)")
    session: Literal[0, 1, 2, 3] | None = Field(
        None, description="r2000: Gen2 session for inventory (uses command 0x8B); default: the reader's"
    )
    target: Literal["A", "B"] = Field("A", description="r2000: Gen2 inventory target with `session`")
    rounds: int = Field(1, ge=1, le=255, description="r2000: inventory rounds per command (per antenna)")
    region: int | None = Field(
        None, ge=0, le=255, description="thingmagic: region code to set (module manual: 1 = NA, 8 = EU3)"
    )
    cycle: Duration = Field(
        0.25, ge=0.02, le=0.5, description="thingmagic: length of one read cycle before the tag buffer is fetched"
    )
    response_timeout: Duration = Field(
        1.0, gt=0, le=30, description="the reader is considered gone when it does not answer for this long"
    )
    decode_gs1: bool = Field(True, description="decode EPCs (SGTIN, SSCC, GRAI, ...) to URI and GS1 element string")

    @field_validator("antennas")
    @classmethod
    def _antennas(cls, value: list[int], info: ValidationInfo) -> list[int]:
        protocol = info.data.get("protocol")
        most = MAX_ANTENNAS.get(protocol, 4) if isinstance(protocol, str) else 4
        bad = [a for a in value if not 1 <= a <= most]
        if bad:
            raise ValueError(f"{protocol} readers have antenna ports 1-{most} (got {bad})")
        if len(set(value)) != len(value):
            raise ValueError("name each antenna port once")
        return value

    @field_validator("power_dbm")
    @classmethod
    def _power(cls, value: float | None, info: ValidationInfo) -> float | None:
        protocol = info.data.get("protocol")
        if value is None or not isinstance(protocol, str) or protocol not in POWER_RANGE:
            return value
        low, high = POWER_RANGE[protocol]
        if not low <= value <= high:
            raise ValueError(f"{protocol} readers take {low:g}-{high:g} dBm")
        if protocol == "r2000" and value != int(value):
            raise ValueError("r2000 readers take whole dBm")
        return value

    @model_validator(mode="after")
    def _combinations(self) -> RfidConfig:
        if self.protocol == "thingmagic" and self.absent_after <= 2 * self.cycle:
            raise ValueError("absent_after must be longer than two read cycles (`cycle`) for thingmagic readers")
        if self.per_antenna and self.report != "presence":
            raise ValueError("per_antenna applies to report: presence only")
        return self

    def check_command(self, spec: CommandSpec) -> str | None:
        if spec.action is not None:
            if spec.action in ("start_inventory", "stop_inventory"):
                return None
            return "an RFID reader's actions are start_inventory and stop_inventory"
        if spec.write != "power_dbm":
            return "an RFID reader's only writable point is power_dbm (`write: power_dbm` with min/max or values)"
        low, high = POWER_RANGE[self.protocol]
        bounds = [v for v in (spec.min, spec.max) if v is not None]
        for value in [*bounds, *(spec.values or [])]:
            if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
                return f"{self.protocol} readers take {low:g}-{high:g} dBm (got {value!r})"
        if self.protocol == "r2000" and any(v != int(v) for v in spec.values or []):
            return "r2000 readers take whole dBm"
        return None

    def claims(self) -> dict[str, str | None]:
        return {f"serial:{self.port}": None}
