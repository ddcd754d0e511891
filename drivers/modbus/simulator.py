"""A conveyor PLC to poll: a register map served over Modbus TCP (pymodbus' server) or RTU.

`ConveyorPlc` is the device: counters, speeds and states that move with time, a per-read counter
(holding 2-3, uint32) that counts every read of the holding registers so a benchmark can see lost
polls as gaps, and a log of requests so tests can count requests per poll from the server side.
`TcpSimulator` serves it with pymodbus on loopback; `RtuSlave` answers RTU requests for several
units on one serial line (the master side of a pty pair), some of them silent.

    python -m drivers.modbus.simulator --port 5020        # run a conveyor PLC until Ctrl-C
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import select
import signal
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import SimData, SimDevice
from pymodbus.simulator.simutils import DataType

from drivers.modbus.codec import encode_registers, pack_bits
from drivers.modbus.rtu import RtuRequest, RtuRequestDecoder, exception_frame, frame

__all__ = ["ConveyorPlc", "RegisterMap", "RtuSlave", "TcpSimulator", "free_port"]

ILLEGAL_FUNCTION = 1
ILLEGAL_ADDRESS = 2
ILLEGAL_VALUE = 3

_READ_TABLE = {1: "coil", 2: "discrete", 3: "holding", 4: "input"}
_WRITE_TABLE = {5: "coil", 15: "coil", 6: "holding", 16: "holding"}
TABLES = ("coil", "discrete", "holding", "input")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RegisterMap:
    """Four tables of valid address ranges; reads outside them answer exception 02.

    Thread-safe: the server thread reads and writes while a test pokes values.
    """

    def __init__(self, ranges: dict[str, Sequence[tuple[int, int]]]) -> None:
        self.ranges = {t: sorted(ranges.get(t, ())) for t in TABLES}
        self.values: dict[str, dict[int, int]] = {t: {} for t in TABLES}
        for table, spans in self.ranges.items():
            for start, end in spans:
                for a in range(start, end):
                    self.values[table][a] = 0
        self.lock = threading.Lock()
        self.requests: Counter[str] = Counter()  # "read holding", "write coil", ...
        self.log: deque[tuple[str, str, int, int]] = deque(maxlen=10_000)
        self.read_only: set[tuple[str, int]] = set()

    def valid(self, table: str, address: int, count: int) -> bool:
        store = self.values[table]
        return all(a in store for a in range(address, address + count))

    def record(self, kind: str, table: str, address: int, count: int) -> None:
        """Count a request as the device received it (before it is checked)."""
        with self.lock:
            self.requests[f"{kind} {table}"] += 1
            self.log.append((kind, table, address, count))

    def read(self, table: str, address: int, count: int, *, record: bool = True) -> list[int] | int:
        """Raw values (0/1 for bits), or an exception code."""
        if record:
            self.record("read", table, address, count)
        with self.lock:
            if not self.valid(table, address, count):
                return ILLEGAL_ADDRESS
            self.before_read(table, address, count)
            store = self.values[table]
            return [store[a] for a in range(address, address + count)]

    def write(self, table: str, address: int, values: Sequence[int], *, record: bool = True) -> int | None:
        if record:
            self.record("write", table, address, len(values))
        with self.lock:
            if table not in ("holding", "coil"):
                return ILLEGAL_FUNCTION
            if not self.valid(table, address, len(values)):
                return ILLEGAL_ADDRESS
            if any((table, a) in self.read_only for a in range(address, address + len(values))):
                return ILLEGAL_ADDRESS
            store = self.values[table]
            for k, v in enumerate(values):
                store[address + k] = int(v)
            self.after_write(table, address, len(values))
            return None

    def set(self, table: str, address: int, values: Sequence[int]) -> None:
        """Poke raw values (tests, demos): no request is counted."""
        with self.lock:
            store = self.values[table]
            for k, v in enumerate(values):
                if address + k not in store:
                    raise KeyError(f"{table} {address + k} is not a valid address of this map")
                store[address + k] = int(v)

    def set_value(self, table: str, address: int, value: Any, dtype: str, order: str = "ABCD", **kw: Any) -> None:
        self.set(table, address, encode_registers(value, dtype, order, **kw))

    def get(self, table: str, address: int, count: int = 1) -> list[int]:
        with self.lock:
            return [self.values[table][a] for a in range(address, address + count)]

    def count(self, kind: str) -> int:
        with self.lock:
            return self.requests[kind]

    def before_read(self, table: str, address: int, count: int) -> None:
        """Hook (lock held): refresh values before they are read."""

    def after_write(self, table: str, address: int, count: int) -> None:
        """Hook (lock held): react to a write."""


class ConveyorPlc(RegisterMap):
    """A conveyor line's PLC. Register map (0-based):

    holding 0-1    parcels_total    uint32 ABCD   parcels past the scanner
    holding 2-3    reads            uint32 ABCD   +1 on every read request of holding registers
    holding 4      state            uint16        0 stopped, 1 running, 2 jammed
    holding 5      speed_setpoint   uint16        mm/s (writable)
    holding 6-7    uptime_s         uint32 CDAB
    holding 8-9    tracking_error   int32  ABCD   mm, signed
    holding 10-19  zone_1..5        uint32 ABCD   parcels per zone
    holding 20-27  label            string        8 registers, 16 characters
    holding 28-99  zone_6..41       uint32 ABCD
    (holding 100-109 do not exist: exception 02)
    holding 110-113 distance_m      float64 DCBA
    holding 114-117 runtime_ms      uint64  BADC
    holding 118    status_bits      uint16        bit 0 running, 1 jammed, 2 e-stop
    holding 119    reserved
    input   0      motor_current    uint16        0.01 A
    input   1      motor_temp       int16         0.1 °C
    input   10-11  belt_speed       float32 CDAB  raw 0.1 m/s (scale 0.1)
    input   12-13  motor_rpm        float32 ABCD
    coil    0      run              writable; false stops the belt
    coil    1      fault_reset      writable; clears a jam
    discrete 0-7   photo_eye_1..8
    discrete 8     estop
    """

    LAYOUT: ClassVar[dict[str, Sequence[tuple[int, int]]]] = {
        "holding": [(0, 100), (110, 120)],
        "input": [(0, 20)],
        "coil": [(0, 16)],
        "discrete": [(0, 16)],
    }

    def __init__(self, *, animate: bool = True, parcels_per_s: float = 4.0, label: str = "CONVEYOR LINE 1") -> None:
        super().__init__(self.LAYOUT)
        self.animate = animate
        self.parcels_per_s = parcels_per_s
        self.started = time.monotonic()
        self.reads = 0
        self.running = True
        self.jammed = False
        self.values["coil"][0] = 1
        self.values["holding"][5] = 1500
        self.set_value("holding", 20, label, "string", length=8)
        self._parcels = 0.0
        self._distance = 0.0
        self._last = self.started
        self._next_jam = 97
        self._jam_since = 0.0

    def before_read(self, table: str, address: int, count: int) -> None:
        if table == "holding":
            self.reads = (self.reads + 1) & 0xFFFFFFFF
            self._put("holding", 2, encode_registers(self.reads, "uint32"))
        if self.animate:
            self._advance()

    def after_write(self, table: str, address: int, count: int) -> None:
        if table == "coil":
            self.running = bool(self.values["coil"][0])
            if self.values["coil"][1]:
                self.jammed = False
                self.values["coil"][1] = 0
        if self.animate:
            self._advance()

    def _put(self, table: str, address: int, words: Sequence[int]) -> None:
        store = self.values[table]
        for k, w in enumerate(words):
            store[address + k] = w

    def _advance(self) -> None:
        now = time.monotonic()
        dt, self._last = now - self._last, now
        elapsed = now - self.started
        speed = self.values["holding"][5] / 1000.0 if self.running and not self.jammed else 0.0
        self._parcels += dt * self.parcels_per_s * (speed / 1.5)
        self._distance += dt * speed
        parcels = int(self._parcels)
        # A jam every 97 parcels, cleared by fault_reset (or by itself after 5 s, for the demo).
        if self.running and not self.jammed and parcels >= self._next_jam:
            self.jammed, self._jam_since = True, now
            self._next_jam += 97
        if self.jammed and now - self._jam_since > 5.0:
            self.jammed = False
        state = 2 if self.jammed else 1 if self.running else 0
        h = "holding"
        self._put(h, 0, encode_registers(parcels & 0xFFFFFFFF, "uint32"))
        self._put(h, 4, [state])
        self._put(h, 6, encode_registers(int(elapsed) & 0xFFFFFFFF, "uint32", "CDAB"))
        self._put(h, 8, encode_registers(int(25 * math.sin(elapsed / 3)), "int32"))
        for zone in range(41):
            address = 10 + 2 * zone if zone < 5 else 28 + 2 * (zone - 5)
            self._put(h, address, encode_registers((parcels + zone) // (zone + 1), "uint32"))
        self._put(h, 110, encode_registers(round(self._distance, 3), "float64", "DCBA"))
        self._put(h, 114, encode_registers(int(elapsed * 1000), "uint64", "BADC"))
        self._put(h, 118, [int(self.running) | int(self.jammed) << 1])
        current = 0.0 if speed == 0 else 420 + 30 * math.sin(elapsed)
        self._put("input", 0, [int(current)])
        self._put("input", 1, encode_registers(int(385 + 20 * math.sin(elapsed / 30)), "int16"))
        self._put("input", 10, encode_registers(round(speed * 10, 2), "float32", "CDAB"))
        self._put("input", 12, encode_registers(round(speed * 955.0, 1), "float32"))
        eyes = self.values["discrete"]
        for k in range(8):
            eyes[k] = int(speed > 0 and (self._parcels * 8 + k) % 8 < 1.5)


# -- Modbus TCP, served by pymodbus --------------------------------------------------------------


class TcpSimulator:
    """A RegisterMap served by pymodbus' Modbus TCP server on 127.0.0.1, in a thread of its own.

    `stop()` closes the listener and every connection; `start()` again serves on the same port.
    """

    def __init__(self, plc: RegisterMap | None = None, *, port: int = 0, unit: int = 0) -> None:
        self.plc = plc if plc is not None else ConveyorPlc()
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.unit = unit  # 0: answer every unit id
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    def start(self, timeout: float = 10.0) -> TcpSimulator:
        ready = threading.Event()
        self._error = None
        self._thread = threading.Thread(target=self._main, args=(ready,), name="modbus-sim", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError(f"Modbus simulator did not listen on {self.host}:{self.port}")
        if self._error is not None:
            raise RuntimeError(f"Modbus simulator failed: {self._error}") from self._error
        return self

    def __enter__(self) -> TcpSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        loop, stop, thread = self._loop, self._stop, self._thread
        if loop is not None and stop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(stop.set)
            thread.join(5)
        self._thread = None

    def _main(self, ready: threading.Event) -> None:
        try:
            asyncio.run(self._serve(ready))
        except BaseException as err:  # reported to start()
            self._error = err
            ready.set()

    async def _serve(self, ready: threading.Event) -> None:

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        blocks: list[list[Any]] = []
        for table in TABLES:
            bits = table in ("coil", "discrete")
            entries = []
            for start, end in self.plc.ranges[table] or [(0, 1)]:
                if bits:
                    entries.append(SimData(start, values=[False] * (end - start), datatype=DataType.BITS))
                else:
                    entries.append(SimData(start, count=end - start, values=0, datatype=DataType.REGISTERS))
            blocks.append(entries)
        device = SimDevice(self.unit, simdata=(blocks[0], blocks[1], blocks[2], blocks[3]), action=self._action)
        server = ModbusTcpServer(device, address=(self.host, self.port), trace_pdu=self._trace)
        await server.serve_forever(background=True)
        if not server.transport:
            raise OSError(f"cannot listen on {self.host}:{self.port}")
        ready.set()
        await self._stop.wait()
        await server.shutdown()  # type: ignore[no-untyped-call]

    def _trace(self, sending: bool, pdu: Any) -> Any:
        """Every request as it arrives, also those pymodbus refuses before the datastore sees them."""
        if not sending:
            fc = int(pdu.function_code)
            if fc in _READ_TABLE:
                self.plc.record("read", _READ_TABLE[fc], pdu.address, pdu.count)
            elif fc in _WRITE_TABLE:
                self.plc.record("write", _WRITE_TABLE[fc], pdu.address, max(pdu.count, len(pdu.bits), 1))
        return pdu

    async def _action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> Any:
        plc = self.plc
        if set_values is not None and function_code in _WRITE_TABLE:
            values = [int(v) for v in set_values]
            code = plc.write(_WRITE_TABLE[function_code], address, values, record=False)
            return ExcCodes(code) if code else None
        table = _READ_TABLE.get(function_code)
        if table is None:
            # pymodbus reads the written values back to answer a write: not a read of the device.
            return None if function_code in _WRITE_TABLE else ExcCodes.ILLEGAL_FUNCTION
        if table in ("coil", "discrete"):
            # pymodbus hands over the 16-bit words that hold the bits; refresh every bit they hold.
            first = (address // 16) * 16
            nbits = count * 16
            with plc.lock:
                store = plc.values[table]
                known = [a for a in range(first, first + nbits) if a in store]
            result = plc.read(table, known[0], len(known), record=False) if known else ILLEGAL_ADDRESS
            if isinstance(result, int):
                return ExcCodes(result)
            bits = dict(zip(known, result, strict=True))
            for k in range(count):
                word = 0
                for b in range(16):
                    if bits.get(first + 16 * k + b):
                        word |= 1 << b
                registers[address // 16 - start_address + k] = word
            return None
        result = plc.read(table, address, count, record=False)
        if isinstance(result, int):
            return ExcCodes(result)
        registers[address - start_address : address - start_address + count] = result
        return None


# -- Modbus RTU: several units on one line ---------------------------------------------------------


class RtuSlave:
    """Answers RTU requests read from `fd` (e.g. a pty master) for the units in `units`.

    A unit in `silent` receives its requests and never answers, as an unpowered device on a bus.
    """

    def __init__(
        self,
        fd: int,
        units: dict[int, RegisterMap],
        *,
        silent: Sequence[int] = (),
        write: Callable[[bytes], None] | None = None,
    ) -> None:
        self.fd = fd
        self.units = units
        self.silent = set(silent)
        self.decoder = RtuRequestDecoder()
        self.seen: Counter[int] = Counter()
        # (monotonic time, "rx" request complete | "tx" answer written, unit), for timing checks.
        self.timeline: deque[tuple[float, str, int]] = deque(maxlen=10_000)
        self._write = write or self._write_fd
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="modbus-rtu-sim", daemon=True)

    def start(self) -> RtuSlave:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)

    def _write_fd(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]

    def _main(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self.fd], [], [], 0.05)
                if not ready:
                    self.decoder.idle()
                    continue
                data = os.read(self.fd, 4096)
            except OSError:
                if self._stop.wait(0.05):
                    return
                continue
            for request in self.decoder.feed(data):
                self.seen[request.unit] += 1
                self.timeline.append((time.monotonic(), "rx", request.unit))
                reply = self.answer(request)
                if reply is not None:
                    try:
                        self._write(reply)
                    except OSError:
                        pass
                    self.timeline.append((time.monotonic(), "tx", request.unit))

    def answer(self, request: RtuRequest) -> bytes | None:
        plc = self.units.get(request.unit)
        if plc is None or request.unit in self.silent:
            return None
        fc = request.function
        if fc in _READ_TABLE:
            table = _READ_TABLE[fc]
            result = plc.read(table, request.address, request.count)
            if isinstance(result, int):
                return exception_frame(request.unit, fc, result)
            if table in ("coil", "discrete"):
                body = pack_bits(bool(v) for v in result)
            else:
                body = b"".join(v.to_bytes(2, "big") for v in result)
            return frame(request.unit, fc, bytes((len(body),)) + body)
        if fc in (5, 6):
            raw = int.from_bytes(request.data, "big")
            if fc == 5 and raw not in (0x0000, 0xFF00):
                return exception_frame(request.unit, fc, ILLEGAL_VALUE)
            code = plc.write(_WRITE_TABLE[fc], request.address, [1 if fc == 5 and raw else raw])
            if code:
                return exception_frame(request.unit, fc, code)
            return frame(request.unit, fc, request.address.to_bytes(2, "big") + request.data)
        if fc in (15, 16):
            if fc == 15:
                values = [(request.data[k // 8] >> (k % 8)) & 1 for k in range(request.count)]
            else:
                values = [int.from_bytes(request.data[k : k + 2], "big") for k in range(0, len(request.data), 2)]
            code = plc.write(_WRITE_TABLE[fc], request.address, values)
            if code:
                return exception_frame(request.unit, fc, code)
            body = request.address.to_bytes(2, "big") + request.count.to_bytes(2, "big")
            return frame(request.unit, fc, body)
        return exception_frame(request.unit, fc, ILLEGAL_FUNCTION)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A conveyor PLC on Modbus TCP (127.0.0.1)")
    parser.add_argument("--port", type=int, default=5020)
    parser.add_argument("--static", action="store_true", help="only the read counter changes")
    args = parser.parse_args(argv)
    plc = ConveyorPlc(animate=not args.static)
    sim = TcpSimulator(plc, port=args.port).start()
    print(json.dumps({"listening": f"127.0.0.1:{sim.port}"}), flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    while not done.wait(0.5):
        pass
    sim.stop()
    print(json.dumps({"reads": plc.reads, "requests": dict(plc.requests)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
