"""A raw pseudo-terminal pair for device simulators: the driver opens the slave's name with
pyserial as it would a USB serial adapter; the simulator reads and writes the master."""

from __future__ import annotations

import os
import termios
import tty

__all__ = ["open_raw_pty"]


def open_raw_pty(*, nonblocking_master: bool = True) -> tuple[int, int, str]:
    """(master fd, slave fd, slave path): raw mode on both ends, no echo."""
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    attrs = termios.tcgetattr(slave)
    attrs[3] &= ~termios.ECHO
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    if nonblocking_master:
        os.set_blocking(master, False)
    return master, slave, os.ttyname(slave)
