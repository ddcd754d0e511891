"""The driver against pymodbus' Modbus TCP server on loopback (drivers/modbus/simulator.py)."""

from __future__ import annotations

import itertools
import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from drivers.modbus.codec import encode_registers
from drivers.modbus.simulator import ConveyorPlc, RegisterMap, TcpSimulator, free_port
from edge_agent.driver import CommandError, DeviceConfig
from edge_agent.reading import Reading
from edge_agent.supervisor import Supervisor
from tests.helpers import wait_until
from tests.modbus.common import device, running

LAYOUT = {"holding": [(0, 60)], "input": [(0, 10)], "coil": [(0, 16)], "discrete": [(0, 16)]}


@pytest.fixture
def plc() -> RegisterMap:
    return RegisterMap(LAYOUT)


@pytest.fixture
def sim(plc: RegisterMap) -> Iterator[TcpSimulator]:
    s = TcpSimulator(plc).start()
    try:
        yield s
    finally:
        s.stop()


TYPED_POINTS: list[dict[str, Any]] = [
    *(
        {"name": f"f32_{o}", "table": "holding", "address": k * 2, "type": "float32", "order": o}
        for k, o in enumerate(["ABCD", "CDAB", "BADC", "DCBA"])
    ),
    *(
        {"name": f"u64_{o}", "table": "holding", "address": 8 + k * 4, "type": "uint64", "order": o}
        for k, o in enumerate(["ABCD", "CDAB", "BADC", "DCBA"])
    ),
    {"name": "i32_cdab", "table": "holding", "address": 24, "type": "int32", "order": "CDAB"},
    {"name": "i16", "table": "holding", "address": 26, "type": "int16"},
    {"name": "u16", "table": "holding", "address": 27},
    {"name": "label", "table": "holding", "address": 28, "type": "string", "length": 4},
    {"name": "label_swapped", "table": "holding", "address": 32, "type": "string", "length": 4, "byte_swap": True},
    {"name": "bit3", "table": "holding", "address": 36, "bit": 3},
    {"name": "bit2", "table": "holding", "address": 36, "bit": 2},
    {"name": "f64_dcba", "table": "holding", "address": 37, "type": "float64", "order": "DCBA"},
    {"name": "i64_badc", "table": "holding", "address": 41, "type": "int64", "order": "BADC"},
    {"name": "temp", "table": "input", "address": 1, "type": "int16", "scale": 0.1, "unit": "°C"},
    {"name": "speed", "table": "input", "address": 2, "type": "float32", "order": "CDAB", "scale": 0.1},
    {"name": "run", "table": "coil", "address": 1},
    {"name": "eye", "table": "discrete", "address": 2},
    {"name": "eye_off", "table": "discrete", "address": 3},
]

EXPECTED: dict[str, Any] = {
    **{f"f32_{o}": 123.456 for o in ["ABCD", "CDAB", "BADC", "DCBA"]},
    **{f"u64_{o}": 0x0102030405060708 for o in ["ABCD", "CDAB", "BADC", "DCBA"]},
    "i32_cdab": -1985229329,
    "i16": -2,
    "u16": 65534,
    "label": "LINE-1",
    "label_swapped": "LINE-1",
    "bit3": True,
    "bit2": False,
    "f64_dcba": -1234.5678,
    "i64_badc": -42,
    "temp": -12.5,
    "speed": 1.5,
    "run": True,
    "eye": True,
    "eye_off": False,
}


def load_images(plc: RegisterMap) -> None:
    # Register images written by hand from the example (123.456f = 0x42F6E979).
    plc.set("holding", 0, [0x42F6, 0xE979, 0xE979, 0x42F6, 0xF642, 0x79E9, 0x79E9, 0xF642])
    plc.set("holding", 8, [0x0102, 0x0304, 0x0506, 0x0708, 0x0708, 0x0506, 0x0304, 0x0102])
    plc.set("holding", 16, [0x0201, 0x0403, 0x0605, 0x0807, 0x0807, 0x0605, 0x0403, 0x0201])
    plc.set("holding", 24, [0xCDEF, 0x89AB, 0xFFFE, 0xFFFE])
    plc.set("holding", 28, [0x4C49, 0x4E45, 0x2D31, 0x0000, 0x494C, 0x454E, 0x312D, 0x0000])
    plc.set("holding", 36, [0b1000])
    plc.set("holding", 37, [0xADFA, 0x5C6D, 0x454A, 0x93C0])
    plc.set_value("holding", 41, -42, "int64", "BADC")
    plc.set("input", 1, [0xFF83])  # -125 * 0.1
    plc.set("input", 2, encode_registers(15.0, "float32", "CDAB"))
    plc.set("coil", 1, [1])
    plc.set("discrete", 2, [1])


