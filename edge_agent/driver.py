"""The driver API: what a device driver implements and what the runtime hands it.

Threading model (see supervisor.py): each device runs its driver's blocking `run()` in a thread of
its own. Drivers do blocking I/O with short timeouts and check `ctx.stopping`; they hand readings to
`ctx.emit()`, which only appends to the outbox's in-memory staging queue.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, field_validator

from edge_agent.reading import Quality, Reading
from edge_agent.topics import check_segment

__all__ = [
    "CommandError",
    "DeviceConfig",
    "DeviceError",
    "DeviceState",
    "Driver",
    "DriverContext",
]

DeviceState = Literal["starting", "connected", "error", "stopped"]


class DeviceError(Exception):
    """A device failure worth retrying: unreachable, timed out, unplugged, garbled beyond repair."""


class CommandError(Exception):
    """A command the driver refuses or cannot carry out; the message is sent back to the hub."""


class DeviceConfig(BaseModel):
    """Base of every driver's config model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    driver: str

    @field_validator("id")
    @classmethod
    def _id_is_topic_segment(cls, value: str) -> str:
        return check_segment(value, "device id")

    def claims(self) -> dict[str, str | None]:
        """Resources this device holds exclusively, e.g. {"serial:/dev/ttyUSB0": None}.

        A non-None value is a sharing key: devices whose claims on one resource carry the same key
        may share it (Modbus RTU units on one RS-485 bus with the same line settings).
        """
        return {}


class DriverContext:
    """What the runtime gives a running driver: emit readings, report state, wait, stop."""

    def __init__(
        self,
        device_id: str,
        *,
        emit_many: Callable[[list[Reading]], None],
        stopping: threading.Event | None = None,
        logger: logging.Logger | None = None,
        on_state: Callable[[str, DeviceState, str | None], None] | None = None,
    ) -> None:
        self.device_id = device_id
        self.stopping = stopping if stopping is not None else threading.Event()
        self.logger = logger or logging.getLogger(f"edge_agent.device.{device_id}")
        self._emit_many = emit_many
        self._on_state = on_state
        self.state: DeviceState = "starting"
        self.last_error: str | None = None
        self.state_since = time.time()
        self.counters: dict[str, int] = {}
        self.last_reading_ts: float | None = None

    # -- readings ---------------------------------------------------------------------------
    def emit(self, reading: Reading) -> None:
        self.emit_many([reading])

    def emit_many(self, readings: list[Reading]) -> None:
        if readings:
            self.last_reading_ts = readings[-1].ts
            self.counters["readings"] = self.counters.get("readings", 0) + len(readings)
            self._emit_many(readings)

    def reading(
        self,
        kind: str,
        value: Any,
        *,
        ts: float | None = None,
        quality: Quality = "good",
        unit: str | None = None,
        **extra: Any,
    ) -> Reading:
        """Build a reading of this device (not yet emitted)."""
        return Reading(self.device_id, kind, value, ts=ts, quality=quality, unit=unit, extra=extra or None)

    # -- state ------------------------------------------------------------------------------
    def connected(self) -> None:
        """The device answers: called by the driver once its connection works (again)."""
        self._set_state("connected", None)

    def failed(self, error: str) -> None:
        """The device is unavailable; the supervisor calls this when `run()` raises."""
        self._set_state("error", error)

    def stopped(self) -> None:
        self._set_state("stopped", None)

    def count(self, name: str, n: int = 1) -> None:
        """A driver counter for metrics (frames_dropped, timeouts, ...)."""
        self.counters[name] = self.counters.get(name, 0) + n

    def wait(self, seconds: float) -> bool:
        """Sleep unless stopping; True when the driver should stop."""
        return self.stopping.wait(seconds) if seconds > 0 else self.stopping.is_set()

    def _set_state(self, state: DeviceState, error: str | None) -> None:
        if state == self.state and error == self.last_error:
            return
        previous = self.state
        self.state = state
        self.last_error = error
        self.state_since = time.time()
        if state == "error" and previous != "error":
            self.logger.warning("Device %r unavailable: %s", self.device_id, error)
        elif state == "connected" and previous == "error":
            self.logger.warning("Device %r available again", self.device_id)
        elif state == "connected":
            self.logger.info("Device %r connected", self.device_id)
        if self._on_state is not None:
            self._on_state(self.device_id, state, error)


class Driver:
    """Base class of device drivers, registered under the entry-point group `edge_agent.drivers`.

    `__init__` validates and touches no I/O. `run()` opens the device, loops until
    `ctx.stopping` is set and returns; it raises DeviceError (or anything else) when the device
    fails, and the supervisor calls `close()` and starts a fresh instance after a backoff.
    `close()` must be safe after a failed or partial start.
    """

    config_model: ClassVar[type[DeviceConfig]] = DeviceConfig

    def __init__(self, config: DeviceConfig, ctx: DriverContext) -> None:
        self.config = config
        self.ctx = ctx

    def run(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release the device. Default: nothing to release."""

    def execute(self, action: str, params: Mapping[str, Any]) -> Any:
        """Carry out a command from the hub (already allowed by the config); thread-safe.

        Actions by family: `write` (params: point, value) for PLCs, `zero`/`tare` for scales,
        `start_inventory`/`stop_inventory` for RFID readers.
        """
        raise CommandError(f"driver {self.config.driver!r} has no action {action!r}")
