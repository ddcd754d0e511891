"""The scale driver: a thin I/O loop around the pure protocol decoders and the report logic.

One thread (the supervisor's) owns the port: it sends weight requests (poll mode), reads what
the port has, feeds the decoder and emits readings. Zero/tare commands from the hub arrive on
other threads through `execute()`; they are queued, sent by the loop between weight requests,
and matched with the scale's answer, so requests and answers never interleave.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from drivers.scale import ascii_profile, mt_sics, sma, toledo
from drivers.scale.config import ScaleConfig
from drivers.scale.events import Report, Reporter
from drivers.scale.frames import Event, Reply, ScaleError, Weight
from drivers.serial_link import SerialLink
from edge_agent import CommandError, DeviceError, Driver, DriverContext, Reading

__all__ = ["ScaleDriver", "make_decoder"]

log = logging.getLogger("drivers.scale")


class Decoder(Protocol):
    dropped: int

    def feed(self, data: bytes) -> list[Any]: ...


def make_decoder(config: ScaleConfig) -> Decoder:
    """The protocol decoder a device entry asks for."""
    if config.protocol == "mt-sics":
        return mt_sics.Decoder(data_parity=config.data_parity)
    if config.protocol == "toledo":
        return toledo.Decoder(with_checksum=config.checksum, data_parity=config.data_parity)
    if config.protocol == "sma":
        return sma.Decoder(data_parity=config.data_parity)
    return ascii_profile.Decoder(config.profile(), data_parity=config.data_parity)


def request_bytes(config: ScaleConfig) -> bytes:
    """What a poll sends."""
    if config.protocol == "mt-sics":
        return mt_sics.command("S" if config.request == "S" else "SI")
    if config.protocol == "sma":
        return sma.command("H" if config.request == "H" else "W")
    return config.request.encode("latin-1")


def listen_bytes(config: ScaleConfig) -> bytes:
    """What starts a continuous stream in listen mode (nothing for scales that always stream)."""
    if config.protocol == "mt-sics":
        return mt_sics.command("SIR")
    if config.protocol == "sma":
        return sma.command("R")
    return b""


@dataclass
class _Pending:
    action: str
    frame: bytes
    done: threading.Event = field(default_factory=threading.Event)
    result: dict[str, Any] | None = None
    error: str | None = None
    deadline: float = 0.0

    def finish(self, result: dict[str, Any] | None = None, error: str | None = None) -> None:
        self.result, self.error = result, error
        self.done.set()


class ScaleDriver(Driver):
    config_model = ScaleConfig
    config: ScaleConfig

    def __init__(self, config: ScaleConfig, ctx: DriverContext) -> None:
        super().__init__(config, ctx)
        self._link = SerialLink(config, timeout=0.05)
        self._decoder = make_decoder(config)
        self._reporter = Reporter(
            config.report,
            clock=time.monotonic,
            min_weight=config.min_weight,
            zero_band=config.zero_band,
            settle_time=config.settle_time,
            tolerance=config.tolerance,
        )
        self._commands: queue.Queue[_Pending] = queue.Queue()
        self._inflight: _Pending | None = None  # sent to the scale, waiting for its answer
        self._lock = threading.Lock()
        self._accepting = False
        self._tare: float | None = None  # from our own MT-SICS tare command, where the protocol is silent
        self._net: bool | None = None
        self._bytes = 0

    # -- the loop -------------------------------------------------------------------------------
    def run(self) -> None:
        cfg, ctx, link = self.config, self.ctx, self._link
        poll = cfg.effective_mode == "poll"
        link.open()
        link.reset_input()
        start = listen_bytes(cfg) if not poll else b""
        if start:
            link.write(start)
        request = request_bytes(cfg) if poll else b""
        with self._lock:
            self._accepting = True
        now = time.monotonic()
        last_valid = now
        next_poll = now
        poll_deadline: float | None = None
        answering = False
        errors_logged = False
        while not ctx.stopping.is_set():
            now = time.monotonic()
            if self._inflight is None and poll_deadline is None and not self._commands.empty():
                self._inflight = self._commands.get_nowait()
                self._inflight.deadline = now + cfg.command_timeout
                link.write(self._inflight.frame)
            if poll and self._inflight is None and poll_deadline is None and now >= next_poll:
                link.write(request)
                poll_deadline = now + cfg.reply_timeout
                next_poll = now + cfg.poll_interval
            if poll and self._inflight is None and poll_deadline is None and 0 < next_poll - now < link.timeout:
                if ctx.wait(next_poll - now):  # the next request is due before a read would time out
                    break
                continue
            data = link.read()
            if data:
                ts = time.time()
                self._bytes += len(data)
                dropped = self._decoder.dropped
                events: list[Event] = self._decoder.feed(data)
                if self._decoder.dropped != dropped:
                    ctx.count("frames_dropped", self._decoder.dropped - dropped)
                readings: list[Reading] = []
                for event in events:
                    last_valid = time.monotonic()
                    if not answering:
                        answering = True
                        ctx.connected()
                    if self._inflight is not None and self._answers(self._inflight, event):
                        self._resolve(self._inflight, event)
                        self._inflight = None
                        if start:
                            link.write(start)  # a command may end the stream: ask for it again
                    elif isinstance(event, ScaleError):
                        poll_deadline = None
                        ctx.count("scale_errors")
                        if not errors_logged:
                            errors_logged = True
                            ctx.logger.warning("Scale %r on %s answers: %s", ctx.device_id, cfg.port, event.message)
                        continue
                    elif isinstance(event, Reply):
                        ctx.count("unexpected_replies")
                        continue
                    if isinstance(event, Weight):
                        poll_deadline = None
                        ctx.count("weights")
                        errors_logged = False
                        readings.extend(self._reading(r, ts) for r in self._reporter.feed(event))
                ctx.emit_many(readings)
            now = time.monotonic()
            if poll_deadline is not None and now > poll_deadline:
                ctx.count("timeouts")
                poll_deadline = None
            if self._inflight is not None and now > self._inflight.deadline:
                self._inflight.finish(
                    error=f"the scale did not answer {self._inflight.action} within {cfg.command_timeout:g}s"
                )
                self._inflight = None
            if now - last_valid > cfg.silence_timeout:
                raise DeviceError(
                    f"scale on {cfg.port}: no valid {cfg.protocol} data for {cfg.silence_timeout:g}s "
                    f"({self._bytes} bytes received, {self._decoder.dropped} garbled frames dropped; "
                    "check the cable, protocol, baudrate and parity)"
                )

    def close(self) -> None:
        with self._lock:
            self._accepting = False
        while True:
            try:
                pending = self._commands.get_nowait()
            except queue.Empty:
                break
            pending.finish(error=f"scale {self.ctx.device_id} stopped before the command was sent")
        if self._inflight is not None:
            self._inflight.finish(error=f"scale {self.ctx.device_id} stopped or was lost before it answered")
            self._inflight = None
        self._link.close()

    # -- readings ---------------------------------------------------------------------------------
    def _reading(self, report: Report, ts: float) -> Reading:
        weight = report.weight
        extra: dict[str, Any] = {"stable": weight.stable}
        net = weight.net if weight.net is not None else self._net
        tare = weight.tare if weight.tare is not None else self._tare
        if net is not None:
            extra["net"] = net
        if tare is not None:
            extra["tare"] = tare
        if weight.error is not None:
            extra["reason"] = weight.error
        if report.event:
            extra["event"] = "weighed"
        return self.ctx.reading(
            "weight",
            None if weight.value is None else weight.value + 0.0,  # + 0.0: no -0.0 on the wire
            ts=ts,
            quality="bad" if weight.error is not None else "good",
            unit=weight.unit or None,
            **extra,
        )

    # -- commands ---------------------------------------------------------------------------------
    def execute(self, action: str, params: Mapping[str, Any]) -> Any:
        """`zero` or `tare`: send it to the scale, wait for its answer and return it."""
        if action not in ("zero", "tare"):
            raise CommandError(f"scale {self.ctx.device_id} has no action {action!r} (it knows zero and tare)")
        pending = _Pending(action, self._command_frame(action))
        with self._lock:
            if not self._accepting:
                raise CommandError(f"scale {self.ctx.device_id} is not connected ({self.config.port})")
            self._commands.put(pending)
        if not pending.done.wait(self.config.command_timeout + self.config.reply_timeout + 1.0):
            raise CommandError(f"scale {self.ctx.device_id} did not take the {action} command in time")
        if pending.error is not None:
            raise CommandError(pending.error)
        return pending.result

    def _command_frame(self, action: str) -> bytes:
        cfg = self.config
        if cfg.protocol == "mt-sics":
            return mt_sics.command("Z" if action == "zero" else "T")
        if cfg.protocol == "sma":
            if cfg.effective_mode != "poll":
                raise CommandError(
                    f"scale {self.ctx.device_id}: SMA answers to {action} cannot be told apart from a "
                    "continuous stream; use mode: poll to send commands"
                )
            return sma.command("Z" if action == "zero" else "T")
        raise CommandError(
            f"scale {self.ctx.device_id}: protocol {cfg.protocol} in {cfg.effective_mode} mode has no commands; "
            f"{action} at the scale itself"
        )

    def _answers(self, pending: _Pending, event: Event) -> bool:
        if self.config.protocol == "sma":
            return True  # the first answer after an SMA command is its reply
        if isinstance(event, Reply):
            return event.command == ("Z" if pending.action == "zero" else "T")
        return isinstance(event, ScaleError) and event.code in ("syntax", "transmission", "logical")

    def _resolve(self, pending: _Pending, event: Event) -> None:
        raw = event.raw.decode("ascii", "replace").strip()
        if isinstance(event, ScaleError):
            pending.finish(error=f"scale refused {pending.action}: {event.message} ({raw!r})")
        elif isinstance(event, Reply):
            if not event.ok:
                pending.finish(error=f"scale refused {pending.action}: {event.message} ({raw!r})")
                return
            result: dict[str, Any] = {"reply": raw, "message": event.message}
            if event.value is not None:
                result.update(tare=event.value, unit=event.unit)
            if event.command == "T" and event.value is not None:
                self._tare, self._net = event.value, event.value != 0
            elif event.command == "Z":
                self._tare = self._net = None
            pending.finish(result)
        else:
            if event.error is not None:
                pending.finish(error=f"scale refused {pending.action}: {event.error} ({raw!r})")
                return
            pending.finish({"reply": raw, "weight": event.value, "unit": event.unit, "stable": event.stable})
