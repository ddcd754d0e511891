"""R2000 simulator streaming tag reads through the RFID driver, a real Agent and a private Mosquitto.

    python bench/rfid_stream.py [--seconds 30] [--rate 2000] [--tags 200] [--report presence|every_read]

Scenario (presence): all tags in the field for the first third, half of them leave for the second
third, all back for the last third, then the field empties. Checked at the MQTT subscriber: every
read the simulator sent was parsed (driver counter == simulator counter, per EPC the departed
readings' `count` add up to what was sent), and the presence events are exact (arrivals and
departures per tag as scheduled). CPU is reported per thread (driver, simulator) and per process
(this one: simulator + driver + outbox + forwarder + subscriber; and mosquitto).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from drivers.rfid.simulator import ReaderSimulator, SimTag
from edge_agent.agent import Agent
from edge_agent.broker import LocalBroker
from edge_agent.config import parse_config

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    path = f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat"
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


class Collector:
    def __init__(self, port: int) -> None:
        self.readings: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="rfid-bench", protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self.ready.set()
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe("warehouse/+/+/readings/#", qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not self.ready.wait(10):
            raise SystemExit("subscriber not subscribed")

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        batch = orjson.loads(msg.payload)["readings"]
        with self.lock:
            self.readings.extend(batch)

    def events(self, kind: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.readings if r.get("event") == kind]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=2000.0, help="tag reads per second sent by the reader")
    parser.add_argument("--tags", type=int, default=200)
    parser.add_argument("--report", choices=["presence", "every_read"], default="presence")
    args = parser.parse_args()

    base = int("3074257BF7194E4000000000", 16)
    tags = [SimTag((base | i).to_bytes(12, "big"), -45.0 - (i % 30), 1) for i in range(1, args.tags + 1)]
    half = tags[: args.tags // 2]
    sim = ReaderSimulator("r2000", tags, reads_per_second=args.rate, rssi_jitter=3.0, round_time=0.05)
    broker = LocalBroker().start()
    work = Path(tempfile.mkdtemp(prefix="rfid-bench-"))
    config = f"""
gateway: {{id: bench-gw, site: bench}}
mqtt: {{host: 127.0.0.1, port: {broker.port}}}
buffer: {{path: {work / "buffer.db"}, max_size: 256MB, synchronous: normal}}
devices:
  - id: bench-rfid
    driver: rfid
    protocol: r2000
    port: {sim.port}
    baudrate: 921600        # 2000 reads/s of 21-byte frames need > 460800 baud on a real line
    report: {args.report}
    absent_after: 2s
    rounds: 10              # 10 rounds of 50 ms per inventory command
"""
    agent = Agent(parse_config(config, "bench.yaml"))
    sub = Collector(broker.port)
    sim.start()
    agent.start()
    runner = agent.supervisor.runners["bench-rfid"]
    pid = os.getpid()
    t_start = time.monotonic()
    cpu0 = {"process": cpu_seconds(pid), "mosquitto": cpu_seconds(broker.proc.pid)}  # type: ignore[union-attr]
    while runner.ctx.state != "connected":
        time.sleep(0.01)
    driver_tid = runner._thread.native_id
    sim_tid = sim._thread.native_id  # type: ignore[union-attr]
    cpu0["driver"] = cpu_seconds(pid, driver_tid)
    cpu0["simulator"] = cpu_seconds(pid, sim_tid)
    third = args.seconds / 3
    time.sleep(third)
    sim.set_tags(half)
    time.sleep(third)
    sim.set_tags(tags)
    time.sleep(third)
    sim.set_tags([])
    streamed = time.monotonic() - t_start
    cpu1 = {
        "process": cpu_seconds(pid),
        "mosquitto": cpu_seconds(broker.proc.pid),  # type: ignore[union-attr]
        "driver": cpu_seconds(pid, driver_tid),
        "simulator": cpu_seconds(pid, sim_tid),
    }
    sent = sim.sent_reads
    expected_visits = len(tags) + (len(tags) - len(half))
    deadline = time.monotonic() + 20
    if args.report == "presence":
        while len(sub.events("departed")) < expected_visits and time.monotonic() < deadline:
            time.sleep(0.05)
    else:
        while len(sub.readings) < sent and time.monotonic() < deadline:
            time.sleep(0.05)
    counters = dict(runner.ctx.counters)
    agent.stop()
    sub.close()
    sim.stop()
    broker.close()

    print(f"streamed {streamed:.1f}s: simulator sent {sent} tag reads ({sent / streamed:.0f}/s), {args.tags} tags")
    print(f"driver counters: {counters}")
    ok = counters.get("tag_reads") == sent and counters.get("frames_dropped", 0) == 0
    print(f"all reads parsed: {'yes' if ok else 'NO'} (driver {counters.get('tag_reads')} / sent {sent})")
    if args.report == "presence":
        arrived, departed = sub.events("arrived"), sub.events("departed")
        per_tag: Counter[str] = Counter()
        for r in departed:
            per_tag[r["value"]] += r["count"]
        sent_per_tag = {epc.hex().upper(): n for epc, n in sim.sent_by_epc.items()}
        half_ids = {t.epc.hex().upper() for t in half}
        expected = {t.epc.hex().upper(): 1 if t.epc.hex().upper() in half_ids else 2 for t in tags}
        exact = (
            Counter(r["value"] for r in arrived) == Counter(expected)
            and Counter(r["value"] for r in departed) == Counter(expected)
            and all(r["quality"] == "good" for r in departed)
            and dict(per_tag) == sent_per_tag
        )
        print(
            f"presence: {len(arrived)} arrived, {len(departed)} departed (expected {expected_visits} each); "
            f"reads per tag add up: {dict(per_tag) == sent_per_tag}; exact: {'yes' if exact else 'NO'}"
        )
        ok = ok and exact
    else:
        print(f"every_read: {len(sub.readings)} readings at the subscriber (sent {sent})")
        ok = ok and len(sub.readings) == sent
    print(
        "CPU over the stream (% of one core): "
        + ", ".join(f"{k} {100 * (cpu1[k] - cpu0[k]) / streamed:.1f}%" for k in ("driver", "simulator", "process"))
        + f", mosquitto {100 * (cpu1['mosquitto'] - cpu0['mosquitto']) / streamed:.1f}%"
    )
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} (shared with other work)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
