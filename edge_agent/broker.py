"""A private Mosquitto on a free loopback port, for the demo (and the tests' fixtures)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["LocalBroker", "free_port"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalBroker:
    """mosquitto bound to 127.0.0.1 only; start(), stop(), kill() and start() again on the same port."""

    def __init__(
        self, port: int | None = None, *, extra_conf: str = "", binary: str | None = None, persistence: bool = False
    ) -> None:
        self.binary = binary or shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(self.binary).exists():
            raise FileNotFoundError("mosquitto is not installed (apt-get install mosquitto)")
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="edge-agent-broker-"))
        self.dir.chmod(0o777)  # mosquitto started as root drops to its own user, which must write here
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            f"persistence {'true' if persistence else 'false'}\n"
            f"persistence_location {self.dir}/\n"
            # A hub must not silently drop QoS 1 messages for slow subscribers (docs/mqtt.md).
            "max_queued_messages 0\n"
            "max_inflight_messages 0\n"
            f"{extra_conf}\n"
        )
        self.log = self.dir / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> LocalBroker:
        logf = self.log.open("ab")
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=logf, stderr=logf)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.log.read_text(errors='replace')[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        raise TimeoutError(f"mosquitto did not listen on 127.0.0.1:{self.port} within {timeout}s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
