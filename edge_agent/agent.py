"""The running agent: config → supervisor (drivers) → outbox → forwarder; health, commands, reload."""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any

from edge_agent import __version__, sdnotify
from edge_agent.certs import CertificateError, check_expiry
from edge_agent.commands import CommandRouter
from edge_agent.config import ConfigError, LoadedConfig, load_config
from edge_agent.driver import DeviceConfig, DeviceState, Driver
from edge_agent.forwarder import Forwarder
from edge_agent.metrics import MetricsServer, StatusSocket
from edge_agent.outbox import Outbox
from edge_agent.reading import format_ts
from edge_agent.supervisor import Supervisor

__all__ = ["Agent"]

log = logging.getLogger("edge_agent")

STALL_AFTER = 10.0  # seconds without a turn of the writer or the forwarder: stop pinging the watchdog


class Agent:
    def __init__(self, loaded: LoadedConfig, *, config_path: str | Path | None = None) -> None:
        self.loaded = loaded
        self.config_path = Path(config_path) if config_path is not None else None
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
        self.supervisor = Supervisor(
            loaded.devices,
            emit_many=self.outbox.put_many,
            on_state=self._device_state,
            backoff_min=cfg.supervisor.restart_min,
            backoff_max=max(cfg.supervisor.restart_min, cfg.supervisor.restart_max),
        )
        self.commands = CommandRouter(prefix=cfg.topic_prefix, devices=self._device_configs, driver_of=self._driver_of)
        self.commands.attach(self.forwarder.client)
        self.forwarder.on_connected.append(self.commands.subscribe)
        self.metrics_server: MetricsServer | None = None
        self.status_socket = StatusSocket(cfg.status_socket, self.snapshot)
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._wake = threading.Event()
        self._last_cert_check = 0.0

    # -- what others see of us ----------------------------------------------------------------
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

    def _device_configs(self) -> dict[str, DeviceConfig]:
        return {device_id: runner.config for device_id, runner in self.supervisor.runners.items()}

    def _driver_of(self, device: str) -> Driver | None:
        runner = self.supervisor.runners.get(device)
        return runner.driver if runner is not None and runner.ctx.state == "connected" else None

    def snapshot(self) -> dict[str, Any]:
        """Everything health needs, for the status socket, Prometheus and the metrics topic."""
        now = time.time()
        box, fwd = self.outbox, self.forwarder
        oldest = box.oldest_ts()
        accepted, published = box.stats.per_device, fwd.stats.per_device
        devices = {}
        for device_id, runner in list(self.supervisor.runners.items()):
            ctx = runner.ctx
            devices[device_id] = {
                "driver": runner.config.driver,
                "state": ctx.state,
                "since": format_ts(ctx.state_since),
                "error": ctx.last_error,
                "accepted": accepted.get(device_id, 0),
                "published": published.get(device_id, 0),
                "dropped": box.stats.dropped_per_device.get(device_id, 0),
                "last_reading_age_s": None if ctx.last_reading_ts is None else round(now - ctx.last_reading_ts, 3),
                "restarts": runner.restarts,
                "counters": dict(ctx.counters),
                "gauges": dict(ctx.gauges),
            }
        mqtt = self.loaded.agent.mqtt
        return {
            "gateway": self.loaded.agent.gateway.id,
            "version": __version__,
            "config_hash": self.loaded.config_hash,
            "started_at": format_ts(self.started_at),
            "uptime_s": round(now - self.started_at, 1),
            "mqtt": {
                "broker": f"{mqtt.host}:{mqtt.port}",
                "connected": fwd.connected,
                "connected_since": None
                if not fwd.connected or not fwd.stats.connected_since
                else format_ts(fwd.stats.connected_since),
                "reconnects": fwd.stats.reconnects,
                "inflight": fwd.inflight,
                "messages": fwd.stats.messages,
                "readings": fwd.stats.readings,
            },
            "outbox": {
                "path": str(self.loaded.agent.buffer.path),
                "readings": box.depth,
                "bytes": box.size_bytes,
                "max_bytes": self.loaded.agent.buffer.max_size,
                "oldest_age_s": None if oldest is None else round(now - oldest, 3),
                "accepted": box.stats.accepted,
                "dropped_oldest": box.stats.dropped_oldest,
                "dropped_age": box.stats.dropped_age,
                "rejected": box.stats.rejected,
                "commit_errors": box.stats.commit_errors,
            },
            "devices": devices,
            "commands": {
                "accepted": self.commands.stats.accepted,
                "refused": self.commands.stats.refused,
                "failed": self.commands.stats.failed,
            },
        }

    def summary(self) -> str:
        """One line for systemd's STATUS=."""
        runners = self.supervisor.runners.values()
        up = sum(1 for r in runners if r.ctx.state == "connected")
        broker = "connected" if self.forwarder.connected else "DISCONNECTED"
        return (
            f"{up}/{len(self.supervisor.runners)} devices up, broker {broker}, "
            f"outbox {self.outbox.depth} readings, {self.outbox.stats.accepted} accepted"
        )

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        cfg = self.loaded.agent
        self._check_certificate()
        self.outbox.start()
        self.forwarder.start()
        self.supervisor.start()
        try:
            self.status_socket.start()
        except OSError as err:
            log.warning(
                "Status socket %s not available: %s (`edge-agent status` will not work)", cfg.status_socket, err
            )
        if cfg.metrics.listen:
            self.metrics_server = MetricsServer(cfg.metrics.listen, self.snapshot)
            self.metrics_server.start()
        log.info(
            "edge-agent %s started: gateway %s, %d devices, outbox %s, broker %s:%d",
            __version__,
            cfg.gateway.id,
            len(self.supervisor.runners),
            cfg.buffer.path,
            cfg.mqtt.host,
            cfg.mqtt.port,
        )

    def stop(self) -> None:
        """Within ~2 s: stop devices, commit what they produced, let the broker ack what it can."""
        t0 = time.monotonic()
        sdnotify.stopping("stopping: flushing the outbox")
        self.supervisor.stop(timeout=0.6)
        self.outbox.flush(timeout=0.4)
        self.forwarder.stop(grace=max(0.2, 1.4 - (time.monotonic() - t0)))
        self.commands.close()
        self.outbox.close()
        if self.metrics_server is not None:
            self.metrics_server.stop()
        self.status_socket.stop()
        log.info(
            "edge-agent stopped in %.2fs; %d readings kept in the outbox", time.monotonic() - t0, self.outbox.depth
        )

    def request_stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def request_reload(self) -> None:
        self._reload.set()
        self._wake.set()

    def reload(self) -> bool:
        """Apply a changed config file: unchanged devices keep running, changed ones restart,
        removed ones stop, new ones start; buffered readings are untouched. An invalid file is
        refused with its errors and the running config stays in force."""
        if self.config_path is None:
            log.warning("Reload asked, but the agent runs on the embedded default: nothing to reload")
            return False
        sdnotify.reloading("reloading configuration")
        try:
            new = load_config(self.config_path)
        except ConfigError as err:
            log.error(
                "Reload refused: %s has %d error(s); the running configuration stays in force:\n%s",
                self.config_path,
                len(err.issues),
                err,
            )
            sdnotify.ready(self.summary())
            return False
        old_agent = self.loaded.agent
        for section in ("gateway", "mqtt", "buffer", "metrics", "supervisor", "control_socket"):
            if getattr(old_agent, section) != getattr(new.agent, section):
                log.warning(
                    "Reload: `%s` changed; it takes effect after a restart (systemctl restart edge-agent)", section
                )
        old = {d.id: d for d in self.loaded.devices}
        fresh = {d.id: d for d in new.devices}
        removed = [i for i in old if i not in fresh]
        changed = [i for i in old if i in fresh and old[i] != fresh[i]]
        added = [i for i in fresh if i not in old]
        if removed or changed:
            self.supervisor.stop(timeout=2.0, ids=removed + changed)
        for device_id in removed:
            self.forwarder.clear_device_status(device_id)
        for device_id in changed + added:
            self.supervisor.add(fresh[device_id]).start()
        self.loaded = replace(self.loaded, devices=list(new.devices), config_hash=new.config_hash, lines=new.lines)
        self.forwarder.publish_online()
        log.warning(
            "Reloaded %s: %d device(s) unchanged, %d restarted, %d added, %d removed",
            self.config_path,
            len(old) - len(removed) - len(changed),
            len(changed),
            len(added),
            len(removed),
        )
        sdnotify.ready(self.summary())
        return True

    def healthy(self) -> bool:
        """The writer and the forwarder both turned recently: the watchdog may be pinged."""
        now = time.monotonic()
        return now - self.outbox.heartbeat < STALL_AFTER and now - self.forwarder.heartbeat < STALL_AFTER

    def _check_certificate(self) -> None:
        tls = self.loaded.agent.mqtt.tls
        self._last_cert_check = time.monotonic()
        if tls is None or tls.cert is None:
            return
        try:
            notice = check_expiry(tls.cert, self.loaded.agent.metrics.cert_warn_days)
        except CertificateError as err:
            log.error("%s", err)
            return
        if notice is not None:
            (log.error if notice.level == "error" else log.warning)("%s", notice.message)

    def run_forever(self) -> None:
        """Foreground daemon: start, serve signals (TERM/INT stop, HUP reloads), stop cleanly."""

        def on_signal(signum: int, frame: FrameType | None) -> None:
            if signum == signal.SIGHUP:
                self._reload.set()
                self._wake.set()
            else:
                log.info("Received %s, stopping", signal.Signals(signum).name)
                self._stop.set()
                self._wake.set()

        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, on_signal)
        self.start()
        sdnotify.ready(self.summary())
        watchdog = sdnotify.watchdog_interval()
        tick = min(1.0, watchdog / 2) if watchdog else 1.0
        interval = self.loaded.agent.metrics.interval
        next_metrics = next_status = time.monotonic()
        stalled = False
        try:
            while not self._stop.is_set():
                self._wake.wait(tick)
                self._wake.clear()
                if self._stop.is_set():
                    break
                now = time.monotonic()
                if self._reload.is_set():
                    self._reload.clear()
                    self.reload()
                if now >= next_metrics:
                    next_metrics = now + interval
                    self.forwarder.publish_metrics(self.snapshot())
                if now >= next_status:
                    next_status = now + 10
                    sdnotify.status(self.summary())
                if now - self._last_cert_check > 86400:
                    self._check_certificate()
                if watchdog:
                    if self.healthy():
                        sdnotify.watchdog()
                        stalled = False
                    elif not stalled:
                        stalled = True
                        log.error("Outbox writer or forwarder stalled; withholding watchdog pings")
        finally:
            self.stop()
