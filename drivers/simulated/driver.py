"""Counter readings at `rate` per second; able to sustain 200 k/s in bursts.

The value counts up by one per reading from 0 on each start, so a consumer can check order and
completeness per run. `fail_after` makes the device fail (for tests of isolation and restart).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from edge_agent.driver import CommandError, CommandSpec, DeviceConfig, DeviceError, Driver, DriverContext
from edge_agent.reading import Reading
from edge_agent.units import Duration


class SimulatedConfig(DeviceConfig):
    driver: Literal["simulated"] = "simulated"
    rate: float = Field(10.0, gt=0, le=1_000_000, description="readings per second")
    kind: str = Field("counter", description="the readings' kind")
    unit: str | None = None
    tick: Duration = Field(0.01, gt=0, description="how often readings are generated (in groups)")
    max_readings: int | None = Field(None, ge=0, description="stop producing after this many (per start)")
    fail_after: int | None = Field(None, ge=0, description="raise a device error after this many readings")

    def check_command(self, spec: CommandSpec) -> str | None:
        if spec.action != "reset":
            return "the simulated driver has one action: reset (restart the counter at 0)"
        return None


class SimulatedDriver(Driver):
    config_model = SimulatedConfig
    config: SimulatedConfig

    def __init__(self, config: DeviceConfig, ctx: DriverContext) -> None:
        super().__init__(config, ctx)
        self._reset = threading.Event()

    def execute(self, action: str, params: Mapping[str, Any]) -> Any:
        if action != "reset":
            raise CommandError(f"unknown action {action!r}")
        self._reset.set()
        return {"reset": True}

    def run(self) -> None:
        cfg, ctx = self.config, self.ctx
        # Readings come in groups once per tick, as from a polled device; a slow rate ticks per reading.
        tick = max(cfg.tick, 1.0 / cfg.rate) if cfg.rate * cfg.tick < 1 else cfg.tick
        device, kind, unit = ctx.device_id, cfg.kind, cfg.unit
        limit = cfg.max_readings
        emitted = 0
        start = time.monotonic()
        ctx.connected()
        while not ctx.stopping.is_set():
            if self._reset.is_set():
                self._reset.clear()
                start, emitted = time.monotonic(), 0
            due = int((time.monotonic() - start) * cfg.rate) - emitted
            if limit is not None:
                due = min(due, limit - emitted)
            if cfg.fail_after is not None and emitted + due >= cfg.fail_after:
                due = cfg.fail_after - emitted
            if due > 0:
                now = time.time()
                readings = [Reading(device, kind, n, ts=now, unit=unit) for n in range(emitted, emitted + due)]
                ctx.emit_many(readings)
                emitted += due
            if cfg.fail_after is not None and emitted >= cfg.fail_after:
                raise DeviceError(f"simulated failure after {emitted} readings")
            if ctx.wait(tick):
                break
