"""The driver against the simulator on real pty pairs: modes, commands, noise, silence, unplug/replug."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from drivers.scale import ScaleConfig, ScaleDriver
from drivers.scale.simulator import ScaleSimulator
from edge_agent.driver import CommandError, DeviceError, DriverContext
from edge_agent.reading import Reading
from edge_agent.supervisor import Supervisor
from tests.helpers import wait_until
from tests.ptypair import PtyPair


class Running:
    def __init__(self, driver: ScaleDriver, ctx: DriverContext, readings: list[Reading]) -> None:
        self.driver, self.ctx, self.readings = driver, ctx, readings
        self.error: BaseException | None = None

    def values(self, **match: Any) -> list[Any]:
        return [r.value for r in list(self.readings) if all((r.extra or {}).get(k) == v for k, v in match.items())]


@contextmanager
def running(port: str, **options: Any) -> Iterator[Running]:
    config = ScaleConfig.model_validate({"id": "scale-1", "driver": "scale", "port": port, **options})
    readings: list[Reading] = []
    ctx = DriverContext("scale-1", emit_many=readings.extend)
    driver = ScaleDriver(config, ctx)
    run = Running(driver, ctx, readings)

    def main() -> None:
        try:
            driver.run()
        except BaseException as err:
            run.error = err

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    try:
        yield run
    finally:
        ctx.stopping.set()
        t0 = time.monotonic()
        thread.join(5)
        driver.close()
        assert not thread.is_alive()
        assert time.monotonic() - t0 < 1.0, "the driver must notice a stop within ~0.5 s"


def test_mt_sics_poll_reports_motion_then_stable_weight() -> None:
    with (
        ScaleSimulator("mt-sics", settle=0.3) as sim,
        running(sim.port, protocol="mt-sics", poll_interval="50ms") as run,
    ):
        wait_until(lambda: run.ctx.state == "connected", 10, what="connected")
        sim.set_weight(2.5)
        wait_until(lambda: 2.5 in run.values(stable=True), 10, what="stable 2.5 kg")
        assert any(r.extra and not r.extra["stable"] for r in run.readings), "motion readings expected"
        reading = run.readings[-1]
        assert reading.kind == "weight" and reading.unit == "kg" and reading.quality == "good"
        assert set(sim.commands) == {"SI"}
        assert run.error is None


def test_mt_sics_listen_with_tare_and_zero_commands() -> None:
    with ScaleSimulator("mt-sics", settle=0.2) as sim, running(sim.port, protocol="mt-sics", mode="listen") as run:
        wait_until(lambda: run.readings, 10, what="streamed weights")
        assert sim.commands[0] == "SIR"
        sim.set_weight(0.8)
        wait_until(lambda: 0.8 in run.values(stable=True), 10, what="0.8 kg")
        result = run.driver.execute("tare", {})
        assert result == {"reply": "T S       0.80 kg", "message": "tare stored", "tare": 0.8, "unit": "kg"}
        wait_until(lambda: 0.0 in run.values(stable=True, net=True, tare=0.8), 10, what="net weight after tare")
        sim.set_weight(10.8)
        wait_until(lambda: 10.0 in run.values(stable=True, net=True), 10, what="10 kg net")
        with pytest.raises(CommandError, match=r"upper limit of the zero range exceeded \('Z \+'\)"):
            run.driver.execute("zero", {})
        sim.set_weight(0.3)
        wait_until(lambda: run.values(stable=True)[-1] == pytest.approx(-0.5), 10, what="-0.5 kg net")
        assert run.driver.execute("zero", {}) == {"reply": "Z A", "message": "zero set"}
        wait_until(lambda: run.readings[-1].value == 0.0 and "tare" not in (run.readings[-1].extra or {}), 10)
        with pytest.raises(CommandError, match="no action 'calibrate'"):
            run.driver.execute("calibrate", {})
        assert run.error is None


def test_toledo_7e1_with_checksum_over_8n1_pty() -> None:
    with ScaleSimulator("toledo", with_checksum=True, parity_bit=True, interval=0.02) as sim:
        sim.set_weight(1234.56)
        with running(sim.port, protocol="toledo", checksum=True, data_parity="even") as run:
            wait_until(lambda: 1234.56 in run.values(stable=True, net=False), 10, what="1234.56 kg")
            assert run.readings[-1].unit == "kg" and run.readings[-1].extra == {
                "stable": True,
                "net": False,
                "tare": 0.0,
            }
            with pytest.raises(CommandError, match="toledo in listen mode has no commands"):
                run.driver.execute("tare", {})
            assert run.ctx.counters.get("frames_dropped", 0) <= 1  # at most the frame torn by the open


def test_wrong_line_settings_give_no_weights_and_a_clear_device_error() -> None:
    with ScaleSimulator("toledo", with_checksum=True, parity_bit=True, interval=0.02) as sim:
        sim.set_weight(1234.56)
        with running(sim.port, protocol="toledo", checksum=True, silence_timeout="600ms") as run:
            wait_until(lambda: run.error is not None, 10, what="device error")
            assert run.readings == []
            assert isinstance(run.error, DeviceError)
            assert f"scale on {sim.port}: no valid toledo data for 0.6s" in str(run.error)
            assert "garbled frames dropped" in str(run.error)
            assert run.ctx.counters["frames_dropped"] > 0


def test_noise_on_the_line_is_dropped_and_counted_never_read_as_weight() -> None:
    with ScaleSimulator("toledo", interval=0.02) as sim, running(sim.port, protocol="toledo") as run:
        sim.set_weight(42.0)
        wait_until(lambda: 42.0 in run.values(stable=True), 10, what="42 kg")
        before = run.ctx.counters.get("frames_dropped", 0)
        for noise in (b"\x02\x2c\x30\x20999", b"\x00\xff\x02,0 12A456000000\r", b"\x02" * 40, b"\r\n\x13garbage"):
            sim.inject(noise)
        wait_until(lambda: run.ctx.counters.get("frames_dropped", 0) > before, 10, what="drops counted")
        count = len(run.readings)
        wait_until(lambda: len(run.readings) > count + 5, 10, what="readings continue")
        assert {r.value for r in run.readings if r.extra and r.extra["stable"]} <= {0.0, 42.0}
        assert run.error is None


def test_report_events_one_reading_per_parcel() -> None:
    with (
        ScaleSimulator("mt-sics", settle=0.15) as sim,
        running(
            sim.port, protocol="mt-sics", poll_interval="40ms", report="events", min_weight=0.5, zero_band=0.05
        ) as run,
    ):
        wait_until(lambda: run.ctx.state == "connected", 10, what="connected")

        def polled(n: int) -> None:
            """Wait for n more weights: the scale settles (0.15 s) and is seen settled."""
            target = run.ctx.counters.get("weights", 0) + n
            wait_until(lambda: run.ctx.counters.get("weights", 0) >= target, 10, what=f"{n} polls")

        for parcel in (3.2, 0.3, 7.75):  # 0.3 kg is below min_weight
            sim.set_weight(parcel)
            polled(12)
            sim.set_weight(0.0)
            polled(8)
        assert [(r.value, (r.extra or {}).get("event")) for r in run.readings] == [
            (3.2, "weighed"),
            (7.75, "weighed"),
        ]


def test_commands_need_a_running_driver_and_a_command_protocol(tmp_path: Path) -> None:
    config = ScaleConfig.model_validate(
        {"id": "s", "driver": "scale", "protocol": "sma", "port": str(tmp_path / "none"), "mode": "listen"}
    )
    driver = ScaleDriver(config, DriverContext("s", emit_many=lambda r: None))
    with pytest.raises(CommandError, match="use mode: poll"):
        driver.execute("zero", {})
    polled = ScaleDriver(config.model_copy(update={"mode": "poll"}), DriverContext("s", emit_many=lambda r: None))
    with pytest.raises(CommandError, match="is not connected"):
        polled.execute("zero", {})
    with pytest.raises(DeviceError, match="does not exist"):
        polled.run()
    polled.close()
    polled.close()  # safe twice, after a failed start


def test_a_silent_port_is_a_device_error() -> None:
    with PtyPair() as pty, running(pty.port, protocol="mt-sics", reply_timeout="100ms", silence_timeout="400ms") as run:
        wait_until(lambda: run.error is not None, 10, what="device error")
        assert isinstance(run.error, DeviceError) and "no valid mt-sics data" in str(run.error)
        assert run.ctx.counters.get("timeouts", 0) >= 1
        assert pty.read(0.5).startswith(b"SI\r\n")


def test_unplug_and_replug_under_a_stable_path(tmp_path: Path) -> None:
    link = tmp_path / "usb-Mettler_Toledo_scale-if00-port0"
    states: list[tuple[str, str | None]] = []
    readings: list[Reading] = []
    with ScaleSimulator("mt-sics", link=link, settle=0.05) as sim:
        config = ScaleConfig.model_validate(
            {"id": "scale-1", "driver": "scale", "protocol": "mt-sics", "port": str(link), "poll_interval": "50ms"}
        )
        supervisor = Supervisor(
            [config],
            emit_many=readings.extend,
            on_state=lambda d, s, e: states.append((s, e)),
            backoff_min=0.1,
            backoff_max=0.4,
        )
        supervisor.start()
        try:
            sim.set_weight(1.5)
            wait_until(lambda: any(r.value == 1.5 for r in readings), 10, what="1.5 kg")
            sim.unplug()
            wait_until(lambda: any(s == "error" for s, _ in states), 10, what="error state")
            errors = [e for s, e in states if s == "error"]
            assert str(link) in (errors[0] or "")
            runner = supervisor.runners["scale-1"]
            tried = runner.restarts
            wait_until(lambda: runner.restarts >= tried + 2, 10, what="restart attempts while unplugged")
            assert "does not exist" in (states[-1][1] or "")
            sim.replug()
            sim.set_weight(2.75)
            wait_until(lambda: any(r.value == 2.75 for r in readings), 10, what="readings after replug")
            assert states[-1] == ("connected", None)
        finally:
            supervisor.stop(timeout=2)
    assert supervisor.runners["scale-1"].restarts >= 1


def sma_responder(pty: PtyPair, stop: threading.Event, seen: list[bytes]) -> None:
    """A minimal SMA scale: W answers 12.5 kg net, Z answers centre of zero, T a tare error."""
    replies = {
        b"\nW\r": b"\n 1N      12.500kg \r",
        b"\nZ\r": b"\nZ1G       0.000kg \r",
        b"\nT\r": b"\nT1G  ----------kg \r",
        b"\nX\r": b"\n?\r",
    }
    pending = b""
    while not stop.is_set():
        pending += pty.read(0.02)
        while b"\r" in pending:
            request, pending = pending.split(b"\r", 1)
            seen.append(request + b"\r")
            pty.write(replies.get(request + b"\r", b"\n?\r"))


def test_sma_poll_and_commands_over_a_pty() -> None:
    stop, seen = threading.Event(), list[bytes]()
    with PtyPair() as pty:
        responder = threading.Thread(target=sma_responder, args=(pty, stop, seen), daemon=True)
        responder.start()
        try:
            with running(pty.port, protocol="sma", poll_interval="50ms") as run:
                wait_until(lambda: len(run.readings) >= 3, 10, what="SMA weights")
                reading = run.readings[0]
                assert (reading.value, reading.unit, reading.extra) == (12.5, "kg", {"stable": True, "net": True})
                assert run.driver.execute("zero", {}) == {
                    "reply": "Z1G       0.000kg",
                    "weight": 0.0,
                    "unit": "kg",
                    "stable": True,
                }
                with pytest.raises(CommandError, match="scale refused tare: tare_error"):
                    run.driver.execute("tare", {})
        finally:
            stop.set()
            responder.join(2)
    assert seen[0] == b"\nW\r" and b"\nZ\r" in seen and b"\nT\r" in seen


def test_a_command_waiting_for_the_scale_fails_at_once_when_the_driver_stops() -> None:
    outcome: list[BaseException] = []
    with ScaleSimulator("mt-sics", settle=30.0) as sim:
        with running(sim.port, protocol="mt-sics", command_timeout="20s") as run:
            wait_until(lambda: run.ctx.state == "connected", 10, what="connected")
            sim.set_weight(5.0)  # in motion for 30 s: the scale holds the Z command

            def zero() -> None:
                try:
                    run.driver.execute("zero", {})
                except CommandError as err:
                    outcome.append(err)

            caller = threading.Thread(target=zero)
            caller.start()
            wait_until(lambda: "Z" in sim.commands, 10, what="Z sent")
        t0 = time.monotonic()
        caller.join(5)
        assert time.monotonic() - t0 < 1.0
    assert len(outcome) == 1 and "stopped or was lost before it answered" in str(outcome[0])
