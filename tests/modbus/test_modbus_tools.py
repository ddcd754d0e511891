"""The technician probe and the demo hook, against the conveyor simulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.modbus.demo import start
from drivers.modbus.simulator import ConveyorPlc, TcpSimulator
from edge_agent.cli import default_config_text, main
from edge_agent.config import parse_config


def test_probe_prints_registers_decoded_as_each_type(capsys: pytest.CaptureFixture[str]) -> None:
    plc = ConveyorPlc(animate=False)
    plc.set("holding", 30, [0xE979, 0x42F6])  # 123.456f, CDAB
    with TcpSimulator(plc) as sim:
        code = main(["probe", "modbus", "--host", "127.0.0.1", "--port", str(sim.port), "--address", "20",
                     "--count", "12"])  # fmt: skip
        out = capsys.readouterr().out
        assert code == 0
        assert "holding 20-31 of 127.0.0.1" in out
        assert "string:             'CONVEYOR LINE 1.....éyBö'" in out  # label, NULs, the float's bytes
        line = next(x for x in out.splitlines() if x.strip().startswith("CDAB") and "123.456" in x)
        assert line.split()[-1] == "123.456"
        assert main(["probe", "modbus", "--host", "127.0.0.1", "--port", str(sim.port), "--address", "105"]) == 1
        assert "exception 02" in capsys.readouterr().err
        assert main(["probe", "modbus", "--host", "127.0.0.1", "--port", str(sim.port), "--table", "coil",
                     "--count", "3"]) == 0  # fmt: skip
        assert "     0  1 0 0" in capsys.readouterr().out


def test_demo_hook_starts_a_simulator_and_gives_a_valid_device(tmp_path: Path) -> None:
    demo = start(tmp_path)
    try:
        loaded = parse_config(default_config_text() + demo.yaml)
        conveyor = next(d for d in loaded.devices if d.id == "demo-conveyor")
        assert conveyor.driver == "modbus"
    finally:
        demo.stop()
