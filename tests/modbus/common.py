"""Helpers for the Modbus tests: run a real driver instance in a thread and collect its readings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from drivers.modbus import ModbusConfig, ModbusDriver
from edge_agent.reading import Reading
from tests.helpers import DriverThread


def device(port: int | str, points: list[dict[str, Any]], **options: Any) -> ModbusConfig:
    raw: dict[str, Any] = {"id": options.pop("id", "plc-1"), "driver": "modbus", "points": points}
    if isinstance(port, int):
        raw.update(transport="tcp", host="127.0.0.1", port=port)
    else:
        raw.update(transport="rtu", port=port, parity="N")
    raw.update(poll_interval="50ms", timeout="300ms")
    raw.update(options)
    return ModbusConfig.model_validate(raw)


class Running(DriverThread):
    """A Modbus driver instance running in a thread (started by `running()`)."""

    def __init__(self, config: ModbusConfig, store: dict[str, Any] | None = None) -> None:
        super().__init__(ModbusDriver, config, store=store, start=False)
        self.driver: ModbusDriver

    def of(self, point: str) -> list[Reading]:
        with self._lock:
            return [r for r in self.readings if r.extra and r.extra.get("point") == point]

    def values(self, point: str) -> list[Any]:
        return [r.value for r in self.of(point)]


@contextmanager
def running(config: ModbusConfig, store: dict[str, Any] | None = None) -> Iterator[Running]:
    r = Running(config, store)
    r.thread.start()
    try:
        yield r
    finally:
        r.stop()
