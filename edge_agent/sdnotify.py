"""sd_notify(3) without libsystemd: one datagram to `$NOTIFY_SOCKET` per call.

systemd (Type=notify) sets `$NOTIFY_SOCKET` to a filesystem path or, starting with `@`, to a socket
in the abstract namespace. Each message is newline-separated `KEY=VALUE` fields. Outside systemd
the variable is absent and every call is a cheap no-op returning False, so the agent calls these
unconditionally.

    READY=1           config loaded, outbox open, devices started (systemd then reports "active")
    STATUS=...        one line shown by `systemctl status`
    WATCHDOG=1        a ping; send one every watchdog_interval() / 2 seconds while healthy
    RELOADING=1       with MONOTONIC_USEC, before a SIGHUP reload; READY=1 when it is done
    STOPPING=1        at the start of a clean shutdown
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import time

__all__ = ["notify", "ready", "reloading", "status", "stopping", "watchdog", "watchdog_interval"]

log = logging.getLogger("edge_agent.sdnotify")


def _address(value: str) -> str | bytes | None:
    if value.startswith("@"):
        return b"\0" + value[1:].encode()  # abstract namespace: a leading NUL byte, no file
    if value.startswith("/"):
        return value
    return None  # vsock: and other forms are not used for services on a gateway


def notify(*fields: str) -> bool:
    """Send `fields` ("READY=1", "STATUS=...") to systemd; False when not run by systemd or on failure.

    Socket errors are swallowed (a lost notification must not take the agent down; systemd's
    watchdog catches a process that really stopped talking). A field that is not one `KEY=VALUE`
    line is a programming error and raises ValueError.
    """
    target = os.environ.get("NOTIFY_SOCKET")
    if not target or not fields:
        return False
    address = _address(target)
    if address is None:
        log.debug("NOTIFY_SOCKET=%r is not a unix socket address; not notifying", target)
        return False
    for item in fields:
        if "\n" in item or "=" not in item:
            raise ValueError(f"sd_notify field must be KEY=VALUE on one line, got {item!r}")
    message = "\n".join(fields).encode("utf-8")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message)
    except OSError as err:
        if err.errno not in (errno.ENOENT, errno.ECONNREFUSED):
            log.debug("sd_notify to %s failed: %s", target, err)
        return False
    return True


def _one_line(text: str) -> str:
    return " ".join(text.split())


def ready(status_text: str | None = None) -> bool:
    """READY=1, optionally with a STATUS= line."""
    if status_text is None:
        return notify("READY=1")
    return notify("READY=1", f"STATUS={_one_line(status_text)}")


def status(text: str) -> bool:
    """STATUS=<text>, flattened to one line (shown by `systemctl status edge-agent`)."""
    return notify(f"STATUS={_one_line(text)}")


def watchdog() -> bool:
    """WATCHDOG=1: call only when the main loop and the forwarder are known to make progress."""
    return notify("WATCHDOG=1")


def stopping(status_text: str | None = None) -> bool:
    if status_text is None:
        return notify("STOPPING=1")
    return notify("STOPPING=1", f"STATUS={_one_line(status_text)}")


def reloading(status_text: str | None = None) -> bool:
    """RELOADING=1 with MONOTONIC_USEC (required by Type=notify-reload, harmless for Type=notify)."""
    usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    fields = ["RELOADING=1", f"MONOTONIC_USEC={usec}"]
    if status_text is not None:
        fields.append(f"STATUS={_one_line(status_text)}")
    return notify(*fields)


def watchdog_interval() -> float | None:
    """WatchdogSec= of the unit in seconds, or None when no watchdog applies to this process.

    Honours WATCHDOG_PID: when set to another process's pid the watchdog is not ours. Ping at
    half this interval (sd_watchdog_enabled(3)).
    """
    usec = os.environ.get("WATCHDOG_USEC")
    if not usec:
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    if value <= 0:
        return None
    pid = os.environ.get("WATCHDOG_PID")
    if pid:
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            return None
    return value / 1_000_000
