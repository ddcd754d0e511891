"""MQTT over TLS against a real Mosquitto with `require_certificate true` and real certificates.

The right client certificate is accepted and readings arrive; a wrong CA on the agent's side, an
expired client certificate, a missing one and one from another CA are refused, the readings stay in
the outbox, and the agent's log names the cause.

Mosquitto 2.0's `tls_version tlsv1.2` is a minimum, so these sessions negotiate TLS 1.3. With
TLS 1.3 the client finishes its side of the handshake before the broker has checked the client
certificate: the broker's refusal (an alert) arrives on the first read after CONNECT was sent, not
from the handshake itself. That is what gateways meet in production, and the tests keep it so.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from edge_agent.agent import Agent
from edge_agent.broker import LocalBroker
from tests.helpers import agent_config, wait_until
from tests.ops.pki import Pki, TlsSubscriber

READINGS = 40
DEVICES = [{"id": "sim-1", "driver": "simulated", "rate": 400, "max_readings": READINGS}]


def _tls(pki: Pki, case: str) -> dict[str, str]:
    good = {"ca": str(pki.ca.cert), "cert": str(pki.client.cert), "key": str(pki.client.key)}
    if case == "good":
        return good
    if case == "wrong-ca":  # the agent does not trust the broker's CA
        return {**good, "ca": str(pki.other_ca.cert)}
    if case == "expired":
        return {**good, "cert": str(pki.expired.cert), "key": str(pki.expired.key)}
    if case == "missing":
        return {"ca": str(pki.ca.cert)}
    if case == "foreign":  # a client certificate the broker's CA did not issue
        return {**good, "cert": str(pki.foreign.cert), "key": str(pki.foreign.key)}
    raise ValueError(case)


def test_right_client_certificate_delivers_readings(tmp_path: Path, pki: Pki, tls_broker: LocalBroker) -> None:
    sub = TlsSubscriber(tls_broker.port, pki.ca.cert, pki.client, "warehouse/#")
    agent = Agent(agent_config(tmp_path, tls_broker.port, DEVICES, mqtt={"tls": _tls(pki, "good")}))
    agent.start()
    try:
        wait_until(lambda: len(sub.readings) >= READINGS, 15, what=f"{READINGS} readings over TLS")
        wait_until(lambda: agent.outbox.depth == 0, 5, what="outbox drained")
    finally:
        agent.stop()
        sub.close()
    assert sub.seqs() == list(range(1, READINGS + 1))
    assert agent.forwarder.stats.connected_since is not None


# (case, what mosquitto logs when it refuses, what the agent's log must name)
REFUSALS = {
    "wrong-ca": ("tlsv1 alert unknown ca", "certificate verify failed"),
    "expired": ("certificate verify failed", "certificate expired"),
    "missing": ("peer did not return a certificate", "certificate required"),
    "foreign": ("certificate verify failed", "unknown ca"),
}


def _run_refused(tmp_path: Path, pki: Pki, broker: LocalBroker, case: str) -> Agent:
    """Start an agent with the `case` credentials; return it (stopped) after two refused attempts."""
    broker_reason = REFUSALS[case][0]
    offset = broker.log.stat().st_size
    agent = Agent(agent_config(tmp_path, broker.port, DEVICES, mqtt={"tls": _tls(pki, case), "reconnect_min": "50ms"}))
    agent.start()
    try:
        # Two refusals seen by the broker: the agent has handled the first one and tried again.
        wait_until(
            lambda: broker.log.read_bytes()[offset:].decode(errors="replace").count(broker_reason) >= 2,
            15,
            what=f"mosquitto to refuse the agent twice ({broker_reason})",
        )
        wait_until(lambda: agent.outbox.depth == READINGS, 10, what="all readings committed to the outbox")
    finally:
        agent.stop()
    return agent


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refused_connection_keeps_every_reading(tmp_path: Path, pki: Pki, tls_broker: LocalBroker, case: str) -> None:
    agent = _run_refused(tmp_path, pki, tls_broker, case)
    assert agent.forwarder.stats.connected_since is None, "the broker must never have accepted this client"
    assert agent.forwarder.stats.readings == 0
    assert agent.outbox.depth == READINGS > 0


@pytest.mark.parametrize(
    "case",
    [
        "wrong-ca",
        "expired",
        "missing",
        "foreign",
    ],
)
def test_refusal_cause_is_logged(
    tmp_path: Path, pki: Pki, tls_broker: LocalBroker, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="edge_agent")
    _run_refused(tmp_path, pki, tls_broker, case)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("edge_agent")]
    cause = REFUSALS[case][1]
    assert any(f"127.0.0.1:{tls_broker.port}" in m and cause in m.lower() for m in errors), (
        f"no error naming the broker and {cause!r}; errors logged: {errors}"
    )
    # Once per episode, not once per retry.
    assert len([m for m in errors if f"127.0.0.1:{tls_broker.port}" in m]) == 1


def test_readings_kept_through_a_refusal_are_sent_once_the_certificate_is_fixed(
    tmp_path: Path, pki: Pki, tls_broker: LocalBroker
) -> None:
    refused = _run_refused(tmp_path, pki, tls_broker, "expired")
    assert refused.outbox.depth == READINGS
    sub = TlsSubscriber(tls_broker.port, pki.ca.cert, pki.client, "warehouse/#")
    # Same outbox file, renewed certificate, no device producing more.
    agent = Agent(agent_config(tmp_path, tls_broker.port, [], mqtt={"tls": _tls(pki, "good")}))
    agent.start()
    try:
        wait_until(lambda: len(sub.readings) >= READINGS, 15, what="the kept readings")
        wait_until(lambda: agent.outbox.depth == 0, 5, what="outbox drained")
    finally:
        agent.stop()
        sub.close()
    assert sub.seqs() == list(range(1, READINGS + 1))
