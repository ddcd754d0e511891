"""UHF RFID readers over serial: Impinj R2000 CMD, MagicRF M100, ThingMagic Mercury (see README.md)."""

from drivers.rfid.config import RfidConfig
from drivers.rfid.driver import RfidDriver

__all__ = ["RfidConfig", "RfidDriver"]
