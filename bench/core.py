"""Core data-path benchmarks (issue 2): run by hand, never in CI.

    python bench/core.py throughput [--seconds 30] [--rate 80000]
    python bench/core.py latency    [--seconds 30] [--rate 1000]
    python bench/core.py drain      [--readings 500000]
    python bench/core.py idle       [--seconds 30]
    python bench/core.py all

The agent runs as its own process (`edge-agent run`), against a private Mosquitto on a free
loopback port; a subscriber in this process counts readings and measures ts → receipt latency.
Agent CPU and RSS are read from /proc/<pid>.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edge_agent.broker import LocalBroker, free_port

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Counter:
    """Counts readings; records latency (receipt - ts) for a sample of them."""

    def __init__(self, port: int, topic: str = "warehouse/#") -> None:
        self.count = 0
        self.max_seq = 0
        self.latencies: list[float] = []
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{os.getpid()}", protocol=mqtt.MQTTv5)
        self.client.on_message = self.on_message
        self.client.on_subscribe = lambda *a: self.ready.set()
        self.client.on_connect = lambda c, *a: c.subscribe(topic, qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.ready.wait(10)

    def on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.time()
        if "/readings/" not in msg.topic:
            return
        readings = orjson.loads(msg.payload)["readings"]
        with self.lock:
            self.count += len(readings)
            self.max_seq = max(self.max_seq, readings[-1]["seq"])
            last = readings[-1]
            ts = last["ts"]
            captured = time.mktime(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone + int(ts[20:23]) / 1000
            self.latencies.append(now - captured)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


COMMIT_INTERVAL = ""  # set from --commit-interval


def write_config(workdir: Path, port: int, devices: str, synchronous: str = "full") -> Path:
    config = workdir / "config.yaml"
    config.write_text(
        f"gateway: {{id: bench-gw, site: bench}}\n"
        f"mqtt: {{host: 127.0.0.1, port: {port}, reconnect_min: 100ms, reconnect_max: 500ms}}\n"
        f"buffer: {{path: {workdir / 'buffer.db'}, max_size: 512MB, synchronous: {synchronous}"
        f"{', commit_interval: ' + COMMIT_INTERVAL if COMMIT_INTERVAL else ''}}}\n"
        f"log_level: warning\n"
        f"devices:\n{devices}"
    )
    return config


def start_agent(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "edge_agent.cli", "run", "-c", str(config)])


def stop_agent(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(10)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else float("nan")


@dataclass
class Window:
    """What happened during a measured window of an agent run."""

    readings_per_s: float
    cpu_percent: float
    rss_mb: float
    elapsed: float
    latencies: list[float]


def measure(devices: str, seconds: float, synchronous: str = "full", warmup: float = 3.0) -> Window:
    """Run an agent with `devices` against a private broker; measure `seconds` after `warmup`."""
    with tempfile.TemporaryDirectory() as tmp:
        broker = LocalBroker().start()
        counter = Counter(broker.port)
        proc = start_agent(write_config(Path(tmp), broker.port, devices, synchronous))
        time.sleep(warmup)  # imports, connect
        with counter.lock:
            counter.latencies.clear()
        c0, n0, t0 = cpu_seconds(proc.pid), counter.count, time.monotonic()
        time.sleep(seconds)
        c1, n1, t1 = cpu_seconds(proc.pid), counter.count, time.monotonic()
        rss = rss_mb(proc.pid)
        stop_agent(proc)
        counter.close()
        broker.close()
    elapsed = t1 - t0
    return Window((n1 - n0) / elapsed, 100 * (c1 - c0) / elapsed, rss, elapsed, list(counter.latencies))


def throughput(seconds: float, rate: int, synchronous: str) -> None:
    devices = "".join(f"  - {{id: sim-{i}, driver: simulated, rate: {rate // 4}}}\n" for i in range(4))
    w = measure(devices, seconds, synchronous)
    print(
        f"throughput: {w.readings_per_s:,.0f} readings/s delivered end to end over {w.elapsed:.0f}s "
        f"(offered {rate:,}/s by 4 simulated devices, synchronous={synchronous}); "
        f"agent CPU {w.cpu_percent:.0f}% of one core, RSS {w.rss_mb:.0f} MB; "
        f"latency p50 {1000 * percentile(w.latencies, 0.5):.0f} ms p99 {1000 * percentile(w.latencies, 0.99):.0f} ms"
    )


def latency(seconds: float, rate: int, synchronous: str) -> None:
    w = measure(f"  - {{id: sim-1, driver: simulated, rate: {rate}}}\n", seconds, synchronous)
    lat = w.latencies
    print(
        f"latency at {rate}/s ({synchronous}): {w.readings_per_s:,.0f} readings/s delivered, "
        f"agent CPU {w.cpu_percent:.1f}% of one core, RSS {w.rss_mb:.0f} MB; "
        f"ts→receipt over {len(lat)} messages: p50 {1000 * percentile(lat, 0.5):.1f} ms, "
        f"p99 {1000 * percentile(lat, 0.99):.1f} ms, max {1000 * max(lat):.1f} ms"
    )


def drain(readings: int, synchronous: str) -> None:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        devices = f"  - {{id: sim-1, driver: simulated, rate: 100000, max_readings: {readings}}}\n"
        config = write_config(Path(tmp), port, devices, synchronous)
        proc = start_agent(config)
        db = Path(tmp) / "buffer.db"
        import sqlite3

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            time.sleep(0.2)
            if db.exists():
                conn = sqlite3.connect(db)
                try:
                    row = conn.execute("SELECT COALESCE(SUM(count),0) FROM chunks").fetchone()
                except sqlite3.Error:
                    row = (0,)
                conn.close()
                if row[0] >= readings:
                    break
        broker = LocalBroker(port).start()
        counter = Counter(port)
        t0 = time.monotonic()
        while counter.count < readings and time.monotonic() - t0 < 120:
            time.sleep(0.01)
        elapsed = time.monotonic() - t0
        cpu = cpu_seconds(proc.pid)
        stop_agent(proc)
        counter.close()
        broker.close()
    print(
        f"drain: {counter.count:,} of {readings:,} buffered readings delivered {elapsed:.1f}s after the broker "
        f"returned ({counter.count / elapsed:,.0f} readings/s); "
        f"agent CPU total {cpu:.1f}s"
    )


def idle(seconds: float) -> None:
    w = measure("  - {id: sim-1, driver: simulated, rate: 1}\n", seconds, warmup=5.0)
    print(f"idle (1 device at 1 reading/s): agent CPU {w.cpu_percent:.2f}% of one core, RSS {w.rss_mb:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["throughput", "latency", "drain", "idle", "all"])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--rate", type=int, default=0)
    parser.add_argument("--readings", type=int, default=500_000)
    parser.add_argument("--synchronous", choices=["full", "normal"], default="full")
    parser.add_argument("--commit-interval", default="", help="buffer.commit_interval, e.g. 5ms (default: the agent's)")
    args = parser.parse_args()
    global COMMIT_INTERVAL
    COMMIT_INTERVAL = args.commit_interval
    if args.what in ("throughput", "all"):
        throughput(args.seconds, args.rate or 80_000, args.synchronous)
    if args.what in ("latency", "all"):
        latency(args.seconds, args.rate or 1000, args.synchronous)
    if args.what in ("drain", "all"):
        drain(args.readings, args.synchronous)
    if args.what in ("idle", "all"):
        idle(args.seconds)


if __name__ == "__main__":
    main()
