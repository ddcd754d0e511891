"""End to end: scales on ptys → driver in a real Agent → outbox → real Mosquitto → subscriber."""

from __future__ import annotations

from pathlib import Path

from drivers.scale.simulator import ScaleSimulator
from edge_agent.agent import Agent
from edge_agent.broker import LocalBroker
from tests.helpers import Subscriber, agent_config, wait_until


def test_weighing_events_and_stable_weights_reach_the_hub(tmp_path: Path, broker: LocalBroker) -> None:
    sub = Subscriber(broker.port, "warehouse/#")
    with (
        ScaleSimulator("mt-sics", link=tmp_path / "ttyPack", settle=0.1) as pack,
        ScaleSimulator("toledo", link=tmp_path / "ttyDock", settle=0.1, interval=0.05, with_checksum=True) as dock,
    ):
        devices = [
            {
                "id": "pack-scale-1",
                "driver": "scale",
                "protocol": "mt-sics",
                "port": pack.port,
                "mode": "poll",
                "poll_interval": "50ms",
                "report": "events",
                "min_weight": 0.1,
                "zero_band": 0.01,
            },
            {
                "id": "dock-scale",
                "driver": "scale",
                "protocol": "toledo",
                "port": dock.port,
                "checksum": True,
                "report": "stable",
            },
        ]
        agent = Agent(agent_config(tmp_path, broker.port, devices))
        agent.start()
        try:
            wait_until(lambda: len(sub.on_topic("/devices/pack-scale-1/status")) > 0, 15, what="device status")
            pack.set_weight(4.2)
            dock.set_weight(812.5)

            def pack_events() -> list[dict[str, object]]:
                with sub._lock:
                    return [r for r in sub.readings if r["device"] == "pack-scale-1"]

            wait_until(pack_events, 15, what="a weighing event")
            pack.set_weight(0.0)
            polls = len(pack.commands)  # the empty scale must be polled (seen settled) before the next parcel
            wait_until(lambda: len(pack.commands) >= polls + 6, 15, what="polls of the empty scale")
            wait_until(lambda: any(r["value"] == 812.5 for r in list(sub.readings)), 15, what="dock weight")
            pack.set_weight(1.05)
            wait_until(lambda: len(pack_events()) >= 2, 15, what="a second weighing event")
        finally:
            agent.stop()
            sub.close()
    events = pack_events()
    assert [(r["value"], r["unit"], r["stable"], r["event"], r["quality"]) for r in events] == [
        (4.2, "kg", True, "weighed", "good"),
        (1.05, "kg", True, "weighed", "good"),
    ]
    assert events[0]["kind"] == "weight" and str(events[0]["id"]).startswith("gw-test-01:")
    dock_readings = [r for r in sub.readings if r["device"] == "dock-scale"]
    assert dock_readings and all(r["stable"] is True and r["net"] is False for r in dock_readings)
    assert {r["value"] for r in dock_readings} <= {0.0, 812.5}
    statuses = [s["state"] for s in sub.on_topic("/devices/dock-scale/status")]
    assert "connected" in statuses
    seqs = sub.seqs()
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
