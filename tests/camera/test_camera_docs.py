"""The example config, the sample and the README stay in step with the config model."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.camera import CameraConfig
from edge_agent.config import load_config
from edge_agent.driver import DeviceConfig

ROOT = Path(__file__).resolve().parents[2]


def test_the_example_config_and_sample_are_valid_and_in_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mqtt-password").write_text("secret\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    loaded = load_config(ROOT / "config" / "camera.yaml")
    assert [d.id for d in loaded.devices] == ["conveyor-cam-1", "induct-cam-2", "pack-cam-3", "replay-cam-4"]
    assert all(isinstance(d, CameraConfig) for d in loaded.devices)
    sample = (ROOT / "drivers" / "camera" / "sample.yaml").read_text()
    assert (ROOT / "config" / "camera.yaml").read_text().endswith(sample)
    assert sample in (ROOT / "drivers" / "camera" / "README.md").read_text()


def test_every_config_key_is_documented() -> None:
    readme = (ROOT / "drivers" / "camera" / "README.md").read_text()
    for name, field in CameraConfig.model_fields.items():
        if name in DeviceConfig.model_fields:  # id, driver and the runtime's own keys
            continue
        assert f"| `{name}` |" in readme, name
        assert field.description, name
