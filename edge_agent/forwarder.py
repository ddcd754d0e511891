"""MQTT forwarder: outbox rows → batched QoS 1 messages → PUBACK → rows deleted.

The outbox is the only durable queue. paho gets a bounded window of messages at a time; paho's own
network thread (loop_start) does the socket work and, after a reconnect, resends what was in
flight. A restart resends every row still in the outbox: delivery is at least once and consumers
drop duplicates by reading id.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.config import MqttConfig
from edge_agent.outbox import Chunk, Outbox

__all__ = ["Forwarder", "ForwarderStats"]

log = logging.getLogger("edge_agent.forwarder")

FETCH_CHUNKS_PER_MESSAGE = 8


@dataclass
class ForwarderStats:
    messages: int = 0  # readings messages acknowledged
    readings: int = 0  # readings acknowledged
    reconnects: int = 0
    refused: int = 0  # messages the broker answered with a failure reason code
    connected_since: float | None = None
    per_device: dict[str, int] = field(default_factory=dict)  # readings acknowledged


@dataclass(frozen=True, slots=True)
class _InFlight:
    device: str
    chunk_ids: tuple[int, ...]
    readings: int


class _Client(mqtt.Client):
    """paho's client, with the cause of a failed connect kept and jittered reconnect backoff."""

    last_connect_error: OSError | None = None
    backoff_min = 0.5
    backoff_max = 30.0
    _attempts = 0

    def reconnect(self) -> MQTTErrorCode:
        try:
            rc = super().reconnect()
        except OSError as err:
            self.last_connect_error = err
            raise
        return rc

    def _reconnect_wait(self) -> None:
        # Exponential backoff with full jitter, so a fleet of gateways does not reconnect in step.
        delay = min(self.backoff_max, self.backoff_min * (2 ** min(self._attempts, 16)))
        self._attempts += 1
        deadline = time.monotonic() + random.uniform(delay / 2, delay)
        while not self._thread_terminate and time.monotonic() < deadline:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))


