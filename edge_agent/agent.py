"""The running agent: config → supervisor (drivers) → outbox → forwarder, and a clean shutdown."""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType
from typing import Any

from edge_agent import __version__
from edge_agent.config import LoadedConfig
from edge_agent.driver import DeviceState
from edge_agent.forwarder import Forwarder
from edge_agent.outbox import Outbox
from edge_agent.reading import format_ts
from edge_agent.supervisor import Supervisor

__all__ = ["Agent"]

log = logging.getLogger("edge_agent")


class Agent:
    def __init__(self, loaded: LoadedConfig) -> None:
        self.loaded = loaded
        cfg = loaded.agent
        self.started_at = time.time()
        self.outbox = Outbox(cfg.buffer, gateway=cfg.gateway.id)
        self.forwarder = Forwarder(
            cfg.mqtt,
            gateway=cfg.gateway.id,
            topic_prefix=cfg.topic_prefix,
            outbox=self.outbox,
            online_payload=self._online_payload,
        )
        self.supervisor = Supervisor(loaded.devices, emit_many=self.outbox.put_many, on_state=self._device_state)
        self._stop = threading.Event()

    def _online_payload(self) -> dict[str, Any]:
        cfg = self.loaded.agent
        return {
            "state": "online",
            "gateway": cfg.gateway.id,
            "site": cfg.gateway.site,
            "version": __version__,
            "config_hash": self.loaded.config_hash,
            "started_at": format_ts(self.started_at),
            "devices": sorted(self.supervisor.runners),
        }

    def _device_state(self, device: str, state: DeviceState, error: str | None) -> None:
        payload: dict[str, Any] = {"device": device, "state": state, "since": format_ts(time.time())}
        if error is not None:
            payload["error"] = error
        self.forwarder.device_status(device, payload)

    def start(self) -> None:
        self.outbox.start()
        self.forwarder.start()
        self.supervisor.start()
        log.info(
            "edge-agent %s started: gateway %s, %d devices, outbox %s, broker %s:%d",
            __version__,
            self.loaded.agent.gateway.id,
            len(self.supervisor.runners),
            self.loaded.agent.buffer.path,
            self.loaded.agent.mqtt.host,
            self.loaded.agent.mqtt.port,
        )

    def stop(self) -> None:
        """Within ~2 s: stop devices, commit what they produced, let the broker ack what it can."""
        t0 = time.monotonic()
        self.supervisor.stop(timeout=0.6)
        self.outbox.flush(timeout=0.4)
        self.forwarder.stop(grace=max(0.2, 1.4 - (time.monotonic() - t0)))
        self.outbox.close()
        log.info(
            "edge-agent stopped in %.2fs; %d readings kept in the outbox", time.monotonic() - t0, self.outbox.depth
        )

    def request_stop(self) -> None:
        self._stop.set()

    def run_forever(self) -> None:
        """Foreground daemon: start, wait for SIGTERM/SIGINT, stop cleanly."""

        def on_signal(signum: int, frame: FrameType | None) -> None:
            log.info("Received %s, stopping", signal.Signals(signum).name)
            self._stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.start()
        try:
            while not self._stop.wait(1.0):
                pass
        finally:
            self.stop()
