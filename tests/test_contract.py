"""What the agent publishes matches the JSON Schemas documented in docs/schemas (docs/mqtt.md)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import orjson

from edge_agent.agent import Agent
from edge_agent.broker import LocalBroker
from tests.helpers import Subscriber, agent_config, wait_until

SCHEMAS = Path(__file__).resolve().parents[1] / "docs" / "schemas"


def schema(name: str) -> dict[str, object]:
    data: dict[str, object] = json.loads((SCHEMAS / name).read_text())
    jsonschema.Draft202012Validator.check_schema(data)
    return data


def test_published_messages_match_the_documented_schemas(tmp_path: Path, broker: LocalBroker) -> None:
    sub = Subscriber(broker.port, "warehouse/#")
    devices = [
        {
            "id": "sim-1",
            "driver": "simulated",
            "rate": 200,
            "unit": "kg",
            "commands": [{"name": "reset", "action": "reset"}],
        },
        {"id": "flaky", "driver": "simulated", "rate": 100, "fail_after": 5},
    ]
    agent = Agent(agent_config(tmp_path, broker.port, devices))
    agent.start()
    try:
        wait_until(lambda: len(sub.readings) > 50, 10, what="readings")
        wait_until(lambda: any(s["state"] == "error" for s in sub.on_topic("devices/flaky/status")), 10, what="error")
        agent.forwarder.client.publish("warehouse/test-site/gw-test-01/cmd/sim-1/reset", b'{"id": "c1"}', qos=1)
        wait_until(lambda: sub.on_topic("/cmd/sim-1/reset/reply"), 10, what="command reply")
    finally:
        agent.stop()
        sub.close()
    checked = {"readings": 0, "status": 0, "device": 0, "reply": 0}
    for topic, payload, _ in sub.messages:
        if not payload:
            continue
        body = orjson.loads(payload)
        if "/readings/" in topic:
            jsonschema.validate(body, schema("readings.schema.json"))
            assert topic.endswith("/" + body["device"])
            checked["readings"] += 1
        elif topic.endswith("gw-test-01/status"):
            jsonschema.validate(body, schema("status.schema.json"))
            checked["status"] += 1
        elif "/devices/" in topic:
            jsonschema.validate(body, schema("device-status.schema.json"))
            checked["device"] += 1
        elif topic.endswith("/reply"):
            jsonschema.validate(body, schema("command-reply.schema.json"))
            checked["reply"] += 1
    assert all(checked.values()), checked
    sim_readings = [r for r in sub.readings if r["device"] == "sim-1"]
    assert sim_readings and all(r["unit"] == "kg" for r in sim_readings)
