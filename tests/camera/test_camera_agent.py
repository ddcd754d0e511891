"""End to end: the camera driver inside a real Agent, readings received from a real Mosquitto."""

from __future__ import annotations

import shutil
from pathlib import Path

from edge_agent.agent import Agent
from edge_agent.broker import LocalBroker
from tests.camera.common import samples
from tests.helpers import Subscriber, agent_config, wait_until


def test_folder_of_real_label_photos_reaches_the_broker_once_per_label(tmp_path: Path, broker: LocalBroker) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    gs1 = next(s for s in samples("datamatrix") if s.path.name == "gs1-figure-4.15.1-2-32x32.png")
    code = next(s for s in samples("code128") if s.folder == "code128-1" and s.path.name == "2.webp")
    # The same label in three consecutive frames, then another label: two readings.
    for i, sample in enumerate([gs1, gs1, gs1, code]):
        shutil.copy(sample.path, folder / f"{i:03d}{sample.path.suffix}")
    device = {
        "id": "dock-cam-1",
        "driver": "camera",
        "source": str(folder) + "/",
        "formats": ["code128", "datamatrix"],
        "fps": 20,
        "dedupe_window": "5s",
    }
    sub = Subscriber(broker.port, "warehouse/#")
    agent = Agent(agent_config(tmp_path, broker.port, [device]))
    agent.start()
    try:
        wait_until(lambda: len(sub.readings) >= 2, 20, what="two barcode readings")
        wait_until(lambda: sub.on_topic("/devices/dock-cam-1/status"), 10, what="device status")
    finally:
        agent.stop()
        sub.close()
    assert len(sub.readings) == 2
    dm, c128 = sub.readings
    assert dm["device"] == "dock-cam-1" and dm["kind"] == "barcode" and dm["quality"] == "good"
    assert dm["id"].startswith("gw-test-01:") and dm["ts"].endswith("Z")
    assert dm["symbology"] == "datamatrix" and dm["symbology_identifier"] == "]d2"
    assert dm["gs1"]["gtin"] == "09504000059101" and dm["gs1"]["expiry"] == "2014-11-20"
    assert dm["image"] == "000.png"
    assert set(dm["position"]) == {"x", "y", "width", "height", "corners", "angle"}
    assert c128["symbology"] == "code128" and c128["value"] == code.text and "gs1" not in c128
    status = sub.on_topic("/devices/dock-cam-1/status")
    assert status[0]["state"] == "connected"
