"""`edge-agent demo`: an R2000 portal and an M100 desk reader, simulated on pty pairs.

Tags come and go every few seconds (a pallet through the dock door, a returnable crate at the
desk), so the demo shows arrivals and departures.
"""

from __future__ import annotations

import pathlib
import threading

from drivers.rfid.simulator import ReaderSimulator, SimTag

__all__ = ["RfidDemo", "start"]

PALLET = [
    SimTag(bytes.fromhex("3074257BF7194E4000001A85"), -52.0),  # SGTIN-96 0614141.812345.6789
    SimTag(bytes.fromhex("3074257BF7194E4000001A86"), -58.0),
    SimTag(bytes.fromhex("3114257BF4499602D2000000"), -49.0),  # SSCC-96 of the pallet
]
CRATE = [SimTag(bytes.fromhex("3334257BF40C0E4000000190"), -61.0)]  # a GRAI-96 returnable crate
TID = [SimTag(bytes.fromhex("E200301666130121155074EF"), -66.0)]  # a TID-as-EPC: raw hex only


class RfidDemo:
    def __init__(self, workdir: pathlib.Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.door = ReaderSimulator("r2000", PALLET, reads_per_second=150, link=workdir / "door-reader").start()
        self.desk = ReaderSimulator("m100", CRATE, reads_per_second=50, link=workdir / "desk-reader").start()
        self.yaml = (
            "  - id: demo-rfid-door\n"
            "    driver: rfid\n"
            "    protocol: r2000\n"
            f"    port: {self.door.port}\n"
            "    report: presence\n"
            "    absent_after: 1s\n"
            "  - id: demo-rfid-desk\n"
            "    driver: rfid\n"
            "    protocol: m100\n"
            f"    port: {self.desk.port}\n"
            "    report: presence\n"
            "    absent_after: 1s\n"
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._scenario, name="rfid-demo", daemon=True)
        self._thread.start()

    def _scenario(self) -> None:
        step = 0
        while not self._stop.wait(3.0):
            step += 1
            self.door.set_tags(PALLET if step % 2 == 0 else TID)
            self.desk.set_tags(CRATE if step % 3 != 2 else [])

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self.door.stop()
        self.desk.stop()


def start(workdir: pathlib.Path) -> RfidDemo:
    return RfidDemo(workdir)
