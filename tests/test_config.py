"""Configuration: the issue's file is accepted as is; every error is reported at once, located."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent.cli import default_config_text
from edge_agent.config import ConfigError, parse_config

ISSUE_EXAMPLE = """\
gateway:
  id: gw-test-01
  site: hezhou-dc1
mqtt:
  host: 127.0.0.1
  port: 1883
buffer:
  path: /tmp/edge-agent-test/buffer.db
  max_size: 64MB
  when_full: drop_oldest      # or reject_new
devices:
  - id: sim-1
    driver: simulated
    rate: 2000                # readings per second
"""


def errors_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "config.yaml")
    return [str(issue) for issue in info.value.issues]


def test_issue_example_is_accepted_as_is() -> None:
    loaded = parse_config(ISSUE_EXAMPLE, "config.yaml")
    cfg = loaded.agent
    assert cfg.gateway.id == "gw-test-01"
    assert cfg.buffer.max_size == 64_000_000
    assert cfg.buffer.when_full == "drop_oldest"
    assert cfg.mqtt.protocol == "5" and cfg.mqtt.qos == 1
    assert cfg.topic_prefix == "warehouse/hezhou-dc1/gw-test-01"
    assert [d.id for d in loaded.devices] == ["sim-1"]
    assert loaded.devices[0].rate == 2000  # type: ignore[attr-defined]


def test_embedded_default_is_valid() -> None:
    assert parse_config(default_config_text(), "default").devices


def test_optional_mqtt_keys() -> None:
    text = ISSUE_EXAMPLE.replace(
        "  port: 1883\n",
        "  port: 8883\n  protocol: 3.1.1\n  client_id: gw1\n  username: gw\n  password: s3cret\n"
        "  tls: {ca: /etc/ssl/ca.pem, cert: /etc/edge/c.pem, key: /etc/edge/c.key, insecure: false}\n"
        "  keepalive: 45s\n  topic_prefix: dc1/gw1\n  qos: 1\n",
    )
    mqtt = parse_config(text).agent.mqtt
    assert mqtt.protocol == "3.1.1" and mqtt.keepalive == 45.0 and mqtt.topic_prefix == "dc1/gw1"
    assert mqtt.password is not None and mqtt.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(mqtt)  # secrets never appear in logs or reprs


def test_typo_wrong_type_duplicate_and_missing_section_all_reported_with_lines() -> None:
    text = """\
gateway:
  id: gw1
  site: dc1
mqtt:
  hots: 127.0.0.1
  port: eighty
devices:
  - id: sim-1
    driver: simulated
    rate: 10
  - id: sim-1
    driver: simulated
    rat: 5
