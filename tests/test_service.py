"""The agent as a service: commands from the hub, metrics, status, reload, secrets."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from drivers.scale.simulator import ScaleSimulator
from edge_agent.agent import Agent
from edge_agent.broker import LocalBroker, free_port
from edge_agent.config import ConfigError, parse_config
from tests.helpers import Subscriber, agent_config, agent_yaml, wait_until

PREFIX = "warehouse/test-site/gw-test-01"


class Hub:
    """The central side: publishes commands, collects replies (MQTT 5, real client)."""

    def __init__(self, port: int) -> None:
        self.replies = Subscriber(port, f"{PREFIX}/cmd/#")
        self.responses = Subscriber(port, "hub/responses/#")
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-hub", protocol=mqtt.MQTTv5)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def send(
        self,
        device: str,
        command: str,
        payload: bytes | dict[str, Any],
        *,
        retain: bool = False,
        response_topic: str | None = None,
    ) -> None:
        body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        props = None
        if response_topic:
            props = Properties(PacketTypes.PUBLISH)
            props.ResponseTopic = response_topic
            props.CorrelationData = b"corr-42"
        info = self.client.publish(f"{PREFIX}/cmd/{device}/{command}", body, qos=1, retain=retain, properties=props)
        info.wait_for_publish(5)

    def reply(self, device: str, command: str, request_id: str) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            for reply in self.replies.on_topic(f"/cmd/{device}/{command}/reply"):
                if reply.get("id") == request_id:
                    return reply
            return None

        return wait_until(find, 15, what=f"reply to {request_id}")  # type: ignore[no-any-return]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
        self.replies.close()
        self.responses.close()


@pytest.fixture
def hub(broker: LocalBroker) -> Any:
    h = Hub(broker.port)
    yield h
    h.close()


def test_commands_are_allowed_by_config_only_and_every_one_is_answered(
    tmp_path: Path, broker: LocalBroker, hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="edge_agent.commands")
    with ScaleSimulator("mt-sics", link=tmp_path / "ttyScale", settle=0.05) as scale:
        devices = [
            {
                "id": "sim-1",
                "driver": "simulated",
                "rate": 100,
                "commands": [{"name": "reset", "action": "reset", "min_interval": "10s"}],
            },
            {
                "id": "pack-scale",
                "driver": "scale",
                "protocol": "mt-sics",
                "port": scale.port,
                "poll_interval": "100ms",
                "commands": [{"name": "tare", "action": "tare"}],
            },
        ]
        agent = Agent(agent_config(tmp_path, broker.port, devices))
        agent.start()
        try:
            wait_until(lambda: agent.supervisor.runners["pack-scale"].ctx.state == "connected", 15, what="scale")
            wait_until(lambda: agent.forwarder.connected, 10, what="broker")
            hub.send("pack-scale", "tare", {"id": "t1"})
            reply = hub.reply("pack-scale", "tare", "t1")
            assert reply["ok"] is True, reply
            assert "T" in scale.commands  # it reached the scale over the serial line

            hub.send("sim-1", "reset", {"id": "r1", "origin": "wms-7"}, response_topic="hub/responses/r1")
            assert hub.reply("sim-1", "reset", "r1")["ok"] is True
            wait_until(lambda: hub.responses.on_topic("hub/responses/r1"), 10, what="MQTT 5 response topic")
            assert hub.responses.on_topic("hub/responses/r1")[0]["id"] == "r1"

            refusals = {
                "r2": ("sim-1", "reset", {"id": "r2"}, "too frequent"),
                "u1": ("nope", "reset", {"id": "u1"}, "unknown device 'nope'"),
                "u2": ("sim-1", "explode", {"id": "u2"}, "command 'explode' is not allowed for device 'sim-1'"),
                "v1": ("pack-scale", "tare", {"id": "v1", "value": 3}, "takes no value"),
            }
            for device, command, payload, _ in refusals.values():
                hub.send(device, command, payload)
            for request_id, (device, command, _, why) in refusals.items():
                reply = hub.reply(device, command, request_id)
                assert reply["ok"] is False and why in reply["error"], reply
            hub.send("sim-1", "reset", b"{not json")
            bad = wait_until(lambda: [r for r in hub.replies.on_topic("/cmd/sim-1/reset/reply") if r["id"] is None], 10)
            assert "malformed JSON" in bad[0]["error"]
            hub.send("pack-scale", "tare", {"id": "ret"}, retain=True)
            assert "retained commands are ignored" in hub.reply("pack-scale", "tare", "ret")["error"]
            assert scale.commands.count("T") == 1  # refused commands changed nothing
        finally:
            agent.stop()
    logged = caplog.text
    assert "Command sim-1/reset id='r1' from wms-7: done" in logged
    assert "Command nope/reset id='u1' from hub: refused: unknown device 'nope'" in logged
    assert agent.commands.stats.accepted == 2 and agent.commands.stats.refused >= 6


def test_command_config_is_checked() -> None:
    base = "gateway: {id: g, site: s}\nbuffer: {path: /tmp/x.db}\ndevices:\n  - id: sim\n    driver: simulated\n"
    for commands, message in [
        ("[{name: go, action: launch}]", "one action: reset"),
        ("[{name: go}]", "exactly one of `write: <point>` or `action: <name>`"),
        ("[{name: 'a/b', action: reset}]", "must not contain '/'"),
        ("[{name: r, action: reset}, {name: r, action: reset}]", "command names must be unique"),
    ]:
        with pytest.raises(ConfigError) as info:
            parse_config(base + f"    commands: {commands}\n", "c.yaml")
        assert message in str(info.value), str(info.value)


def test_metrics_endpoint_and_mqtt_summary(tmp_path: Path, broker: LocalBroker) -> None:
    port = free_port()
    sub = Subscriber(broker.port, f"{PREFIX}/metrics")
    loaded = agent_config(
        tmp_path,
        broker.port,
        [{"id": "sim-1", "driver": "simulated", "rate": 500}],
        metrics={"listen": f"127.0.0.1:{port}", "interval": "1s"},
    )
    agent = Agent(loaded)
    agent.start()
    proc = None
    try:
        wait_until(lambda: agent.forwarder.stats.readings > 100, 10, what="readings published")
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        accepted = next(
            line for line in text.splitlines() if line.startswith('edge_agent_readings_accepted_total{device="sim-1"}')
        )
        assert float(accepted.split()[-1]) > 100
        assert "edge_agent_mqtt_connected 1" in text
        assert 'edge_agent_device_readings_dropped_total{device="sim-1"} 0' in text
        assert 'edge_agent_device_up{device="sim-1",driver="simulated"} 1' in text
        status = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5).read())
        assert status["devices"]["sim-1"]["state"] == "connected"
        # The summary on MQTT: run_forever publishes it; here we publish one as its loop does.
        agent.forwarder.publish_metrics(agent.snapshot())
        summary = wait_until(lambda: sub.on_topic("/metrics"), 10, what="metrics topic")[0]
        assert summary["gateway"] == "gw-test-01" and summary["outbox"]["accepted"] > 0
        # The status command reads the running agent over its Unix socket.
        config = tmp_path / "config.yaml"
        config.write_text(agent_yaml(tmp_path, broker.port, []))
        proc = subprocess.run(
            [sys.executable, "-m", "edge_agent.cli", "status", "-c", str(config)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    finally:
        agent.stop()
        sub.close()
    assert proc is not None and proc.returncode == 0, proc.stderr if proc else ""
    assert "broker  127.0.0.1:" in proc.stdout and "connected" in proc.stdout
    assert "sim-1" in proc.stdout and "simulated" in proc.stdout


def test_status_says_when_no_agent_runs(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(agent_yaml(tmp_path, 1883, []))
    proc = subprocess.run(
        [sys.executable, "-m", "edge_agent.cli", "status", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 3
    assert "the agent does not answer" in proc.stderr


def test_sighup_reload_keeps_unchanged_devices_and_refuses_bad_config(tmp_path: Path, broker: LocalBroker) -> None:
    config = tmp_path / "config.yaml"
    keep = {"id": "keep", "driver": "simulated", "rate": 200}
    first = [
        keep,
        {"id": "change", "driver": "simulated", "rate": 50},
        {"id": "drop", "driver": "simulated", "rate": 50},
    ]
    config.write_text(agent_yaml(tmp_path, broker.port, first))
    sub = Subscriber(broker.port, "warehouse/#")
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_agent.cli", "run", "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    log_lines: list[str] = []
    reader = threading.Thread(target=lambda: log_lines.extend(iter(proc.stderr.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()

    def logged(text: str) -> bool:
        return any(text in line for line in list(log_lines))

    try:
        wait_until(lambda: {r["device"] for r in sub.readings} >= {"keep", "change", "drop"}, 20, what="3 devices")
        second = [
            keep,
            {"id": "change", "driver": "simulated", "rate": 60},
            {"id": "new", "driver": "simulated", "rate": 50},
        ]
        config.write_text(agent_yaml(tmp_path, broker.port, second))
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: logged("Reloaded"), 20, what="reload")
        wait_until(lambda: any(r["device"] == "new" for r in sub.readings), 20, what="the added device")
        drop_status = f"{PREFIX}/devices/drop/status"
        wait_until(lambda: any(t == drop_status and p == b"" for t, p, _ in sub.messages), 10, what="status cleared")
        config.write_text("gateway: {id: gw-test-01\n")  # broken YAML: must be refused
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: logged("Reload refused"), 20, what="refused reload")
        before = sum(1 for r in sub.readings if r["device"] == "new")
        wait_until(lambda: sum(1 for r in sub.readings if r["device"] == "new") > before + 20, 20, what="still running")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        reader.join(5)
        sub.close()
    err = "".join(log_lines)
    assert proc.returncode == 0, err
    keep_values = [r["value"] for r in sub.readings if r["device"] == "keep"]
    assert keep_values == list(range(len(keep_values)))  # never restarted by either reload
    change_values = [r["value"] for r in sub.readings if r["device"] == "change"]
    assert change_values.count(0) == 2  # restarted once, with its new rate
    assert "1 device(s) unchanged, 1 restarted, 1 added, 1 removed" in err
    assert "not valid YAML" in err
    assert sub.gaps() == []


def test_secrets_never_appear_in_errors_or_logs(
    tmp_path: Path, broker: LocalBroker, caplog: pytest.LogCaptureFixture
) -> None:
    text = agent_yaml(tmp_path, broker.port, [], mqtt={"password": ["hunter2-secret"]})
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert "hunter2" not in str(info.value)
    loaded = agent_config(
        tmp_path,
        broker.port,
        [{"id": "s", "driver": "simulated", "rate": 10}],
        mqtt={"username": "gw", "password": "hunter2-secret"},
    )
    agent = Agent(loaded)
    agent.start()
    try:
        wait_until(lambda: agent.forwarder.connected, 10, what="connect")
        snap = json.dumps(agent.snapshot())
    finally:
        agent.stop()
    assert "hunter2" not in caplog.text and "hunter2" not in snap and "hunter2" not in repr(loaded.agent)


def test_issue_command_shape_writes_a_real_modbus_server_and_refusals_change_nothing(
    tmp_path: Path, broker: LocalBroker, hub: Hub
) -> None:
    from drivers.modbus.simulator import ConveyorPlc, TcpSimulator

    plc = ConveyorPlc(animate=False)
    with TcpSimulator(plc) as sim:
        device = {
            "id": "line1-plc",
            "driver": "modbus",
            "transport": "tcp",
            "host": "127.0.0.1",
            "port": sim.port,
            "unit": 1,
            "poll_interval": "100ms",
            "points": [
                {"name": "belt_speed_setpoint", "table": "holding", "address": 30, "type": "float32"},
                {"name": "belt_run", "table": "coil", "address": 0},
            ],
            # The shape of issue 7, as written there.
            "commands": [
                {"name": "set_speed", "write": "belt_speed_setpoint", "min": 0, "max": 2.5, "min_interval": "1s"},
                {"name": "stop_belt", "write": "belt_run", "values": [0]},
            ],
        }
        plc.set("coil", 0, [1])
        agent = Agent(agent_config(tmp_path, broker.port, [device]))
        agent.start()
        try:
            wait_until(lambda: agent.supervisor.runners["line1-plc"].ctx.state == "connected", 15, what="PLC")
            wait_until(lambda: agent.forwarder.connected, 10, what="broker")
            hub.send("line1-plc", "set_speed", {"id": "s1", "value": 1.2})
            assert hub.reply("line1-plc", "set_speed", "s1")["ok"] is True
            written = plc.get("holding", 30, 2)
            assert written == [0x3F99, 0x999A]  # 1.2f, ABCD
            writes = plc.count("write holding")
            refused = {
                "s2": ("set_speed", {"id": "s2", "value": 2.0}, "too frequent"),
                "s3": ("set_speed", {"id": "s3", "value": 3.0}, "above the maximum 2.5"),
                "s4": ("set_speed", {"id": "s4", "value": "fast"}, "value must be a number"),
                "s5": ("set_speed", {"id": "s5"}, 'missing "value"'),
                "b1": ("stop_belt", {"id": "b1", "value": 1}, "is not allowed (allowed: 0)"),
                "x1": ("start_belt", {"id": "x1", "value": 1}, "not allowed for device 'line1-plc'"),
            }
            for command, payload, _ in refused.values():
                hub.send("line1-plc", command, payload)
            for request_id, (command, _, why) in refused.items():
                reply = hub.reply("line1-plc", command, request_id)
                assert reply["ok"] is False and why in reply["error"], reply
            assert plc.count("write holding") == writes and plc.get("holding", 30, 2) == written
            assert plc.get("coil", 0) == [1]  # no refused command reached the PLC
            hub.send("line1-plc", "stop_belt", {"id": "b2", "value": 0})
            assert hub.reply("line1-plc", "stop_belt", "b2")["ok"] is True
            assert plc.get("coil", 0) == [0]
        finally:
            agent.stop()
