"""Running an RFID driver in a thread against a simulator, collecting its readings."""

from __future__ import annotations

from typing import Any

from drivers.rfid import RfidConfig, RfidDriver
from drivers.rfid.simulator import SimTag
from edge_agent.reading import Reading
from tests.helpers import DriverThread

SGTIN = bytes.fromhex("3074257BF7194E4000001A85")
TID = bytes.fromhex("E200301666130121155074EF")
SSCC = bytes.fromhex("3114257BF4499602D2000000")


def tags(n: int, *, antenna: int = 1, rssi: float = -60.0) -> list[SimTag]:
    """`n` distinct SGTIN-96 tags (serials 1..n)."""
    base = int.from_bytes(SGTIN, "big") & ~((1 << 38) - 1)
    return [SimTag((base | i).to_bytes(12, "big"), rssi, antenna) for i in range(1, n + 1)]


class Running(DriverThread):
    """An RFID driver's run() in a thread against a simulator's port."""

    def __init__(self, port: str, **options: Any) -> None:
        config = RfidConfig.model_validate({"id": "rfid-test", "driver": "rfid", "port": port, **options})
        super().__init__(RfidDriver, config)
        self.config: RfidConfig
        self.driver: RfidDriver

    def events(self, event: str | None = None) -> list[Reading]:
        with self._lock:
            return [r for r in self.readings if event is None or (r.extra or {}).get("event") == event]

    def counter(self, name: str) -> int:
        return self.ctx.counters.get(name, 0)
