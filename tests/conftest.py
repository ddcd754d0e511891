"""Fixtures with real parts: a private Mosquitto on a free loopback port per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from edge_agent.broker import LocalBroker


@pytest.fixture
def broker() -> Iterator[LocalBroker]:
    b = LocalBroker().start()
    try:
        yield b
    finally:
        b.close()