def test_every_type_and_order_read_from_known_register_images(plc: RegisterMap, sim: TcpSimulator) -> None:
    load_images(plc)
    with running(device(sim.port, TYPED_POINTS)) as r:
        wait_until(lambda: all(r.of(p["name"]) for p in TYPED_POINTS), 10, what="a reading of every point")
    for name, expected in EXPECTED.items():
        first = r.of(name)[0]
        assert first.value == expected, name
        assert first.quality == "good" and first.kind == "point"
    assert r.of("temp")[0].unit == "°C"
    assert r.error is None
    assert r.ctx.state == "connected"


def test_one_request_per_table_per_poll_counted_by_the_server(plc: RegisterMap, sim: TcpSimulator) -> None:
    load_images(plc)
    with running(device(sim.port, TYPED_POINTS, poll_interval="20ms")) as r:
        wait_until(lambda: r.driver.polls >= 10, 15, what="10 polls")
    polls = r.driver.polls
    # holding 0-44 is one request (no gap), input 1-3 one, coil one, discrete one.
    assert plc.count("read holding") == polls
    assert polls - 1 <= plc.count("read input") <= polls
    assert polls - 1 <= plc.count("read discrete") <= polls
    assert all(entry == ("read", "holding", 0, 45) for entry in plc.log if entry[1] == "holding")


def test_exception_02_splits_the_request_and_the_plan_is_remembered() -> None:
    plc = RegisterMap({"holding": [(0, 10), (12, 20)]})  # holding 10 and 11 do not exist
    points = [
        {"name": "a", "table": "holding", "address": 8},
        {"name": "missing", "table": "holding", "address": 10},
        {"name": "b", "table": "holding", "address": 13},
    ]
    plc.set("holding", 8, [8])
    plc.set("holding", 13, [13])
    with TcpSimulator(plc) as sim:
        config = device(sim.port, points, poll_interval="20ms")
        with running(config) as r:
            wait_until(lambda: r.driver.polls >= 5, 10, what="5 polls")
        assert r.values("a")[:2] == [8, 8] and r.values("b")[:2] == [13, 13]
        bad = r.of("missing")[0]
        assert bad.quality == "bad" and bad.value is None
        assert bad.extra is not None and "exception 02" in bad.extra["error"]
        assert r.ctx.counters["requests_split"] == 1
        log = [e[2:] for e in plc.log]
        assert log[0] == (8, 6)  # the joined request, refused once...
        assert (8, 6) not in log[1:]  # ...and never again
        assert set(log[1:]) == {(8, 1), (10, 1), (13, 1)}
        # A fresh driver instance for the same device (as after a restart) keeps the learnt plan.
        plc.log.clear()
        with running(config, store=r.ctx.store) as r2:
            wait_until(lambda: r2.driver.polls >= 2, 10, what="2 polls")
        assert (8, 6) not in [e[2:] for e in plc.log]


def test_server_restart_mid_run_bad_then_good_again() -> None:
    plc = ConveyorPlc(animate=False)
    sim = TcpSimulator(plc).start()
    readings: list[Reading] = []
    lock = threading.Lock()

    def emit(batch: list[Reading]) -> None:
        with lock:
            readings.extend(batch)

    def reads() -> list[Reading]:
        with lock:
            return [r for r in readings if r.extra and r.extra["point"] == "reads"]

    config: DeviceConfig = device(sim.port, [{"name": "reads", "table": "holding", "address": 2, "type": "uint32"}])
    sup = Supervisor([config], emit_many=emit, backoff_min=0.1, backoff_max=0.4)
    sup.start()
    try:
        wait_until(lambda: len(reads()) >= 3, 10, what="first readings")
        sim.stop()
        wait_until(lambda: any(r.quality == "bad" for r in reads()), 10, what="a bad reading")
        runner = sup.runners["plc-1"]
        wait_until(lambda: runner.ctx.state == "error", 5, what="device state error")
        bad = next(r for r in reads() if r.quality == "bad")
        assert bad.extra is not None and "connection lost" in bad.extra["error"]
        sim.start()
        count = len(reads())
        wait_until(lambda: len(reads()) >= count + 3, 15, what="readings after the restart")
        assert runner.ctx.state == "connected"
        assert reads()[-1].quality == "good"
        assert runner.restarts >= 1
    finally:
        sup.stop(timeout=2)
        sim.stop()


