"""`edge-agent demo`: an MT-SICS scale (polled) and a Toledo continuous scale on pty pairs.

Parcels are put on and taken off both scales in a loop, so the demo shows weighing events
(one reading per parcel) and stable weights.
"""

from __future__ import annotations

import itertools
import pathlib
import threading

from drivers.scale.simulator import ScaleSimulator

__all__ = ["ScaleDemo", "start"]

_PARCELS = (1.25, 3.4, 0.75, 12.8, 5.05, 2.2)


class ScaleDemo:
    def __init__(self, workdir: pathlib.Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.mtsics = ScaleSimulator("mt-sics", link=workdir / "ttyScale-mtsics", settle=0.4)
        self.toledo = ScaleSimulator("toledo", link=workdir / "ttyScale-toledo", settle=0.4, interval=0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._parcels, name="scale-demo", daemon=True)
        self.yaml = (
            f"  - id: demo-scale-mtsics\n    driver: scale\n    protocol: mt-sics\n"
            f"    port: {self.mtsics.port}\n    mode: poll\n    poll_interval: 200ms\n    report: events\n"
            f"    min_weight: 0.1\n    zero_band: 0.02\n"
            f"  - id: demo-scale-toledo\n    driver: scale\n    protocol: toledo\n"
            f"    port: {self.toledo.port}\n    mode: listen\n    report: stable\n"
        )

    def start(self) -> ScaleDemo:
        self.mtsics.start()
        self.toledo.start()
        self._thread.start()
        return self

    def _parcels(self) -> None:
        for parcel in itertools.cycle(_PARCELS):
            for sim in (self.mtsics, self.toledo):
                sim.set_weight(parcel)
            if self._stop.wait(1.5):
                return
            for sim in (self.mtsics, self.toledo):
                sim.set_weight(0.0)
            if self._stop.wait(1.0):
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2.0)
        self.mtsics.stop()
        self.toledo.stop()


def start(workdir: pathlib.Path) -> ScaleDemo:
    """Start both simulated scales; `yaml` holds their device entries."""
    return ScaleDemo(workdir).start()
