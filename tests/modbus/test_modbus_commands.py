"""A write command from the hub, through the real agent's command router, to the PLC's register."""

from __future__ import annotations

from pathlib import Path

import orjson

from drivers.modbus.simulator import ConveyorPlc, TcpSimulator
from edge_agent.agent import Agent
from edge_agent.broker import LocalBroker
from tests.helpers import Subscriber, agent_config, wait_until


def test_hub_writes_a_setpoint_within_its_allow_list(tmp_path: Path, broker: LocalBroker) -> None:
    plc = ConveyorPlc(animate=False)
    with TcpSimulator(plc) as sim:
        device = {
            "id": "line1-plc",
            "driver": "modbus",
            "host": "127.0.0.1",
            "port": sim.port,
            "poll_interval": "100ms",
            "points": [{"name": "speed_setpoint", "table": "holding", "address": 5, "scale": 0.001, "unit": "m/s"}],
            "commands": [{"name": "set-speed", "write": "speed_setpoint", "min": 0.5, "max": 2.0}],
        }
        sub = Subscriber(broker.port, "warehouse/#")
        agent = Agent(agent_config(tmp_path, broker.port, [device]))
        agent.start()
        try:
            wait_until(lambda: [r for r in list(sub.readings) if r["point"] == "speed_setpoint"], 20, what="reading")
            cmd = "warehouse/test-site/gw-test-01/cmd/line1-plc/set-speed"
            sub.client.publish(cmd, orjson.dumps({"id": "c1", "value": 1.2}), qos=1)
            sub.client.publish(cmd, orjson.dumps({"id": "c2", "value": 5}), qos=1)
            wait_until(lambda: len(sub.on_topic("/set-speed/reply")) >= 2, 20, what="two replies")
            replies = {r["id"]: r for r in sub.on_topic("/set-speed/reply")}
            assert replies["c1"]["ok"] is True and replies["c1"]["result"]["raw"] == [1200]
            assert replies["c2"]["ok"] is False and "above the maximum" in replies["c2"]["error"]
            assert plc.get("holding", 5) == [1200]
            assert plc.count("write holding") == 1  # the refused command never reached the device
            wait_until(
                lambda: [r for r in list(sub.readings) if r["point"] == "speed_setpoint" and r["value"] == 1.2],
                20,
                what="the new setpoint read back",
            )
        finally:
            agent.stop()
            sub.close()