def test_deadband_and_max_age(plc: RegisterMap, sim: TcpSimulator) -> None:
    points = [
        {"name": "speed", "table": "holding", "address": 0, "type": "float32", "deadband": 0.5, "max_age": "600ms"},
        {"name": "pct", "table": "holding", "address": 2, "type": "uint16", "deadband": "10%"},
        {"name": "raw", "table": "holding", "address": 3, "type": "uint16"},
    ]
    plc.set_value("holding", 0, 10.0, "float32")
    plc.set("holding", 2, [100])
    with running(device(sim.port, points, poll_interval="20ms")) as r:
        wait_until(lambda: r.of("speed"), 10, what="first reading")
        t0 = r.of("speed")[0].ts
        plc.set_value("holding", 0, 10.3, "float32")  # within the deadband
        plc.set("holding", 2, [109])  # within 10 %
        polls = r.driver.polls
        wait_until(lambda: r.driver.polls >= polls + 5, 10, what="5 more polls")
        assert r.values("speed") == [10.0] and r.values("pct") == [100]
        plc.set_value("holding", 0, 11.0, "float32")  # beyond: published at once
        plc.set("holding", 2, [121])
        wait_until(lambda: len(r.of("speed")) >= 2, 10, what="the change")
        assert r.values("speed")[1] == 11.0
        wait_until(lambda: len(r.of("pct")) >= 2, 10, what="the change in %")
        assert r.values("pct") == [100, 121]
        # Nothing changes now: max_age republishes the same value.
        wait_until(lambda: len(r.of("speed")) >= 3, 10, what="a max_age reading")
        republished = r.of("speed")[2]
        assert republished.value == 11.0
        assert republished.ts - r.of("speed")[1].ts >= 0.6 - 0.03
        assert republished.ts - t0 > 0.6
        # A point without deadband or max_age is published at every poll.
        assert len(r.of("raw")) >= r.driver.polls - 1


def test_write_points_by_name_with_type_encoding(plc: RegisterMap, sim: TcpSimulator) -> None:
    points = [
        {"name": "setpoint", "table": "holding", "address": 0, "type": "float32", "order": "CDAB", "scale": 0.1},
        {"name": "count", "table": "holding", "address": 2, "type": "int32"},
        {"name": "flag", "table": "holding", "address": 4, "bit": 5},
        {"name": "label", "table": "holding", "address": 5, "type": "string", "length": 3},
        {"name": "run", "table": "coil", "address": 0},
        {"name": "speed", "table": "input", "address": 0},
        {"name": "eye", "table": "discrete", "address": 0},
    ]
    plc.set("holding", 4, [0b1])
    with running(device(sim.port, points, poll_interval="50ms")) as r:
        wait_until(lambda: r.ctx.state == "connected", 10, what="connected")
        assert not [k for k in plc.requests if k.startswith("write")]  # nothing writes unless asked
        result = r.driver.execute("write", {"point": "setpoint", "value": 12.3})
        assert plc.get("holding", 0, 2) == encode_registers(123.0, "float32", "CDAB")
        assert result["raw"] == encode_registers(123.0, "float32", "CDAB")
        r.driver.execute("write", {"point": "count", "value": -5})
        assert plc.get("holding", 2, 2) == [0xFFFF, 0xFFFB]
        r.driver.execute("write", {"point": "flag", "value": True})
        assert plc.get("holding", 4) == [0b100001]
        r.driver.execute("write", {"point": "label", "value": "AB"})
        assert plc.get("holding", 5, 3) == [0x4142, 0, 0]
        r.driver.execute("write", {"point": "run", "value": True})
        assert plc.get("coil", 0) == [1]
        wait_until(lambda: r.values("setpoint") and r.values("setpoint")[-1] == 12.3, 10, what="read back")
        for params, message in [
            ({"point": "nope", "value": 1}, "no point"),
            ({"point": "speed", "value": 1}, "read-only input"),
            ({"point": "eye", "value": True}, "read-only discrete"),
            ({"point": "count", "value": 2**40}, "out of range"),
            ({"point": "label", "value": "TOO LONG"}, "do not fit"),
            ({"point": "run", "value": "yes"}, "true or false"),
            ({"point": "count"}, "needs a value"),
        ]:
            with pytest.raises(CommandError, match=message):
                r.driver.execute("write", params)
        with pytest.raises(CommandError, match="only 'write'"):
            r.driver.execute("reboot", {})


