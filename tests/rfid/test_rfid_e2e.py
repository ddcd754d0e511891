"""End to end: the R2000 simulator on a pty → RFID driver → Agent (outbox) → real Mosquitto."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from drivers.rfid.simulator import ReaderSimulator, SimTag
from edge_agent.agent import Agent
from edge_agent.broker import LocalBroker
from tests.helpers import Subscriber, agent_config, wait_until
from tests.rfid.rfid_support import TID, tags

PREFIX = "warehouse/test-site/gw-test-01"


def test_presence_readings_reach_the_broker(tmp_path: Path, broker: LocalBroker) -> None:
    pallet = tags(3, rssi=-58)
    sim = ReaderSimulator("r2000", [*pallet, SimTag(TID, -66)], reads_per_second=600).start()
    sub = Subscriber(broker.port, "warehouse/#")
    device = {
        "id": "door-5-rfid",
        "driver": "rfid",
        "protocol": "r2000",
        "port": sim.port,
        "baudrate": 115200,
        "report": "presence",
        "absent_after": "500ms",
    }
    agent = Agent(agent_config(tmp_path, broker.port, [device]))
    agent.start()
    try:
        wait_until(lambda: len(sub.readings) >= 4, 15, what="four arrivals")
        sim.set_tags(pallet)
        wait_until(lambda: any(r.get("event") == "departed" for r in sub.readings), 15, what="a departure")
    finally:
        agent.stop()
        sim.stop()
        sub.close()
    readings = sub.readings
    assert [r["seq"] for r in readings] == list(range(1, len(readings) + 1))
    arrivals = [r for r in readings if r["event"] == "arrived"]
    assert sorted(r["value"] for r in arrivals) == sorted([t.epc.hex().upper() for t in pallet] + [TID.hex().upper()])
    first = next(r for r in arrivals if r["value"] == pallet[0].epc.hex().upper())
    assert first["device"] == "door-5-rfid" and first["kind"] == "tag" and first["quality"] == "good"
    assert first["id"] == f"gw-test-01:{first['seq']}"
    assert first["epc"] == {
        "scheme": "sgtin-96",
        "uri": "urn:epc:id:sgtin:0614141.812345.1",
        "gs1": "(01)80614141123458(21)1",
    }
    assert first["antenna"] == 1 and first["antennas"] == [1] and first["count"] == 1
    assert -61 <= first["rssi"] <= -55
    assert first["first_seen"] == first["last_seen"] == first["ts"]
    (departed,) = [r for r in readings if r["event"] == "departed" and r["quality"] == "good"]
    assert departed["value"] == TID.hex().upper() and "epc" not in departed and departed["count"] >= 1
    assert departed["first_seen"] <= departed["last_seen"] < departed["ts"]
    status = sub.on_topic("/devices/door-5-rfid/status")
    assert status and status[0]["state"] == "connected"


def test_hub_commands_reach_the_reader(tmp_path: Path, broker: LocalBroker) -> None:
    """start/stop inventory and power through the command router: MQTT in, reply out."""
    sim = ReaderSimulator("m100", [SimTag(TID, -60)], reads_per_second=200).start()
    replies = Subscriber(broker.port, f"{PREFIX}/cmd/#")
    readings = Subscriber(broker.port, f"{PREFIX}/readings/#")
    hub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="rfid-test-hub", protocol=mqtt.MQTTv5)
    hub.connect("127.0.0.1", broker.port)
    hub.loop_start()
    device = {
        "id": "desk-3-rfid",
        "driver": "rfid",
        "protocol": "m100",
        "port": sim.port,
        "inventory": False,
        "absent_after": "300ms",
        "commands": [
            {"name": "start", "action": "start_inventory"},
            {"name": "stop", "action": "stop_inventory"},
            {"name": "power", "write": "power_dbm", "min": 10, "max": 26},
        ],
    }
    agent = Agent(agent_config(tmp_path, broker.port, [device]))
    agent.start()

    def command(name: str, request_id: str, **body: object) -> dict[str, Any]:
        hub.publish(f"{PREFIX}/cmd/desk-3-rfid/{name}", orjson.dumps({"id": request_id, **body}), qos=1)

        def reply() -> dict[str, Any] | None:
            found = [r for r in replies.on_topic(f"/cmd/desk-3-rfid/{name}/reply") if r.get("id") == request_id]
            return found[0] if found else None

        return wait_until(reply, 15, what=f"reply to {request_id}")  # type: ignore[no-any-return]

    try:
        wait_until(lambda: agent.supervisor.runners["desk-3-rfid"].ctx.state == "connected", 15, what="connected")
        assert readings.readings == [] and not sim.inventory_active
        assert command("start", "r1") == {"id": "r1", "ok": True, "result": {"inventory": True, "connected": True}}
        wait_until(lambda: [r["event"] for r in readings.readings] == ["arrived"], 15, what="an arrival")
        assert command("power", "r2", value=18.5) == {"id": "r2", "ok": True, "result": {"power_dbm": 18.5}}
        assert sim.power_dbm == 18.5
        refused = command("power", "r3", value=29)
        assert refused["ok"] is False and "29" in refused["error"]
        assert command("stop", "r4")["ok"] is True
        wait_until(lambda: [r["event"] for r in readings.readings] == ["arrived", "departed"], 15, what="departure")
        assert not sim.inventory_active
    finally:
        agent.stop()
        hub.loop_stop()
        hub.disconnect()
        replies.close()
        readings.close()
        sim.stop()
