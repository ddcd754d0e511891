"""Readings from a simulated device reach a real broker's subscriber, complete and in order."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.agent import Agent
from edge_agent.broker import LocalBroker
from tests.helpers import Subscriber, agent_config, wait_until


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_round_trip_in_order_without_gaps(tmp_path: Path, broker: LocalBroker, protocol: str) -> None:
    sub = Subscriber(broker.port, "warehouse/#")
    devices = [{"id": "sim-1", "driver": "simulated", "rate": 2000, "max_readings": 3000}]
    agent = Agent(agent_config(tmp_path, broker.port, devices, mqtt={"protocol": protocol}))
    agent.start()
    try:
        wait_until(lambda: len(sub.readings) >= 3000, 15, what="3000 readings")
    finally:
        agent.stop()
        sub.close()
    seqs = sub.seqs()
    assert seqs == list(range(1, 3001))
    first = sub.readings[0]
    assert first["id"] == "gw-test-01:1"
    assert first["device"] == "sim-1" and first["kind"] == "counter" and first["quality"] == "good"
    assert [r["value"] for r in sub.readings] == list(range(3000))
    assert first["ts"].endswith("Z") and len(first["ts"]) == len("2026-01-01T00:00:00.000Z")
    online = sub.on_topic("/status")
    assert online[0]["state"] == "online" and online[0]["config_hash"] == agent.loaded.config_hash
    assert agent.outbox.depth == 0
