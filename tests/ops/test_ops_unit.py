"""The unit file as systemd itself reads it: exposure score and the settings the agent relies on."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "edge-agent.service"


def _settings() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_exposure_score_is_below_3() -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is not installed (scripts/test installs systemd)")
    result = subprocess.run(
        [analyze, "security", "--offline=yes", "--no-pager", str(UNIT)], capture_output=True, text=True, check=False
    )
    match = re.search(r"Overall exposure level for edge-agent\.service: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) < 3.0, result.stdout


def test_the_contract_with_the_agent() -> None:
    s = _settings()
    assert s["Type"] == ["notify"] and s["NotifyAccess"] == ["main"]
    assert s["WatchdogSec"] and s["Restart"] == ["on-failure"]
    assert s["ExecReload"][-1] == "/bin/kill -HUP $MAINPID"
    assert s["RestartPreventExitStatus"] == ["2"]  # `edge-agent run` exits 2 on an invalid config
    assert s["User"] == ["edge-agent"] and s["SupplementaryGroups"] == ["dialout video"]
    assert s["StateDirectory"] == ["edge-agent"] and s["ConfigurationDirectory"] == ["edge-agent"]
    assert "/etc/edge-agent/config.yaml" in s["ExecStart"][0]
    # ${credential:mqtt-password} and ${CREDENTIALS_DIRECTORY}/tls-key in config.yaml.
    assert s["LoadCredential"] == ["mqtt-password:edge-agent.mqtt-password", "tls-key:edge-agent.tls-key"]
    # Serial ports and cameras stay reachable.
    assert "PrivateDevices" not in s and s["DevicePolicy"] == ["closed"]
    assert {"char-ttyUSB rw", "char-ttyACM rw", "char-ttyS rw", "char-video4linux rw"} <= set(s["DeviceAllow"])
