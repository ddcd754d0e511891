"""The configuration shape of the issue is accepted as written; mistakes are reported per field."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.modbus import ModbusConfig
from edge_agent.config import ConfigError, load_config, parse_config

HEAD = """\
gateway: {id: gw-1, site: site-1}
buffer: {path: /tmp/unused.db}
"""

ISSUE_SHAPE = """\
devices:
  - id: line1-plc
    driver: modbus
    transport: tcp            # tcp | rtu
    host: 127.0.0.1
    port: 5020
    unit: 1
    poll_interval: 100ms
    timeout: 500ms
    points:
      - name: parcels_total
        table: holding        # holding | input | coil | discrete
        address: 0            # 0-based register/coil address
        type: uint32          # int16 uint16 int32 uint32 int64 uint64 float32 float64 string bool
        order: ABCD           # ABCD (default) | CDAB | BADC | DCBA  (32/64-bit byte and word order)
      - name: belt_speed
        table: input
        address: 10
        type: float32
        order: CDAB
        scale: 0.1            # value = raw * scale + offset
        offset: 0
        unit: m/s
        deadband: 0.05        # publish only on change beyond this (absolute), or '2%'
        max_age: 30s          # ... but at least this often
      - name: label
        table: holding
        address: 20
        type: string
        length: 8             # registers
  - id: dock-door-5
    driver: modbus
    transport: rtu
    port: /dev/ttyUSB0        # several RTU devices may share one port with different units
    baudrate: 19200
    parity: N
    unit: 7
    poll_interval: 500ms
    points:
      - {name: door_open, table: discrete, address: 0}
"""


def test_the_shape_of_the_issue_is_accepted() -> None:
    loaded = parse_config(HEAD + ISSUE_SHAPE)
    plc, door = loaded.devices
    assert isinstance(plc, ModbusConfig) and isinstance(door, ModbusConfig)
    assert plc.poll_interval == pytest.approx(0.1) and plc.timeout == pytest.approx(0.5)
    speed = plc.points[1]
    assert speed.order == "CDAB" and speed.scale == 0.1 and speed.unit == "m/s"
    assert speed.deadband is not None and speed.deadband.amount == 0.05 and not speed.deadband.percent
    assert speed.max_age == 30.0
    assert plc.points[2].register_count == 8
    assert plc.claims() == {}
    assert door.claims() == {"serial:/dev/ttyUSB0": "modbus-rtu:19200:8N1"}
    assert door.points[0].value_type == "bool"


def test_the_example_config_for_technicians_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mqtt-password").write_text("secret\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    root = Path(__file__).resolve().parents[2]
    example = (root / "config" / "modbus.yaml").read_text()
    loaded = load_config(root / "config" / "modbus.yaml")
    assert len(loaded.devices) == 3 and all(isinstance(d, ModbusConfig) for d in loaded.devices)
    # The sample is the single source: config/ and the README carry it verbatim.
    sample = (root / "drivers" / "modbus" / "sample.yaml").read_text()
    assert example.endswith(sample)
    assert sample in (root / "drivers" / "modbus" / "README.md").read_text()
    assert all(isinstance(d, ModbusConfig) for d in parse_config(HEAD + sample).devices)


def test_percentage_deadband() -> None:
    text = ISSUE_SHAPE.replace("deadband: 0.05 ", "deadband: '2%'")
    speed = parse_config(HEAD + text).devices[0].points[1]  # type: ignore[attr-defined]
    assert speed.deadband.percent and speed.deadband.amount == 2.0
    assert speed.deadband.exceeded(100.0, 102.5) and not speed.deadband.exceeded(100.0, 101.9)


def test_units_on_one_bus_share_the_port_only_with_equal_line_settings() -> None:
    second = """\
  - id: dock-door-6
    driver: modbus
    transport: rtu
    port: /dev/ttyUSB0
    baudrate: 19200
    parity: N
    unit: 8
    points:
      - {name: door_open, table: discrete, address: 0}
