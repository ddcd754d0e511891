"""Every example config a technician may copy is valid, and the full gateway uses every family."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.config import load_config
from edge_agent.registry import available_drivers

CONFIG = Path(__file__).resolve().parents[1] / "config"


@pytest.fixture(autouse=True)
def credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("mqtt-password", "tls-key"):
        (tmp_path / name).write_text("not-a-real-secret\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))


@pytest.mark.parametrize("path", sorted(CONFIG.glob("*.yaml")), ids=lambda p: p.name)
def test_example_is_valid(path: Path) -> None:
    loaded = load_config(path)
    assert loaded.devices, f"{path.name} has no devices"


def test_full_gateway_example_has_every_device_family() -> None:
    loaded = load_config(CONFIG / "gateway.yaml")
    families = {d.driver for d in loaded.devices}
    assert families == set(available_drivers()) - {"simulated"}
    assert all(d.commands for d in loaded.devices if d.driver != "camera")
