"""A real pseudo-terminal pair: the driver opens `port` (the slave) with pyserial, the device
simulator reads and writes the master fd. `unplug()` closes the master, as a USB cable pull does."""

from __future__ import annotations

import os
import select

from drivers.sim_pty import open_raw_pty


class PtyPair:
    def __init__(self) -> None:
        self.master, self.slave, self.port = open_raw_pty(nonblocking_master=False)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.master, view)
            view = view[n:]

    def read(self, timeout: float = 0.1, size: int = 4096) -> bytes:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return b""
        try:
            return os.read(self.master, size)
        except OSError:
            return b""

    def close(self) -> None:
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> PtyPair:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