"""
    errors = errors_of(text)
    assert "config.yaml:1: buffer: required key missing" in errors or any(
        e.startswith("config.yaml:1 buffer") for e in errors
    ), errors
    assert "config.yaml:5 mqtt.hots: unknown key 'hots'; did you mean 'host'?" in errors
    assert any(e.startswith("config.yaml:6 mqtt.port: Input should be a valid integer") for e in errors), errors
    assert "config.yaml:11 devices[1] (sim-1) id: duplicate device id, already used by devices[0] (sim-1)" in errors
    assert "config.yaml:13 devices[1] (sim-1) rat: unknown key 'rat'; did you mean 'rate'?" in errors
    assert len(errors) == 5


def test_values_out_of_range_and_unknown_driver() -> None:
    text = ISSUE_EXAMPLE.replace("when_full: drop_oldest", "when_full: drop_newest").replace(
        "    rate: 2000", "    rate: -5\n  - id: cam/1\n    driver: teleporter"
    )
    errors = errors_of(text)
    assert any("config.yaml:10 buffer.when_full: Input should be 'drop_oldest' or 'reject_new'" in e for e in errors)
    assert any(e.startswith("config.yaml:14 devices[0] (sim-1) rate: Input should be greater than 0") for e in errors)
    assert any("devices[1] (cam/1) driver: unknown driver 'teleporter'" in e for e in errors), errors


def test_device_id_must_be_a_topic_segment() -> None:
    errors = errors_of(ISSUE_EXAMPLE.replace("id: sim-1", "id: 'dock+1'"))
    assert any("devices[0] (dock+1) id: value error" in e.lower() or "must not contain '+'" in e for e in errors)


@pytest.mark.parametrize(
    ("written", "seconds"), [("200ms", 0.2), ("2s", 2.0), ("5m", 300.0), ("1.5h", 5400.0), (3, 3.0)]
)
def test_durations(written: object, seconds: float) -> None:
    text = ISSUE_EXAMPLE.replace("  port: 1883\n", f"  port: 1883\n  keepalive: {written}\n")
    assert parse_config(text).agent.mqtt.keepalive == seconds


def test_bad_duration_and_size_say_what_is_expected() -> None:
    text = ISSUE_EXAMPLE.replace("max_size: 64MB", "max_size: 64 parsecs").replace(
        "  port: 1883\n", "  port: 1883\n  keepalive: soon\n"
    )
    errors = errors_of(text)
    assert any("mqtt.keepalive: 'soon' is not a duration: expected e.g. 200ms, 2s, 5m, 1h" in e for e in errors)
    assert any("buffer.max_size: '64 parsecs' is not a size: expected e.g. 64MB, 512MiB, 2GB" in e for e in errors)


def test_env_file_and_credential_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "mqtt-user").write_text("from-credential")
    monkeypatch.setenv("EA_HOST", "127.0.0.2")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    text = ISSUE_EXAMPLE.replace(
        "  host: 127.0.0.1\n",
        f"  host: ${{EA_HOST}}\n  password: ${{file:{secret}}}\n  username: ${{credential:mqtt-user}}\n"
        "  client_id: ${EA_UNSET:-fallback}\n",
    )
    mqtt = parse_config(text).agent.mqtt
    assert mqtt.host == "127.0.0.2"
    assert mqtt.password is not None and mqtt.password.get_secret_value() == "from-file"
    assert mqtt.username == "from-credential"
    assert mqtt.client_id == "fallback"


def test_missing_env_var_is_an_error_with_its_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EA_MISSING", raising=False)
    errors = errors_of(ISSUE_EXAMPLE.replace("  host: 127.0.0.1", "  host: ${EA_MISSING}"))
    assert errors == ["config.yaml:5 mqtt.host: environment variable EA_MISSING is not set"]


def test_invalid_yaml_is_located() -> None:
    errors = errors_of("gateway:\n  id: [unclosed\n")
    assert len(errors) == 1 and errors[0].startswith("config.yaml:") and "not valid YAML" in errors[0]


def test_topic_prefix_is_checked() -> None:
    errors = errors_of(ISSUE_EXAMPLE.replace("  port: 1883\n", "  port: 1883\n  topic_prefix: a/#/b\n"))
    assert any("mqtt.topic_prefix" in e and "'#'" in e for e in errors), errors


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "edge_agent.cli", *args]
    return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=60)


def test_cli_validate_exit_codes(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(ISSUE_EXAMPLE)
    result = run_cli("validate", "-c", str(good))
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(ISSUE_EXAMPLE.replace("rate: 2000", "rate: 2000\n    colour: red"))
    result = run_cli("validate", "-c", str(bad))
    assert result.returncode == 1
    assert f"{bad}:15 devices[0] (sim-1) colour: unknown key 'colour'" in result.stderr


def test_cli_schema_lists_drivers_and_validates_keys() -> None:
    result = run_cli("schema")
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    assert schema["additionalProperties"] is False
    assert {"gateway", "mqtt", "buffer", "devices"} <= set(schema["properties"])
    assert "simulated" in schema["properties"]["devices"]["items"]["properties"]["driver"]["enum"]
    assert "SimulatedConfig" in schema["$defs"]


def test_cli_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.startswith("edge-agent ")


def test_one_serial_port_for_two_device_families_is_an_error_but_an_rtu_bus_is_shared() -> None:
    text = """\
gateway: {id: gw1, site: dc1}
buffer: {path: /tmp/x.db}
devices:
  - {id: dock3-rfid, driver: rfid, protocol: r2000, port: /dev/ttyUSB0}
  - {id: dock3-scale, driver: scale, protocol: mt-sics, port: /dev/ttyUSB0}
  - {id: door-1, driver: modbus, transport: rtu, port: /dev/ttyUSB1, unit: 1, parity: N,
     points: [{name: a, table: holding, address: 0}]}
  - {id: door-2, driver: modbus, transport: rtu, port: /dev/ttyUSB1, unit: 2, parity: N,
     points: [{name: a, table: holding, address: 0}]}
"""
    errors = errors_of(text)
    assert errors == [
        "config.yaml:5 devices[1] (dock3-scale) port: /dev/ttyUSB0 already used by devices[0] (dock3-rfid)"
    ]
