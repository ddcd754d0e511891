"""Starts each device in a thread of its own, isolates its failures and restarts it with backoff.

The model is threads, not an event loop: pyserial, pymodbus' sync client and OpenCV all block, so
each driver's `run()` blocks in its own thread with short I/O timeouts. The only thing a driver
shares with the rest is `ctx.emit()`, a non-blocking append to the outbox's staging queue (it waits
only when the staging queue is full). This is the one place a broad `except Exception` belongs.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

from edge_agent.driver import DeviceConfig, DeviceError, DeviceState, Driver, DriverContext
from edge_agent.reading import Reading
from edge_agent.registry import load_driver

__all__ = ["DeviceRunner", "Supervisor"]

log = logging.getLogger("edge_agent.supervisor")


class DeviceRunner:
    """One device: its thread, its context and its current driver instance."""

    def __init__(
        self,
        config: DeviceConfig,
        *,
        emit_many: Callable[[list[Reading]], None],
        on_state: Callable[[str, DeviceState, str | None], None] | None,
        backoff_min: float,
        backoff_max: float,
    ) -> None:
        self.config = config
        self.stopping = threading.Event()
        self.ctx = DriverContext(config.id, emit_many=emit_many, stopping=self.stopping, on_state=on_state)
        self.driver: Driver | None = None
        self.restarts = 0
        self._backoff = (backoff_min, backoff_max)
        self._thread = threading.Thread(target=self._main, name=f"device-{config.id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def request_stop(self) -> None:
        self.stopping.set()

    def join(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _main(self) -> None:
        ctx, config = self.ctx, self.config
        cls = load_driver(config.driver)
        delay_min, delay_max = self._backoff
        delay = delay_min
        while not self.stopping.is_set():
            driver: Driver | None = None
            try:
                driver = cls(config, ctx)
                self.driver = driver
                driver.run()
                if not self.stopping.is_set():
                    raise DeviceError("driver stopped on its own")
            except DeviceError as err:
                if self.stopping.is_set():
                    break  # interrupted by the stop itself, not a device failure
                ctx.failed(str(err))
            except Exception as err:  # the device boundary: nothing a driver does stops the agent
                if self.stopping.is_set():
                    break
                if ctx.state != "error":
                    log.exception("Device %r: driver %r failed", config.id, config.driver)
                ctx.failed(f"{type(err).__name__}: {err}")
            finally:
                self.driver = None
                if driver is not None:
                    try:
                        driver.close()
                    except Exception:
                        log.exception("Device %r: close() failed", config.id)
            if self.stopping.is_set():
                break
            if ctx.state == "connected":
                delay = delay_min
            self.restarts += 1
            wait = random.uniform(delay / 2, delay)
            log.debug("Device %r restarts in %.1fs", config.id, wait)
            if ctx.wait(wait):
                break
            delay = min(delay * 2, delay_max)
        ctx.stopped()


class Supervisor:
    def __init__(
        self,
        devices: list[DeviceConfig],
        *,
        emit_many: Callable[[list[Reading]], None],
        on_state: Callable[[str, DeviceState, str | None], None] | None = None,
        backoff_min: float = 1.0,
        backoff_max: float = 30.0,
    ) -> None:
        self.emit_many = emit_many
        self.on_state = on_state
        self.backoff = (backoff_min, backoff_max)
        self.runners: dict[str, DeviceRunner] = {}
        for config in devices:
            self.add(config)

    def add(self, config: DeviceConfig) -> DeviceRunner:
        runner = DeviceRunner(
            config,
            emit_many=self.emit_many,
            on_state=self.on_state,
            backoff_min=self.backoff[0],
            backoff_max=self.backoff[1],
        )
        self.runners[config.id] = runner
        return runner

    def start(self) -> None:
        for runner in self.runners.values():
            runner.start()

    def stop(self, timeout: float = 1.5, ids: list[str] | None = None) -> None:
        """Ask the devices to stop and wait for them, all in parallel, within `timeout`."""
        runners = [self.runners[i] for i in ids] if ids is not None else list(self.runners.values())
        for runner in runners:
            runner.request_stop()
        for runner in runners:
            driver = runner.driver
            if driver is not None:
                try:
                    driver.interrupt()
                except Exception:
                    log.exception("Device %r: interrupt() failed", runner.config.id)
        deadline = time.monotonic() + timeout
        for runner in runners:
            if not runner.join(max(0.0, deadline - time.monotonic())):
                log.warning("Device %r did not stop within %.1fs", runner.config.id, timeout)
        for runner in runners:
            if ids is not None:
                self.runners.pop(runner.config.id, None)
