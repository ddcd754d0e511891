"""Configuration of a Modbus device (TCP or RTU) and its points, as technicians write it in YAML."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator, model_validator

from drivers.modbus.codec import encode_registers, unscale_value
from edge_agent.driver import CommandSpec, DeviceConfig
from edge_agent.units import Duration

__all__ = [
    "DataType",
    "Deadband",
    "ModbusConfig",
    "Order",
    "PointConfig",
    "Table",
]

Table = Literal["holding", "input", "coil", "discrete"]
DataType = Literal["int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "string", "bool"]
Order = Literal["ABCD", "CDAB", "BADC", "DCBA"]

REGISTER_TABLES = frozenset({"holding", "input"})
BIT_TABLES = frozenset({"coil", "discrete"})
WRITABLE_TABLES = frozenset({"holding", "coil"})

# Registers per value, for the register types (strings: `length`).
TYPE_REGISTERS: dict[str, int] = {
    "int16": 1,
    "uint16": 1,
    "bool": 1,
    "int32": 2,
    "uint32": 2,
    "float32": 2,
    "int64": 4,
    "uint64": 4,
    "float64": 4,
}

_DEADBAND_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "number", "minimum": 0, "description": "absolute change"},
        {"type": "string", "pattern": r"^\s*[0-9.]+\s*%\s*$", "description": "percentage, e.g. '2%'"},
        {"type": "null"},
    ],
}

_PERCENT = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*%\s*$")


class Deadband(BaseModel):
    """A deadband: an absolute change, or a percentage of the last published value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    amount: float
    percent: bool = False

    def exceeded(self, last: float, new: float) -> bool:
        limit = abs(last) * self.amount / 100.0 if self.percent else self.amount
        return abs(new - last) > limit


def _parse_deadband(value: object) -> Deadband | None:
    if value is None or isinstance(value, Deadband):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a number (absolute change) or a percentage such as '2%'")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a deadband cannot be negative")
        return Deadband(amount=float(value))
    if isinstance(value, str):
        match = _PERCENT.match(value)
        if match:
            return Deadband(amount=float(match.group(1)), percent=True)
        try:
            amount = float(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a deadband: expected a number such as 0.05 or a percentage such as '2%'"
            ) from None
        if amount < 0:
            raise ValueError("a deadband cannot be negative")
        return Deadband(amount=amount)
    raise ValueError("expected a number (absolute change) or a percentage such as '2%'")