"""
    assert len(parse_config(HEAD + ISSUE_SHAPE + second).devices) == 3
    with pytest.raises(ConfigError) as err:
        parse_config(HEAD + ISSUE_SHAPE + second.replace("baudrate: 19200", "baudrate: 9600"))
    assert "dock-door-6" in str(err.value)
    assert "/dev/ttyUSB0 already used by devices[1] (dock-door-5)" in str(err.value)
    assert "same line settings" in str(err.value)


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (("type: string\n        length: 8", "type: string"), "points", "needs `length`"),
        (("address: 20", "address: 70000"), "points[2].address", "less than or equal to 65535"),
        (("type: uint32 ", "type: uint33 "), "points[0].type", "uint32"),
        (("order: CDAB", "order: CBAD"), "points[1].order", "ABCD"),
        (("    host: 127.0.0.1\n", ""), "", "needs `host`"),
        (("unit: 7", "unit: 0"), "", "1-247"),
        (("deadband: 0.05 ", "deadband: lots "), "points[1].deadband", "not a deadband"),
        (("table: input", "table: inputs"), "points[1].table", "holding"),
        (("max_age: 30s", "max_age: soon"), "points[1].max_age", "not a duration"),
        (("unit: m/s", "units: m/s"), "points[1].units", "did you mean 'unit'"),
    ],
)
def test_mistakes_name_the_device_and_field(change: tuple[str, str], field: str, message: str) -> None:
    old, new = change
    assert old in ISSUE_SHAPE
    with pytest.raises(ConfigError) as err:
        parse_config(HEAD + ISSUE_SHAPE.replace(old, new, 1))
    text = str(err.value)
    assert "devices[0] (line1-plc)" in text or "devices[1] (dock-door-5)" in text
    assert field in text and message in text, text


def test_bit_points_and_table_types_are_consistent() -> None:
    def make(point: dict[str, object]) -> ModbusConfig:
        return ModbusConfig.model_validate(
            {"id": "p", "driver": "modbus", "host": "127.0.0.1", "points": [{"name": "x", **point}]}
        )

    assert make({"table": "holding", "address": 3, "bit": 4}).points[0].value_type == "bool"
    for bad in (
        {"table": "coil", "address": 0, "type": "uint16"},
        {"table": "coil", "address": 0, "bit": 1},
        {"table": "holding", "address": 0, "type": "int32", "bit": 1},
        {"table": "holding", "address": 65535, "type": "uint32"},
        {"table": "holding", "address": 0, "type": "string", "length": 2, "scale": 2},
    ):
        with pytest.raises(ValueError):
            make(bad)


def test_commands_write_writable_points_with_values_that_fit() -> None:
    def check(command: dict[str, object]) -> str:
        try:
            ModbusConfig.model_validate(
                {
                    "id": "p",
                    "driver": "modbus",
                    "host": "127.0.0.1",
                    "points": [
                        {"name": "speed", "table": "holding", "address": 5, "scale": 0.001, "unit": "m/s"},
                        {"name": "run", "table": "coil", "address": 0},
                        {"name": "temp", "table": "input", "address": 1, "type": "int16"},
                        {"name": "label", "table": "holding", "address": 20, "type": "string", "length": 2},
                    ],
                    "commands": [{"name": "c", **command}],
                }
            )
        except ValueError as err:
            return str(err)
        return "ok"

    assert check({"write": "speed", "min": 0, "max": 2.5}) == "ok"
    assert check({"write": "run", "values": [True, False]}) == "ok"
    assert check({"write": "label", "values": ["AB", "CD"]}) == "ok"
    assert "no point named 'sped'" in check({"write": "sped", "min": 0, "max": 1})
    assert "read-only input table" in check({"write": "temp", "min": 0, "max": 1})
    assert "cannot be written" in check({"write": "speed", "min": 0, "max": 70})  # 70000 > uint16
    assert "not min/max" in check({"write": "run", "min": 0, "max": 1})
    assert check({"write": "run", "values": [1, 0]}) == "ok"  # coils as PLC engineers write them
    assert "is a bool" in check({"write": "run", "values": [2]})
    assert "no action 'tare'" in check({"action": "tare"})
