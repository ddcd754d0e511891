"""A stand-in for systemd's notify socket: a real AF_UNIX datagram socket with SO_PASSCRED."""

from __future__ import annotations

import array
import socket
import struct
import time


class NotifyListener:
    """A datagram socket like systemd's notify socket, with SO_PASSCRED to see the sender's pid."""

    def __init__(self, address: str | bytes) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(address)
        self.sock.settimeout(5)
        self.seen: list[list[str]] = []

    def receive(self) -> tuple[list[str], int | None]:
        """The fields of one datagram and the sender's pid from SCM_CREDENTIALS."""
        size = struct.calcsize("3i")
        data, ancdata, _flags, _addr = self.sock.recvmsg(4096, socket.CMSG_SPACE(size))
        pid = None
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = array.array("i", payload[:size])[0]
        return data.decode().split("\n"), pid

    def pending(self) -> bool:
        self.sock.setblocking(False)
        try:
            self.sock.recv(4096, socket.MSG_PEEK)
        except BlockingIOError:
            return False
        finally:
            self.sock.settimeout(5)
        return True

    def close(self) -> None:
        self.sock.close()

    def wait_for(self, field: str, timeout: float = 15.0) -> tuple[list[str], int | None]:
        """Receive until a message carries `field` (e.g. "READY=1"); that message and its sender."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {field} from the service within {timeout}s; got {self.seen}")
            self.sock.settimeout(left)
            try:
                fields, pid = self.receive()
            except TimeoutError:
                continue
            finally:
                self.sock.settimeout(5)
            self.seen.append(fields)
            if field in fields:
                return fields, pid
