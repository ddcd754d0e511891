"""Modbus TCP and RTU driver: register maps, coalesced reads, report-by-exception, writes."""

from drivers.modbus.config import ModbusConfig, PointConfig
from drivers.modbus.driver import ModbusDriver

__all__ = ["ModbusConfig", "ModbusDriver", "PointConfig"]
