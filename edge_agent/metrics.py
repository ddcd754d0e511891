"""Health for operations: Prometheus text on a local HTTP port, and the status socket.

Both serve the same snapshot (Agent.snapshot()). The HTTP server binds what the config names
(`metrics.listen`, 127.0.0.1 unless the config says otherwise); the status socket is a Unix socket
readable by root and the service's group, for `edge-agent status` on the box.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

__all__ = ["MetricsServer", "StatusSocket", "prometheus_text", "read_status"]

log = logging.getLogger("edge_agent.metrics")

Snapshot = Callable[[], dict[str, Any]]


def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def prometheus_text(snap: dict[str, Any]) -> str:
    """The snapshot in the Prometheus text exposition format (version 0.0.4)."""
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: list[tuple[dict[str, Any], float]]) -> None:
        lines.append(f"# HELP edge_agent_{name} {help_text}")
        lines.append(f"# TYPE edge_agent_{name} {kind}")
        for labels, value in samples:
            text = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            lines.append(f"edge_agent_{name}{{{text}}} {value:.17g}" if text else f"edge_agent_{name} {value:.17g}")

    out, mq, devices = snap["outbox"], snap["mqtt"], snap["devices"]
    info = {"version": snap["version"], "gateway": snap["gateway"], "config_hash": snap["config_hash"]}
    metric("info", "gauge", "Agent version, gateway and config hash.", [(info, 1)])
    metric("uptime_seconds", "gauge", "Seconds since the agent started.", [({}, snap["uptime_s"])])
    metric(
        "readings_accepted_total",
        "counter",
        "Readings committed to the outbox, per device.",
        [({"device": d}, v["accepted"]) for d, v in devices.items()],
    )
    metric(
        "readings_published_total",
        "counter",
        "Readings acknowledged by the broker, per device.",
        [({"device": d}, v["published"]) for d, v in devices.items()],
    )
    metric(
        "device_readings_dropped_total",
        "counter",
        "Readings dropped or rejected by the outbox limits, per device.",
        [({"device": d}, v["dropped"]) for d, v in devices.items()],
    )
    metric(
        "readings_dropped_total",
        "counter",
        "Readings dropped by the outbox limits, by reason.",
        [
            ({"reason": "oldest"}, out["dropped_oldest"]),
            ({"reason": "max_age"}, out["dropped_age"]),
            ({"reason": "rejected"}, out["rejected"]),
        ],
    )
    metric("outbox_readings", "gauge", "Readings waiting in the outbox.", [({}, out["readings"])])
    metric("outbox_bytes", "gauge", "Payload bytes waiting in the outbox.", [({}, out["bytes"])])
    metric(
        "outbox_oldest_age_seconds",
        "gauge",
        "Age of the oldest reading waiting (0 when empty).",
        [({}, out["oldest_age_s"] or 0.0)],
    )
    metric(
        "outbox_commit_errors_total", "counter", "Failed outbox commits (disk full, I/O).", [({}, out["commit_errors"])]
    )
    metric("mqtt_connected", "gauge", "1 while connected to the broker.", [({}, 1 if mq["connected"] else 0)])
    metric("mqtt_reconnects_total", "counter", "Connections to the broker lost.", [({}, mq["reconnects"])])
    metric("mqtt_inflight_messages", "gauge", "Messages published and not yet acknowledged.", [({}, mq["inflight"])])
    metric("mqtt_messages_total", "counter", "Readings messages acknowledged by the broker.", [({}, mq["messages"])])
    metric(
        "device_up",
        "gauge",
        "1 while the device is connected.",
        [({"device": d, "driver": v["driver"]}, 1 if v["state"] == "connected" else 0) for d, v in devices.items()],
    )
    metric(
        "device_restarts_total",
        "counter",
        "Times the device's driver was restarted after a failure.",
        [({"device": d}, v["restarts"]) for d, v in devices.items()],
    )
    metric(
        "device_events_total",
        "counter",
        "Driver counters (frames dropped, timeouts, polls, ...).",
        [
            ({"device": d, "event": k}, n)
            for d, v in devices.items()
            for k, n in v["counters"].items()
            if k != "readings"
        ],
    )
    gauges = [({"device": d, "name": k}, g) for d, v in devices.items() for k, g in v["gauges"].items()]
    if gauges:
        metric("device_gauge", "gauge", "Driver gauges (e.g. poll_duration_seconds).", gauges)
    cmd = snap["commands"]
    metric(
        "commands_total",
        "counter",
        "Commands from the hub, by outcome.",
        [({"outcome": k}, cmd[k]) for k in ("accepted", "refused", "failed")],
    )
    return "\n".join(lines) + "\n"


class MetricsServer:
    def __init__(self, listen: str, snapshot: Snapshot) -> None:
        host, _, port = listen.rpartition(":")
        self.snapshot = snapshot
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/metrics":
                    body = prometheus_text(outer.snapshot()).encode()
                    ctype = "text/plain; version=0.0.4; charset=utf-8"
                elif self.path == "/status":
                    body, ctype = orjson.dumps(outer.snapshot()), "application/json"
                elif self.path == "/healthz":
                    body, ctype = b"ok\n", "text/plain"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # scrapes every few seconds are not news

        self.server = ThreadingHTTPServer((host.strip("[]") or "127.0.0.1", int(port)), Handler)
        self.server.daemon_threads = True
        self.address = self.server.server_address
        self._thread = threading.Thread(target=self.server.serve_forever, name="metrics-http", daemon=True)

    def start(self) -> None:
        self._thread.start()
        log.info("Metrics on http://%s:%d/metrics", self.address[0], self.address[1])

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class StatusSocket:
    """Sends the snapshot as JSON to whoever connects, then closes."""

    def __init__(self, path: Path, snapshot: Snapshot) -> None:
        self.path = path
        self.snapshot = snapshot
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._thread = threading.Thread(target=self._serve, name="status-socket", daemon=True)

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o007)
        try:
            sock.bind(str(self.path))
        finally:
            os.umask(old)
        sock.listen(4)
        sock.settimeout(0.5)
        self._sock = sock
        self._thread.start()

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                try:
                    conn.sendall(orjson.dumps(self.snapshot(), default=str))
                except OSError:
                    pass

    def stop(self) -> None:
        self._stop.set()
        if self._sock is not None:
            self._sock.close()
        self._thread.join(2)
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


def read_status(path: Path, timeout: float = 5.0) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    data: dict[str, Any] = orjson.loads(b"".join(chunks))
    return data