class _LastError(logging.Handler):
    """Keeps paho's last error message (e.g. the TLS alert that ended a connection)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.message: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.message = record.getMessage()


class Forwarder:
    def __init__(
        self,
        config: MqttConfig,
        *,
        gateway: str,
        topic_prefix: str,
        outbox: Outbox,
        online_payload: Callable[[], dict[str, Any]],
    ) -> None:
        self.config = config
        self.gateway = gateway
        self.prefix = topic_prefix
        self.outbox = outbox
        self.stats = ForwarderStats()
        self._online_payload = online_payload
        self._inflight: dict[int, _InFlight | None] = {}
        self._early: dict[int, ReasonCode] = {}
        self._lock = threading.Lock()
        self._room = threading.Event()
        self._connected = threading.Event()
        self._stopping = threading.Event()
        self._pump_thread: threading.Thread | None = None
        self._rewind_to: int | None = None
        self._device_status: dict[str, bytes] = {}
        self._down_since: float | None = time.time()
        self._error_logged = False
        self.heartbeat = time.monotonic()  # the pump's last turn, for the watchdog
        self.on_connected: list[Callable[[mqtt.Client], None]] = []  # e.g. command subscriptions
        self._client = self._make_client()

    # -- setup ------------------------------------------------------------------------------
    def _make_client(self) -> _Client:
        cfg = self.config
        v5 = cfg.protocol == "5"
        client = _Client(
            CallbackAPIVersion.VERSION2,
            client_id=cfg.client_id or f"edge-agent-{self.gateway}",
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else True,
        )
        client.backoff_min, client.backoff_max = cfg.reconnect_min, max(cfg.reconnect_min, cfg.reconnect_max)
        client.max_inflight_messages_set(cfg.max_inflight + 64)  # our window is the real bound
        client.max_queued_messages_set(0)
        if cfg.username is not None:
            client.username_pw_set(cfg.username, cfg.password.get_secret_value() if cfg.password else None)
        if cfg.tls is not None:
            client.tls_set(
                ca_certs=str(cfg.tls.ca) if cfg.tls.ca else None,
                certfile=str(cfg.tls.cert) if cfg.tls.cert else None,
                keyfile=str(cfg.tls.key) if cfg.tls.key else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
            client.tls_insecure_set(cfg.tls.insecure)
        offline = orjson.dumps({"state": "offline", "gateway": self.gateway, "reason": "connection lost"})
        client.will_set(f"{self.prefix}/status", offline, qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_connect_fail = self._on_connect_fail
        # paho's errors go to a logger that only keeps the last one: paho checks the level before
        # formatting, so its per-packet debug messages cost nothing.
        self._paho_errors = _LastError()
        paho_log = logging.getLogger(f"edge_agent.paho.{id(self)}")
        paho_log.setLevel(logging.ERROR)
        paho_log.propagate = False
        paho_log.addHandler(self._paho_errors)
        client.enable_logger(paho_log)
        return client

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    @property
    def client(self) -> mqtt.Client:
        """The paho client, for the command router's subscriptions."""
        return self._client

    def start(self) -> None:
        cfg = self.config
        props = None
        if cfg.protocol == "5":
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = 0
        self._client.connect_async(
            cfg.host, cfg.port, keepalive=max(5, int(cfg.keepalive)), clean_start=True, properties=props
        )
        self._client.loop_start()
        self._pump_thread = threading.Thread(target=self._pump, name="forwarder", daemon=True)
        self._pump_thread.start()

    def stop(self, grace: float = 1.0) -> None:
        """Give in-flight and committed readings `grace` seconds to be acknowledged, then go offline."""
        deadline = time.monotonic() + grace
        while self.connected and time.monotonic() < deadline and (self._inflight or self._pending()):
            time.sleep(0.01)
        self._stopping.set()
        self._room.set()
        if self._pump_thread is not None:
            self._pump_thread.join(2)
        if self.connected:
            payload = orjson.dumps({"state": "offline", "gateway": self.gateway, "reason": "stopped"})
            info = self._client.publish(f"{self.prefix}/status", payload, qos=1, retain=True)
            try:
                info.wait_for_publish(max(0.1, deadline - time.monotonic() + 0.5))
            except (RuntimeError, ValueError):
                pass
            self._client.disconnect()
        self._client.loop_stop()

    def _pending(self) -> bool:
        return self.outbox.depth > 0

    # -- status topics ----------------------------------------------------------------------
    def device_status(self, device: str, payload: dict[str, Any]) -> None:
        """Retained per-device status; the latest one is (re)sent on every connect."""
        data = orjson.dumps(payload)
        self._device_status[device] = data
        if self.connected:
            self._publish_status(f"devices/{device}/status", data)

    def clear_device_status(self, device: str) -> None:
        """A removed device: its retained status is deleted (an empty retained message)."""
        self._device_status.pop(device, None)
        if self.connected:
            self._publish_status(f"devices/{device}/status", b"")

    def publish_online(self) -> None:
        """Re-announce `online` (after a reload changed the config hash or the device list)."""
        if self.connected:
            self._publish_status("status", orjson.dumps(self._online_payload()))

    def publish_metrics(self, payload: dict[str, Any]) -> None:
        if self.connected:
            self._client.publish(f"{self.prefix}/metrics", orjson.dumps(payload), qos=0, retain=True)

    def _publish_status(self, subtopic: str, data: bytes) -> None:
        info = self._client.publish(f"{self.prefix}/{subtopic}", data, qos=1, retain=True)
        self._track(info.mid, None)

    # -- paho callbacks (paho's network thread) ---------------------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any) -> None:
        if reason.is_failure:
            log.error("MQTT broker %s:%d refused the connection: %s", self.config.host, self.config.port, reason)
            self._error_logged = True
            return
        self._client._attempts = 0
        self.stats.connected_since = time.time()
        was_down = self._down_since
        self._down_since = None
        self._publish_status("status", orjson.dumps(self._online_payload()))
        for device, data in list(self._device_status.items()):
            self._publish_status(f"devices/{device}/status", data)
        if self._error_logged and was_down is not None:
            log.warning(
                "MQTT connected to %s:%d again after %.1fs; %d readings waiting in the outbox",
                self.config.host,
                self.config.port,
                time.time() - was_down,
                self.outbox.depth,
            )
        else:
            log.info("MQTT connected to %s:%d", self.config.host, self.config.port)
        self._error_logged = False
        for hook in self.on_connected:
            hook(client)
        self._connected.set()
        self._room.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        if self._stopping.is_set():
            return
        if not was_connected:
            # Closed before CONNACK: with TLS 1.3 a refused client certificate shows up only here.
            if not self._error_logged:
                self._error_logged = True
                cause = self._paho_errors.message or str(reason)
                log.error(
                    "MQTT broker %s:%d closed the connection before accepting it: %s; retrying with backoff, "
                    "readings are kept in the outbox",
                    self.config.host,
                    self.config.port,
                    cause,
                )
            return
        self.stats.reconnects += 1
        self._down_since = time.time()
        self._error_logged = True
        log.error(
            "MQTT connection to %s:%d lost (%s); readings are kept in the outbox and sent on reconnect",
            self.config.host,
            self.config.port,
            reason,
        )

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        if not self._error_logged:
            self._error_logged = True
            err = self._client.last_connect_error
            log.error(
                "MQTT broker %s:%d unreachable: %s; retrying with backoff, readings are kept in the outbox",
                self.config.host,
                self.config.port,
                err or "connection failed",
            )

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: ReasonCode, props: Any) -> None:
        with self._lock:
            if mid not in self._inflight:
                self._early[mid] = reason  # acknowledged before _track() saw its mid
                return
            entry = self._inflight.pop(mid)
        self._settle(entry, reason)

    def _track(self, mid: int, entry: _InFlight | None) -> None:
        # paho may call on_publish (holding its own lock) before publish() returned the mid to us,
        # so we never hold our lock across publish() and settle early acks here.
        with self._lock:
            reason = self._early.pop(mid, None)
            if reason is None:
                self._inflight[mid] = entry
                return
        self._settle(entry, reason)

    def _settle(self, entry: _InFlight | None, reason: ReasonCode) -> None:
        if entry is None:
            return  # a status message
        if reason.is_failure:
            # The broker refused this message (quota, authorisation): send it again later.
            self.stats.refused += 1
            log.error("MQTT broker refused a readings message (%s); it stays in the outbox", reason)
            with self._lock:
                first = min(entry.chunk_ids) - 1
                self._rewind_to = first if self._rewind_to is None else min(self._rewind_to, first)
        else:
            self.outbox.ack(entry.chunk_ids)
            self.stats.messages += 1
            self.stats.readings += entry.readings
            per_device = self.stats.per_device
            per_device[entry.device] = per_device.get(entry.device, 0) + entry.readings
        self._room.set()

    # -- the pump (own thread) --------------------------------------------------------------
    def _pump(self) -> None:
        conn = self.outbox.reader()
        try:
            self._pump_loop(conn)
        except Exception:
            log.exception("Forwarder pump failed")
            raise
        finally:
            conn.close()

    def _pump_loop(self, conn: sqlite3.Connection) -> None:
        cursor = 0
        window = self.config.max_inflight
        committed = self.outbox.committed
        while not self._stopping.is_set():
            self.heartbeat = time.monotonic()
            if not self._connected.is_set() or len(self._inflight) >= window:
                self._room.clear()
                if not self._connected.is_set() or len(self._inflight) >= window:
                    self._room.wait(0.5)
                continue
            with self._lock:
                if self._rewind_to is not None:
                    cursor, self._rewind_to = min(cursor, self._rewind_to), None
            committed.clear()
            room = window - len(self._inflight)
            chunks = Outbox.fetch(conn, cursor, limit=room * FETCH_CHUNKS_PER_MESSAGE)
            if not chunks:
                committed.wait(0.5)
                continue
            cursor = chunks[-1].id
            self._publish_chunks(chunks)

    def _publish_chunks(self, chunks: list[Chunk]) -> None:
        by_device: dict[str, list[Chunk]] = {}
        for chunk in chunks:
            by_device.setdefault(chunk.device, []).append(chunk)
        limit = self.config.max_message_size
        for device, device_chunks in by_device.items():
            batch: list[Chunk] = []
            size = 0
            for chunk in device_chunks:
                if batch and size + len(chunk.payload) > limit:
                    self._publish(device, batch)
                    batch, size = [], 0
                batch.append(chunk)
                size += len(chunk.payload) + 1
            if batch:
                self._publish(device, batch)

    def _publish(self, device: str, chunks: list[Chunk]) -> None:
        payload = self.outbox.encoder.message(device, [c.payload for c in chunks])
        entry = _InFlight(device, tuple(c.id for c in chunks), sum(c.count for c in chunks))
        info = self._client.publish(f"{self.prefix}/readings/{device}", payload, qos=self.config.qos)
        self._track(info.mid, entry)
