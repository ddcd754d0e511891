"""The Modbus I/O loop: a pymodbus sync client, the read plan, the poll schedule, writes.

One driver instance per device (one unit), in its own thread (see edge_agent/supervisor.py):
- TCP: the device's own connection. A timeout or a dropped connection raises DeviceError; the
  supervisor backs off and a fresh instance reconnects. Other devices are not affected.
- RTU: devices naming the same port share one serial connection (`_BUSES`), taking turns with a
  fair bus lock. A silent unit costs its own timeout, then backs off; the other units keep polling.
Protocol details (register encoding, read plan) live in codec.py, which does no I/O.
"""

from __future__ import annotations

import logging
import math
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from drivers.modbus.codec import (
    ReadRequest,
    Span,
    describe_exception,
    encode_registers,
    make_decoder,
    plan_reads,
    scale_value,
    split_request,
    unscale_value,
)
from drivers.modbus.config import WRITABLE_TABLES, ModbusConfig, PointConfig
from edge_agent.driver import CommandError, DeviceError, Driver, DriverContext
from edge_agent.reading import Quality, Reading

__all__ = ["ModbusDriver"]

log = logging.getLogger("edge_agent.modbus")

ILLEGAL_ADDRESS = 2
_UNSET: Any = object()


class FairLock:
    """A lock handed to waiters in arrival order (units on one bus take turns), abandonable on stop."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._locked = False
        self._waiters: deque[threading.Event] = deque()

    def acquire(self, stopping: threading.Event, timeout: float | None = None) -> bool:
        with self._mutex:
            if not self._locked and not self._waiters:
                self._locked = True
                return True
            turn = threading.Event()
            self._waiters.append(turn)
        deadline = None if timeout is None else time.monotonic() + timeout
        while not turn.wait(0.05):
            gave_up = stopping.is_set() or (deadline is not None and time.monotonic() >= deadline)
            if gave_up:
                with self._mutex:
                    if turn in self._waiters:
                        self._waiters.remove(turn)
                        return False
                # Handed over while giving up: pass it on.
                self.release()
                return False
        return True

    def release(self) -> None:
        with self._mutex:
            if self._waiters:
                self._waiters.popleft().set()  # ownership passes directly to the next in line
            else:
                self._locked = False


class _Link:
    """A pymodbus sync client and the lock that serialises its requests."""

    def __init__(self, client: ModbusTcpClient | ModbusSerialClient, name: str, *, frame_gap: float = 0.0) -> None:
        self.client = client
        self.name = name
        self.lock = FairLock()
        self.users = 0
        # RTU: the line must stay silent for 3.5 characters between frames (lock held to use these).
        self.frame_gap = frame_gap
        self.quiet_until = 0.0

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """One request (the caller holds the lock), keeping the RTU inter-frame silence."""
        if self.frame_gap:
            wait = self.quiet_until - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        try:
            return getattr(self.client, method)(*args, **kwargs)
        finally:
            if self.frame_gap:
                self.quiet_until = time.monotonic() + self.frame_gap


def rtu_frame_gap(baudrate: int) -> float:
    """3.5 character times of 11 bits; fixed 1.75 ms above 19200 baud (Modbus over serial line 2.5.1.1)."""
    return 1.75e-3 if baudrate > 19200 else 3.5 * 11 / baudrate


# RTU buses shared by the units on one port: port → link. Guarded by _BUSES_LOCK.
_BUSES: dict[str, _Link] = {}
_BUSES_LOCK = threading.Lock()


@dataclass(slots=True)
class _PointState:
    cfg: PointConfig
    convert: Callable[[Sequence[int], int], Any]
    last_value: Any = _UNSET
    last_quality: str = ""
    last_sent: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def _converter(point: PointConfig, order: str) -> Callable[[Sequence[int], int], Any]:
    decode = make_decoder(
        point.value_type,
        point.order or order,
        bit=point.bit,
        byte_swap=point.byte_swap,
        encoding=point.encoding,
        length=point.register_count,
    )
    scale, offset = point.scale, point.offset
    if scale == 1.0 and offset == 0.0:
        return decode
    return lambda regs, i: scale_value(decode(regs, i), scale, offset)


class ModbusDriver(Driver):
    """Polls a Modbus device's points and emits `point` readings; writes points on command."""

    config_model = ModbusConfig
    config: ModbusConfig

    def __init__(self, config: ModbusConfig, ctx: DriverContext) -> None:
        super().__init__(config, ctx)
        self._link: _Link | None = None
        self._shared = config.transport == "rtu"
        self._points = {
            p.name: _PointState(p, _converter(p, config.order), extra={"point": p.name}) for p in config.points
        }
        learnt = ctx.store.get("plan")  # split after exception 02 by an earlier run of this device
        if learnt is not None:
            self._plan = list(learnt)
        else:
            spans = [Span(p.name, p.table, p.address, p.register_count) for p in config.points]
            self._plan = plan_reads(
                spans,
                max_fill=config.max_fill,
                max_fill_bits=config.max_fill_bits,
                max_registers=config.max_registers,
                max_bits=config.max_bits,
            )
        self._answered = False
        self._behind_since: float | None = None
        self._skipped_unreported = 0
        self._last_behind_log = 0.0
        self.polls = 0

    @property
    def label(self) -> str:
        cfg = self.config
        where = f"{cfg.host}:{cfg.port}" if cfg.transport == "tcp" else f"{cfg.port}"
        return f"{where} unit {cfg.unit}"

    # -- lifecycle ------------------------------------------------------------------------------
    def run(self) -> None:
        self._link = self._open()
        if self._link is None:  # stopped while waiting for the bus
            return
        ctx, period = self.ctx, self.config.poll_interval
        next_start = time.monotonic()
        while not ctx.stopping.is_set():
            started = time.monotonic()
            self._poll()
            self.polls += 1
            ctx.set_gauge("poll_duration_seconds", time.monotonic() - started)
            next_start += period
            now = time.monotonic()
            late = now - next_start
            if late > period / 2:
                # Overran: the cycles whose start has passed are skipped, the period is kept.
                missed = int(late // period) + (1 if late % period > period / 2 else 0)
                next_start += missed * period
                self._note_skipped(missed, now)
            elif self._behind_since is not None and now - self._behind_since > 10:
                log.info("Device %r keeps its poll interval again", ctx.device_id)
                self._behind_since = None
            if ctx.wait(next_start - time.monotonic()):
                break

    def interrupt(self) -> None:
        """Stop now: a TCP request waiting for its answer fails at once instead of after `timeout`.
        (A shared RTU bus is left alone: the other units on it keep using it.)"""
        link = self._link
        sock = link.client.socket if link is not None and not self._shared else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes the recv/select of the polling thread
            except OSError:
                pass

    def close(self) -> None:
        link, self._link = self._link, None
        if link is None:
            return
        if self._shared:
            self._release_shared(link)
        else:
            link.client.close()  # type: ignore[no-untyped-call]

    def _open(self) -> _Link | None:
        cfg = self.config
        if cfg.transport == "tcp":
            assert cfg.host is not None and isinstance(cfg.port, int)
            client = ModbusTcpClient(cfg.host, port=cfg.port, timeout=cfg.timeout, retries=0)
            link = _Link(client, f"{cfg.host}:{cfg.port}")
            if not client.connect():  # type: ignore[no-untyped-call]
                raise DeviceError(f"cannot connect to Modbus TCP {cfg.host}:{cfg.port} (refused or unreachable)")
            sock = client.socket
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return link
        port = str(cfg.port)
        with _BUSES_LOCK:
            link_or_none = _BUSES.get(port)
            if link_or_none is None:
                client_rtu = ModbusSerialClient(
                    port,
                    baudrate=cfg.baudrate,
                    bytesize=cfg.bytesize,
                    parity=cfg.parity,
                    stopbits=cfg.stopbits,
                    timeout=cfg.timeout,
                    retries=0,
                )
                link_or_none = _Link(client_rtu, port, frame_gap=rtu_frame_gap(cfg.baudrate))
                _BUSES[port] = link_or_none
            link = link_or_none
            link.users += 1
        if not link.lock.acquire(self.ctx.stopping):
            self._release_shared(link)
            return None
        try:
            if not link.client.connect():
                raise DeviceError(f"cannot open serial port {port} (unplugged, wrong path, or in use?)")
        except DeviceError:
            link.lock.release()
            self._release_shared(link)
            raise
        link.lock.release()
        return link

    def _release_shared(self, link: _Link) -> None:
        with _BUSES_LOCK:
            link.users -= 1
            if link.users <= 0:
                _BUSES.pop(link.name, None)
                link.client.close()  # type: ignore[no-untyped-call]

    # -- polling --------------------------------------------------------------------------------
    def _poll(self) -> None:
        readings: list[Reading] = []
        queue = deque(self._plan)
        while queue and not self.ctx.stopping.is_set():
            request = queue.popleft()
            try:
                response = self._request(_READERS[request.table], request.address, count=request.count)
            except _Stopped:
                break
            except _NoAnswer as err:
                if readings:  # what this poll read before the device went away
                    self.ctx.emit_many(readings)
                self._emit_all_bad(str(err))
                raise DeviceError(f"Modbus {self.label}: {err}") from err
            ts = time.time()
            if not self._answered:
                self._answered = True
                self.ctx.connected()
            if response.isError():
                code = int(getattr(response, "exception_code", 0))
                parts = split_request(request)
                if code == ILLEGAL_ADDRESS and len(parts) > 1:
                    self._learn_split(request, parts)
                    queue.extendleft(reversed(parts))
                    continue
                self.ctx.count("exceptions")
                self._bad(readings, request, describe_exception(code), ts)
                continue
            values: Sequence[int] = response.bits if request.table in ("coil", "discrete") else response.registers
            self._good(readings, request, values, ts)
        if readings:
            self.ctx.emit_many(readings)

    def _good(self, out: list[Reading], request: ReadRequest, values: Sequence[int], ts: float) -> None:
        device, base, now = self.ctx.device_id, request.address, time.monotonic()
        points = self._points
        for span in request.spans:
            st = points[span.key]
            try:
                value = st.convert(values, span.address - base)
            except (IndexError, ValueError) as err:  # a short answer from a misbehaving device
                self._emit_one(out, st, None, "bad", ts, now, f"cannot decode: {err}")
                continue
            if isinstance(value, float) and not math.isfinite(value):
                self._emit_one(out, st, None, "bad", ts, now, f"not a number ({value})")
                continue
            cfg = st.cfg
            if cfg.deadband is None and cfg.max_age is None:
                # Every poll is published (the fast path: no report-by-exception bookkeeping).
                out.append(Reading(device, "point", value, ts=ts, quality="good", unit=cfg.unit, extra=st.extra))
                continue
            self._emit_one(out, st, value, "good", ts, now, None)

    def _bad(self, out: list[Reading], request: ReadRequest, error: str, ts: float) -> None:
        now = time.monotonic()
        for span in request.spans:
            self._emit_one(out, self._points[span.key], None, "bad", ts, now, error)

    def _emit_one(
        self,
        out: list[Reading],
        st: _PointState,
        value: Any,
        quality: Quality,
        ts: float,
        now: float,
        error: str | None,
    ) -> None:
        cfg = st.cfg
        if cfg.report_by_exception and not self._changed(st, value, quality, now):
            return
        st.last_value, st.last_quality, st.last_sent = value, quality, now
        extra = st.extra if error is None else {**st.extra, "error": error}
        out.append(Reading(self.ctx.device_id, "point", value, ts=ts, quality=quality, unit=cfg.unit, extra=extra))

    @staticmethod
    def _changed(st: _PointState, value: Any, quality: str, now: float) -> bool:
        cfg = st.cfg
        if not st.last_quality or quality != st.last_quality:
            return True
        if cfg.max_age is not None and now - st.last_sent >= cfg.max_age:
            return True
        if quality != "good":
            return False
        last = st.last_value
        band = cfg.deadband
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if band is None or not numeric or not isinstance(last, int | float):
            return bool(value != last)
        return band.exceeded(float(last), float(value))

    def _emit_all_bad(self, error: str) -> None:
        ts, now = time.time(), time.monotonic()
        out: list[Reading] = []
        for st in self._points.values():
            self._emit_one(out, st, None, "bad", ts, now, error)
        if out:
            self.ctx.emit_many(out)

    def _learn_split(self, request: ReadRequest, parts: list[ReadRequest]) -> None:
        index = self._plan.index(request)
        self._plan[index : index + 1] = parts
        self.ctx.store["plan"] = list(self._plan)
        self.ctx.count("requests_split")
        log.info(
            "Device %r: %s %d-%d answered exception 02 (illegal address); reading its %d points separately",
            self.ctx.device_id,
            request.table,
            request.address,
            request.end - 1,
            len(request.spans),
        )

    def _note_skipped(self, missed: int, now: float) -> None:
        self.ctx.count("cycles_skipped", missed)
        self._skipped_unreported += missed
        if self._behind_since is None or now - self._last_behind_log > 60:
            log.warning(
                "Device %r: a poll took longer than poll_interval %.0f ms; skipped %d cycle(s)%s",
                self.ctx.device_id,
                self.config.poll_interval * 1000,
                self._skipped_unreported,
                "" if self._behind_since is None else " in the last minute",
            )
            self._skipped_unreported = 0
            self._last_behind_log = now
        self._behind_since = now

    # -- one request on the link ----------------------------------------------------------------
    def _request(self, method: str, *args: Any, **kwargs: Any) -> Any:
        link = self._link
        if link is None:
            raise DeviceError(f"Modbus {self.label}: not connected")
        if not link.lock.acquire(self.ctx.stopping):
            raise _Stopped
        try:
            link.client.comm_params.timeout_connect = self.config.timeout
            return link.call(method, *args, device_id=self.config.unit, **kwargs)
        except ModbusIOException as err:
            if "No response" not in str(err):
                raise _NoAnswer(f"invalid answer ({_short(err)})") from err
            self.ctx.count("timeouts")
            raise _NoAnswer(f"no valid answer within {self.config.timeout * 1000:.0f} ms") from err
        except ConnectionException as err:
            raise _NoAnswer(f"connection lost ({_short(err)})") from err
        except ModbusException as err:
            raise _NoAnswer(_short(err)) from err
        except OSError as err:
            raise _NoAnswer(f"I/O error: {err}") from err
        finally:
            link.lock.release()

    # -- commands -------------------------------------------------------------------------------
    def execute(self, action: str, params: Mapping[str, Any]) -> Any:
        if action != "write":
            raise CommandError(f"modbus devices have no action {action!r} (only 'write')")
        name = params.get("point")
        st = self._points.get(str(name)) if name is not None else None
        if st is None:
            raise CommandError(f"device {self.ctx.device_id!r} has no point {name!r}")
        if "value" not in params:
            raise CommandError("write needs a value")
        point = st.cfg
        if point.table not in WRITABLE_TABLES:
            raise CommandError(f"point {point.name!r} is in the read-only {point.table} table")
        value = params["value"]
        try:
            raw = unscale_value(value, point.value_type, point.scale, point.offset)
            if point.table == "coil" or point.bit is not None:
                words = encode_registers(raw, "bool")
            else:
                words = encode_registers(
                    raw,
                    point.value_type,
                    point.order or self.config.order,
                    length=point.length,
                    byte_swap=point.byte_swap,
                    encoding=point.encoding,
                )
        except ValueError as err:
            raise CommandError(f"point {point.name!r}: {err}") from err
        if self._link is None:
            raise CommandError(f"device {self.ctx.device_id!r} is not connected")
        try:
            if point.table == "coil":
                response = self._request("write_coil", point.address, bool(words[0]))
            elif point.bit is not None:
                response = self._write_bit(point.address, point.bit, bool(words[0]))
            elif len(words) == 1:
                response = self._request("write_register", point.address, words[0])
            else:
                response = self._request("write_registers", point.address, words)
        except _Stopped as err:
            raise CommandError(f"write {point.name!r} not done: the device is stopping") from err
        except (_NoAnswer, DeviceError) as err:
            raise CommandError(f"write {point.name!r} failed: {err}") from err
        if response.isError():
            code = int(getattr(response, "exception_code", 0))
            raise CommandError(f"write {point.name!r} refused: {describe_exception(code)}")
        log.info("Device %r: wrote %r = %r (registers %s)", self.ctx.device_id, point.name, value, words)
        return {"point": point.name, "value": value, "raw": words}

    def _write_bit(self, address: int, bit: int, on: bool) -> Any:
        """Read-modify-write of one bit of a holding register (both requests in one bus turn)."""
        link = self._link
        if link is None or not link.lock.acquire(self.ctx.stopping, timeout=5.0):
            raise _NoAnswer("bus busy")
        try:
            link.client.comm_params.timeout_connect = self.config.timeout
            unit = self.config.unit
            current = link.call("read_holding_registers", address, count=1, device_id=unit)
            if current.isError():
                return current
            word = current.registers[0]
            word = word | (1 << bit) if on else word & ~(1 << bit) & 0xFFFF
            return link.call("write_register", address, word, device_id=unit)
        except ModbusException as err:
            raise _NoAnswer(_short(err)) from err
        finally:
            link.lock.release()


class _NoAnswer(Exception):
    """The device did not answer (timeout, connection lost): the whole device is unavailable."""


class _Stopped(Exception):
    """The driver is stopping while it waited for its turn on the link."""


_READERS = {
    "holding": "read_holding_registers",
    "input": "read_input_registers",
    "coil": "read_coils",
    "discrete": "read_discrete_inputs",
}


def _short(err: BaseException) -> str:
    text = str(err).replace("Modbus Error: ", "")
    return text if len(text) < 160 else text[:157] + "..."
