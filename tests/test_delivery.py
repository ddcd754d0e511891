"""Delivery through real broker outages, agent kills and a full buffer: nothing accepted is lost."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_agent.agent import Agent
from edge_agent.broker import LocalBroker
from tests.helpers import Subscriber, agent_config, agent_yaml, wait_until


def test_broker_outage_mid_stream_loses_nothing(tmp_path: Path) -> None:
    broker = LocalBroker(persistence=True).start()
    sub = Subscriber(broker.port, "warehouse/+/+/readings/#", client_id="outage-sub", persistent=True)
    agent = Agent(agent_config(tmp_path, broker.port, [{"id": "sim-1", "driver": "simulated", "rate": 5000}]))
    agent.start()
    try:
        wait_until(lambda: len(sub.readings) > 2000, 15, what="readings before the outage")
        broker.stop()  # SIGTERM: the broker saves the subscriber's session
        accepted_before = agent.outbox.stats.accepted
        wait_until(lambda: agent.outbox.stats.accepted > accepted_before + 5000, 15, what="collection during outage")
        assert not agent.forwarder.connected
        broker.start()
        wait_until(lambda: agent.forwarder.connected, 15, what="reconnect")
        wait_until(lambda: agent.outbox.depth < 500, 30, what="backlog drained")
    finally:
        agent.stop()
    last = agent.outbox.next_seq - 1
    wait_until(lambda: max(sub.seqs(), default=0) >= last, 15, what="last reading at the subscriber")
    sub.close()
    broker.close()
    assert agent.forwarder.stats.reconnects >= 1
    assert sub.gaps() == []
    assert set(sub.seqs()) == set(range(1, last + 1))


def _count_rows(db: Path) -> tuple[str, int]:
    conn = sqlite3.connect(db)
    try:
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        last = conn.execute("SELECT value FROM meta WHERE key='last_seq'").fetchone()
        return check, int(last[0]) if last else 0
    finally:
        conn.close()


def _start_agent_process(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "edge_agent.cli", "run", "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_kill_9_under_load_then_restart_has_no_gaps(tmp_path: Path, broker: LocalBroker) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(agent_yaml(tmp_path, broker.port, [{"id": "sim-1", "driver": "simulated", "rate": 20000}]))
    sub = Subscriber(broker.port, "warehouse/#")
    proc = _start_agent_process(config)
    try:
        wait_until(lambda: len(sub.readings) > 20000, 30, what="readings under load")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    # The will message tells subscribers the gateway went away without saying goodbye.
    wait_until(lambda: any(m.get("state") == "offline" for m in sub.on_topic("/status")), 10, what="will")
    check, last_before = _count_rows(tmp_path / "buffer.db")
    assert check == "ok"
    assert last_before >= 20000

    proc = _start_agent_process(config)
    try:
        wait_until(lambda: max(sub.seqs(), default=0) > last_before + 5000, 30, what="readings after restart")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err.decode()
    check, last = _count_rows(tmp_path / "buffer.db")
    assert check == "ok"
    wait_until(lambda: max(sub.seqs(), default=0) >= last, 10, what="all readings at the subscriber")
    sub.close()
    # seq continues across the kill, and every seq the outbox ever committed reached the subscriber.
    assert set(sub.seqs()) == set(range(1, last + 1))


def test_sigterm_stops_within_two_seconds_and_flushes(tmp_path: Path, broker: LocalBroker) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(agent_yaml(tmp_path, broker.port, [{"id": "sim-1", "driver": "simulated", "rate": 10000}]))
    sub = Subscriber(broker.port, "warehouse/#")
    proc = _start_agent_process(config)
    wait_until(lambda: len(sub.readings) > 5000, 30, what="readings")
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(10)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0
    assert elapsed < 2.5  # 2 s budget plus process teardown on a loaded 2-core machine
    _, last = _count_rows(tmp_path / "buffer.db")
    conn = sqlite3.connect(tmp_path / "buffer.db")
    left = conn.execute("SELECT COALESCE(SUM(count), 0) FROM chunks").fetchone()[0]
    conn.close()
    wait_until(lambda: len(set(sub.seqs())) + left >= last, 10, what="flushed readings")
    assert set(sub.seqs()) | set(range(last - left + 1, last + 1)) == set(range(1, last + 1))
    statuses = sub.on_topic("/status")
    assert statuses[-1]["state"] == "offline" and statuses[-1]["reason"] == "stopped"


@pytest.mark.parametrize("policy", ["drop_oldest", "reject_new"])
def test_buffer_full_policies(tmp_path: Path, policy: str) -> None:
    # The hub's session exists before the outage; then the broker is away and the buffer fills.
    broker = LocalBroker(persistence=True).start()
    Subscriber(broker.port, "warehouse/+/+/readings/#", client_id="hub", persistent=True).close()
    broker.stop()
    loaded = agent_config(
        tmp_path,
        broker.port,
        [{"id": "sim-1", "driver": "simulated", "rate": 50000}],
        buffer={"max_size": "1MB", "when_full": policy},
    )
    agent = Agent(loaded)
    agent.start()
    try:
        stats = agent.outbox.stats
        wait_until(lambda: stats.dropped_oldest + stats.rejected > 10000, 30, what=f"{policy} to act")
        assert agent.outbox.size_bytes <= 1_000_000 * 1.3
        # Stop producing so the backlog can be checked exactly.
        agent.supervisor.stop(timeout=2)
        assert agent.outbox.flush(5)
        last = agent.outbox.next_seq - 1
        broker.start()
        sub = Subscriber(broker.port, "warehouse/+/+/readings/#", client_id="hub", persistent=True)
        wait_until(lambda: agent.outbox.depth == 0, 30, what="backlog delivered")
        wait_until(lambda: max(sub.seqs(), default=0) == last, 10, what="the last reading at the subscriber")
        seqs = sorted(set(sub.seqs()))
        sub.close()
    finally:
        agent.stop()
        broker.close()
    assert seqs, "nothing delivered"
    assert stats.dropped_per_device == {"sim-1": stats.dropped_oldest + stats.rejected}
    if policy == "drop_oldest":
        assert stats.dropped_oldest > 0 and stats.rejected == 0
        # The newest readings survive; what was dropped is a gap at the start, visible by seq.
        assert seqs == list(range(seqs[0], last + 1))
        assert seqs[0] > 1
        assert last - len(seqs) == stats.dropped_oldest
    else:
        assert stats.rejected > 0 and stats.dropped_oldest == 0
        # The oldest readings survive; rejected ones never got a seq, so there is no gap.
        assert seqs == list(range(1, last + 1))


def test_failing_driver_does_not_stop_another(tmp_path: Path, broker: LocalBroker) -> None:
    sub = Subscriber(broker.port, "warehouse/#")
    devices = [
        {"id": "good", "driver": "simulated", "rate": 500},
        {"id": "flaky", "driver": "simulated", "rate": 500, "fail_after": 20},
    ]
    agent = Agent(agent_config(tmp_path, broker.port, devices))
    agent.start()
    try:
        wait_until(lambda: agent.supervisor.runners["flaky"].restarts >= 2, 20, what="flaky restarts")
        good_count = sum(1 for r in sub.readings if r["device"] == "good")
        wait_until(lambda: sum(1 for r in sub.readings if r["device"] == "good") > good_count + 200, 10, what="good")
    finally:
        agent.stop()
        sub.close()
    good = [r["value"] for r in sub.readings if r["device"] == "good"]
    assert good == list(range(len(good)))  # never interrupted
    errors = [s for s in sub.on_topic("devices/flaky/status") if s["state"] == "error"]
    assert errors and "simulated failure" in errors[0]["error"]


def test_readings_wait_when_broker_never_came_and_go_after(tmp_path: Path) -> None:
    # The hub's subscriber session exists on the broker before the gateway starts, so whatever the
    # agent publishes the moment the broker returns is queued for it (no race with its subscribe).
    broker = LocalBroker(persistence=True).start()
    Subscriber(broker.port, "warehouse/#", client_id="hub", persistent=True).close()
    broker.stop()
    devices = [{"id": "sim-1", "driver": "simulated", "rate": 1000, "max_readings": 500}]
    agent = Agent(agent_config(tmp_path, broker.port, devices))
    agent.start()
    try:
        wait_until(lambda: agent.outbox.stats.accepted == 500, 10, what="readings buffered")
        assert not agent.forwarder.connected
        broker.start()
        sub = Subscriber(broker.port, "warehouse/#", client_id="hub", persistent=True)
        wait_until(lambda: len(set(sub.seqs())) == 500, 20, what="delivery after the broker appears")
        sub.close()
    finally:
        agent.stop()
        broker.close()
    assert sorted(set(sub.seqs())) == list(range(1, 501))
    assert os.path.exists(tmp_path / "buffer.db")
