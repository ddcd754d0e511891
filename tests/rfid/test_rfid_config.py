"""The issue's YAML shape is accepted; mistakes are reported with file:line, device and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.rfid import RfidConfig, RfidDriver
from edge_agent.config import ConfigError, parse_config
from edge_agent.registry import load_driver

HEAD = """\
gateway: {id: gw-1, site: dc-1}
mqtt: {host: 127.0.0.1}
buffer: {path: /tmp/rfid-config-test.db}
devices:
"""

ISSUE_SHAPE = """\
  - id: door-5-rfid
    driver: rfid
    protocol: r2000            # r2000 | m100 | thingmagic
    port: /dev/ttyUSB1
    baudrate: 115200
    report: presence           # presence | every_read
    absent_after: 2s
"""


def test_registered_under_the_entry_point() -> None:
    assert load_driver("rfid") is RfidDriver
    assert RfidDriver.config_model is RfidConfig


def test_the_issue_shape_is_accepted() -> None:
    loaded = parse_config(HEAD + ISSUE_SHAPE, "gw.yaml")
    (device,) = loaded.devices
    assert isinstance(device, RfidConfig)
    assert device.protocol == "r2000" and device.port == "/dev/ttyUSB1" and device.baudrate == 115200
    assert device.report == "presence" and device.absent_after == 2.0
    assert device.antennas == [1] and device.update_every is None
    assert device.claims() == {"serial:/dev/ttyUSB1": None}


def test_extended_keys() -> None:
    text = HEAD + (
        "  - {id: tunnel, driver: rfid, protocol: r2000, port: /dev/ttyUSB2, antennas: [1, 2, 3, 4],\n"
        "     power_dbm: 30, session: 1, target: B, update_every: 10s, per_antenna: true, min_rssi: -70}\n"
        "  - {id: desk, driver: rfid, protocol: m100, port: /dev/ttyUSB3, report: every_read, power_dbm: 20.5}\n"
        "  - {id: dock, driver: rfid, protocol: thingmagic, port: /dev/ttyUSB4, region: 8, cycle: 200ms}\n"
    )
    tunnel, desk, dock = parse_config(text, "gw.yaml").devices
    assert isinstance(tunnel, RfidConfig) and tunnel.antennas == [1, 2, 3, 4] and tunnel.session == 1
    assert isinstance(desk, RfidConfig) and desk.power_dbm == 20.5 and desk.report == "every_read"
    assert isinstance(dock, RfidConfig) and dock.cycle == 0.2 and dock.region == 8


@pytest.mark.parametrize(
    ("entry", "line", "field", "message"),
    [
        ("protocol: r3000", 8, "protocol", "'r2000', 'm100' or 'thingmagic'"),
        ("absent_after: soon", 9, "absent_after", "not a duration"),
        ("antena: [1]", 9, "antena", "did you mean 'antennas'"),
        ("antennas: [5]", 9, "antennas", "antenna ports 1-4"),
        ("antennas: [1, 1]", 9, "antennas", "each antenna port once"),
        ("power_dbm: 40", 9, "power_dbm", "0-33 dBm"),
        ("power_dbm: 20.5", 9, "power_dbm", "whole dBm"),
    ],
)
def test_errors_name_line_device_and_field(entry: str, line: int, field: str, message: str) -> None:
    text = (
        HEAD
        + "  - id: door-5-rfid\n    driver: rfid\n    port: /dev/ttyUSB1\n"
        + (f"    protocol: r2000\n    {entry}\n" if not entry.startswith("protocol") else f"    {entry}\n")
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "gw.yaml")
    (issue,) = caught.value.issues
    assert issue.line == line and issue.device == "devices[0] (door-5-rfid)" and issue.field == field
    assert message in str(issue)


def test_two_readers_on_one_port_is_an_error() -> None:
    text = HEAD + ISSUE_SHAPE + ISSUE_SHAPE.replace("door-5-rfid", "door-6-rfid")
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "gw.yaml")
    (issue,) = caught.value.issues
    assert issue.field == "port" and "already used by devices[0] (door-5-rfid)" in str(issue)


def test_m100_has_one_antenna_and_thingmagic_needs_absent_after_over_two_cycles() -> None:
    with pytest.raises(ValueError, match="antenna ports 1-1"):
        RfidConfig.model_validate({"id": "x", "protocol": "m100", "port": "/dev/x", "antennas": [1, 2]})
    with pytest.raises(ValueError, match="two read cycles"):
        RfidConfig.model_validate({"id": "x", "protocol": "thingmagic", "port": "/dev/x", "absent_after": "400ms"})


def test_sample_readme_and_example_gateway_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path(__file__).resolve().parents[2]
    sample = (root / "drivers" / "rfid" / "sample.yaml").read_text()
    example = (root / "config" / "rfid.yaml").read_text()
    assert example.endswith(sample)
    assert sample in (root / "drivers" / "rfid" / "README.md").read_text()
    assert "drivers/rfid/README.md" in example
    (tmp_path / "mqtt-password").write_text("secret\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    devices = parse_config(example, "config/rfid.yaml").devices
    assert [d.id for d in devices] == ["door-5-rfid", "tunnel-2-rfid", "desk-3-rfid", "gate-1-rfid"]
    assert all(isinstance(d, RfidConfig) for d in devices)


def test_commands_the_hub_may_send() -> None:
    text = (
        HEAD
        + ISSUE_SHAPE
        + (
            "    commands:\n"
            "      - {name: start, action: start_inventory}\n"
            "      - {name: stop, action: stop_inventory, min_interval: 1s}\n"
            "      - {name: power, write: power_dbm, min: 10, max: 30}\n"
        )
    )
    (device,) = parse_config(text, "gw.yaml").devices
    assert [c.name for c in device.commands] == ["start", "stop", "power"]


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("{name: tare, action: tare}", "actions are start_inventory and stop_inventory"),
        ("{name: freq, write: frequency, min: 1, max: 2}", "only writable point is power_dbm"),
        ("{name: power, write: power_dbm, min: 10, max: 40}", "0-33 dBm (got 40"),
        ("{name: power, write: power_dbm, values: [20, 20.5]}", "whole dBm"),
    ],
)
def test_commands_that_do_not_fit_a_reader(command: str, message: str) -> None:
    text = HEAD + ISSUE_SHAPE + f"    commands:\n      - {command}\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "gw.yaml")
    assert message in str(caught.value)
