"""Modbus polling throughput, end to end: PLC → driver → outbox → MQTT → subscriber.

100 holding registers (50 uint32 points, one request per poll) are polled from a local Modbus TCP
server (the conveyor simulator, pymodbus, in a process of its own) as fast as the schedule allows.
Holding 2-3 is the server's read counter (+1 per read request): every poll's value of that point
must reach the subscriber (a separate process, QoS 1, counting) — a lost poll shows as a gap.

    python bench/modbus_polls.py --seconds 20 [--poll-interval 1ms] [--synchronous normal]

Prints polls/s, readings/s, lost polls, skipped cycles and the CPU of the agent process (and of the
server, subscriber and broker processes, for context).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process from /proc (seconds)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def subscriber_main(port: int, topic: str) -> int:
    """Child process: count readings; on a line `N` on stdin, wait for N readings and report."""
    import threading

    import orjson
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    lock = threading.Lock()
    state: dict[str, Any] = {"readings": 0, "counter": [], "bad": 0}
    subscribed = threading.Event()

    def on_message(client: Any, userdata: Any, msg: Any) -> None:
        readings = orjson.loads(msg.payload)["readings"]
        with lock:
            state["readings"] += len(readings)
            for r in readings:
                if r["point"] == "reads":
                    state["counter"].append(r["value"])
                if r["quality"] != "good":
                    state["bad"] += 1

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-sub", protocol=mqtt.MQTTv5)
    client.on_message = on_message
    client.on_subscribe = lambda *a: subscribed.set()
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
    client.connect("127.0.0.1", port)
    client.loop_start()
    subscribed.wait(10)
    print("ready", flush=True)
    expected = int(sys.stdin.readline())
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with lock:
            if state["readings"] >= expected:
                break
        time.sleep(0.05)
    client.loop_stop()
    with lock:
        counter = state["counter"]
        distinct = sorted(set(counter))
        gaps = (distinct[-1] - distinct[0] + 1 - len(distinct)) if distinct else 0
        print(
            json.dumps(
                {
                    "readings": state["readings"],
                    "polls_seen": len(distinct),
                    "duplicates": len(counter) - len(distinct),
                    "first": distinct[0] if distinct else None,
                    "last": distinct[-1] if distinct else None,
                    "gaps": gaps,
                    "bad": state["bad"],
                }
            ),
            flush=True,
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--poll-interval", default="1ms")
    parser.add_argument("--synchronous", choices=["normal", "full"], default="normal")
    parser.add_argument("--subscriber", nargs=2, metavar=("PORT", "TOPIC"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.subscriber:
        return subscriber_main(int(args.subscriber[0]), args.subscriber[1])

    from edge_agent.agent import Agent
    from edge_agent.broker import LocalBroker, free_port
    from edge_agent.config import parse_config

    broker = LocalBroker().start()
    sim_port = free_port()
    sim = subprocess.Popen(
        [sys.executable, "-m", "drivers.modbus.simulator", "--port", str(sim_port), "--static"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sim.stdout is not None
    sim.stdout.readline()  # {"listening": ...}
    prefix = "warehouse/bench/gw-bench"
    sub = subprocess.Popen(
        [sys.executable, __file__, "--subscriber", str(broker.port), f"{prefix}/readings/#"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sub.stdin is not None and sub.stdout is not None
    assert sub.stdout.readline().strip() == "ready"

    state = Path(tempfile.mkdtemp(prefix="modbus-bench-"))
    points = "\n".join(
        f"      - {{name: {'reads' if k == 1 else f'p{k:02d}'}, table: holding, address: {2 * k}, type: uint32}}"
        for k in range(50)
    )
    text = f"""\
gateway: {{id: gw-bench, site: bench}}
mqtt: {{host: 127.0.0.1, port: {broker.port}}}
buffer: {{path: {state / "buffer.db"}, max_size: 512MB, synchronous: {args.synchronous}}}
log_level: warning
devices:
  - id: plc
    driver: modbus
    host: 127.0.0.1
    port: {sim_port}
    poll_interval: {args.poll_interval}
    timeout: 500ms
    points:
{points}
"""
    agent = Agent(parse_config(text, "bench.yaml"))
    agent.start()
    runner = agent.supervisor.runners["plc"]
    deadline = time.monotonic() + 10
    while runner.ctx.state != "connected" and time.monotonic() < deadline:
        time.sleep(0.01)
    others = {"server": sim.pid, "subscriber": sub.pid, "mosquitto": broker.proc.pid if broker.proc else 0}
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    other0 = {k: cpu_seconds(p) for k, p in others.items() if p}
    driver = runner.driver
    polls0 = driver.polls if driver is not None else 0  # type: ignore[attr-defined]
    t0 = time.monotonic()
    time.sleep(args.seconds)
    driver = runner.driver
    polls1 = driver.polls if driver is not None else 0  # type: ignore[attr-defined]
    t1 = time.monotonic()
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    other1 = {k: cpu_seconds(p) for k, p in others.items() if p}

    agent.supervisor.stop(timeout=2)  # stop polling, then let the outbox drain to the broker
    drain_deadline = time.monotonic() + 60
    while agent.outbox.depth and time.monotonic() < drain_deadline:
        time.sleep(0.05)
    emitted = runner.ctx.counters.get("readings", 0)
    skipped = runner.ctx.counters.get("cycles_skipped", 0)
    restarts = runner.restarts
    agent.stop()
    sub.stdin.write(f"{emitted}\n")
    sub.stdin.flush()
    result = json.loads(sub.stdout.readline())
    sub.wait(10)
    sim.terminate()
    server = json.loads(sim.communicate(timeout=10)[0].strip().splitlines()[-1])
    broker.close()

    wall = t1 - t0
    polls = polls1 - polls0
    agent_cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    served = server["reads"]
    lost = served - result["polls_seen"]
    print(f"poll_interval {args.poll_interval}, synchronous={args.synchronous}, {wall:.1f} s measured")
    print(f"polls/s: {polls / wall:.0f}   ({polls} polls of 100 registers, {polls * 50 / wall:.0f} readings/s)")
    print(
        f"server reads: {served}; polls seen by the subscriber: {result['polls_seen']} "
        f"(counter {result['first']}..{result['last']}, gaps {result['gaps']}, duplicates {result['duplicates']})"
    )
    print(f"lost polls: {lost}   skipped cycles: {skipped}   restarts: {restarts}   bad readings: {result['bad']}")
    print(f"readings emitted {emitted}, received {result['readings']}")
    print(f"agent CPU: {agent_cpu / wall * 100:.0f} % of one core")
    print("other processes: " + ", ".join(f"{k} {(other1[k] - other0[k]) / wall * 100:.0f} %" for k in other1))
    return 0 if lost == 0 and result["gaps"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
