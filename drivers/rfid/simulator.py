"""An RFID reader simulator on a pseudo-terminal: R2000, M100 and ThingMagic modules.

It opens a pty pair, answers the host's commands on the master side as the module would, and
while inventory runs sends tag reads of a configurable set of tags at `reads_per_second` (spread
evenly over the tags the active antennas can see), each with the tag's RSSI plus random jitter.
The driver opens `port` (the pty slave, or a symlink to it standing in for /dev/serial/by-id/...).

Test hooks: `set_tags()` (tags arrive and leave), `inject()` (garbage on the line), `unplug()` /
`replug()` (the USB adapter pulled and put back: a new pty behind the same symlink), `mute`
(a hung reader), and counters: `sent_reads` (tag reads fully written to the line) and `commands`.
"""

from __future__ import annotations

import contextlib
import os
import random
import select
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from drivers.rfid import m100, r2000, thingmagic
from drivers.sim_pty import open_raw_pty

__all__ = ["ReaderSimulator", "SimTag"]

Protocol = Literal["r2000", "m100", "thingmagic"]
_TICK = 0.005


@dataclass(frozen=True, slots=True)
class SimTag:
    epc: bytes
    rssi: float = -60.0  # dBm at the default power
    antenna: int = 1


class ReaderSimulator:
    def __init__(
        self,
        protocol: Protocol,
        tags: Iterable[SimTag] = (),
        *,
        reads_per_second: float = 200.0,
        rssi_jitter: float = 3.0,
        round_time: float = 0.05,
        address: int = 1,
        link: str | os.PathLike[str] | None = None,
        antennas_connected: Iterable[int] = (1, 2, 3, 4),
        seed: int | None = 1,
    ) -> None:
        self.protocol = protocol
        self.reads_per_second = reads_per_second
        self.rssi_jitter = rssi_jitter
        self.round_time = round_time
        self.address = address
        self.link = Path(link) if link is not None else None
        self.antennas_connected = set(antennas_connected)
        self.mute = False
        self.sent_reads = 0
        self.sent_by_epc: Counter[bytes] = Counter()
        self.commands: Counter[int] = Counter()
        self.power_dbm = 30.0 if protocol != "m100" else 26.0
        self._default_power = self.power_dbm
        self._rng = random.Random(seed)
        self._tags: list[SimTag] = list(tags)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._master: int | None = None
        self._slave: int | None = None
        self._slave_name = ""
        self._outbox = bytearray()
        self._reset_decoder()
        # Inventory state.
        self._active_until = 0.0
        self._active_cmd = 0
        self._antennas: list[int] = [1]
        self._work_antenna = 1
        self._budget = 0.0
        self._last_tick = 0.0
        self._round_reads = 0
        self._round_started = 0.0
        self._next = 0
        # ThingMagic tag buffer: aggregated reads of the running/last search.
        self._tm_buffer: list[thingmagic.TagRead] = []
        self._tm_index: dict[tuple[bytes, int], int] = {}
        self._tm_cursor = 0
        self._tm_search: tuple[bytes, float] | None = None  # (option+flags echo, started)
        self._open_pty()

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def port(self) -> str:
        return str(self.link) if self.link is not None else self._slave_name

    def start(self) -> ReaderSimulator:
        self._thread = threading.Thread(target=self._main, name=f"rfid-sim-{self.protocol}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        with self._lock:
            self._close_pty()
        if self.link is not None:
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()

    def __enter__(self) -> ReaderSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def unplug(self) -> None:
        """The cable is pulled: the port goes away, reads on it fail."""
        with self._lock:
            self._close_pty()
            self._active_until = 0.0
            self._tm_search = None
        if self.link is not None:
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()

    def replug(self) -> None:
        """The cable is back: a fresh pty behind the same symlink (the reader restarted, idle)."""
        with self._lock:
            self._open_pty()

    # -- scenario -------------------------------------------------------------------------------
    def set_tags(self, tags: Iterable[SimTag]) -> None:
        with self._lock:
            self._tags = list(tags)
            self._next = 0

    @property
    def tags(self) -> list[SimTag]:
        with self._lock:
            return list(self._tags)

    def inject(self, data: bytes) -> None:
        """Raw bytes on the line to the host (garbage, half frames)."""
        with self._lock:
            self._outbox += data

    @property
    def inventory_active(self) -> bool:
        with self._lock:
            return self._active_until > time.monotonic() or self._tm_search is not None

    # -- pty ------------------------------------------------------------------------------------
    def _open_pty(self) -> None:
        self._master, self._slave, self._slave_name = open_raw_pty()
        self._outbox.clear()
        self._reset_decoder()
        if self.link is not None:
            tmp = self.link.with_name(self.link.name + ".new")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(self._slave_name)
            tmp.replace(self.link)

    def _close_pty(self) -> None:
        for fd in (self._master, self._slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = None

    def _reset_decoder(self) -> None:
        if self.protocol == "r2000":
            self._r2000_frames = r2000.FrameDecoder()
        elif self.protocol == "m100":
            self._m100_frames = m100.FrameDecoder()
        else:
            self._tm_frames = thingmagic.FrameDecoder(responses=False)

    # -- main loop ------------------------------------------------------------------------------
    def _main(self) -> None:
        while not self._stop.is_set():
            master = self._master
            if master is None:
                self._stop.wait(_TICK)
                continue
            try:
                ready, _, _ = select.select([master], [], [], _TICK)
            except (OSError, ValueError):
                ready = []
            data = b""
            if ready:
                try:
                    data = os.read(master, 4096)
                except OSError:
                    data = b""
            with self._lock:
                if self._master is None:
                    continue
                if data and not self.mute:
                    self._handle(data)
                if not self.mute:
                    self._tick(time.monotonic())
                self._flush()

    def _flush(self) -> None:
        if not self._outbox or self._master is None:
            return
        try:
            n = os.write(self._master, self._outbox)
        except (BlockingIOError, OSError):
            n = 0
        del self._outbox[:n]
        if len(self._outbox) > 1 << 20:  # the host stopped reading: the line drops what it sends
            self._outbox.clear()

    def _send(self, frame: bytes) -> None:
        self._outbox += frame

    def _send_reads(self, frames: list[tuple[bytes, bytes]]) -> None:
        """Tag-read frames, counted as sent when queued for the line (a pty delivers what is queued)."""
        for epc, frame in frames:
            self._outbox += frame
            self.sent_reads += 1
            self.sent_by_epc[epc] += 1

    # -- inventory engine -----------------------------------------------------------------------
    def _visible(self) -> list[SimTag]:
        return [t for t in self._tags if t.antenna in self._antennas and t.antenna in self.antennas_connected]

    def _begin(self, cmd: int, antennas: list[int], duration: float, now: float) -> None:
        self._active_cmd = cmd
        self._antennas = antennas
        self._active_until = now + duration
        self._last_tick = now
        self._round_started = now
        self._round_reads = 0
        self._budget = 0.0

    def _due_reads(self, now: float) -> list[SimTag]:
        end = min(now, self._active_until)
        if end > self._last_tick:
            self._budget += (end - self._last_tick) * self.reads_per_second
            self._last_tick = end
        visible = self._visible()
        n = int(self._budget)
        if not visible:
            self._budget -= n
            return []
        self._budget -= n
        out = []
        for _ in range(n):
            self._next %= len(visible)
            out.append(visible[self._next])
            self._next += 1
        return out

    def _rssi(self, tag: SimTag) -> int:
        jitter = self._rng.uniform(-self.rssi_jitter, self.rssi_jitter) if self.rssi_jitter else 0.0
        return round(tag.rssi + (self.power_dbm - self._default_power) + jitter)

    def _tick(self, now: float) -> None:
        if self._tm_search is not None:
            self._tick_thingmagic(now)
            return
        if self._active_until == 0.0:
            return
        tags = self._due_reads(now)
        if tags:
            self._round_reads += len(tags)
            if self.protocol == "r2000":
                cmd, addr = self._active_cmd, self.address
                self._send_reads(
                    [
                        (
                            t.epc,
                            r2000.tag_report(
                                t.epc, antenna=t.antenna, rssi=self._rssi(t), channel=7, cmd=cmd, address=addr
                            ),
                        )
                        for t in tags
                    ]
                )
            else:
                self._send_reads([(t.epc, m100.tag_notice(t.epc, rssi=self._rssi(t))) for t in tags])
        if now >= self._active_until:
            self._active_until = 0.0
            if self.protocol == "r2000":
                self._r2000_round_end(now)

    # -- R2000 ----------------------------------------------------------------------------------
    def _handle(self, data: bytes) -> None:
        if self.protocol == "r2000":
            for frame in self._r2000_frames.feed(data):
                self.commands[frame.cmd] += 1
                if frame.address in (self.address, r2000.BROADCAST):
                    self._r2000_command(frame)
        elif self.protocol == "m100":
            for mframe in self._m100_frames.feed(data):
                if mframe.frame_type == m100.TYPE_COMMAND:
                    self.commands[mframe.cmd] += 1
                    self._m100_command(mframe)
        else:
            for tframe in self._tm_frames.feed(data):
                self.commands[tframe.opcode] += 1
                self._tm_command(tframe)

    def _r2000_reply(self, cmd: int, data: bytes) -> None:
        self._send(r2000.encode(cmd, data, address=self.address))

    def _r2000_command(self, frame: r2000.Frame) -> None:
        cmd, data, now = frame.cmd, frame.data, time.monotonic()
        if cmd == r2000.CMD_GET_FIRMWARE_VERSION:
            self._r2000_reply(cmd, b"\x08\x02")
        elif cmd == r2000.CMD_SET_WORK_ANTENNA and len(data) == 1:
            ok = data[0] <= 3
            if ok:
                self._work_antenna = data[0] + 1
            self._r2000_reply(cmd, bytes((r2000.SUCCESS if ok else 0x4A,)))
        elif cmd == r2000.CMD_SET_OUTPUT_POWER and len(data) in (1, 4):
            ok = all(p <= 33 for p in data)
            if ok:
                self.power_dbm = float(data[0])
            self._r2000_reply(cmd, bytes((r2000.SUCCESS if ok else 0x4B,)))
        elif cmd == r2000.CMD_GET_OUTPUT_POWER:
            self._r2000_reply(cmd, bytes((int(self.power_dbm),)))
        elif cmd in (r2000.CMD_REAL_TIME_INVENTORY, r2000.CMD_SESSION_INVENTORY) and len(data) in (1, 3):
            if self._work_antenna not in self.antennas_connected:
                self._r2000_reply(cmd, bytes((r2000.ERRORS_ANTENNA_MISSING,)))
                return
            repeat = max(1, data[-1])
            self._begin(cmd, [self._work_antenna], self.round_time * repeat, now)
        elif cmd == r2000.CMD_FAST_SWITCH_INVENTORY and len(data) == 10:
            antennas, stays = [], 0
            for i in range(4):
                ant, stay = data[2 * i], data[2 * i + 1]
                if ant <= 3:
                    if ant + 1 not in self.antennas_connected:
                        self._r2000_reply(cmd, bytes((ant, r2000.ERRORS_ANTENNA_MISSING)))
                        continue
                    antennas.append(ant + 1)
                    stays += max(1, stay)
            repeat = max(1, data[9])
            self._begin(cmd, antennas, self.round_time * max(1, stays) * repeat, now)
        else:
            self._r2000_reply(cmd, b"\x11")

    def _r2000_round_end(self, now: float) -> None:
        cmd, reads = self._active_cmd, self._round_reads
        elapsed = max(now - self._round_started, 1e-3)
        if cmd == r2000.CMD_FAST_SWITCH_INVENTORY:
            data = reads.to_bytes(3, "big") + round(elapsed * 1000).to_bytes(4, "big")
        else:
            data = bytes((self._work_antenna - 1,)) + min(0xFFFF, round(reads / elapsed)).to_bytes(2, "big")
            data += reads.to_bytes(4, "big")
        self._r2000_reply(cmd, data)

    # -- M100 -----------------------------------------------------------------------------------
    def _m100_reply(self, cmd: int, params: bytes) -> None:
        self._send(m100.encode(cmd, params, frame_type=m100.TYPE_RESPONSE))

    def _m100_command(self, frame: m100.Frame) -> None:
        cmd, params, now = frame.cmd, frame.params, time.monotonic()
        if cmd == m100.CMD_GET_INFO and len(params) == 1:
            text = {0: b"M100 26dBm V1.0", 1: b"V2.3.5", 2: b"MagicRF"}.get(params[0], b"")
            self._m100_reply(cmd, params + text)
        elif cmd == m100.CMD_SINGLE_POLL:
            self._antennas = [1]
            visible = self._visible()
            if not visible:
                self._m100_reply(m100.CMD_ERROR, b"\x15")
            self._send_reads([(t.epc, m100.tag_notice(t.epc, rssi=self._rssi(t))) for t in visible])
        elif cmd == m100.CMD_MULTI_POLL and len(params) == 3:
            count = int.from_bytes(params[1:3], "big")
            self._begin(cmd, [1], self.round_time * count, now)
        elif cmd == m100.CMD_STOP:
            self._active_until = 0.0
            self._m100_reply(cmd, b"\x00")
        elif cmd == m100.CMD_SET_POWER and len(params) == 2:
            centi = int.from_bytes(params, "big")
            if centi <= 3000:
                self.power_dbm = centi / 100
                self._m100_reply(cmd, b"\x00")
            else:
                self._m100_reply(m100.CMD_ERROR, b"\x17")
        elif cmd == m100.CMD_GET_POWER:
            self._m100_reply(cmd, round(self.power_dbm * 100).to_bytes(2, "big"))
        else:
            self._m100_reply(m100.CMD_ERROR, b"\x17")

    # -- ThingMagic -----------------------------------------------------------------------------
    def _tm_reply(self, opcode: int, data: bytes = b"", status: int = thingmagic.STATUS_OK) -> None:
        self._send(thingmagic.encode_response(opcode, data, status=status))

    def _tm_command(self, frame: thingmagic.Frame) -> None:
        op, data, now = frame.opcode, frame.data, time.monotonic()
        if op == thingmagic.OP_GET_VERSION:
            version = bytes.fromhex("12 03 00 00 18 00 00 01 20 25 01 15 01 0B 00 21 00 00 00 10")
            self._tm_reply(op, version)
        elif op in (thingmagic.OP_SET_PROTOCOL, thingmagic.OP_SET_REGION):
            self._tm_reply(op)
        elif op == thingmagic.OP_SET_ANTENNA and data[:1] == b"\x02" and len(data) >= 3:
            self._antennas = [data[i] for i in range(1, len(data) - 1, 2)]
            self._tm_reply(op)
        elif op == thingmagic.OP_SET_READ_POWER and len(data) == 2:
            centi = int.from_bytes(data, "big")
            if centi > 3150:
                self._tm_reply(op, status=0x0103)
            else:
                self.power_dbm = centi / 100
                self._tm_reply(op)
        elif op == thingmagic.OP_READ_TAG_MULTIPLE and len(data) == 5:
            timeout = int.from_bytes(data[3:5], "big") / 1000
            self._tm_buffer.clear()
            self._tm_index.clear()
            self._tm_cursor = 0
            self._begin(op, self._antennas, timeout, now)
            self._tm_search = (data[0:3], now)
        elif op == thingmagic.OP_GET_TAG_BUFFER and len(data) == 3:
            metadata = int.from_bytes(data[0:2], "big")
            chunk: list[thingmagic.TagRead] = []
            while self._tm_cursor < len(self._tm_buffer):
                candidate = [*chunk, self._tm_buffer[self._tm_cursor]]
                if len(thingmagic.tag_buffer_data(candidate, metadata)) > 250:
                    break
                chunk = candidate
                self._tm_cursor += 1
            for tag in chunk:
                self.sent_reads += tag.read_count
                self.sent_by_epc[tag.epc] += tag.read_count
            self._tm_reply(op, thingmagic.tag_buffer_data(chunk, metadata))
        elif op == thingmagic.OP_CLEAR_TAG_BUFFER:
            self._tm_buffer.clear()
            self._tm_index.clear()
            self._tm_cursor = 0
            self._tm_reply(op)
        else:
            self._tm_reply(op, status=0x0101)

    def _tick_thingmagic(self, now: float) -> None:
        assert self._tm_search is not None
        echo, started = self._tm_search
        for tag in self._due_reads(now):
            key = (tag.epc, tag.antenna)
            index = self._tm_index.get(key)
            rssi = self._rssi(tag)
            if index is not None and self._tm_buffer[index].read_count < 255:
                old = self._tm_buffer[index]
                self._tm_buffer[index] = thingmagic.TagRead(
                    old.epc,
                    old.pc,
                    old.crc,
                    old.read_count + 1,
                    max(old.rssi or rssi, rssi),
                    old.antenna,
                    old.frequency_khz,
                    old.timestamp_ms,
                )
                continue
            pc = (len(tag.epc) // 2) << 11
            crc = m100.gen2_crc(pc.to_bytes(2, "big") + tag.epc)
            ms = round((now - started) * 1000)
            self._tm_index[key] = len(self._tm_buffer)
            self._tm_buffer.append(thingmagic.TagRead(tag.epc, pc, crc, 1, rssi, tag.antenna, 915250, ms))
        if now >= self._active_until:
            self._active_until = 0.0
            self._tm_search = None
            if self._tm_buffer:
                n = len(self._tm_buffer)
                count = bytes((n,)) if n <= 0xFF else n.to_bytes(4, "big")
                self._tm_reply(thingmagic.OP_READ_TAG_MULTIPLE, echo + count)
            else:
                self._tm_reply(thingmagic.OP_READ_TAG_MULTIPLE, status=thingmagic.STATUS_NO_TAGS)
