"""Helpers for the Modbus tests: run a real driver instance in a thread and collect its readings."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from drivers.modbus import ModbusConfig, ModbusDriver
from edge_agent.driver import DriverContext
from edge_agent.reading import Reading


def device(port: int | str, points: list[dict[str, Any]], **options: Any) -> ModbusConfig:
    raw: dict[str, Any] = {"id": options.pop("id", "plc-1"), "driver": "modbus", "points": points}
    if isinstance(port, int):
        raw.update(transport="tcp", host="127.0.0.1", port=port)
    else:
        raw.update(transport="rtu", port=port, parity="N")
    raw.update(poll_interval="50ms", timeout="300ms")
    raw.update(options)
    return ModbusConfig.model_validate(raw)


class Running:
    """A driver instance running in a thread, as the supervisor runs it (without restarts)."""

    def __init__(self, config: ModbusConfig, store: dict[str, Any] | None = None) -> None:
        self.readings: list[Reading] = []
        self._lock = threading.Lock()
        self.ctx = DriverContext(config.id, emit_many=self._emit)
        if store is not None:
            self.ctx.store = store  # what the supervisor's context keeps across driver restarts
        self.driver = ModbusDriver(config, self.ctx)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, daemon=True)

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

    def of(self, point: str) -> list[Reading]:
        with self._lock:
            return [r for r in self.readings if r.extra and r.extra.get("point") == point]

    def values(self, point: str) -> list[Any]:
        return [r.value for r in self.of(point)]

    def stop(self) -> None:
        self.ctx.stopping.set()
        self.thread.join(5)
        assert not self.thread.is_alive(), "driver did not stop"


@contextmanager
def running(config: ModbusConfig, store: dict[str, Any] | None = None) -> Iterator[Running]:
    r = Running(config, store)
    r.thread.start()
    try:
        yield r
    finally:
        r.stop()
