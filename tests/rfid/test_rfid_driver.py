"""The driver against the reader simulator on real pty pairs: presence, every read, commands,
garbage on the line, a hung reader, and an unplugged and replugged port."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.rfid import r2000
from drivers.rfid.simulator import ReaderSimulator, SimTag
from edge_agent.driver import CommandError
from edge_agent.supervisor import Supervisor
from tests.helpers import wait_until
from tests.rfid.rfid_support import SGTIN, SSCC, TID, Running, tags


@pytest.fixture
def sims() -> Iterator[list[ReaderSimulator]]:
    started: list[ReaderSimulator] = []
    yield started
    for sim in started:
        sim.stop()


def start(sims: list[ReaderSimulator], protocol: str, tag_list: list[SimTag], **options: object) -> ReaderSimulator:
    sim = ReaderSimulator(protocol, tag_list, **options).start()  # type: ignore[arg-type]
    sims.append(sim)
    return sim


@pytest.mark.parametrize("protocol", ["r2000", "m100", "thingmagic"])
def test_presence_arrival_and_departure(sims: list[ReaderSimulator], protocol: str) -> None:
    sim = start(sims, protocol, [SimTag(SGTIN, -50), SimTag(TID, -70)], reads_per_second=400, rssi_jitter=2)
    run = Running(sim.port, protocol=protocol, absent_after="600ms")
    try:
        wait_until(lambda: len(run.events("arrived")) == 2, 10, what="two arrivals")
        wait_until(lambda: run.counter("tag_reads") >= 60, 10, what="more reads")
        sim.set_tags([SimTag(SGTIN, -50)])
        wait_until(lambda: len(run.events("departed")) == 1, 10, what="the TID-tag to depart")
    finally:
        run.stop()
    assert run.error is None
    arrived = {r.value: r for r in run.events("arrived")}
    assert set(arrived) == {SGTIN.hex().upper(), TID.hex().upper()}
    sgtin = arrived[SGTIN.hex().upper()].extra or {}
    assert sgtin["epc"] == {
        "scheme": "sgtin-96",
        "uri": "urn:epc:id:sgtin:0614141.812345.6789",
        "gs1": "(01)80614141123458(21)6789",
    }
    assert sgtin["antenna"] == 1 and -52 <= sgtin["rssi"] <= -48
    assert "epc" not in (arrived[TID.hex().upper()].extra or {})  # not GS1: raw hex only
    (gone,) = [r for r in run.events("departed") if r.quality == "good"]
    extra = gone.extra or {}
    assert gone.value == TID.hex().upper() and extra["count"] >= 2 and -72 <= extra["rssi"] <= -68
    assert extra["first_seen"] <= extra["last_seen"] and gone.ts >= arrived[TID.hex().upper()].ts + 0.6
    # Stopping the driver ends the visits still open, marked as such.
    (stopped,) = [r for r in run.events("departed") if r.quality == "uncertain"]
    assert stopped.value == SGTIN.hex().upper() and (stopped.extra or {})["reason"] == "stopped"


@pytest.mark.parametrize("protocol", ["r2000", "m100", "thingmagic"])
def test_every_read_reaches_the_driver(sims: list[ReaderSimulator], protocol: str) -> None:
    sim = start(sims, protocol, tags(20), reads_per_second=1000)
    run = Running(sim.port, protocol=protocol, report="every_read")
    try:
        wait_until(lambda: run.counter("tag_reads") >= 1500, 15, what="1500 reads")
        assert run.driver.execute("stop_inventory", {}) == {"inventory": False, "connected": True}
        wait_until(lambda: not sim.inventory_active, 5, what="the simulator to end its round")
        wait_until(lambda: run.counter("tag_reads") == sim.sent_reads, 5, what="every sent read")
    finally:
        run.stop()
    assert run.error is None and run.counter("frames_dropped") == 0
    readings = run.events()
    per_epc: Counter[bytes] = Counter()
    for r in readings:
        per_epc[bytes.fromhex(r.value)] += (r.extra or {})["count"]
    assert per_epc == sim.sent_by_epc
    assert len(per_epc) == 20
    if protocol != "thingmagic":  # the Mercury module aggregates a cycle's reads per tag
        assert len(readings) == sim.sent_reads


def test_r2000_antennas_session_and_per_antenna_presence(sims: list[ReaderSimulator]) -> None:
    sim = start(sims, "r2000", [SimTag(SGTIN, -55, 1), SimTag(SSCC, -60, 3)], antennas_connected=(1, 3))
    run = Running(sim.port, protocol="r2000", antennas=[1, 3], per_antenna=True, power_dbm=25)
    try:
        wait_until(lambda: len(run.events("arrived")) == 2, 10, what="two arrivals")
    finally:
        run.stop()
    antennas = {r.value: (r.extra or {})["antenna"] for r in run.events("arrived")}
    assert antennas == {SGTIN.hex().upper(): 1, SSCC.hex().upper(): 3}
    assert sim.commands[r2000.CMD_FAST_SWITCH_INVENTORY] >= 1 and sim.power_dbm == 25
    sscc = next(r for r in run.events("arrived") if r.value == SSCC.hex().upper())
    assert (sscc.extra or {})["epc"]["gs1"] == "(00)106141412345678908"

    single = start(sims, "r2000", [SimTag(SGTIN, -55, 2)])
    run = Running(single.port, protocol="r2000", antennas=[2], session=2, target="B")
    try:
        wait_until(lambda: len(run.events("arrived")) == 1, 10, what="an arrival on antenna 2")
    finally:
        run.stop()
    assert single.commands[r2000.CMD_SESSION_INVENTORY] >= 1 and single.commands[r2000.CMD_SET_WORK_ANTENNA] == 1


def test_missing_antenna_is_reported_once_and_reading_goes_on(sims: list[ReaderSimulator]) -> None:
    sim = start(sims, "r2000", [SimTag(SGTIN, -55, 1)], antennas_connected=(1,))
    run = Running(sim.port, protocol="r2000", antennas=[1, 2])
    try:
        wait_until(lambda: run.counter("reader_errors") >= 3, 10, what="antenna-missing reports")
        wait_until(lambda: len(run.events("arrived")) == 1, 10, what="the tag on antenna 1")
    finally:
        run.stop()
    assert run.error is None


@pytest.mark.parametrize("protocol", ["r2000", "m100"])
def test_garbage_on_the_line_is_counted_and_skipped(sims: list[ReaderSimulator], protocol: str) -> None:
    sim = start(sims, protocol, tags(5), reads_per_second=500)
    run = Running(sim.port, protocol=protocol, report="every_read")
    if protocol == "r2000":
        corrupt = bytearray(r2000.tag_report(TID, rssi=-60))
    else:
        from drivers.rfid import m100

        corrupt = bytearray(m100.tag_notice(TID, rssi=-60))
    corrupt[-2] ^= 0x01  # R2000: the checksum; M100: the checksum before the end byte
    try:
        wait_until(lambda: run.counter("tag_reads") > 100, 10, what="reads before the garbage")
        for _ in range(3):
            sim.inject(b"\x55\x00\x13\x7e" + bytes(corrupt))
        wait_until(lambda: run.counter("frames_dropped") >= 3, 10, what="garbled frames counted")
        reads = run.counter("tag_reads")
        wait_until(lambda: run.counter("tag_reads") > reads + 100, 10, what="reads after the garbage")
        run.driver.execute("stop_inventory", {})
        wait_until(lambda: not sim.inventory_active, 5, what="the round to end")
        wait_until(lambda: run.counter("tag_reads") == sim.sent_reads, 5, what="every good read")
    finally:
        run.stop()
    assert run.error is None
    assert TID.hex().upper() not in {r.value for r in run.events()}


def test_commands_start_stop_and_power(sims: list[ReaderSimulator]) -> None:
    sim = start(sims, "r2000", [SimTag(SGTIN, -55)])
    run = Running(sim.port, protocol="r2000", inventory=False, absent_after="300ms")
    try:
        wait_until(lambda: run.ctx.state == "connected", 10, what="connected")
        assert not sim.inventory_active and run.events() == []
        assert run.driver.execute("start_inventory", {}) == {"inventory": True, "connected": True}
        wait_until(lambda: len(run.events("arrived")) == 1, 10, what="an arrival")
        assert run.driver.execute("set_power", {"dbm": 20}) == {"power_dbm": 20.0}
        assert sim.power_dbm == 20
        with pytest.raises(CommandError, match="0-33 dBm"):
            run.driver.execute("set_power", {"dbm": 40})
        with pytest.raises(CommandError, match="whole dBm"):
            run.driver.execute("set_power", {"dbm": 20.5})
        with pytest.raises(CommandError, match="no action 'reboot'"):
            run.driver.execute("reboot", {})
        run.driver.execute("stop_inventory", {})
        wait_until(lambda: len(run.events("departed")) == 1, 10, what="the tag departs once inventory stops")
        commands = sim.commands[r2000.CMD_REAL_TIME_INVENTORY]
        wait_until(lambda: not sim.inventory_active, 5, what="the last round to end")
    finally:
        run.stop()
    assert sim.commands[r2000.CMD_REAL_TIME_INVENTORY] == commands
    assert run.error is None


@pytest.mark.parametrize("protocol", ["m100", "thingmagic"])
def test_commands_on_m100_and_thingmagic(sims: list[ReaderSimulator], protocol: str) -> None:
    sim = start(sims, protocol, [SimTag(SGTIN, -55)])
    run = Running(sim.port, protocol=protocol, inventory=False)
    try:
        wait_until(lambda: run.ctx.state == "connected", 10, what="connected")
        run.driver.execute("start_inventory", {})
        wait_until(lambda: len(run.events("arrived")) == 1, 10, what="an arrival")
        assert run.driver.execute("set_power", {"dbm": 22.5}) == {"power_dbm": 22.5}
        assert sim.power_dbm == 22.5
        run.driver.execute("stop_inventory", {})
        wait_until(lambda: not sim.inventory_active, 5, what="inventory to stop")
    finally:
        run.stop()
    assert run.error is None


def test_a_silent_reader_is_a_device_error(sims: list[ReaderSimulator]) -> None:
    sim = start(sims, "r2000", [SimTag(SGTIN, -55)])
    sim.mute = True
    run = Running(sim.port, protocol="r2000", response_timeout="300ms")
    wait_until(lambda: not run.thread.is_alive(), 10, what="run() to give up")
    assert run.error is not None and type(run.error).__name__ == "DeviceError"
    assert sim.port in str(run.error) and "did not answer get version" in str(run.error)

    streaming = start(sims, "m100", [SimTag(SGTIN, -55)])
    run = Running(streaming.port, protocol="m100", response_timeout="300ms")
    wait_until(lambda: len(run.events("arrived")) == 1, 10, what="an arrival")
    streaming.mute = True
    wait_until(lambda: not run.thread.is_alive(), 10, what="run() to give up")
    assert "did not answer stop" in str(run.error)
    (lost,) = run.events("departed")
    assert lost.quality == "uncertain" and (lost.extra or {})["reason"] == "reader_lost"


@pytest.mark.parametrize("protocol", ["r2000", "m100", "thingmagic"])
def test_an_idle_reader_is_checked_now_and_then(sims: list[ReaderSimulator], protocol: str) -> None:
    sim = start(sims, protocol, [SimTag(SGTIN, -55)])
    run = Running(sim.port, protocol=protocol, inventory=False, response_timeout="200ms")
    wait_until(lambda: run.ctx.state == "connected", 10, what="connected")
    handshakes = sum(sim.commands.values())
    wait_until(lambda: sum(sim.commands.values()) > handshakes, 5, what="a heartbeat")
    sim.mute = True
    wait_until(lambda: not run.thread.is_alive(), 10, what="run() to give up")
    assert "did not answer" in str(run.error) and run.events() == []


@pytest.mark.parametrize("protocol", ["r2000", "thingmagic"])
def test_stop_is_noticed_quickly(sims: list[ReaderSimulator], protocol: str) -> None:
    sim = start(sims, protocol, tags(10), reads_per_second=500)
    run = Running(sim.port, protocol=protocol)
    wait_until(lambda: len(run.events("arrived")) == 10, 10, what="ten arrivals")
    assert run.stop() < 0.8
    assert len(run.events("departed")) == 10


def test_unplugged_port_is_recovered(sims: list[ReaderSimulator], tmp_path: Path) -> None:
    link = tmp_path / "usb-reader"
    sim = start(sims, "r2000", [SimTag(SGTIN, -55)], link=link)
    from drivers.rfid import RfidConfig

    config = RfidConfig.model_validate(
        {"id": "dock-1", "driver": "rfid", "protocol": "r2000", "port": str(link), "absent_after": "500ms"}
    )
    readings: list[object] = []
    supervisor = Supervisor([config], emit_many=readings.extend, backoff_min=0.05, backoff_max=0.2)
    runner = supervisor.runners["dock-1"]
    supervisor.start()
    events = lambda: [getattr(r, "extra", {}).get("event") for r in readings]  # noqa: E731
    try:
        wait_until(lambda: runner.ctx.state == "connected" and readings, 10, what="first arrival")
        driver = runner.driver
        assert driver is not None
        driver.execute("stop_inventory", {})  # the hub stops inventory; that must survive the restart
        inventories = sim.commands[r2000.CMD_REAL_TIME_INVENTORY]
        sim.unplug()
        wait_until(lambda: runner.ctx.state == "error", 10, what="the port loss")
        assert str(link) in (runner.ctx.last_error or "")
        wait_until(lambda: events().count("departed") == 1, 10, what="the visit to end")
        sim.replug()
        wait_until(lambda: runner.ctx.state == "connected" and runner.driver is not driver, 10, what="reader back")
        driver = runner.driver
        assert driver is not None
        driver.execute("set_power", {"dbm": 20})
        driver.execute("set_power", {"dbm": 21})  # two trips through the loop: inventory had its chance
        assert sim.commands[r2000.CMD_REAL_TIME_INVENTORY] == inventories and sim.power_dbm == 21
        driver.execute("start_inventory", {})
        wait_until(lambda: events().count("arrived") == 2, 10, what="the tag read again")
    finally:
        supervisor.stop(timeout=2)
    assert runner.restarts >= 1
