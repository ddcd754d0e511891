"""Serial line settings and a port wrapper shared by the serial drivers (scale, rfid, modbus rtu).

Errors from pyserial become DeviceError with the port named, so the supervisor backs off and
reopens: a USB adapter that is unplugged and plugged back (also under /dev/serial/by-id/...) is
picked up again by the next open.
"""

from __future__ import annotations

import os
from typing import Literal

import serial
from pydantic import BaseModel, Field, field_validator

from edge_agent import DeviceError

__all__ = ["SerialLineConfig", "SerialLink"]

_PARITY = {
    "N": serial.PARITY_NONE,
    "E": serial.PARITY_EVEN,
    "O": serial.PARITY_ODD,
    "M": serial.PARITY_MARK,
    "S": serial.PARITY_SPACE,
}
_STOPBITS = {1.0: serial.STOPBITS_ONE, 1.5: serial.STOPBITS_ONE_POINT_FIVE, 2.0: serial.STOPBITS_TWO}


class SerialLineConfig(BaseModel):
    """Mixin for device configs: the line settings, named as pyserial names them."""

    port: str = Field(description="serial device, e.g. /dev/ttyUSB0 or /dev/serial/by-id/usb-...")
    baudrate: int = Field(9600, gt=0, le=4_000_000)
    bytesize: Literal[5, 6, 7, 8] = 8
    parity: Literal["N", "E", "O", "M", "S"] = "N"
    stopbits: float = Field(1, description="1, 1.5 or 2")

    @field_validator("stopbits")
    @classmethod
    def _stopbits(cls, value: float) -> float:
        if value not in _STOPBITS:
            raise ValueError("stopbits must be 1, 1.5 or 2")
        return value

    def line_settings(self) -> str:
        return f"{self.baudrate}:{self.bytesize}{self.parity}{self.stopbits:g}"


class SerialLink:
    """An open serial port with short timeouts; every failure is a DeviceError naming the port."""

    def __init__(self, line: SerialLineConfig, *, timeout: float = 0.05, exclusive: bool = True) -> None:
        self.line = line
        self.timeout = timeout
        self.exclusive = exclusive
        self._port: serial.Serial | None = None

    @property
    def name(self) -> str:
        return self.line.port

    def open(self) -> None:
        line = self.line
        if not os.path.exists(line.port):
            raise DeviceError(f"serial port {line.port} does not exist (unplugged, or wrong path?)")
        try:
            self._port = serial.Serial(
                port=line.port,
                baudrate=line.baudrate,
                bytesize=line.bytesize,
                parity=_PARITY[line.parity],
                stopbits=_STOPBITS[float(line.stopbits)],
                timeout=self.timeout,
                write_timeout=1.0,
                exclusive=self.exclusive,
            )
        except (serial.SerialException, OSError, ValueError) as err:
            raise DeviceError(f"cannot open serial port {line.port}: {err}") from err

    def read(self, size: int = 4096) -> bytes:
        """What the port has (waits at most `timeout` for the first byte)."""
        port = self._require()
        try:
            waiting = port.in_waiting
            data: bytes = port.read(max(1, min(size, waiting)) if waiting else 1)
            if data and port.in_waiting:
                data += port.read(min(size - len(data), port.in_waiting))
        except (serial.SerialException, OSError) as err:
            raise DeviceError(f"serial port {self.line.port} lost: {err}") from err
        return data

    def write(self, data: bytes) -> None:
        port = self._require()
        try:
            port.write(data)
        except (serial.SerialException, OSError) as err:
            raise DeviceError(f"serial port {self.line.port} lost while writing: {err}") from err

    def reset_input(self) -> None:
        port = self._require()
        try:
            port.reset_input_buffer()
        except (serial.SerialException, OSError) as err:
            raise DeviceError(f"serial port {self.line.port} lost: {err}") from err

    def close(self) -> None:
        if self._port is not None:
            try:
                self._port.close()
            except (serial.SerialException, OSError):
                pass
            self._port = None

    def _require(self) -> serial.Serial:
        if self._port is None:
            raise DeviceError(f"serial port {self.line.port} is not open")
        return self._port
