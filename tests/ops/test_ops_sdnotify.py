"""sd_notify over a real AF_UNIX datagram socket, as systemd's manager receives it."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent import sdnotify
from tests.ops.notify import NotifyListener


@pytest.fixture
def path_socket(monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifyListener]:
    # A short directory: unix socket paths are limited to 107 bytes, pytest's tmp_path can be longer.
    directory = Path(tempfile.mkdtemp(prefix="sdn-"))
    path = directory / "notify"
    listener = NotifyListener(str(path))
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    try:
        yield listener
    finally:
        listener.close()
        path.unlink(missing_ok=True)
        directory.rmdir()


@pytest.fixture
def abstract_socket(monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifyListener]:
    name = f"edge-agent-test/{uuid.uuid4().hex}"
    listener = NotifyListener(b"\0" + name.encode())
    monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    try:
        yield listener
    finally:
        listener.close()


def test_not_under_systemd_every_call_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.notify("READY=1") is False
    assert sdnotify.ready("up") is False
    assert sdnotify.status("x") is False
    assert sdnotify.watchdog() is False
    assert sdnotify.stopping() is False
    assert sdnotify.reloading() is False


def test_ready_with_status_on_a_path_socket_comes_from_our_pid(path_socket: NotifyListener) -> None:
    assert sdnotify.ready("3 devices, outbox 0, broker connected") is True
    fields, pid = path_socket.receive()
    assert fields == ["READY=1", "STATUS=3 devices, outbox 0, broker connected"]
    # systemd's NotifyAccess=main (the default) accepts only messages whose credentials carry MainPID.
    assert pid == os.getpid()


def test_abstract_namespace_socket(abstract_socket: NotifyListener) -> None:
    assert sdnotify.watchdog() is True
    assert abstract_socket.receive()[0] == ["WATCHDOG=1"]
    assert sdnotify.ready() is True
    assert abstract_socket.receive()[0] == ["READY=1"]


def test_status_is_flattened_to_one_line(path_socket: NotifyListener) -> None:
    assert sdnotify.status("broker down\n  1200 readings waiting\tin the outbox") is True
    assert path_socket.receive()[0] == ["STATUS=broker down 1200 readings waiting in the outbox"]


def test_stopping_and_reloading(path_socket: NotifyListener) -> None:
    assert sdnotify.stopping("stopping: SIGTERM") is True
    assert path_socket.receive()[0] == ["STOPPING=1", "STATUS=stopping: SIGTERM"]

    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert sdnotify.reloading("reloading /etc/edge-agent/config.yaml") is True
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    fields, _ = path_socket.receive()
    assert fields[0] == "RELOADING=1"
    assert fields[1].startswith("MONOTONIC_USEC=")
    assert before <= int(fields[1].split("=", 1)[1]) <= after
    assert fields[2] == "STATUS=reloading /etc/edge-agent/config.yaml"


def test_a_child_process_sends_with_its_own_pid(path_socket: NotifyListener) -> None:
    """The module used the way the service uses it: a process whose environment systemd set."""
    code = "import sys; from edge_agent import sdnotify; sys.exit(0 if sdnotify.ready('child ready') else 1)"
    proc = subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ))
    fields, pid = path_socket.receive()
    assert proc.wait(10) == 0
    assert fields == ["READY=1", "STATUS=child ready"]
    assert pid == proc.pid


def test_missing_socket_is_not_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone"))
    assert sdnotify.ready("x") is False
    monkeypatch.setenv("NOTIFY_SOCKET", "@edge-agent-test/nobody-listens-" + uuid.uuid4().hex)
    assert sdnotify.watchdog() is False
    monkeypatch.setenv("NOTIFY_SOCKET", "vsock:2:1234")  # not a unix socket: not ours to use
    assert sdnotify.watchdog() is False


def test_a_malformed_field_is_a_programming_error(path_socket: NotifyListener) -> None:
    with pytest.raises(ValueError, match="KEY=VALUE"):
        sdnotify.notify("READY=1", "STATUS=two\nlines")
    with pytest.raises(ValueError, match="KEY=VALUE"):
        sdnotify.notify("READY")
    assert not path_socket.pending()  # nothing half-sent


def test_watchdog_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert sdnotify.watchdog_interval() is None

    monkeypatch.setenv("WATCHDOG_USEC", "30000000")  # WatchdogSec=30s
    assert sdnotify.watchdog_interval() == 30.0

    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert sdnotify.watchdog_interval() == 30.0

    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))  # meant for another process
    assert sdnotify.watchdog_interval() is None

    monkeypatch.delenv("WATCHDOG_PID")
    for bad in ("0", "-5", "soon", ""):
        monkeypatch.setenv("WATCHDOG_USEC", bad)
        assert sdnotify.watchdog_interval() is None