class PointConfig(BaseModel):
    """One value in the device's register map; it becomes readings of kind `point`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=128, description="point name, the `point` field of its readings")
    table: Table = Field(description="holding | input (registers), coil | discrete (bits)")
    address: int = Field(ge=0, le=65535, description="0-based register or coil address (40001 is holding 0)")
    type: DataType | None = Field(
        None,
        description="int16 uint16 int32 uint32 int64 uint64 float32 float64 string bool "
        "(default: uint16 for registers, bool for coils, discrete inputs and `bit`)",
    )
    order: Order | None = Field(
        None, description="byte and word order of 32/64-bit values: ABCD CDAB BADC DCBA (default: the device's)"
    )
    length: int | None = Field(None, ge=1, le=125, description="registers of a string (2 characters each)")
    byte_swap: bool = Field(False, description="strings: the low byte of each register comes first")
    encoding: Literal["ascii", "latin-1", "utf-8"] = Field("ascii", description="strings: character encoding")
    bit: int | None = Field(None, ge=0, le=15, description="a single bit of a register (0 = least significant)")
    scale: float = Field(1.0, description="value = raw * scale + offset")
    offset: float = Field(0.0, description="value = raw * scale + offset")
    unit: str | None = Field(None, description="unit of the value, e.g. m/s, °C, kg")
    deadband: Annotated[Deadband | None, WithJsonSchema(_DEADBAND_SCHEMA)] = Field(
        None,
        description="publish only when the value changes by more than this (absolute, e.g. 0.05) or by a "
        "percentage of the last published value ('2%'); 0 means on any change",
    )
    max_age: Duration | None = Field(
        None, gt=0, description="with report-by-exception: publish at least this often (e.g. 30s)"
    )

    @field_validator("deadband", mode="before")
    @classmethod
    def _deadband(cls, value: object) -> Deadband | None:
        return _parse_deadband(value)

    @model_validator(mode="after")
    def _consistent(self) -> PointConfig:
        kind = self.value_type
        if self.table in BIT_TABLES:
            if kind != "bool":
                raise ValueError(f"{self.table} points are bits: type must be bool (or left out), not {kind}")
            if self.bit is not None:
                raise ValueError(f"`bit` selects a bit of a register; {self.table} points are bits already")
        if self.bit is not None and kind != "bool":
            raise ValueError(f"a point with `bit` is a bool, not {kind}")
        if kind == "string":
            if self.length is None:
                raise ValueError("a string point needs `length` (registers, 2 characters each)")
            if self.scale != 1.0 or self.offset != 0.0:
                raise ValueError("scale and offset do not apply to strings")
        elif self.length is not None:
            raise ValueError("`length` applies to strings only")
        if kind == "bool" and (self.scale != 1.0 or self.offset != 0.0):
            raise ValueError("scale and offset do not apply to bool points")
        if self.table in REGISTER_TABLES and self.address + self.register_count > 65536:
            raise ValueError(f"address {self.address} + {self.register_count} registers runs past 65535")
        return self

    @property
    def value_type(self) -> str:
        if self.type is not None:
            return self.type
        return "bool" if self.table in BIT_TABLES or self.bit is not None else "uint16"

    @property
    def register_count(self) -> int:
        """Registers (or bits, for coil/discrete points) the point occupies."""
        if self.table in BIT_TABLES:
            return 1
        if self.value_type == "string":
            return self.length or 1
        return TYPE_REGISTERS[self.value_type]

    @property
    def report_by_exception(self) -> bool:
        return self.deadband is not None or self.max_age is not None


class ModbusConfig(DeviceConfig):
    """A PLC or other Modbus device: over TCP, or one unit on an RS-485 (RTU) bus."""

    driver: Literal["modbus"] = "modbus"
    transport: Literal["tcp", "rtu"] = Field("tcp", description="tcp (Modbus TCP) or rtu (serial RS-485/RS-232)")
    host: str | None = Field(None, description="tcp: host name or IP address of the device")
    port: int | str = Field(
        502, description="tcp: TCP port (default 502); rtu: serial device such as /dev/ttyUSB0 (required)"
    )
    unit: int = Field(1, ge=0, le=255, description="unit (slave) id; 1-247 on RTU buses")
    poll_interval: Duration = Field(1.0, gt=0, description="time between the starts of two polls, e.g. 100ms")
    timeout: Duration = Field(0.5, gt=0, le=30, description="how long to wait for an answer, e.g. 500ms")
    order: Order = Field("ABCD", description="default byte and word order of 32/64-bit points")
    max_fill: int = Field(
        8,
        ge=0,
        le=124,
        description="registers of a gap read (and discarded) to join two points into one request; 0 never fills",
    )
    max_fill_bits: int = Field(64, ge=0, le=1999, description="the same for coils and discrete inputs (bits)")
    max_registers: int = Field(125, ge=1, le=125, description="registers per request (some devices accept fewer)")
    max_bits: int = Field(2000, ge=1, le=2000, description="coils or discrete inputs per request")
    # RTU line settings, named as pyserial names them. Modbus over serial line defaults: 19200 8E1.
    baudrate: int = Field(19200, gt=0, le=4_000_000, description="rtu: bits per second")
    bytesize: Literal[7, 8] = Field(8, description="rtu: data bits")
    parity: Literal["N", "E", "O"] = Field("E", description="rtu: N, E or O (Modbus default: E)")
    stopbits: Literal[1, 2] = Field(1, description="rtu: 1 or 2")
    points: list[PointConfig] = Field(min_length=1, description="the values to read")

    @field_validator("points")
    @classmethod
    def _unique_names(cls, points: list[PointConfig]) -> list[PointConfig]:
        seen: set[str] = set()
        for point in points:
            if point.name in seen:
                raise ValueError(f"point name {point.name!r} is used twice")
            seen.add(point.name)
        return points

    @model_validator(mode="after")
    def _transport(self) -> ModbusConfig:
        for point in self.points:
            limit = self.max_bits if point.table in BIT_TABLES else self.max_registers
            if point.register_count > limit:
                raise ValueError(
                    f"point {point.name!r} spans {point.register_count} registers, more than max_registers {limit}"
                )
        if self.transport == "tcp":
            if not self.host:
                raise ValueError("a tcp device needs `host`")
            if not isinstance(self.port, int) or not 1 <= self.port <= 65535:
                raise ValueError(f"tcp: port must be a TCP port number 1-65535, not {self.port!r}")
        else:
            if self.host is not None:
                raise ValueError("an rtu device has no `host`: it names its serial device in `port`")
            if not isinstance(self.port, str) or not self.port.startswith("/"):
                raise ValueError(f"rtu: port must be a serial device path such as /dev/ttyUSB0, not {self.port!r}")
            if not 1 <= self.unit <= 247:
                raise ValueError(f"rtu: unit must be 1-247 (0 is broadcast), not {self.unit}")
        return self

    def check_command(self, spec: CommandSpec) -> str | None:
        """`write: <point>` of a holding register or coil, with allowed values that fit the point."""
        if spec.write is None:
            return f"modbus devices have no action {spec.action!r}: use `write: <point>`"
        point = next((p for p in self.points if p.name == spec.write), None)
        if point is None:
            return f"no point named {spec.write!r} (points: {', '.join(p.name for p in self.points)})"
        if point.table not in WRITABLE_TABLES:
            return f"point {point.name!r} is in the read-only {point.table} table"
        kind = point.value_type
        if kind in ("bool", "string"):
            if spec.min is not None or spec.max is not None:
                return f"point {point.name!r} is a {kind}: give the allowed `values`, not min/max"
            if kind == "bool":  # true/false, or 0/1 as PLC engineers write coils
                wrong = [v for v in spec.values or [] if not (isinstance(v, bool) or v in (0, 1))]
            else:
                wrong = [v for v in spec.values or [] if not isinstance(v, str)]
            if wrong:
                return f"point {point.name!r} is a {kind}; {wrong[0]!r} is not"
            return None
        candidates = [*(spec.values or []), *(v for v in (spec.min, spec.max) if v is not None)]
        for value in candidates:
            if isinstance(value, bool) or not isinstance(value, int | float):
                return f"point {point.name!r} is a number; {value!r} is not"
            try:
                raw = unscale_value(value, kind, point.scale, point.offset)
                encode_registers(raw, kind)
            except ValueError as err:
                return f"point {point.name!r}: {value!r} cannot be written ({err})"
        return None

    def line_settings(self) -> str:
        return f"{self.baudrate}:{self.bytesize}{self.parity}{self.stopbits:g}"

    def claims(self) -> dict[str, str | None]:
        if self.transport == "rtu":
            return {f"serial:{self.port}": f"modbus-rtu:{self.line_settings()}"}
        return {}
