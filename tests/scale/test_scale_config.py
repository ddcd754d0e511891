"""The device entry: the issue's shape, every error at once with file:line, the example files."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.scale.config import ScaleConfig
from edge_agent.config import ConfigError, load_config, parse_config

HEAD = """gateway:
  id: gw-test
  site: test
mqtt:
  host: 127.0.0.1
buffer:
  path: /tmp/unused.db
devices:
"""

ISSUE_SHAPE = """  - id: pack-scale-1
    driver: scale
    protocol: mt-sics          # mt-sics | toledo | sma | ascii (ascii takes a `pattern:` regex)
    port: /dev/ttyUSB0
    baudrate: 9600             # bytesize, parity, stopbits as pyserial names them
    mode: poll                 # poll (send a command) | listen (continuous stream)
    poll_interval: 200ms
    report: every              # every | stable | events
"""

ROOT = Path(__file__).resolve().parents[2]


def errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(HEAD + text, "config.yaml")
    return [str(issue) for issue in info.value.issues]


def test_the_issue_shape_is_accepted() -> None:
    device = parse_config(HEAD + ISSUE_SHAPE).devices[0]
    assert isinstance(device, ScaleConfig)
    assert (device.protocol, device.port, device.baudrate, device.effective_mode) == (
        "mt-sics",
        "/dev/ttyUSB0",
        9600,
        "poll",
    )
    assert device.poll_interval == 0.2 and device.report == "every" and device.request == "SI"
    assert device.claims() == {"serial:/dev/ttyUSB0": None}
    assert (device.bytesize, device.parity, device.stopbits) == (8, "N", 1)


def test_defaults_per_protocol() -> None:
    toledo = parse_config(HEAD + "  - {id: t, driver: scale, protocol: toledo, port: /dev/ttyS0}\n").devices[0]
    assert isinstance(toledo, ScaleConfig) and toledo.effective_mode == "listen"
    sma = parse_config(HEAD + "  - {id: s, driver: scale, protocol: sma, port: /dev/ttyS0}\n").devices[0]
    assert isinstance(sma, ScaleConfig) and sma.effective_mode == "poll" and sma.request == "W"


def test_a_typo_is_an_error_with_line_and_suggestion() -> None:
    assert errors(ISSUE_SHAPE.replace("baudrate:", "baudrat:")) == [
        "config.yaml:13 devices[0] (pack-scale-1) baudrat: unknown key 'baudrat'; did you mean 'baudrate'?"
    ]


def test_inconsistent_entries_are_explained() -> None:
    text = ISSUE_SHAPE.replace("protocol: mt-sics", "protocol: toledo").replace("report: every", "report: events")
    (message,) = errors(text + "    pattern: 'x'\n")
    assert "devices[0] (pack-scale-1)" in message
    assert "`pattern:` only applies to protocol ascii" in message
    assert "toledo is a continuous output: use mode: listen" in message
    assert "report: events needs `min_weight:`" in message


def test_ascii_needs_a_usable_pattern() -> None:
    base = "  - {id: a, driver: scale, protocol: ascii, port: /dev/ttyS0, mode: listen"
    assert "needs either `pattern:` or `preset:`" in errors(base + "}\n")[0]
    assert "(?P<weight>" in errors(base + ", pattern: '(\\d+) kg'}\n")[0]
    assert "poll_command" in errors(base.replace("listen", "poll") + ", preset: cas}\n")[0]
    ok = parse_config(HEAD + base + ", preset: rice-lake}\n").devices[0]
    assert isinstance(ok, ScaleConfig) and ok.profile().units["L"] == "lb"


def test_bad_values_are_reported_all_at_once() -> None:
    text = ISSUE_SHAPE.replace("poll_interval: 200ms", "poll_interval: fast").replace("9600", "-1")
    text = text.replace("report: every", "report: sometimes")
    found = errors(text)
    assert len(found) == 3
    assert any("poll_interval" in e and "not a duration" in e for e in found)
    assert any("baudrate" in e for e in found) and any("report" in e for e in found)


def test_two_scales_on_one_port_conflict() -> None:
    second = ISSUE_SHAPE.replace("pack-scale-1", "pack-scale-2")
    (message,) = errors(ISSUE_SHAPE + second)
    assert "pack-scale-2" in message and "/dev/ttyUSB0" in message


def test_the_example_config_and_sample_are_valid_and_in_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mqtt-password").write_text("secret\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    loaded = load_config(ROOT / "config" / "scale.yaml")
    assert [d.id for d in loaded.devices] == ["pack-scale-1", "dock3-scale", "ship-scale-2", "cas-scale-4"]
    assert all(isinstance(d, ScaleConfig) for d in loaded.devices)
    sample = (ROOT / "drivers" / "scale" / "sample.yaml").read_text()
    assert (ROOT / "config" / "scale.yaml").read_text().endswith(sample)
    assert sample in (ROOT / "drivers" / "scale" / "README.md").read_text()
