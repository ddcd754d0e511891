"""`edge-agent run` started the way systemd starts it from systemd/edge-agent.service.

No systemd runs here, so the test plays its part: the environment of a Type=notify service with
a watchdog and LoadCredential= ($NOTIFY_SOCKET, $WATCHDOG_USEC, $CREDENTIALS_DIRECTORY), a notify
socket that records what systemd would receive, and the signals systemctl sends.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from edge_agent.broker import LocalBroker
from tests.ops.notify import NotifyListener
from tests.ops.pki import Pki, TlsSubscriber

EDGE_AGENT = Path(sys.executable).with_name("edge-agent")
WATCHDOG_SEC = 2.0


@pytest.fixture
def notify_socket() -> Iterator[tuple[str, NotifyListener]]:
    directory = Path(tempfile.mkdtemp(prefix="sdn-"))
    path = directory / "notify"
    listener = NotifyListener(str(path))
    try:
        yield str(path), listener
    finally:
        listener.close()
        shutil.rmtree(directory, ignore_errors=True)


def _config(tmp_path: Path, port: int, pki: Pki, rate: int) -> Path:
    config = {
        "gateway": {"id": "gw-svc-01", "site": "test-site"},
        "mqtt": {
            "host": "127.0.0.1",
            "port": port,
            "username": "gw-svc-01",
            "password": "${credential:mqtt-password}",
            "reconnect_min": "100ms",
            "tls": {
                "ca": str(pki.ca.cert),
                "cert": str(pki.client.cert),
                # As docs/operations.md says: the key file comes from the credentials folder.
                "key": "${CREDENTIALS_DIRECTORY}/tls-key",
            },
        },
        "buffer": {"path": str(tmp_path / "state/buffer.db"), "synchronous": "normal"},
        "devices": [{"id": "sim-1", "driver": "simulated", "rate": rate}],
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _credentials(tmp_path: Path, pki: Pki) -> Path:
    """What systemd puts in /run/credentials/edge-agent.service/ from LoadCredential=."""
    creds = tmp_path / "credentials"
    creds.mkdir(mode=0o700)
    (creds / "mqtt-password").write_text("not-checked-by-this-broker\n")
    shutil.copy2(pki.client.key, creds / "tls-key")
    (creds / "tls-key").chmod(0o400)
    return creds


def test_notify_protocol_through_start_reload_and_stop(
    tmp_path: Path, pki: Pki, tls_broker: LocalBroker, notify_socket: tuple[str, NotifyListener]
) -> None:
    address, systemd = notify_socket
    config = _config(tmp_path, tls_broker.port, pki, rate=50)
    env = {
        **os.environ,
        "NOTIFY_SOCKET": address,
        "WATCHDOG_USEC": str(int(WATCHDOG_SEC * 1_000_000)),
        "CREDENTIALS_DIRECTORY": str(_credentials(tmp_path, pki)),
        "JOURNAL_STREAM": "8:1234",  # stderr is the journal
    }
    sub = TlsSubscriber(tls_broker.port, pki.ca.cert, pki.client, "warehouse/#", client_id="svc-test-sub")
    agent = subprocess.Popen(
        [str(EDGE_AGENT), "run", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready, pid = systemd.wait_for("READY=1", 30)
        assert pid == agent.pid  # NotifyAccess=main
        status = next(f for f in ready if f.startswith("STATUS="))
        assert "devices up" in status and "outbox" in status

        # Readings flow over TLS with the key taken from the credentials folder.
        deadline = time.monotonic() + 15
        while not sub.readings and time.monotonic() < deadline:
            systemd.wait_for("WATCHDOG=1", WATCHDOG_SEC)
        assert sub.readings, "no readings reached the broker"

        # Pings at least every WatchdogSec/2 (systemd would kill the agent after WatchdogSec).
        pings = []
        for _ in range(3):
            systemd.wait_for("WATCHDOG=1", WATCHDOG_SEC / 2 + 0.5)
            pings.append(time.monotonic())
        assert max(b - a for a, b in itertools.pairwise(pings)) < WATCHDOG_SEC

        # systemctl reload: SIGHUP -> RELOADING=1 with MONOTONIC_USEC, then READY=1 again.
        agent.send_signal(signal.SIGHUP)
        reloading, _ = systemd.wait_for("RELOADING=1", 15)
        usec = int(next(f for f in reloading if f.startswith("MONOTONIC_USEC=")).split("=", 1)[1])
        assert abs(usec / 1e6 - time.monotonic()) < 10
        systemd.wait_for("READY=1", 15)

        # systemctl stop: SIGTERM -> STOPPING=1, clean exit.
        agent.send_signal(signal.SIGTERM)
        systemd.wait_for("STOPPING=1", 15)
        assert agent.wait(15) == 0
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
        sub.close()
    assert agent.stderr is not None
    log = agent.stderr.read()
    assert "not-checked-by-this-broker" not in log
    # Under journald the agent leaves the timestamps to the journal and prefixes the syslog priority.
    lines = log.splitlines()
    assert lines[0].startswith(("<6>INFO ", "<4>WARNING ", "<3>ERROR "))
    assert all(line[:3] in ("<2>", "<3>", "<4>", "<6>", "<7>") for line in lines)


def test_invalid_config_exits_2_without_ready(
    tmp_path: Path, pki: Pki, notify_socket: tuple[str, NotifyListener]
) -> None:
    """Exit status 2 is what RestartPreventExitStatus=2 in the unit relies on."""
    address, systemd = notify_socket
    config = _config(tmp_path, 1883, pki, rate=50)
    env = {**os.environ, "NOTIFY_SOCKET": address}
    env.pop("CREDENTIALS_DIRECTORY", None)  # ${credential:...} cannot be resolved: a config error
    result = subprocess.run(
        [str(EDGE_AGENT), "run", "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "mqtt.password" in result.stderr and "CREDENTIALS_DIRECTORY" in result.stderr
    assert not systemd.pending()
