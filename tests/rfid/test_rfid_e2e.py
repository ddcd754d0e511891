"""End to end: the R2000 simulator on a pty → RFID driver → Agent (outbox) → real Mosquitto."""

from __future__ import annotations

from pathlib import Path

from drivers.rfid.simulator import ReaderSimulator, SimTag
from edge_agent.agent import Agent
from edge_agent.broker import LocalBroker
from tests.helpers import Subscriber, agent_config, wait_until
from tests.rfid.rfid_support import TID, tags


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
