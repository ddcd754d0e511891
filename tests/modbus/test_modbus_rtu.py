"""RTU over a real pty pair: two units on one bus share one port; one of them is silent."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator

import pytest

from drivers.modbus import driver as modbus_driver
from drivers.modbus.simulator import ConveyorPlc, RtuSlave
from edge_agent.driver import CommandError
from edge_agent.reading import Reading
from edge_agent.supervisor import Supervisor
from tests.helpers import wait_until
from tests.modbus.common import device, running
from tests.ptypair import PtyPair

POINTS = [
    {"name": "reads", "table": "holding", "address": 2, "type": "uint32"},
    {"name": "label", "table": "holding", "address": 20, "type": "string", "length": 8},
    {"name": "run", "table": "coil", "address": 0},
]


@pytest.fixture
def bus() -> Iterator[tuple[PtyPair, RtuSlave, ConveyorPlc]]:
    pty = PtyPair()
    plc = ConveyorPlc(animate=False)
    slave = RtuSlave(pty.master, {1: plc, 2: ConveyorPlc(animate=False)}, silent=[2]).start()
    try:
        yield pty, slave, plc
    finally:
        slave.stop()
        pty.close()


def test_units_share_the_bus_and_a_silent_unit_costs_only_its_own_timeout(
    bus: tuple[PtyPair, RtuSlave, ConveyorPlc],
) -> None:
    pty, slave, _ = bus
    readings: list[Reading] = []
    lock = threading.Lock()

    def emit(batch: list[Reading]) -> None:
        with lock:
            readings.extend(batch)

    def of(dev: str, point: str = "reads") -> list[Reading]:
        with lock:
            return [r for r in readings if r.device == dev and r.extra and r.extra["point"] == point]

    # Unit 1's timeout is generous (a loaded test machine must not make it fail); unit 2's is short.
    good = device(pty.port, POINTS, id="unit-1", unit=1, poll_interval="100ms", timeout="1s")
    silent = device(pty.port, POINTS, id="unit-2", unit=2, poll_interval="100ms", timeout="200ms")
    assert good.claims() == silent.claims()  # same port, same line settings: sharing allowed
    sup = Supervisor([good, silent], emit_many=emit, backoff_min=0.3, backoff_max=0.6)
    sup.start()
    try:
        wait_until(lambda: len(of("unit-1")) >= 25, 20, what="25 polls of unit 1")
        with modbus_driver._BUSES_LOCK:
            buses = dict(modbus_driver._BUSES)
        assert list(buses) == [pty.port]  # one serial connection for both units
        assert sup.runners["unit-1"].ctx.state == "connected"
        assert sup.runners["unit-2"].ctx.state == "error"
        assert "unit 2: no valid answer within 200 ms" in (sup.runners["unit-2"].ctx.last_error or "")
    finally:
        sup.stop(timeout=2)
    assert slave.seen[2] >= 2  # the silent unit was asked again after its backoff
    bad = of("unit-2")
    assert bad and all(r.quality == "bad" and r.value is None for r in bad)
    # Unit 1 kept polling: each of its gaps is at most its period plus one timeout of unit 2 (plus
    # scheduling slack on a shared machine), and most of its polls are on time.
    gaps = sorted(b - a for a, b in itertools.pairwise(r.ts for r in of("unit-1")))
    assert gaps[-1] < 0.1 + 0.2 + 0.25
    assert gaps[len(gaps) // 2] < 0.15
    values = [r.value for r in of("unit-1")]
    assert values == sorted(values) and all(r.quality == "good" for r in of("unit-1"))
    assert of("unit-1", "label")[0].value == "CONVEYOR LINE 1"
    assert of("unit-1", "run")[0].value is True
    assert not modbus_driver._BUSES  # the port is closed when its last unit stops


def test_the_line_stays_silent_between_frames(bus: tuple[PtyPair, RtuSlave, ConveyorPlc]) -> None:
    pty, slave, _ = bus
    assert modbus_driver.rtu_frame_gap(19200) == pytest.approx(3.5 * 11 / 19200)  # 2.0 ms
    assert modbus_driver.rtu_frame_gap(115200) == 1.75e-3
    # max_fill 0: three requests per poll, sent back to back by one unit. At 115200 baud pymodbus
    # alone leaves ~1.4 ms between an answer and the next request; the line needs 1.75 ms.
    config = device(pty.port, POINTS, id="unit-1", unit=1, poll_interval="20ms", max_fill=0, baudrate=115200)
    with running(config) as r:
        wait_until(lambda: r.driver.polls >= 10, 10, what="10 polls")
    events = list(slave.timeline)
    quiet = [b[0] - a[0] for a, b in itertools.pairwise(events) if a[1] == "tx" and b[1] == "rx"]
    assert len(quiet) >= 20
    assert min(quiet) >= 1.7e-3


def test_rtu_write_and_exception_answers(bus: tuple[PtyPair, RtuSlave, ConveyorPlc]) -> None:
    pty, _, plc = bus
    points = [*POINTS, {"name": "gap", "table": "holding", "address": 105}]
    with running(device(pty.port, points, id="unit-1", unit=1, poll_interval="50ms", max_fill=0)) as r:
        wait_until(lambda: r.of("gap") and r.of("reads"), 10, what="readings")
        r.driver.execute("write", {"point": "run", "value": False})
        assert plc.get("coil", 0) == [0]
        r.driver.execute("write", {"point": "reads", "value": 7})
        assert plc.get("holding", 2, 2) == [0, 7]
        with pytest.raises(CommandError, match="exception 02"):
            r.driver.execute("write", {"point": "gap", "value": 1})
        wait_until(lambda: r.values("run")[-1] is False, 10, what="coil read back")
    gap = r.of("gap")[0]
    assert gap.quality == "bad" and gap.extra is not None and "exception 02" in gap.extra["error"]
    assert r.error is None


def test_missing_port_is_a_device_error() -> None:
    with running(device("/dev/does-not-exist-ttyUSB9", POINTS, id="nowhere")) as r:
        wait_until(lambda: r.error is not None, 5, what="the error")
    assert "cannot open serial port /dev/does-not-exist-ttyUSB9" in str(r.error)
    assert not modbus_driver._BUSES
