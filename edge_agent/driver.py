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

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edge_agent.reading import Quality, Reading
from edge_agent.topics import check_segment
from edge_agent.units import Duration

__all__ = [
    "CommandError",
    "CommandSpec",
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


class CommandSpec(BaseModel):
    """One command the hub may send to a device: nothing else is allowed (deny by default).

    `write: <point>` writes a value to a point (PLCs) and needs `values` or `min`/`max`;
    `action: <name>` runs a driver action without a value (`tare`, `zero`, `start_inventory`, ...).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="topic segment: {topic_prefix}/cmd/{device}/{name}")
    write: str | None = Field(None, description="the point this command writes")
    action: str | None = Field(None, description="a driver action, e.g. tare, zero, start_inventory")
    values: list[bool | int | float | str] | None = Field(None, description="the only values allowed")
    min: float | None = Field(None, description="lowest value allowed")
    max: float | None = Field(None, description="highest value allowed")
    min_interval: Duration | None = Field(None, description="refuse a command sooner than this after the last")

    @field_validator("name")
    @classmethod
    def _name_is_topic_segment(cls, value: str) -> str:
        return check_segment(value, "command name")

    @model_validator(mode="after")
    def _one_kind(self) -> CommandSpec:
        if (self.write is None) == (self.action is None):
            raise ValueError("a command needs exactly one of `write: <point>` or `action: <name>`")
        if self.write is not None and self.values is None and self.min is None and self.max is None:
            raise ValueError(f"command {self.name!r} writes {self.write!r}: give the allowed `values` or `min`/`max`")
        if self.action is not None and (self.values is not None or self.min is not None or self.max is not None):
            raise ValueError(f"command {self.name!r} runs action {self.action!r}, which takes no value")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"command {self.name!r}: min {self.min} is above max {self.max}")
        return self


class DeviceConfig(BaseModel):
    """Base of every driver's config model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    driver: str
    commands: list[CommandSpec] = Field(
        default_factory=list, description="commands the hub may send to this device (none when absent)"
    )

    @field_validator("id")
    @classmethod
    def _id_is_topic_segment(cls, value: str) -> str:
        return check_segment(value, "device id")

    @model_validator(mode="after")
    def _commands_fit_the_device(self) -> DeviceConfig:
        names = [c.name for c in self.commands]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"command names must be unique: {', '.join(duplicates)}")
        for spec in self.commands:
            problem = self.check_command(spec)
            if problem:
                raise ValueError(f"command {spec.name!r}: {problem}")
        return self

    def check_command(self, spec: CommandSpec) -> str | None:
        """Driver-specific check of a command (e.g. that `write` names a writable point).

        The base refuses every command: a driver that supports commands overrides this.
        """
        return f"driver {self.driver!r} accepts no commands"

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
        self.gauges: dict[str, float] = {}
        # What a driver learnt about its device and must keep across its own restarts (a read plan,
        # the hub's wish to keep inventory stopped, ...). A reload that changes the device's config
        # starts it with a new, empty store.
        self.store: dict[str, Any] = {}
        self._count_lock = threading.Lock()
        self.last_reading_ts: float | None = None

    # -- readings ---------------------------------------------------------------------------
    def emit(self, reading: Reading) -> None:
        self.emit_many([reading])

    def emit_many(self, readings: list[Reading]) -> None:
        """Thread-safe: a driver's worker threads may emit too."""
        if readings:
            self.last_reading_ts = readings[-1].ts
            self.count("readings", len(readings))
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
        """A driver counter for metrics (frames_dropped, timeouts, ...); thread-safe."""
        with self._count_lock:
            self.counters[name] = self.counters.get(name, 0) + n

    def set_gauge(self, name: str, value: float) -> None:
        """A driver gauge for metrics (poll_duration_seconds, queue depth, ...)."""
        self.gauges[name] = value

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

    def interrupt(self) -> None:
        """Called from another thread when the device must stop now: unblock `run()` (e.g. close a
        socket a request is waiting on). `run()` still returns and `close()` is still called."""

    def execute(self, action: str, params: Mapping[str, Any]) -> Any:
        """Carry out a command from the hub (already allowed by the config); thread-safe.

        Actions by family: `write` (params: point, value) for PLCs, `zero`/`tare` for scales,
        `start_inventory`/`stop_inventory` for RFID readers.
        """
        raise CommandError(f"driver {self.config.driver!r} has no action {action!r}")
