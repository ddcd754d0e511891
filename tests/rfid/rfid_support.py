"""Running an RFID driver in a thread against a simulator, collecting its readings."""

from __future__ import annotations

import threading
from typing import Any

from drivers.rfid import RfidConfig, RfidDriver
from drivers.rfid.simulator import SimTag
from edge_agent.driver import DriverContext
from edge_agent.reading import Reading

SGTIN = bytes.fromhex("3074257BF7194E4000001A85")
TID = bytes.fromhex("E200301666130121155074EF")
SSCC = bytes.fromhex("3114257BF4499602D2000000")


def tags(n: int, *, antenna: int = 1, rssi: float = -60.0) -> list[SimTag]:
    """`n` distinct SGTIN-96 tags (serials 1..n)."""
    base = int.from_bytes(SGTIN, "big") & ~((1 << 38) - 1)
    return [SimTag((base | i).to_bytes(12, "big"), rssi, antenna) for i in range(1, n + 1)]


class Running:
    """A driver's run() in a thread; readings collected; `error` holds what run() raised."""

    def __init__(self, port: str, **options: Any) -> None:
        self.readings: list[Reading] = []
        self._lock = threading.Lock()
        self.ctx = DriverContext("rfid-test", emit_many=self._emit)
        self.config = RfidConfig.model_validate({"id": "rfid-test", "driver": "rfid", "port": port, **options})
        self.driver = RfidDriver(self.config, self.ctx)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, daemon=True)
        self.thread.start()

    def _emit(self, readings: list[Reading]) -> None:
        with self._lock:
            self.readings.extend(readings)

    def _main(self) -> None:
        try:
            self.driver.run()
        except BaseException as err:
            self.error = err
        finally:
            self.driver.close()

    def events(self, event: str | None = None) -> list[Reading]:
        with self._lock:
            return [r for r in self.readings if event is None or (r.extra or {}).get("event") == event]

    def counter(self, name: str) -> int:
        return self.ctx.counters.get(name, 0)

    def stop(self, timeout: float = 3.0) -> float:
        """Stop and return how long the driver took to notice."""
        import time

        t0 = time.monotonic()
        self.ctx.stopping.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "driver did not stop"
        return time.monotonic() - t0
