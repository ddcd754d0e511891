"""A weighing scale on a pseudo-terminal: MT-SICS (commands) or Toledo continuous output.

The driver opens `port` (the pty's slave, or a symlink to it, as /dev/serial/by-id/... is) with
pyserial; the simulator answers on the master side from a thread. `set_weight()` puts a load on
the platform (the scale shows motion for `settle` seconds, then a stable weight); `unplug()` and
`replug()` make the port vanish and come back (a new pty, the symlink pointed at it).
Used by the demo, the tests and the benchmark; loopback only, nothing leaves the machine.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import threading
import time
from pathlib import Path
from typing import Literal

from drivers.scale import toledo
from drivers.sim_pty import open_raw_pty

__all__ = ["ScaleSimulator"]

_EVEN = bytes(b | 0x80 if b.bit_count() % 2 else b for b in range(128))


class ScaleSimulator:
    def __init__(
        self,
        protocol: Literal["mt-sics", "toledo"],
        *,
        link: Path | None = None,
        unit: str = "kg",
        decimals: int = 2,
        interval: float = 0.05,
        settle: float = 0.3,
        capacity: float = 6000.0,
        zero_range: float = 2.0,
        with_checksum: bool = False,
        parity_bit: bool = False,
    ) -> None:
        self.protocol = protocol
        self.link = link
        self.unit = unit
        self.decimals = decimals
        self.interval = interval
        self.settle = settle
        self.capacity = capacity
        self.zero_range = zero_range
        self.with_checksum = with_checksum
        self.parity_bit = parity_bit  # send 7E1 characters as 8-bit bytes (bit 7 = even parity)
        self.commands: list[str] = []  # MT-SICS commands received, in order
        self.frames_sent = 0
        self._lock = threading.Lock()
        self._gross = 0.0
        self._previous = 0.0
        self._changed = -1e9
        self._zero = 0.0
        self._tare = 0.0
        self._streaming = protocol == "toledo"
        self._waiting: list[tuple[str, float]] = []  # S/Z/T commands waiting for a stable weight
        self._master = self._slave = -1
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._slave_name = ""

    # -- control --------------------------------------------------------------------------------
    @property
    def port(self) -> str:
        """The path a driver opens: the symlink when there is one, else the pty slave."""
        return str(self.link) if self.link is not None else self._slave_name

    def start(self) -> ScaleSimulator:
        self._open()
        return self

    def stop(self) -> None:
        self._halt()
        if self.link is not None:
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()

    def unplug(self) -> None:
        """The cable is pulled: the port closes under the driver and the device path disappears."""
        self._halt()
        if self.link is not None:
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()

    def replug(self) -> None:
        """Plugged back in: a new pty, reachable under the same symlink."""
        self._open()

    def set_weight(self, gross: float) -> None:
        """Put `gross` (scale unit) on the platform; it settles after `settle` seconds."""
        with self._lock:
            self._previous = self._display(time.monotonic())[0]
            self._gross = gross
            self._changed = time.monotonic()

    def inject(self, data: bytes) -> None:
        """Raw bytes on the line (noise, a torn frame)."""
        self._send(data, encode=False)

    def __enter__(self) -> ScaleSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the pty --------------------------------------------------------------------------------
    def _open(self) -> None:
        self._master, self._slave, self._slave_name = open_raw_pty()
        if self.link is not None:
            tmp = self.link.with_name(self.link.name + ".new")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            os.symlink(self._slave_name, tmp)
            os.replace(tmp, self.link)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, args=(self._stop,), name="scale-simulator", daemon=True)
        self._thread.start()

    def _halt(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None
        for fd in (self._master, self._slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = -1

    def _send(self, data: bytes, *, encode: bool = True) -> None:
        if encode and self.parity_bit:
            data = data.translate(_EVEN + bytes(range(128, 256)))
        try:
            os.write(self._master, data)
            self.frames_sent += 1
        except BlockingIOError:
            pass  # nobody reads the port: the line drops it, as a real one does
        except OSError as err:
            if err.errno not in (errno.EIO, errno.EBADF):
                raise

    # -- the scale ------------------------------------------------------------------------------
    def _display(self, now: float) -> tuple[float, bool]:
        """(gross on the platform as shown, stable)."""
        elapsed = now - self._changed
        if elapsed >= self.settle:
            return self._gross, True
        fraction = elapsed / self.settle if self.settle > 0 else 1.0
        return self._previous + (self._gross - self._previous) * fraction, False

    def _main(self, stop: threading.Event) -> None:
        master = self._master
        pending = b""
        next_frame = time.monotonic()
        while not stop.is_set():
            try:
                ready, _, _ = select.select([master], [], [], 0.01)
            except (OSError, ValueError):
                return
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except BlockingIOError:
                    chunk = b""
                except OSError:
                    chunk = b""  # no reader on the slave side at the moment
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    self._command(line.strip().decode("ascii", "replace"))
            now = time.monotonic()
            self._serve_waiting(now)
            if self._streaming and now >= next_frame:
                next_frame = now + self.interval
                self._send(self._frame(now))

    def _frame(self, now: float) -> bytes:
        with self._lock:
            shown, stable = self._display(now)
            zero, tare = self._zero, self._tare
        weight = shown - zero - tare
        if self.protocol == "mt-sics":
            return self._weight_line(weight, shown - zero, stable)
        scale = 10**self.decimals
        digits = round(abs(weight) * scale)
        over = shown - zero > self.capacity or digits > 999_999
        return toledo.encode(
            0 if over else digits,
            min(round(tare * scale), 999_999),
            decimals=self.decimals,
            net=tare != 0,
            negative=weight < 0,
            motion=not stable,
            out_of_range=over,
            unit=self.unit,
            with_checksum=self.with_checksum,
        )

    def _weight_line(self, weight: float, above_zero: float, stable: bool) -> bytes:
        if above_zero > self.capacity:
            return b"S +\r\n"
        if above_zero < -self.zero_range:
            return b"S -\r\n"
        return f"S {'S' if stable else 'D'} {weight:>10.{self.decimals}f} {self.unit}\r\n".encode()

    def _command(self, name: str) -> None:
        if not name:
            return
        self.commands.append(name)
        now = time.monotonic()
        if name == "SI":
            self._send(self._frame(now))
        elif name == "SIR":
            self._streaming = True
        elif name == "@":
            self._streaming = False
            self._send(b'I4 A "SIM0001"\r\n')
        elif name in ("S", "Z", "T"):
            self._waiting.append((name, now + 2.0))
            self._serve_waiting(now)
        else:
            self._send(b"ES\r\n")

    def _serve_waiting(self, now: float) -> None:
        if not self._waiting:
            return
        with self._lock:
            shown, stable = self._display(now)
        remaining = []
        for name, deadline in self._waiting:
            if not stable:
                if now < deadline:
                    remaining.append((name, deadline))
                else:
                    self._send(f"{name} I\r\n".encode())
                continue
            if name == "S":
                self._send(self._frame(now))
            elif name == "Z":
                if abs(shown - self._zero) > self.zero_range:
                    self._send(b"Z +\r\n" if shown > self._zero else b"Z -\r\n")
                else:
                    with self._lock:
                        self._zero, self._tare = shown, 0.0
                    self._send(b"Z A\r\n")
            else:
                tare = shown - self._zero
                if tare < 0:
                    self._send(b"T -\r\n")
                elif tare > self.capacity:
                    self._send(b"T +\r\n")
                else:
                    with self._lock:
                        self._tare = tare
                    self._send(f"T S {tare:>10.{self.decimals}f} {self.unit}\r\n".encode())
        self._waiting = remaining
