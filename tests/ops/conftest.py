"""Fixtures of the ops tests: a PKI made for the session and a Mosquitto with a TLS listener."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.broker import LocalBroker
from tests.ops.pki import Pki, make_test_pki


@pytest.fixture(scope="session")
def pki() -> Iterator[Pki]:
    directory = Path(tempfile.mkdtemp(prefix="edge-agent-pki-"))
    try:
        yield make_test_pki(directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def tls_broker(pki: Pki) -> Iterator[LocalBroker]:
    broker = LocalBroker(extra_conf=pki.mosquitto_listener()).start()
    try:
        yield broker
    finally:
        broker.close()