def test_a_slow_device_skips_cycles_and_the_schedule_does_not_drift() -> None:
    class Slow(RegisterMap):
        delay = 0.0

        def before_read(self, table: str, address: int, count: int) -> None:
            if self.delay:
                time.sleep(self.delay)

    plc = Slow({"holding": [(0, 4)]})
    period = 0.04
    with (
        TcpSimulator(plc) as sim,
        running(device(sim.port, [{"name": "x", "table": "holding", "address": 0}], poll_interval="40ms")) as r,
    ):
        wait_until(lambda: len(r.of("x")) >= 15, 10, what="15 readings")
        ts = [x.ts for x in r.of("x")]
        skipped = r.ctx.counters.get("cycles_skipped", 0)
        # The k-th poll starts at start + k * period (plus skipped cycles): no drift, whatever the load.
        assert abs((ts[-1] - ts[0]) - (len(ts) - 1 + skipped) * period) < period
        plc.delay = 0.07  # slower than the period
        n = len(r.of("x"))
        wait_until(lambda: len(r.of("x")) >= n + 5, 10, what="slow polls")
        assert r.ctx.counters.get("cycles_skipped", 0) >= skipped + 4
        slow = [x.ts for x in r.of("x")[n + 1 :]]
        assert all(b - a >= 2 * period - 0.01 for a, b in itertools.pairwise(slow))  # no overlap


def test_transaction_id_mismatch_recovers() -> None:
    """A device that answers a request twice: the stale copy arrives before the next answer."""
    port = free_port()
    listener = socket.create_server(("127.0.0.1", port))
    served = []
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        conn = None
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                break
            except TimeoutError:
                continue
        if conn is None:
            return
        conn.settimeout(0.1)
        previous = b""
        with conn:
            while not stop.is_set():
                try:
                    request = conn.recv(260)
                except TimeoutError:
                    continue
                if not request:
                    return
                tid, _, _, unit, fc, _address, count = struct.unpack(">HHHBBHH", request[:12])
                served.append(tid)
                body = bytes((fc, 2 * count)) + b"".join(struct.pack(">H", 1000 + tid) for _ in range(count))
                answer = struct.pack(">HHHB", tid, 0, len(body) + 1, unit) + body
                # Every third request gets the previous answer again first (a stale, duplicated frame).
                conn.sendall((previous if len(served) % 3 == 0 else b"") + answer)
                previous = answer

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with running(device(port, [{"name": "x", "table": "holding", "address": 0}], poll_interval="20ms")) as r:
            wait_until(lambda: len(r.of("x")) >= 10, 10, what="10 readings")
        values = r.values("x")[:10]
        assert values == [1000 + tid for tid in served[:10]]  # each answer matched to its own request
        assert all(x.quality == "good" for x in r.of("x"))
        assert r.error is None
    finally:
        stop.set()
        thread.join(2)
        listener.close()


def test_refused_connection_is_a_device_error_and_commands_are_refused_while_disconnected() -> None:
    port = free_port()  # nothing listens here
    with running(device(port, [{"name": "x", "table": "holding", "address": 0}])) as r:
        wait_until(lambda: r.error is not None, 5, what="the error")
        with pytest.raises(CommandError, match="not connected"):
            r.driver.execute("write", {"point": "x", "value": 1})
    assert f"cannot connect to Modbus TCP 127.0.0.1:{port}" in str(r.error)
    assert r.readings == []  # nothing was ever read: no readings, the device status says why


def test_stop_interrupts_a_request_waiting_for_a_silent_plc() -> None:
    """A PLC that accepts the connection and never answers: the stop must not wait out `timeout`."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    accepted: list[socket.socket] = []
    requested = threading.Event()

    def silent_plc() -> None:
        conn, _ = server.accept()
        accepted.append(conn)
        if conn.recv(260):  # a request arrived; it is never answered
            requested.set()

    threading.Thread(target=silent_plc, daemon=True).start()
    config = device(server.getsockname()[1], [{"name": "a", "table": "holding", "address": 0}], timeout="10s")
    states: list[str] = []
    sup = Supervisor([config], emit_many=lambda r: None, on_state=lambda d, s, e: states.append(s))
    sup.start()
    try:
        wait_until(requested.is_set, 10, what="a request under way")
        t0 = time.monotonic()
        sup.stop(timeout=3)
        elapsed = time.monotonic() - t0
    finally:
        server.close()
        for conn in accepted:
            conn.close()
    assert elapsed < 1.0, f"stop took {elapsed:.2f}s with a 10 s request timeout"
    assert states[-1:] == ["stopped"] and "error" not in states  # a stop is not a device failure
