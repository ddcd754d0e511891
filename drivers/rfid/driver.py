"""The RFID driver: a thin I/O loop around the pure protocol modules and the presence tracker.

One thread (the supervisor's) owns the port: it reads what the reader sends, decodes it, keeps
inventory running with the reader's own repeat commands and turns tag reads into readings.
`execute()` (another thread) only queues requests for that loop.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, ClassVar

from drivers.rfid import m100, r2000, thingmagic
from drivers.rfid.config import POWER_RANGE, RfidConfig
from drivers.rfid.epc import decode_epc
from drivers.rfid.framing import EventDecoder
from drivers.rfid.presence import PresenceEvent, PresenceTracker
from drivers.serial_link import SerialLink
from edge_agent import CommandError, DeviceError, Driver, DriverContext, Quality, Reading, format_ts

__all__ = ["RfidDriver"]


class RfidDriver(Driver):
    config_model = RfidConfig
    config: RfidConfig

    def __init__(self, config: RfidConfig, ctx: DriverContext) -> None:
        super().__init__(config, ctx)
        self.link = SerialLink(config, timeout=0.05)
        self.tracker = PresenceTracker(
            absent_after=config.absent_after, update_every=config.update_every, per_antenna=config.per_antenna
        )
        self._requests: queue.Queue[tuple[str, Mapping[str, Any], Future[Any]]] = queue.Queue()
        self._pending: list[Reading] = []
        self._reads = 0
        self._session: _Session | None = None
        self.log = ctx.logger

    # -- thread-safe API ------------------------------------------------------------------------
    @property
    def inventory_wanted(self) -> bool:
        # The hub's wish survives a restart of the driver after a port loss (ctx.store outlives it).
        return bool(self.ctx.store.get("inventory_wanted", self.config.inventory))

    def execute(self, action: str, params: Mapping[str, Any]) -> Any:
        """`start_inventory`, `stop_inventory`, `set_power` (params `dbm`), or `write` of the point
        `power_dbm` (params `point`, `value`: the command router's form of `write: power_dbm`)."""
        if action == "write":
            if params.get("point") != "power_dbm":
                raise CommandError(f"rfid reader has no writable point {params.get('point')!r} (power_dbm)")
            action, params = "set_power", {"dbm": params.get("value")}
        if action not in ("start_inventory", "stop_inventory", "set_power"):
            raise CommandError(f"rfid reader has no action {action!r} (start_inventory, stop_inventory, set_power)")
        if action == "set_power":
            _power_param(self.config, params)  # refuse bad values before queueing
        if self._session is None:
            if action == "set_power":
                raise CommandError(f"reader on {self.config.port} is not connected")
            # Not connected (yet): remember what is wanted, the next connection applies it.
            self.ctx.store["inventory_wanted"] = action == "start_inventory"
            return {"inventory": action == "start_inventory", "connected": False}
        future: Future[Any] = Future()
        self._requests.put((action, params, future))
        try:
            return future.result(timeout=self.config.response_timeout + 2.0)
        except FutureTimeout as err:
            raise CommandError(f"reader on {self.config.port} did not carry out {action} in time") from err

    # -- the loop -------------------------------------------------------------------------------
    def run(self) -> None:
        cfg, ctx = self.config, self.ctx
        self.link.open()
        session_cls = _SESSIONS[cfg.protocol]
        session = session_cls(self)
        reason = "stopped"
        try:
            session.connect()
            ctx.connected()
            self._session = session
            if self.inventory_wanted:
                session.start_inventory()
            while not ctx.stopping.is_set():
                self._serve_requests(session)
                session.step()
                self._after_io(time.time())
        except DeviceError:
            reason = "reader_lost"
            raise
        finally:
            self._session = None
            self._fail_requests()
            if cfg.report == "presence":
                self._presence_readings(self.tracker.depart_all(), reason)
            self._flush()

    def close(self) -> None:
        self.link.close()

    # -- called by the sessions -----------------------------------------------------------------
    def on_tag(self, epc: bytes, antenna: int, rssi: float | None, ts: float, count: int = 1) -> None:
        self._reads += count
        cfg = self.config
        if cfg.min_rssi is not None and rssi is not None and rssi < cfg.min_rssi:
            self.ctx.count("reads_filtered", count)
            return
        if cfg.report == "every_read":
            stamp = format_ts(ts)
            extra = self._epc_fields(epc)
            extra.update(antenna=antenna, rssi=rssi, count=count, first_seen=stamp, last_seen=stamp)
            self._pending.append(self.ctx.reading("tag", epc.hex().upper(), ts=ts, **extra))
            return
        event = self.tracker.observe(epc, antenna, rssi, ts, count)
        if event is not None:
            self._presence_readings([event], None)

    def pump_events(self) -> None:
        """Between blocking requests: expire presence and hand readings over."""
        self._after_io(time.time())

    # -- internals ------------------------------------------------------------------------------
    def _after_io(self, now: float) -> None:
        if self.config.report == "presence":
            events = self.tracker.expire(now)
            if events:
                self._presence_readings(events, None)
        self._flush()

    def _flush(self) -> None:
        if self._reads:
            self.ctx.count("tag_reads", self._reads)
            self._reads = 0
        session = self._session
        if session is not None:
            dropped = session.dropped()
            if dropped > session.dropped_reported:
                self.ctx.count("frames_dropped", dropped - session.dropped_reported)
                session.dropped_reported = dropped
        if self._pending:
            pending, self._pending = self._pending, []
            self.ctx.emit_many(pending)

    def _presence_readings(self, events: list[PresenceEvent], reason: str | None) -> None:
        for ev in events:
            extra = self._epc_fields(ev.epc)
            extra.update(
                event=ev.event,
                antenna=ev.antenna,
                antennas=list(ev.antennas),
                rssi=ev.rssi,
                count=ev.count,
                first_seen=format_ts(ev.first_seen),
                last_seen=format_ts(ev.last_seen),
            )
            quality: Quality = "good"
            if reason is not None:
                extra["reason"] = reason
                quality = "uncertain"
            self._pending.append(self.ctx.reading("tag", ev.epc.hex().upper(), ts=ev.ts, quality=quality, **extra))

    def _epc_fields(self, epc: bytes) -> dict[str, Any]:
        if self.config.decode_gs1:
            info = decode_epc(epc)
            if info is not None:
                return {"epc": info.as_dict()}
        return {}

    def _serve_requests(self, session: _Session) -> None:
        while True:
            try:
                action, params, future = self._requests.get_nowait()
            except queue.Empty:
                return
            if not future.set_running_or_notify_cancel():
                continue
            try:
                if action == "start_inventory":
                    self.ctx.store["inventory_wanted"] = True
                    session.start_inventory()
                    future.set_result({"inventory": True, "connected": True})
                elif action == "stop_inventory":
                    self.ctx.store["inventory_wanted"] = False
                    session.stop_inventory()
                    future.set_result({"inventory": False, "connected": True})
                else:
                    dbm = _power_param(self.config, params)
                    session.set_power(dbm)
                    future.set_result({"power_dbm": dbm})
            except CommandError as err:
                future.set_exception(err)
            except DeviceError as err:
                future.set_exception(CommandError(str(err)))
                raise

    def _fail_requests(self) -> None:
        while True:
            try:
                _action, _params, future = self._requests.get_nowait()
            except queue.Empty:
                return
            if future.set_running_or_notify_cancel():
                future.set_exception(CommandError(f"reader on {self.config.port} is not connected"))


def _power_param(cfg: RfidConfig, params: Mapping[str, Any]) -> float:
    value = params.get("dbm", params.get("power_dbm"))
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CommandError("set_power needs a number `dbm`")
    low, high = POWER_RANGE[cfg.protocol]
    if not low <= value <= high:
        raise CommandError(f"{cfg.protocol} readers take {low:g}-{high:g} dBm (got {value})")
    if cfg.protocol == "r2000" and value != int(value):
        raise CommandError("r2000 readers take whole dBm")
    return float(value)


# -- per-protocol sessions ----------------------------------------------------------------------


class _Session:
    """The conversation with one reader; runs on the driver thread only."""

    protocol: ClassVar[str] = ""

    def __init__(self, driver: RfidDriver) -> None:
        self.driver = driver
        self.cfg = driver.config
        self.link = driver.link
        self.log: logging.Logger = driver.log
        self.inventory_on = False
        self.last_rx = time.monotonic()
        self.dropped_reported = 0
        self._last_error: str | None = None

    # Implemented per protocol.
    def connect(self) -> None:
        raise NotImplementedError

    def step(self) -> None:
        raise NotImplementedError

    def start_inventory(self) -> None:
        raise NotImplementedError

    def stop_inventory(self) -> None:
        raise NotImplementedError

    def set_power(self, dbm: float) -> None:
        raise NotImplementedError

    def dropped(self) -> int:
        raise NotImplementedError

    def feed(self, data: bytes, ts: float) -> list[Any]:
        """Decode; tag reads go to the driver, everything else is returned."""
        raise NotImplementedError

    # Shared.
    def read(self) -> list[Any]:
        data = self.link.read()
        if not data:
            return []
        self.last_rx = time.monotonic()
        return self.feed(data, time.time())

    def request(self, frame: bytes, match: Callable[[Any], Any], what: str, timeout: float | None = None) -> Any:
        """Send `frame` and read (handing tag reads on) until `match` accepts an answer."""
        self.link.write(frame)
        deadline = time.monotonic() + (self.cfg.response_timeout if timeout is None else timeout)
        while True:
            for event in self.read():
                found = match(event)
                if found is not None:
                    return found
                self.other(event)
            self.driver.pump_events()
            if time.monotonic() >= deadline:
                raise DeviceError(
                    f"{self.protocol} reader on {self.cfg.port} did not answer {what} "
                    f"(wrong protocol, baudrate or address, or reader off?)"
                )

    def other(self, event: Any) -> None:
        """An event nobody waited for."""

    def heartbeat(self) -> None:
        """A cheap question to a reader that has had nothing to say for a while."""
        raise NotImplementedError

    def idle_check(self) -> None:
        """With inventory stopped a reader sends nothing: ask now and then whether it is still there."""
        if not self.inventory_on and time.monotonic() - self.last_rx > max(1.0, 3 * self.cfg.response_timeout):
            self.heartbeat()

    def reader_error(self, message: str) -> None:
        """Log a reader-reported problem once, until inventory works again."""
        self.driver.ctx.count("reader_errors")
        if message != self._last_error:
            self.log.warning("RFID reader on %s: %s", self.cfg.port, message)
            self._last_error = message

    def reader_ok(self) -> None:
        if self._last_error is not None:
            self.log.info("RFID reader on %s: inventory works again", self.cfg.port)
            self._last_error = None


class _TagStreamSession(_Session):
    """A reader whose decoder yields tag reads as events of one type, among its replies."""

    decoder: EventDecoder[Any, Any]
    tag_type: ClassVar[type[Any]]

    def dropped(self) -> int:
        return self.decoder.dropped

    def feed(self, data: bytes, ts: float) -> list[Any]:
        rest: list[Any] = []
        on_tag = self.driver.on_tag
        tag_type = self.tag_type
        for event in self.decoder.feed(data):
            if type(event) is tag_type:
                on_tag(event.epc, event.antenna, event.rssi, ts)
            else:
                rest.append(event)
        return rest


class _R2000(_TagStreamSession):
    protocol = "r2000"
    tag_type = r2000.TagRead

    def __init__(self, driver: RfidDriver) -> None:
        super().__init__(driver)
        self.decoder = r2000.Decoder()
        self.address = self.cfg.address
        self.awaiting_since: float | None = None
        self.retried = False

    def _reply(self, cmd: int) -> Callable[[Any], r2000.Reply | r2000.ErrorReply | None]:
        def match(event: Any) -> r2000.Reply | r2000.ErrorReply | None:
            if isinstance(event, r2000.Reply | r2000.ErrorReply) and event.cmd == cmd:
                return event
            return None

        return match

    def connect(self) -> None:
        version = self.request(
            r2000.get_firmware_version(address=self.address), self._reply(r2000.CMD_GET_FIRMWARE_VERSION), "get version"
        )
        if isinstance(version, r2000.Reply) and len(version.data) >= 2:
            self.log.info("R2000 reader on %s: firmware %d.%d", self.cfg.port, version.data[0], version.data[1])
        if self.cfg.power_dbm is not None:
            self._set_power(self.cfg.power_dbm, strict=False)
        if len(self.cfg.antennas) == 1:
            answer = self.request(
                r2000.set_work_antenna(self.cfg.antennas[0], address=self.address),
                self._reply(r2000.CMD_SET_WORK_ANTENNA),
                "set work antenna",
            )
            if not (isinstance(answer, r2000.Reply) and answer.ok):
                self.log.warning("R2000 reader on %s refused antenna %d", self.cfg.port, self.cfg.antennas[0])

    def _inventory_frame(self) -> bytes:
        cfg = self.cfg
        if len(cfg.antennas) > 1:
            return r2000.fast_switch_inventory(cfg.antennas, stay=cfg.rounds, address=self.address)
        if cfg.session is not None:
            return r2000.session_inventory(cfg.session, 0 if cfg.target == "A" else 1, cfg.rounds, address=self.address)
        return r2000.real_time_inventory(cfg.rounds, address=self.address)

    def start_inventory(self) -> None:
        if not self.inventory_on:
            self.log.info("R2000 reader on %s: inventory started", self.cfg.port)
        self.inventory_on = True

    def stop_inventory(self) -> None:
        if self.inventory_on:
            self.log.info("R2000 reader on %s: inventory stopped", self.cfg.port)
        self.inventory_on = False  # the round in progress ends by itself

    def set_power(self, dbm: float) -> None:
        self._set_power(dbm, strict=True)

    def _set_power(self, dbm: float, *, strict: bool) -> None:
        answer: r2000.Reply | r2000.ErrorReply = self.request(
            r2000.set_output_power(int(dbm), address=self.address),
            self._reply(r2000.CMD_SET_OUTPUT_POWER),
            "set output power",
        )
        if not (isinstance(answer, r2000.Reply) and answer.ok):
            message = answer.message if isinstance(answer, r2000.ErrorReply) else f"reply {answer.data.hex()}"
            if strict:
                raise CommandError(f"reader refused {dbm:g} dBm: {message}")
            self.log.warning("R2000 reader on %s refused %g dBm: %s", self.cfg.port, dbm, message)

    def heartbeat(self) -> None:
        self.request(
            r2000.get_firmware_version(address=self.address), self._reply(r2000.CMD_GET_FIRMWARE_VERSION), "get version"
        )

    def step(self) -> None:
        self.idle_check()
        now = time.monotonic()
        if self.inventory_on and self.awaiting_since is None:
            self.link.write(self._inventory_frame())
            self.awaiting_since = now
        for event in self.read():
            self.other(event)
        if self.awaiting_since is not None and time.monotonic() - max(self.awaiting_since, self.last_rx) > (
            self.cfg.response_timeout
        ):
            if self.retried:
                raise DeviceError(f"r2000 reader on {self.cfg.port} stopped answering inventory commands")
            self.retried = True  # one lost command (a garbled frame) is not a lost reader
            self.awaiting_since = None

    def other(self, event: Any) -> None:
        if isinstance(event, r2000.RoundEnd):
            self.awaiting_since = None
            self.retried = False
            self.reader_ok()
        elif isinstance(event, r2000.ErrorReply) and event.cmd in r2000.INVENTORY_COMMANDS:
            if event.cmd != r2000.CMD_FAST_SWITCH_INVENTORY or event.code != r2000.ERRORS_ANTENNA_MISSING:
                self.awaiting_since = None  # 0x8A reports a missing antenna and carries on
            self.retried = False
            if event.code == 0x36:
                return  # no tag in the field: normal
            where = f" (antenna {event.antenna})" if event.antenna else ""
            self.reader_error(f"{event.message}{where}")


class _M100(_TagStreamSession):
    protocol = "m100"
    tag_type = m100.TagRead

    def __init__(self, driver: RfidDriver) -> None:
        super().__init__(driver)
        self.decoder = m100.Decoder()

    @staticmethod
    def _reply(cmd: int) -> Callable[[Any], m100.Reply | m100.ErrorReply | None]:
        def match(event: Any) -> m100.Reply | m100.ErrorReply | None:
            if isinstance(event, m100.Reply) and event.cmd == cmd:
                return event
            if isinstance(event, m100.ErrorReply) and event.code != 0x15:
                return event
            return None

        return match

    def connect(self) -> None:
        # A module left in multi-poll by a previous session keeps streaming: stop it first.
        self.request(m100.stop(), self._reply(m100.CMD_STOP), "stop")
        info = self.request(m100.get_info(0), self._reply(m100.CMD_GET_INFO), "get module info")
        if isinstance(info, m100.Reply) and info.params[:1] == b"\x00":
            self.log.info("M100 reader on %s: %s", self.cfg.port, info.params[1:].decode("ascii", "replace"))
        if self.cfg.power_dbm is not None:
            self._set_power(self.cfg.power_dbm, strict=False)

    def _poll(self) -> None:
        self.link.write(m100.multi_poll(0xFFFF))
        self.last_rx = time.monotonic()

    def start_inventory(self) -> None:
        if not self.inventory_on:
            self._poll()
            self.log.info("M100 reader on %s: inventory started", self.cfg.port)
        self.inventory_on = True

    def stop_inventory(self) -> None:
        if self.inventory_on:
            self.log.info("M100 reader on %s: inventory stopped", self.cfg.port)
        self.inventory_on = False
        self.request(m100.stop(), self._reply(m100.CMD_STOP), "stop")

    def set_power(self, dbm: float) -> None:
        self._set_power(dbm, strict=True)

    def _set_power(self, dbm: float, *, strict: bool) -> None:
        was_on = self.inventory_on
        if was_on:
            self.request(m100.stop(), self._reply(m100.CMD_STOP), "stop")
        answer: m100.Reply | m100.ErrorReply = self.request(
            m100.set_power(dbm), self._reply(m100.CMD_SET_POWER), "set power"
        )
        if was_on:
            self._poll()
        if not (isinstance(answer, m100.Reply) and answer.ok):
            message = answer.message if isinstance(answer, m100.ErrorReply) else f"reply {answer.params.hex()}"
            if strict:
                raise CommandError(f"reader refused {dbm:g} dBm: {message}")
            self.log.warning("M100 reader on %s refused %g dBm: %s", self.cfg.port, dbm, message)

    def heartbeat(self) -> None:
        self.request(m100.get_info(0), self._reply(m100.CMD_GET_INFO), "get module info")

    def step(self) -> None:
        self.idle_check()
        for event in self.read():
            self.other(event)
        if self.inventory_on and time.monotonic() - self.last_rx > self.cfg.response_timeout:
            # Quiet: no tags, or the multi-poll ran out, or the module is gone. Stopping asks for an
            # answer (DeviceError without one), then inventory starts again.
            self.request(m100.stop(), self._reply(m100.CMD_STOP), "stop")
            self._poll()

    def other(self, event: Any) -> None:
        if isinstance(event, m100.ErrorReply):
            if event.code != 0x15:  # 0x15: no tag in the field, normal
                self.reader_error(event.message)
        elif isinstance(event, m100.Reply) and event.cmd == m100.CMD_MULTI_POLL:
            self.reader_ok()


class _ThingMagic(_Session):
    protocol = "thingmagic"

    def __init__(self, driver: RfidDriver) -> None:
        super().__init__(driver)
        self.decoder = thingmagic.FrameDecoder(responses=True)
        self.malformed = 0
        self._cycle_started = 0.0

    def dropped(self) -> int:
        return self.decoder.dropped + self.malformed

    def feed(self, data: bytes, ts: float) -> list[Any]:
        return list(self.decoder.feed(data))

    @staticmethod
    def _answer(opcode: int) -> Callable[[Any], thingmagic.Frame | None]:
        def match(event: Any) -> thingmagic.Frame | None:
            return event if isinstance(event, thingmagic.Frame) and event.opcode == opcode else None

        return match

    def _call(self, frame: bytes, opcode: int, what: str, timeout: float | None = None) -> thingmagic.Frame:
        answer: thingmagic.Frame = self.request(frame, self._answer(opcode), what, timeout)
        return answer

    def connect(self) -> None:
        answer = self._call(thingmagic.get_version(), thingmagic.OP_GET_VERSION, "get version")
        version = thingmagic.parse_version(answer.data)
        if version is not None:
            self.log.info("Mercury reader on %s: %s", self.cfg.port, version.describe())
        steps: list[tuple[bytes, int, str]] = [
            (thingmagic.set_protocol_gen2(), thingmagic.OP_SET_PROTOCOL, "set protocol Gen2")
        ]
        if self.cfg.region is not None:
            steps.append((thingmagic.set_region(self.cfg.region), thingmagic.OP_SET_REGION, "set region"))
        steps.append((thingmagic.set_antennas(self.cfg.antennas), thingmagic.OP_SET_ANTENNA, "set antennas"))
        if self.cfg.power_dbm is not None:
            steps.append((thingmagic.set_read_power(self.cfg.power_dbm), thingmagic.OP_SET_READ_POWER, "set power"))
        for frame, opcode, what in steps:
            answer = self._call(frame, opcode, what)
            if not answer.ok:
                raise DeviceError(f"thingmagic reader on {self.cfg.port}: {what} failed: {answer.fault}")

    def start_inventory(self) -> None:
        if not self.inventory_on:
            self.log.info("Mercury reader on %s: inventory started", self.cfg.port)
        self.inventory_on = True

    def stop_inventory(self) -> None:
        if self.inventory_on:
            self.log.info("Mercury reader on %s: inventory stopped", self.cfg.port)
        self.inventory_on = False

    def set_power(self, dbm: float) -> None:
        answer = self._call(thingmagic.set_read_power(dbm), thingmagic.OP_SET_READ_POWER, "set power")
        if not answer.ok:
            raise CommandError(f"reader refused {dbm:g} dBm: {answer.fault}")

    def heartbeat(self) -> None:
        self._call(thingmagic.get_version(), thingmagic.OP_GET_VERSION, "get version")

    def step(self) -> None:
        if not self.inventory_on:
            self.idle_check()
            for _event in self.read():
                pass
            return
        cycle_ms = round(self.cfg.cycle * 1000)
        answer = self._call(
            thingmagic.read_tag_multiple(cycle_ms),
            thingmagic.OP_READ_TAG_MULTIPLE,
            "read tags",
            timeout=self.cfg.cycle + self.cfg.response_timeout,
        )
        if answer.status == thingmagic.STATUS_NO_TAGS:
            self.reader_ok()
            return
        if not answer.ok:
            self.reader_error(answer.fault)
            return
        count = thingmagic.parse_tag_count(answer.data)
        if count is None:
            self.malformed += 1
            return
        self.reader_ok()
        fetched = 0
        while fetched < count.count:
            answer = self._call(thingmagic.get_tag_buffer(), thingmagic.OP_GET_TAG_BUFFER, "get tag buffer")
            buffer = thingmagic.parse_tag_buffer(answer.data) if answer.ok else None
            if buffer is None:
                self.malformed += 0 if not answer.ok else 1
                if not answer.ok:
                    self.reader_error(answer.fault)
                break
            if not buffer.tags:
                break
            fetched += len(buffer.tags)
            # The module aggregates a cycle's reads per tag (read count, first-read timestamp);
            # the time the buffer arrived bounds the tag's last read to within one cycle.
            ts = time.time()
            for tag in buffer.tags:
                self.driver.on_tag(tag.epc, tag.antenna or 1, tag.rssi, ts, tag.read_count or 1)
        self._call(thingmagic.clear_tag_buffer(), thingmagic.OP_CLEAR_TAG_BUFFER, "clear tag buffer")


_SESSIONS: dict[str, type[_Session]] = {"r2000": _R2000, "m100": _M100, "thingmagic": _ThingMagic}
