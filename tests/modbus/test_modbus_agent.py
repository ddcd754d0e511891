"""End to end: the sample PLC device inside a real Agent, against the conveyor simulator, out over a
real Mosquitto to a subscriber."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import yaml

from drivers.modbus.simulator import ConveyorPlc, TcpSimulator
from edge_agent.agent import Agent
from edge_agent.broker import LocalBroker
from tests.helpers import Subscriber, agent_config, wait_until

SAMPLE = Path(__file__).resolve().parents[2] / "drivers" / "modbus" / "sample.yaml"


def test_sample_plc_readings_reach_the_broker(tmp_path: Path, broker: LocalBroker) -> None:
    plc_device: dict[str, Any] = yaml.safe_load(SAMPLE.read_text())["devices"][0]
    plc = ConveyorPlc()
    with TcpSimulator(plc) as sim:
        plc_device.update(port=sim.port, poll_interval="50ms")
        plc_device["points"].append({"name": "reads", "table": "holding", "address": 2, "type": "uint32"})
        sub = Subscriber(broker.port, "warehouse/#")
        agent = Agent(agent_config(tmp_path, broker.port, [plc_device]))
        agent.start()
        try:
            names = {p["name"] for p in plc_device["points"]}

            def seen() -> set[str]:
                return {r["point"] for r in list(sub.readings)}

            wait_until(lambda: seen() >= names, 20, what="a reading of every point")
            wait_until(lambda: len([r for r in list(sub.readings) if r["point"] == "reads"]) >= 10, 20, what="polls")
        finally:
            agent.stop()
            sub.close()
    readings = list(sub.readings)
    by_point: dict[str, list[dict[str, Any]]] = {}
    for r in readings:
        by_point.setdefault(r["point"], []).append(r)
    first = by_point["belt_speed"][0]
    assert first["device"] == "line1-plc" and first["kind"] == "point" and first["quality"] == "good"
    assert first["value"] == 1.5 and first["unit"] == "m/s"
    assert by_point["label"][0]["value"] == "CONVEYOR LINE 1"
    assert by_point["speed_setpoint"][0]["value"] == 1.5
    assert by_point["run"][0]["value"] is True
    # The server's read counter (+1 per holding request, 3 per poll), read back at every poll: a poll
    # lost anywhere between the device and the subscriber would show as a larger step.
    counts = [r["value"] for r in by_point["reads"]]
    assert {b - a for a, b in itertools.pairwise(counts)} == {3}
    # belt_speed has a deadband and a max_age of 30 s: a constant speed is published once.
    assert len(by_point["belt_speed"]) == 1
    seqs = [r["seq"] for r in readings]
    assert seqs == sorted(seqs)
    status = sub.on_topic("/devices/line1-plc/status")
    assert status and status[0]["state"] == "connected"
