"""Shared test helpers: waiting on conditions, a collecting MQTT subscriber, configs for an agent."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge_agent.config import LoadedConfig, parse_config
from edge_agent.driver import DeviceConfig, Driver, DriverContext
from edge_agent.reading import Reading


def wait_until(condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.01, what: str = "") -> Any:
    """Poll `condition` until truthy; fail the test with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(interval)


class Subscriber:
    """A real MQTT client that records every message on `topic` (QoS 1)."""

    def __init__(self, port: int, topic: str = "#", *, client_id: str | None = None, persistent: bool = False) -> None:
        """`persistent`: a session the broker keeps (and queues for) while this client is away."""
        self.messages: list[tuple[str, bytes, bool]] = []
        self.readings: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id or f"test-sub-{id(self)}", protocol=mqtt.MQTTv5
        )
        self.client.reconnect_delay_set(0.05, 0.2)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        props = None
        if persistent:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", port, clean_start=not persistent, properties=props)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise AssertionError("subscriber did not get SUBACK")

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, msg.payload, bool(msg.retain)))
            if "/readings/" in msg.topic:
                self.readings.extend(orjson.loads(msg.payload)["readings"])

    def gaps(self) -> list[int]:
        """Seqs missing between the lowest and highest received (duplicates are fine)."""
        seen = set(self.seqs())
        return [s for s in range(min(seen), max(seen) + 1) if s not in seen] if seen else []

    def seqs(self) -> list[int]:
        with self._lock:
            return [r["seq"] for r in self.readings]

    def on_topic(self, suffix: str) -> list[dict[str, Any]]:
        with self._lock:
            return [orjson.loads(p) for t, p, _ in self.messages if t.endswith(suffix)]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class DriverThread:
    """A driver's run() in a thread, as the supervisor runs it (without restarts), its readings
    collected; `error` holds what run() raised. `store` stands for the supervisor's context store,
    which outlives driver instances."""

    def __init__(
        self, driver_cls: type[Driver], config: DeviceConfig, *, store: dict[str, Any] | None = None, start: bool = True
    ) -> None:
        self.readings: list[Reading] = []
        self._lock = threading.Lock()
        self.ctx = DriverContext(config.id, emit_many=self._emit)
        if store is not None:
            self.ctx.store = store
        self.config = config
        self.driver = driver_cls(config, self.ctx)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, daemon=True)
        if start:
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

    def stop(self, timeout: float = 5.0) -> float:
        """Stop; return how long the driver took to notice."""
        t0 = time.monotonic()
        self.ctx.stopping.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "driver did not stop"
        return time.monotonic() - t0


def agent_yaml(tmp_path: Path, port: int, devices: list[dict[str, Any]], **sections: Any) -> str:
    config: dict[str, Any] = {
        "gateway": {"id": "gw-test-01", "site": "test-site"},
        "mqtt": {"host": "127.0.0.1", "port": port, "reconnect_min": "100ms", "reconnect_max": "1s"},
        "buffer": {"path": str(tmp_path / "buffer.db"), "max_size": "64MB", "synchronous": "normal"},
        "supervisor": {"restart_min": "100ms", "restart_max": "1s"},
        "devices": devices,
    }
    for key, value in sections.items():
        config[key] = {**config.get(key, {}), **value}
    return yaml.safe_dump(config, sort_keys=False)


def agent_config(tmp_path: Path, port: int, devices: list[dict[str, Any]], **sections: Any) -> LoadedConfig:
    return parse_config(agent_yaml(tmp_path, port, devices, **sections), str(tmp_path / "config.yaml"))
