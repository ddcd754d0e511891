"""The technician's probe (`edge-agent probe serial`) and the demo entry point."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.scale import ScaleConfig
from drivers.scale.demo import start
from drivers.scale.simulator import ScaleSimulator
from edge_agent.cli import main
from edge_agent.config import parse_config
from tests.scale.test_scale_config import HEAD


def test_probe_shows_raw_frames_and_the_toledo_reading(capsys: pytest.CaptureFixture[str]) -> None:
    with ScaleSimulator("toledo", interval=0.05, with_checksum=True, settle=0) as sim:
        sim.set_weight(1234.56)
        assert main(["probe", "serial", sim.port, "--seconds", "0.6", "--checksum"]) == 0
    out = capsys.readouterr().out
    assert "02 2c 30 20 31 32 33 34 35 36 30 30 30 30 30 30 0d" in out
    assert "toledo: weight 1234.56 kg, stable, gross, tare 0.0" in out
    summary = [line for line in out.splitlines() if line.startswith(("mt-sics:", "toledo:", "sma:"))]
    assert any(line.startswith("toledo:") and "0 dropped" in line for line in summary)
    assert any(line.startswith("mt-sics: 0 frames understood") for line in summary)


def test_probe_polls_mt_sics(capsys: pytest.CaptureFixture[str]) -> None:
    with ScaleSimulator("mt-sics") as sim:
        args = ["probe", "serial", sim.port, "--protocol", "mt-sics", "--send", "SI", "--interval", "100ms"]
        assert main([*args, "--seconds", "0.5"]) == 0
        assert "SI" in sim.commands
    out = capsys.readouterr().out
    assert "-> b'SI\\r\\n'" in out and "mt-sics: weight 0.0 kg, stable" in out


def test_probe_reports_a_missing_port(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe", "serial", str(tmp_path / "ttyUSB9"), "--seconds", "0.1"]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_demo_yaml_is_a_valid_device_list(tmp_path: Path) -> None:
    demo = start(tmp_path / "scale")
    try:
        loaded = parse_config(HEAD + demo.yaml)
        assert [d.id for d in loaded.devices] == ["demo-scale-mtsics", "demo-scale-toledo"]
        assert all(isinstance(d, ScaleConfig) and Path(d.port).exists() for d in loaded.devices)
    finally:
        demo.stop()
    assert not (tmp_path / "scale" / "ttyScale-mtsics").exists()
